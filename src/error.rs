//! The one error type of the crate, and how it reaches a tonic client.
//!
//! The balancer's `Service::Error` is [`BoxError`]. Failures the balancer decides on itself
//! (nothing ready, bad configuration, ...) are returned as a boxed [`tonic::Status`](https://docs.rs/tonic/0.14/tonic/struct.Status.html) whose
//! [`source`](std::error::Error::source) is the typed [`Error`] below, so a tonic client shows
//! `UNAVAILABLE` with a readable message, and code that wants the detail can downcast.
//! Failures of the endpoint's own connection are passed through unchanged (tonic maps hyper's
//! errors exactly as it does for its own `Channel`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A type-erased error, as Tower and tonic pass them around.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call could not be given to any endpoint, or why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No endpoint became ready before the wait deadline.
    NoReadyEndpoint {
        /// The request path (for gRPC, `/package.Service/Method`).
        path: String,
        /// How long the call waited for an endpoint.
        waited: Duration,
        /// What the endpoint set looked like when the call gave up.
        why: Unready,
    },
    /// The connection refused the request before sending it, on every attempt.
    NotSent {
        /// The request path.
        path: String,
        /// How many endpoints were tried.
        attempts: u32,
    },
    /// A request came back unsent and the retry budget was spent, so it was not sent to
    /// another endpoint (see [`RetryBudget`](crate::RetryBudget)).
    RetryBudgetExhausted {
        /// The request path.
        path: String,
        /// How many endpoints were tried.
        attempts: u32,
    },
    /// Too many calls were already waiting for a ready endpoint (see
    /// [`Limits::max_waiting_calls`](crate::Limits::max_waiting_calls)); `RESOURCE_EXHAUSTED`.
    TooManyWaiting {
        /// The request path.
        path: String,
        /// The limit that was reached.
        limit: usize,
        /// Why nothing was ready when the call arrived.
        why: Unready,
    },
    /// The call's deadline (its `grpc-timeout`, or the builder's default
    /// [`timeout`](crate::Builder::timeout)) passed before the call completed;
    /// `DEADLINE_EXCEEDED`. The endpoint's load was released and its HTTP/2 stream, if one
    /// was open, reset, so the server sees the cancellation.
    DeadlineExceeded {
        /// The request path.
        path: String,
        /// The call's timeout.
        timeout: Duration,
        /// What the call was waiting for when the deadline passed.
        during: CallStage,
    },
    /// [`Balancer::wait_ready`](crate::Balancer::wait_ready) gave up: fewer endpoints than
    /// wanted were ready in time.
    NotReady {
        /// How many ready endpoints were wanted.
        wanted: usize,
        /// How many were ready.
        ready: usize,
        /// How long it waited.
        waited: Duration,
        /// What the endpoint set looked like.
        why: Unready,
    },
    /// An endpoint specification was refused (bad address, zero weight, ...).
    InvalidEndpoint(String),
    /// A configuration value was refused.
    InvalidConfig(String),
}

/// Where a call stood when its deadline passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallStage {
    /// Before it was sent: its timeout was zero.
    Dispatch,
    /// Waiting for a ready endpoint; why none was ready.
    Endpoint(Unready),
    /// Sent to this endpoint, waiting for the response headers.
    Headers(std::net::SocketAddr),
    /// Reading the response body (a stream's messages, or a unary call's one message and
    /// its trailers).
    Body,
}

impl fmt::Display for CallStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallStage::Dispatch => f.write_str("before it was sent (a timeout of zero)"),
            CallStage::Endpoint(why) => write!(f, "waiting for a ready endpoint ({why})"),
            CallStage::Headers(addr) => write!(f, "waiting for the response from {addr}"),
            CallStage::Body => f.write_str("reading the response body"),
        }
    }
}

/// The state of the endpoint set when no endpoint could take a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unready {
    /// Discovery has not answered yet: the balancer was built a moment ago, or its discovery
    /// source is still waiting for its first answer (a DNS lookup, a registry's first list).
    Discovering,
    /// Discovery has not produced a single endpoint (or removed them all).
    NoEndpointsDiscovered,
    /// Endpoints are known, but none has a live connection.
    AllUnreachable {
        /// Endpoints known to discovery.
        discovered: usize,
        /// Of those, how many are still trying their first connection or reconnecting.
        connecting: usize,
        /// The most recent connection error, if any.
        last_error: Option<String>,
    },
    /// Endpoints are connected, but none is healthy (ejected by outlier detection, or not
    /// serving by its health check) and panic mode is off or does not apply.
    AllUnhealthy {
        /// Endpoints known to discovery.
        discovered: usize,
        /// Of those, ejected by outlier detection.
        ejected: usize,
        /// Of those, not serving by their health check (or still waiting for its first answer).
        not_serving: usize,
    },
    /// Every ready endpoint holds calls back: at its concurrency cap, or its circuit breaker
    /// is open. Calls fail at once rather than queue more load on them.
    AllRefusing {
        /// Ready endpoints.
        ready: usize,
        /// Of those, at their concurrency cap.
        at_capacity: usize,
        /// Of those, with an open circuit breaker (or ejected a moment ago).
        shut: usize,
    },
    /// The balancer's background task has stopped (the runtime is shutting down).
    Closed,
    /// Endpoints are connected, but none is healthy, and every one that is not ejected has a
    /// health check saying the server does not know the checked service (`SERVICE_UNKNOWN`):
    /// the health check's service name is likely wrong. Said apart from
    /// [`AllUnhealthy`](Self::AllUnhealthy) because the cure is a configuration change, not
    /// the servers.
    HealthServiceUnknown {
        /// The service name the health check asks for.
        service: String,
        /// Endpoints known to discovery.
        discovered: usize,
        /// Of those, the ones whose health check says the service is unknown.
        unknown: usize,
    },
}

