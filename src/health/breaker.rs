//! Circuit breaking per endpoint: a cap on concurrent calls, and a breaker that opens after
//! consecutive failures and lets one trial call through after a backoff (half-open).
//!
//! The breaker's state lives in the endpoint's gate (see [`gate`](super::gate)); this file is
//! its configuration and its transitions, which run on the request path with atomics only.

use std::time::Duration;

use crate::time::Backoff;

/// Circuit breaking for every endpoint of a balancer.
///
/// * **Concurrency cap** ([`max_in_flight`](Self::max_in_flight)): an endpoint with that many
///   calls in flight is passed over by the picker. When every ready endpoint is at its cap, a
///   call fails at once with `UNAVAILABLE` ("all N ready endpoints refuse calls: N at their
///   concurrency cap") instead of queueing — the backends are already as busy as allowed.
/// * **Failure breaker** ([`open_after`](Self::open_after)): after that many consecutive
///   failed calls (see [`Failures`](super::Failures)) the endpoint's circuit opens and it gets
///   no calls. After a backoff with jitter ([`backoff`](Self::backoff), default 1 s doubling
///   up to 60 s) the circuit is half-open: the next call picked for it is let through as a
///   trial, and no other. The trial's success closes the circuit; its failure opens it again
///   for the next, longer backoff; a trial its caller cancels opens the way for another.
///
/// The failure breaker reacts within one call and recovers within one trial; outlier
/// detection's consecutive-failure ejection (on by default) takes an endpoint out for 30 s and
/// more. Use one or the other for consecutive failures:
/// `OutlierDetection::default().consecutive_failures(None)` leaves them to the breaker.
///
/// ```
/// use tower_lb::{Balancer, health::CircuitBreaker};
/// let builder = Balancer::builder()
///     .circuit_breaker(CircuitBreaker::default().max_in_flight(100).open_after(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreaker {
    pub(crate) max_in_flight: Option<u32>,
    pub(crate) open_after: Option<u32>,
    pub(crate) backoff: Backoff,
}

impl Default for CircuitBreaker {
    /// No cap, no failure breaker: turn each on with its setter.
    fn default() -> Self {
        CircuitBreaker {
            max_in_flight: None,
            open_after: None,
            backoff: Backoff::default()
                .initial(Duration::from_secs(1))
                .multiplier(2.0)
                .max(Duration::from_secs(60)),
        }
    }
}

impl CircuitBreaker {
    /// Caps the calls in flight on each endpoint (at least 1).
    pub fn max_in_flight(mut self, max: u32) -> Self {
        self.max_in_flight = Some(max.max(1));
        self
    }

    /// Opens an endpoint's circuit after `failures` consecutive failed calls (at least 1).
    pub fn open_after(mut self, failures: u32) -> Self {
        self.open_after = Some(failures.max(1));
        self
    }

    /// How long a circuit stays open before its trial call: `initial` after the first opening,
    /// growing with each failed trial (default 1 s, ×2, up to 60 s, ±20 % jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Where an endpoint's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// No calls until the backoff has passed.
    Open,
    /// One trial call is in flight; its outcome closes or reopens the circuit.
    HalfOpen,
}
