//! Balancing policies: how one endpoint is chosen from the ready set for each call.
//!
//! Every policy picks from an immutable snapshot of ready endpoints, in the caller's task, with
//! no lock and no allocation. What a policy needs precomputed (a round-robin period, cumulative
//! weights) is built by the control task with each snapshot, so a pick is O(1) or O(log n);
//! only the least-loaded scan is O(n), by definition.

//! * `config.rs`: [`Policy`], what a user configures;
//! * `plan.rs`: what a policy precomputes per snapshot (control path);
//! * `dispatch.rs`: the pick, and [`Call`], what a pick knows of its call (request path);
//! * `candidate.rs`: whether a chosen endpoint can take the call, and the fallback;
//! * one file per algorithm: `p2c.rs`, `least_request.rs`, `least_loaded.rs`, `pick_first.rs`,
//!   `round_robin.rs`, `weighted_round_robin.rs` (its weights from ORCA reports),
//!   `weighted_random.rs`, `prequal.rs` (over the probe answers in `probe_pool.rs`);
//!   consistent hashing in `consistent.rs` over
//!   `ring.rs` and `maglev.rs`, keyed by `hash_key.rs`.

mod candidate;
mod config;
mod consistent;
mod dispatch;
mod hash_key;
mod least_loaded;
mod least_request;
mod maglev;
mod p2c;
mod pick_first;
mod plan;
mod prequal;
mod probe_pool;
mod ring;
mod round_robin;
mod weighted_random;
mod weighted_round_robin;

pub(crate) use candidate::index;
#[cfg(all(test, feature = "service-config"))]
pub(crate) use config::Kind;
pub use config::Policy;
pub(crate) use dispatch::{Call, PickState};
pub use hash_key::{HashKey, RequestHead, hash_bytes};
pub(crate) use plan::Plan;
pub use prequal::Prequal;
pub(crate) use probe_pool::{ProbePool, SLOTS as PROBE_SLOTS, Slot as ProbeSlot};
pub use weighted_round_robin::WeightedRoundRobin;
