//! Discovery: the stream of changes that tells the balancer which endpoints exist.
//!
//! The contract is small on purpose: anything that implements
//! `Stream<Item = Result<Change, E>>` can feed a balancer — a [static list](fixed), DNS, or a
//! user's own watch on Kubernetes, etcd or Consul.
//!
//! * [`Change::Insert`] adds an endpoint, or updates the endpoint already under that key in
//!   place: a new weight keeps the connection and its load history; a new address reconnects.
//! * [`Change::Remove`] takes the endpoint out of the ready set at once; calls already in
//!   flight on it finish, and its connection closes after the last of them.
//! * An `Err` item is logged (`tracing` warning) and the stream is polled again: a resolver
//!   that fails keeps the last good set. A stream that ends keeps the last set for good.
//!
//! [`dns`][dns-module] (feature `dns`, on by default) resolves SRV or A/AAAA records on their TTL and
//! sends only what changed. [`etcd`][etcd-module] (feature `etcd`) watches a key prefix on
//! an etcd cluster (etcd's Go naming convention by default) and registers servers with leases.
//! [`subset`](subset::subset) wraps any of them so that a client of a large fleet connects to
//! a bounded, stable part of it.
//!
// Links to items behind a feature: the item when the feature is on, else its docs.rs page.
#![cfg_attr(feature = "etcd", doc = "[etcd-module]: etcd")]
#![cfg_attr(
    not(feature = "etcd"),
    doc = "[etcd-module]: https://docs.rs/tower-lb/latest/tower_lb/discover/etcd/index.html"
)]
#![cfg_attr(feature = "dns", doc = "[dns-module]: dns")]
#![cfg_attr(
    not(feature = "dns"),
    doc = "[dns-module]: https://docs.rs/tower-lb/latest/tower_lb/discover/dns/index.html"
)]

mod change;
#[cfg(feature = "dns")]
pub mod dns;
mod endpoint;
#[cfg(feature = "etcd")]
pub mod etcd;
mod static_list;
pub mod subset;

pub use change::Change;
pub use endpoint::{Endpoint, Key};
pub use static_list::{Fixed, fixed};
