//! [`MethodConfig`] and [`MethodName`]: which methods get which settings.

use std::time::Duration;

use super::hedging::HedgingPolicy;
use super::retry::RetryPolicy;
use crate::error::Error;

/// Which calls a [`MethodConfig`] applies to, as the service config's `name` entries say: one
/// method of a service, every method of a service, or every call (the default entry). The
/// most specific match wins: method, then service, then the default.
///
/// ```
/// use tower_lb::method_config::MethodName;
/// let unary = MethodName::method("echo.Echo", "Unary");
/// let all_echo = MethodName::service("echo.Echo");
/// let everything = MethodName::any();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MethodName {
    pub(crate) service: String,
    pub(crate) method: String,
}

impl MethodName {
    /// `service`'s method `method` (the path `/service/method`; `service` with its package,
    /// e.g. `"echo.Echo"`).
    pub fn method(service: impl Into<String>, method: impl Into<String>) -> Self {
        MethodName {
            service: service.into(),
            method: method.into(),
        }
    }

    /// Every method of `service`.
    pub fn service(service: impl Into<String>) -> Self {
        Self::method(service, "")
    }

    /// Every call no more specific entry names.
    pub fn any() -> Self {
        Self::method("", "")
    }

    pub(crate) fn validate(&self, at: &str) -> Result<(), Error> {
        if self.service.is_empty() && !self.method.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{at}: a method ({:?}) needs its service",
                self.method
            )));
        }
        Ok(())
    }
}

/// Settings for the calls to some methods (the service config's `methodConfig` entries; A6
/// for the retry and hedging policies). Give it to
/// [`Builder::method_config`](crate::Builder::method_config).
///
/// ```
/// use std::time::Duration;
/// use tonic::Code;
/// use tower_lb::method_config::{HedgingPolicy, MethodConfig, MethodName};
/// let config = MethodConfig::new([MethodName::method("echo.Echo", "Unary")])
///     .timeout(Duration::from_millis(300))
///     .hedging_policy(HedgingPolicy::new(2, Duration::from_millis(10)));
/// assert_eq!(config.get_timeout(), Some(Duration::from_millis(300)));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MethodConfig {
    pub(crate) names: Vec<MethodName>,
    timeout: Option<Duration>,
    wait_for_ready: Option<bool>,
    max_request_bytes: Option<u32>,
    max_response_bytes: Option<u32>,
    pub(crate) policy: Option<AttemptPolicy>,
    /// Both policies were set (an error at build time).
    both: bool,
}

/// A method's further attempts: retries or hedges, never both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AttemptPolicy {
    Retry(RetryPolicy),
    Hedge(HedgingPolicy),
}

impl MethodConfig {
    /// Settings for the calls `names` match.
    pub fn new(names: impl IntoIterator<Item = MethodName>) -> Self {
        MethodConfig {
            names: names.into_iter().collect(),
            ..MethodConfig::default()
        }
    }

    /// The deadline of these calls when the caller sets no shorter `grpc-timeout`; it
    /// replaces [`Builder::timeout`](crate::Builder::timeout) for them, and bounds every
    /// attempt together.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// `true`: a call waits for a ready endpoint until its deadline rather than for the
    /// [ready timeout](crate::Builder::ready_timeout) (gRPC's wait-for-ready). `false`: the
    /// ready timeout applies, as without a method config.
    pub fn wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = Some(wait);
        self
    }

    /// `maxRequestMessageBytes`: a request with a larger message fails with
    /// `RESOURCE_EXHAUSTED` before it is sent. The balancer reads the gRPC message prefixes in
    /// the request body, so it checks bodies complete at dispatch (unary and server-streaming
    /// calls, tonic's body type); a streaming request goes out unchecked — its tonic client's
    /// `max_encoding_message_size` covers it.
    pub fn max_request_message_bytes(mut self, bytes: u32) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// `maxResponseMessageBytes`: a response message larger than this fails the call (or the
    /// stream, at that message) with `RESOURCE_EXHAUSTED`, as it is read, before any of it
    /// reaches the caller.
    pub fn max_response_message_bytes(mut self, bytes: u32) -> Self {
        self.max_response_bytes = Some(bytes);
        self
    }

    /// Retries for these calls; not together with a hedging policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.both |= matches!(self.policy, Some(AttemptPolicy::Hedge(_)));
        self.policy = Some(AttemptPolicy::Retry(policy));
        self
    }

    /// Hedging for these calls; not together with a retry policy.
    pub fn hedging_policy(mut self, policy: HedgingPolicy) -> Self {
        self.both |= matches!(self.policy, Some(AttemptPolicy::Retry(_)));
        self.policy = Some(AttemptPolicy::Hedge(policy));
        self
    }

    /// The names it applies to.
    pub fn names(&self) -> &[MethodName] {
        &self.names
    }

    /// The timeout, if set.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Wait-for-ready, if set.
    pub fn get_wait_for_ready(&self) -> Option<bool> {
        self.wait_for_ready
    }

    /// `maxRequestMessageBytes`, if set.
    pub fn get_max_request_message_bytes(&self) -> Option<u32> {
        self.max_request_bytes
    }

    /// `maxResponseMessageBytes`, if set.
    pub fn get_max_response_message_bytes(&self) -> Option<u32> {
        self.max_response_bytes
    }

    /// The retry policy, if set.
    pub fn get_retry_policy(&self) -> Option<&RetryPolicy> {
        match &self.policy {
            Some(AttemptPolicy::Retry(p)) => Some(p),
            _ => None,
        }
    }

    /// The hedging policy, if set.
    pub fn get_hedging_policy(&self) -> Option<&HedgingPolicy> {
        match &self.policy {
            Some(AttemptPolicy::Hedge(p)) => Some(p),
            _ => None,
        }
    }

    /// Whether it limits message sizes (such calls take the boxed path).
    pub(crate) fn has_message_limits(&self) -> bool {
        self.max_request_bytes.is_some() || self.max_response_bytes.is_some()
    }

    pub(crate) fn waits_for_ready(&self) -> bool {
        self.wait_for_ready == Some(true)
    }

    /// Checks the config; `at` names it in errors (`methodConfig[2]`).
    pub(crate) fn validate(&self, at: &str) -> Result<(), Error> {
        if self.both {
            return Err(Error::InvalidConfig(format!(
                "{at}: has both a retryPolicy and a hedgingPolicy; a method may have one"
            )));
        }
        if self.names.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{at}: names no method (`name` is empty)"
            )));
        }
        for (i, name) in self.names.iter().enumerate() {
            name.validate(&format!("{at}.name[{i}]"))?;
        }
        match &self.policy {
            Some(AttemptPolicy::Retry(p)) => p.validate(&format!("{at}.retryPolicy")),
            Some(AttemptPolicy::Hedge(p)) => p.validate(&format!("{at}.hedgingPolicy")),
            None => Ok(()),
        }
    }
}