impl fmt::Display for Unready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unready::Discovering => f.write_str("no endpoints yet: discovery has not answered"),
            Unready::NoEndpointsDiscovered => f.write_str("no endpoints discovered"),
            Unready::AllUnreachable {
                discovered,
                connecting,
                last_error: None,
            } if connecting == discovered => {
                write!(f, "{discovered} endpoints discovered, all still connecting")
            }
            Unready::AllUnreachable {
                discovered,
                connecting,
                last_error,
            } => {
                write!(
                    f,
                    "all {discovered} endpoints unreachable or connecting ({connecting} connecting)"
                )?;
                if let Some(e) = last_error {
                    write!(f, "; last connection error: {e}")?;
                }
                Ok(())
            }
            Unready::AllUnhealthy {
                discovered,
                ejected,
                not_serving,
            } => write!(
                f,
                "none of {discovered} endpoints is healthy ({ejected} ejected by outlier detection, {not_serving} not serving by their health check)"
            ),
            Unready::AllRefusing {
                ready,
                at_capacity,
                shut,
            } => write!(
                f,
                "all {ready} ready endpoints refuse calls ({at_capacity} at their concurrency cap, {shut} with an open circuit breaker)"
            ),
            Unready::Closed => f.write_str("the balancer's background task has stopped"),
            Unready::HealthServiceUnknown {
                service,
                discovered,
                unknown,
            } => write!(
                f,
                "health check misconfigured: {unknown} of {discovered} endpoints do not know the checked service {service:?} (SERVICE_UNKNOWN); check the health check's service name"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoReadyEndpoint { path, waited, why } => write!(
                f,
                "tower-lb: no ready endpoint for {path} after waiting {waited:?}: {why}"
            ),
            Error::NotSent { path, attempts } => write!(
                f,
                "tower-lb: {path} was refused unsent by {attempts} endpoint connection(s)"
            ),
            Error::RetryBudgetExhausted { path, attempts } => write!(
                f,
                "tower-lb: {path} was refused unsent by {attempts} endpoint connection(s) and not retried: the retry budget is spent"
            ),
            Error::TooManyWaiting { path, limit, why } => write!(
                f,
                "tower-lb: {path} refused: {limit} calls already wait for a ready endpoint (the max_waiting_calls limit); {why}"
            ),
            Error::DeadlineExceeded {
                path,
                timeout,
                during,
            } => write!(
                f,
                "tower-lb: deadline of {timeout:?} for {path} exceeded {during}"
            ),
            Error::NotReady {
                wanted,
                ready,
                waited,
                why,
            } => write!(
                f,
                "tower-lb: {ready} endpoint(s) ready after waiting {waited:?}, {wanted} wanted; {why}"
            ),
            Error::InvalidEndpoint(why) => write!(f, "tower-lb: invalid endpoint: {why}"),
            Error::InvalidConfig(why) => write!(f, "tower-lb: invalid configuration: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The gRPC code this error stands for.
    ///
    /// ```
    /// use tower_lb::{Error, Unready};
    /// let e = Error::NoReadyEndpoint {
    ///     path: "/echo.Echo/Unary".into(),
    ///     waited: std::time::Duration::ZERO,
    ///     why: Unready::NoEndpointsDiscovered,
    /// };
    /// assert_eq!(e.code(), tonic::Code::Unavailable);
    /// ```
    pub fn code(&self) -> tonic::Code {
        match self {
            Error::NoReadyEndpoint { .. }
            | Error::NotReady { .. }
            | Error::NotSent { .. }
            | Error::RetryBudgetExhausted { .. } => tonic::Code::Unavailable,
            Error::TooManyWaiting { .. } => tonic::Code::ResourceExhausted,
            Error::DeadlineExceeded { .. } => tonic::Code::DeadlineExceeded,
            Error::InvalidEndpoint(_) | Error::InvalidConfig(_) => tonic::Code::InvalidArgument,
        }
    }

    /// This error as a [`tonic::Status`](https://docs.rs/tonic/0.14/tonic/struct.Status.html) carrying the error as its source.
    pub fn to_status(&self) -> tonic::Status {
        let mut status = tonic::Status::new(self.code(), self.to_string());
        status.set_source(Arc::new(self.clone()));
        status
    }

    /// Boxes the error the way the balancer returns it: a `tonic::Status` with this error as
    /// its source.
    pub(crate) fn boxed(self) -> BoxError {
        Box::new(self.to_status())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        e.to_status()
    }
}
