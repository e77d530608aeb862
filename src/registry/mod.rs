//! The control path: one task per balancer. It consumes discovery, runs each endpoint's
//! connection task (and health check), judges endpoint health, and publishes a new ready set
//! whenever something changed. It never touches a call; it meets the request path only in
//! the ready set it publishes.
//!
//! * `control.rs`: the [`Registry`] and its loop (inputs in, a ready set out per batch),
//!   connection events and timers;
//! * `membership.rs`: discovery's inserts and removes, the endpoint limit and standby;
//! * `entry.rs`: what the task keeps per endpoint;
//! * `connection.rs`: an endpoint's connection task (connect, report, reconnect with backoff);
//! * `ejection.rs`: outlier detection's bookkeeping (ejections, their end, the cap);
//! * `health_checks.rs` and `check_task.rs`: starting active health checks and taking their
//!   verdicts; the `grpc.health.v1` task itself;
//! * `probe.rs`: probing a connection after a call on it timed out;
//! * `grpc_body.rs`: the control path's own gRPC requests on a channel (health checks, load
//!   probes, out-of-band reports);
//! * `load_probes.rs`: Prequal's task, probing servers for their load and filling the pool;
//! * `out_of_band.rs`: an endpoint's out-of-band load-report stream (ORCA, for weighted
//!   round robin);
//! * `pacing.rs`: when the next ready set may go out (publishes spaced by their cost);
//! * `publish.rs`: from entries to a ready set (tier, panic mode, slow-start weights, why
//!   nothing is ready), patched from the one before when little changed;
//! * `published.rs`: what publishes leave for the next (each entry's standing and their
//!   tally, the keys touched since, the previous snapshot's lists);
//! * `task.rs`: a task that stops when what owns it is dropped (probes, report streams).
//!
//! It holds only a weak reference to the shared state, and stops when the last balancer clone
//! (and the last call in flight) is gone. Stopping aborts the connection tasks; connections
//! already made close once their in-flight calls end.

#[cfg(feature = "health")]
mod check_task;
mod connection;
mod control;
mod ejection;
mod entry;
mod grpc_body;
mod health_checks;
mod load_probes;
mod membership;
mod out_of_band;
mod pacing;
mod probe;
mod publish;
mod published;
mod task;

pub(crate) use control::{OnAllUnreachable, Registry};
#[cfg(feature = "health")]
pub(crate) use grpc_body::carries_grpc as health_check_supported;
