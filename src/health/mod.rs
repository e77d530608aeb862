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
//! * **Active health checks** ([`HealthCheck`], off by default, feature `health`) ask each
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
//! Every transition — ejected, returned, breaker opened / half-open / closed, health changed,
//! panic entered / left — is a `tracing` event with the endpoint and the reason.

mod breaker;
#[cfg(feature = "health")]
pub(crate) mod check;
pub(crate) mod gate;
pub(crate) mod outcome;
pub(crate) mod outlier;
pub(crate) mod passive;
pub(crate) mod slow_start;

pub use breaker::CircuitBreaker;
#[cfg(feature = "health")]
pub use check::HealthCheck;
pub use gate::BreakerState;
pub use outcome::Failures;
pub use outlier::{FailurePercentage, OutlierDetection, SuccessRate};
pub use slow_start::SlowStart;

use std::sync::Arc;

use crate::endpoint::EndpointState;

/// What the request path and the health checks tell the control task.
pub(crate) enum Signal {
    /// Consecutive failures ejected this endpoint; its gate is already shut.
    Ejected(Arc<EndpointState>),
    /// An active health check's verdict (`epoch`: which check task of the endpoint).
    #[cfg(feature = "health")]
    Health {
        state: Arc<EndpointState>,
        epoch: u64,
        verdict: check::Verdict,
    },
}

/// An endpoint's health as the control task sees it, for [`EndpointStatus`](crate::EndpointStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Eligible for calls (when connected).
    Healthy,
    /// Ejected by outlier detection until its ejection ends.
    Ejected,
    /// Its health check said something other than `SERVING` (or failed).
    NotServing,
    /// Health checks are on and the first answer has not come yet.
    Checking,
}

/// All health settings of one balancer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HealthConfig {
    pub(crate) failures: Failures,
    pub(crate) outlier: OutlierDetection,
    pub(crate) breaker: CircuitBreaker,
    #[cfg(feature = "health")]
    pub(crate) check: Option<HealthCheck>,
    pub(crate) slow_start: Option<SlowStart>,
    /// Panic below this healthy share of a tier (`None`: never).
    pub(crate) panic_threshold: Option<f64>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            failures: Failures::default(),
            outlier: OutlierDetection::default(),
            breaker: CircuitBreaker::default(),
            #[cfg(feature = "health")]
            check: None,
            slow_start: None,
            panic_threshold: Some(0.5),
        }
    }
}
