//! Active health checks with `grpc.health.v1` (gRPC A17), over an endpoint's own connection.
//!
//! One task per endpoint runs tonic-health's generated client over the endpoint's
//! [`EndpointChannel`](crate::transport::EndpointChannel):
//!
//! * It opens a `Watch(service)` stream and turns each message into a [`Verdict`]: `SERVING` is
//!   healthy, anything else (`NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN`, or a number outside
//!   the enum) is not. Only changes are reported.
//! * If Watch's first answer does not arrive within the [timeout](HealthCheck::timeout), or the
//!   stream fails or ends (any status other than `UNIMPLEMENTED`, including `OK`), the endpoint
//!   is reported not serving and Watch is retried after an exponential backoff (1 s, ×1.6,
//!   30 s cap, ±20 % jitter), which restarts at 1 s once a stream has answered. A server that
//!   accepts the Watch and sends nothing is caught by the same timeout. Later messages come
//!   only on changes, so they have no deadline; a connection that goes silent is the
//!   connection's keep-alive's to catch.
//! * `SERVICE_UNKNOWN`, and `NOT_FOUND` (tonic-health's answer for a service it does not know),
//!   are a configuration error, not an outage: reported as [`Verdict::ServiceUnknown`], logged
//!   as a warning naming the service, shown as
//!   [`Health::ServiceUnknown`](crate::health::Health::ServiceUnknown) and, when no endpoint
//!   is ready because of it, as [`Unready::HealthServiceUnknown`](crate::Unready). Such
//!   endpoints take no calls outside panic mode. When every endpoint says so, panic mode (if
//!   on) still routes calls to them: a wrong service name says nothing about the servers, and
//!   refusing every call over a typo would turn a configuration error into an outage. It is
//!   said loudly instead: the panic-mode warning names the cause, and
//!   [`Snapshot::service_unknown`](crate::Snapshot::service_unknown) counts the endpoints.
//! * If Watch is `UNIMPLEMENTED`, A17 would stop and call the endpoint healthy; servers that
//!   implement only `Check` are common enough that we poll `Check(service)` every
//!   [check interval](HealthCheck::check_interval) instead, each call bounded by the timeout. A
//!   failed or timed-out Check is reported and retried after the interval or the backoff,
//!   whichever is longer. Watch is not tried again: the connection, hence the server, is the
//!   same.
//! * If Check is `UNIMPLEMENTED` too, the endpoint has no health service: it is reported as
//!   [`Verdict::NoHealthService`] (healthy, per A17) once, and the task ends.
//!
//! The task never panics on an answer and never loops without waiting on the network or a
//! timer; it runs until the control task aborts it.

//! The task that runs these checks is the control path's (`registry/check_task.rs`); this
//! file holds what a user configures and what a check concludes.

use std::time::Duration;

use crate::time::Backoff;

/// The shortest check interval and timeout: below this, a check would be a busy loop.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Active health checking with the standard gRPC health service, `grpc.health.v1.Health`.
///
/// Each endpoint is watched over its own connection with `Watch(service)`; servers that only
/// implement `Check` are polled every [check interval](Self::check_interval). An endpoint
/// whose service is not `SERVING`, or whose health check fails, takes no new calls until it
/// is `SERVING` again. An endpoint without a health service at all (`UNIMPLEMENTED`) counts as
/// healthy, as gRPC specifies (A17).
///
/// Defaults: service `""` (the whole server), check interval 5 s, timeout 2 s.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::health::HealthCheck;
///
/// let check = HealthCheck::grpc()
///     .service("echo.Echo")
///     .check_interval(Duration::from_secs(10))
///     .timeout(Duration::from_secs(1));
/// assert_eq!(check.service_name(), "echo.Echo");
/// assert_eq!(HealthCheck::default().service_name(), ""); // the whole server
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub(crate) service: String,
    pub(crate) check_interval: Duration,
    pub(crate) timeout: Duration,
    // The retry backoff of a failed Watch, as two durations: `Backoff` holds f64s, so it is not
    // `Eq`. Not configurable yet (tests shorten it).
    retry_initial: Duration,
    retry_max: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self::grpc()
    }
}

impl HealthCheck {
    /// Checks service `""`, the health of the server as a whole, with the default settings.
    pub fn grpc() -> Self {
        HealthCheck {
            service: String::new(),
            check_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }

    /// Checks the named service instead of the whole server, e.g. `"echo.Echo"` (the full
    /// gRPC service name, as the server registered it with its health service).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = name.into();
        self
    }

    /// How often to call `Check` on servers that do not implement `Watch` (default 5 s; values
    /// under 10 ms are raised to 10 ms). `Watch` needs no period: the server sends changes.
    pub fn check_interval(mut self, every: Duration) -> Self {
        self.check_interval = every.max(MIN_PERIOD);
        self
    }

    /// How long one `Check` call, or the wait for `Watch`'s first answer, may take before the
    /// endpoint counts as not serving (default 2 s; values under 10 ms are raised to 10 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(MIN_PERIOD);
        self
    }

    /// The service whose health is checked (`""` for the whole server).
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// Shortens the retry backoff, so tests need not wait a second per retry.
    #[cfg(test)]
    pub(crate) fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max;
        self
    }

    /// The retry backoff of a failed Watch or Check.
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff::default()
            .initial(self.retry_initial)
            .max(self.retry_max)
            .multiplier(1.6)
            .jitter(0.2)
    }
}

/// What a health check concluded about one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// SERVING.
    Serving,
    /// The endpoint has no health service (UNIMPLEMENTED on Watch and Check): healthy, per
    /// gRPC A17; checking stops.
    NoHealthService,
    /// NOT_SERVING, UNKNOWN, or the check failed (no answer within the timeout included); the
    /// string says which, for logs and errors.
    NotServing(String),
    /// SERVICE_UNKNOWN (or NOT_FOUND, tonic-health's answer): the server does not know the
    /// service asked for, a configuration error. Not serving, and said apart.
    ServiceUnknown(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_kept_and_floored() {
        let check = HealthCheck::default()
            .service("echo.Echo")
            .check_interval(Duration::ZERO)
            .timeout(Duration::from_nanos(1));
        assert_eq!(check.service_name(), "echo.Echo");
        assert_eq!(check.check_interval, MIN_PERIOD);
        assert_eq!(check.timeout, MIN_PERIOD);
        assert_eq!(HealthCheck::default(), HealthCheck::grpc());
    }
}
