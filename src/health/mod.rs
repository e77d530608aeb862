//! Endpoint health: which endpoints may take calls, beyond having a connection.
//!
//! Four mechanisms, each with its own trade-off, all configured on the
//! [`Builder`](crate::Builder):
//!
//! * **Outlier detection** ([`OutlierDetection`], on by default) watches the outcome of real
//!   calls. It costs nothing extra on the wire and catches what a health endpoint does not (a
//!   backend that says SERVING but fails every call), but it learns only from traffic, so it
//!   needs failures to happen first. An endpoint that fails 5 calls in a row is ejected by the
//!   5th call itself; once per interval the success-rate and failure-percentage statistics
//!   compare the endpoints with each other. Ejections last 30 s × times ejected (up to 300 s)
//!   and never take out more than 10 % of the endpoints (at least one, never all).
//! * **Circuit breaking** ([`CircuitBreaker`], off by default) protects endpoints from being
//!   overloaded (a cap on calls in flight) and recovers faster than an ejection: after
//!   consecutive failures the circuit opens, and after a backoff one trial call decides.
//! * **Active health checks** ([`HealthCheck`][health-check], off by default, feature `health`) ask each
//!   endpoint over its own connection with `grpc.health.v1.Health/Watch` (or periodic `Check`):
//!   `NOT_SERVING` takes it out of the ready set before any call fails — a draining server says
//!   so — at the cost of one stream per endpoint. An endpoint without a health service counts
//!   as healthy (gRPC A17).
//! * **Slow start** ([`SlowStart`], off by default) ramps the weight of an endpoint that
//!   (re)joins, so a cold backend is not flooded on arrival.
//!
//! **Panic mode** guards against all of them at once: when fewer than half (by default) of a
//! tier's endpoints are healthy, endpoints that only a health check holds out take calls again
//! — spreading load over a fleet that says it is unwell beats crushing the few that do not.
//! Outlier ejections stay in force in panic mode: their own cap already keeps most endpoints
//! in, and an ejection that silently does nothing (Envoy #2671) helps nobody.
//!
//! This module holds what is configured and the control side's arithmetic (A50 statistics,
//! slow-start ramps, what an outcome counts as); the per-endpoint state both paths touch lives
//! in the crate's `endpoint` module, and the bookkeeping in the control task's `registry`.
//!
//! Every transition — ejected, returned, breaker opened / half-open / closed, health changed,
//! panic entered / left — is a `tracing` event with the endpoint and the reason.
//!
// Links to items behind a feature: the item when the feature is on, else its docs.rs page.
#![cfg_attr(feature = "health", doc = "[health-check]: HealthCheck")]
#![cfg_attr(
    not(feature = "health"),
    doc = "[health-check]: https://docs.rs/tower-lb/latest/tower_lb/health/struct.HealthCheck.html"
)]

mod breaker;
#[cfg(feature = "health")]
mod check;
mod config;
pub(crate) mod outcome;
pub(crate) mod outlier;
pub(crate) mod slow_start;
mod state;

pub use breaker::{BreakerState, CircuitBreaker};
#[cfg(feature = "health")]
pub use check::HealthCheck;
#[cfg(feature = "health")]
pub(crate) use check::Verdict;
pub(crate) use config::HealthConfig;
pub use outcome::Failures;
pub use outlier::{FailurePercentage, OutlierDetection, SuccessRate};
pub use slow_start::SlowStart;
pub use state::Health;
