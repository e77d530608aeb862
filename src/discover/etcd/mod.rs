//! etcd discovery (feature `etcd`): a key prefix watched on an etcd v3 cluster, fed to the
//! balancer as diffs; and [registration](Etcd::registration) for servers, with a lease kept
//! alive.
//!
//! ```no_run
//! use tower_lb::{Balancer, discover::etcd::Etcd};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let etcd = Etcd::new(["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"], "services/echo");
//!
//! // A server registers itself (the key goes with its lease if it dies):
//! let registration = etcd.registration("10.0.1.5:50051".parse()?).start().await?;
//!
//! // A client balances over whatever is registered:
//! let discovery = etcd.build()?;
//! let status = discovery.status(); // watching, or keeping the last good set, and why
//! let balancer = Balancer::builder().build(discovery)?;
//! # Ok(()) }
//! ```
//!
//! # What it does
//!
//! **List, then watch from the next revision.** The prefix is listed at one revision (page by
//! page, every page at the first page's revision, linearizable), and watched from that
//! revision + 1, so no change falls between the two. Each watch response is one batch of
//! changes; progress notifications move the revision on while nothing changes.
//!
//! **Keys and values.** Each key under the prefix names at most one endpoint; its value is
//! decoded by a [`Decoder`]: [`GoNaming`] (the default) reads the JSON that etcd's Go endpoints
//! manager writes, `{"Op":0,"Addr":"10.0.0.1:50051","Metadata":...}`, with an optional weight,
//! priority and TLS server name in the metadata; [`PlainAddr`] reads a bare `ip:port`; a
//! closure reads anything else. The balancer's key is the address: two etcd keys naming the
//! same address are one endpoint, which stays until the last of them goes (the smallest key
//! gives its weight and priority). A value that names no endpoint (not JSON, no address, a host
//! name, port 0, over [`MAX_VALUE_BYTES`]) is skipped with one warning per batch (the first key
//! and a count); if its key named an endpoint before, that endpoint leaves.
//!
//! **Faults keep the set.** A member that cannot be reached, a broken connection, a watch
//! cancelled by etcd or a member without a leader (the watch asks etcd to cancel it then, as
//! Go's `WithRequireLeader` does): the set is kept, the fault is logged and yielded as an `Err`
//! item (which the balancer logs too) and shown in [`EtcdStatus`], and the task reconnects,
//! to the next member first, with [`Backoff`](crate::Backoff) between rounds. The watch
//! resumes from the last revision seen, so nothing changed during the outage is missed. If
//! that revision has been compacted away meanwhile, the prefix is listed again and the list is
//! diffed against the set published: endpoints that stayed do not flap, and the set after
//! recovery is exactly the registry's.
//!
//! **Credentials.** [`Etcd::user`] logs in with etcd's user and password (a token per
//! connection); [`Etcd::tls`] connects over TLS ([`EtcdTls`]: the CA, a client certificate).

mod client;
mod config;
mod decode;
mod error;
mod proto;
mod register;
mod settings;
mod state;
mod status;
mod stream;
mod tls;
mod watch;

pub use config::Etcd;
pub use decode::{Decoder, GoNaming, MAX_VALUE_BYTES, PlainAddr};
pub use error::{EtcdError, EtcdErrorKind};
pub use register::{Registration, RegistrationBuilder};
pub use status::EtcdStatus;
pub use stream::EtcdDiscovery;
pub use tls::EtcdTls;
