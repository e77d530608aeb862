//! DNS discovery: SRV records, or the A/AAAA records of one name at a fixed port, resolved
//! again on the records' TTL and fed to the balancer as diffs.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_lb::{Balancer, discover::dns};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // A Kubernetes headless service: one SRV record per ready pod.
//! let discovery = dns::Dns::srv("_grpc._tcp.echo.default.svc.cluster.local.")
//!     .ttl_bounds(Duration::from_secs(1), Duration::from_secs(30))
//!     .build()?;
//! let refresher = discovery.refresher(); // re-resolve now, e.g. when every endpoint failed
//! let balancer = Balancer::builder().build(discovery)?;
//! # Ok(()) }
//! ```
//!
//! # What it does
//!
//! **Records to endpoints.** [`Dns::srv`] reads the SRV records of a name: each record gives a
//! target and a port; each address of the target is one endpoint (`ip:port`, keyed by that
//! socket address). Addresses come from the answer's additional section when the server put
//! any there for the target (Kubernetes and most authoritative servers do), otherwise from an
//! A and an AAAA lookup of the target. [`Dns::host`] reads the A and AAAA records of one name
//! and puts every address at the given port.
//!
//! **Priority and weight.** The SRV priority becomes the endpoint's
//! [priority](crate::discover::Endpoint::with_priority): calls go to the lowest number that has
//! a ready endpoint, higher numbers are backups. The SRV weight becomes the endpoint's weight
//! times 100; SRV weight 0 becomes weight 1. RFC 2782 says weight 0 means "a very small chance
//! of being selected" when other records have weights: here such a record gets 1 % of the share
//! of a weight-1 record, and records that are all weight 0 share equally. Host endpoints all
//! have weight 1 and priority 0.
//!
//! **Duplicates, caps and hostile answers.** The same `ip:port` reached through two records
//! is one endpoint; it keeps the best (lowest) priority and, within it, the largest weight, in
//! whatever order the records came. Records with port 0, the target `.` (RFC 2782: "not
//! available here"), addresses that cannot be dialled (unspecified, multicast, broadcast) and
//! targets that do not resolve are skipped with a `tracing` warning. At most
//! [`max_endpoints`](Dns::max_endpoints) endpoints are kept (default 1,000): the best
//! priorities first, then the largest weights, then the lowest addresses, with a warning; only
//! the best ranked `max_endpoints` targets are looked up (equally ranked ones in name order), so
//! the set never depends on the order of the records. An answer never makes the stream panic.
//!
//! **When it resolves.** The first resolution starts when the stream is first polled. The next
//! one is due when the answer expires: the smallest TTL among the records used (SRV, CNAME and
//! address records), clamped to the [TTL bounds](Dns::ttl_bounds) (default 1 s to 30 s), minus
//! up to 10 % jitter so that many clients spread out (never below the lower bound, and never
//! later than the TTL, so an expired answer is never used). The resolver's own cache is cleared
//! before each resolution: this stream is the cache. [`Refresher::refresh`] asks for a
//! resolution now, at most once per lower TTL bound.
//!
//! **Diffs only.** Each resolution is compared with the set the stream published last:
//! [`Change::Insert`](crate::discover::Change::Insert) for a new endpoint or one whose weight
//! or priority changed (the balancer updates it in place, keeping its connection and load),
//! [`Change::Remove`](crate::discover::Change::Remove) for one that is gone, nothing for the
//! rest. Inserts go out before removes, so a replaced endpoint never leaves the set empty.
//!
//! **Faults keep the set.** A timeout, `SERVFAIL`, `REFUSED`, a broken or truncated answer, or
//! an unreachable server changes nothing: the last good set stays, the failure is yielded as
//! an `Err(`[`DnsError`]`)` item (the balancer logs it and polls again), and the next try
//! backs off: 1 s, ×1.6 per failure, ±20 % jitter, at most 120 s — and never later than the
//! upper TTL bound, so a recovered server is seen no later than a normal re-resolution would
//! see a change. A truncated UDP answer is retried over TCP first, as resolvers do. A
//! target whose own lookup fails keeps the addresses it had in the last good answer. Each
//! query waits at most the [timeout](Dns::timeout) (default 2 s) and is tried
//! [attempts](Dns::attempts) times (default 2) per name server.
//!
//! **Empty answers.** `NXDOMAIN`, an answer with no records, or records that are all unusable
//! are an answer, not a fault, but often a transient one (a DNS deployment, a misconfigured
//! zone). By default ([`OnEmpty::KeepFor`] 60 s) the last good set is kept for a grace period;
//! an empty answer that comes after the grace period empties it. A non-empty answer ends the
//! grace period. [`OnEmpty::Clear`] empties the set at once, [`OnEmpty::Keep`] never does.
//! While the set is kept, each empty answer is also yielded as an `Err` item; while nothing
//! resolves, the name is tried again on the failure backoff.
//!
//! **Resolver.** By default the name servers, search domains and `ndots` of the system
//! configuration (`/etc/resolv.conf`); [`name_servers`](Dns::name_servers) replaces them. Each
//! name server is asked over UDP with TCP for truncated answers. A name without a final dot goes
//! through the search domains; `_grpc._tcp.echo.default.svc.cluster.local.` with the dot is
//! asked as is. The stream must be polled inside a tokio runtime (the balancer does).

mod builder;
pub(crate) mod candidates;
mod diff;
mod error;
pub(crate) mod host;
mod on_empty;
pub(crate) mod resolve;
pub(crate) mod schedule;
pub(crate) mod srv;
mod stream;
pub(crate) mod tracker;

pub use builder::Dns;
pub use error::{DnsError, DnsErrorKind};
pub use on_empty::OnEmpty;
pub use stream::{DnsDiscovery, Refresher};
