//! [`RetryPolicy`]: A6's `retryPolicy`.

use std::time::Duration;

use tonic::Code;

use super::status_codes::StatusCodes;
use crate::error::Error;

/// The most attempts a policy makes, whatever it asks for (A6: larger values are treated as 5).
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// Retries of a method's failed attempts (A6 `retryPolicy`): up to `max_attempts` attempts in
/// all, the `n`-th retry after a random delay between 0 and
/// `min(initial_backoff × backoff_multiplier^(n-1), max_backoff)`, for the attempts that fail
/// with one of the retryable status codes before the call is committed. See the
/// [module docs](crate::method_config) for what can be retried.
///
/// ```
/// use std::time::Duration;
/// use tonic::Code;
/// use tower_lb::method_config::RetryPolicy;
/// let policy = RetryPolicy::new(3, [Code::Unavailable, Code::ResourceExhausted])
///     .initial_backoff(Duration::from_millis(50))
///     .max_backoff(Duration::from_millis(500))
///     .backoff_multiplier(2.0);
/// assert_eq!(policy.max_attempts(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    backoff_multiplier: f64,
    retryable: StatusCodes,
}

impl RetryPolicy {
    /// Up to `max_attempts` attempts (2 or more; above 5 is 5, as A6 says) for calls that fail
    /// with one of `retryable_codes`; backoff 100 ms, ×2, at most 1 s until set.
    pub fn new(max_attempts: u32, retryable_codes: impl IntoIterator<Item = Code>) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.min(MAX_ATTEMPTS),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            backoff_multiplier: 2.0,
            retryable: StatusCodes::of(retryable_codes),
        }
    }

    /// The upper bound of the first retry's random delay (above 0).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The most any retry's delay is drawn from (above 0).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// How much the delay's bound grows per retry (above 0).
    pub fn backoff_multiplier(mut self, multiplier: f64) -> Self {
        self.backoff_multiplier = multiplier;
        self
    }

    /// Attempts in all, the first included (at most 5).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The status codes that are retried.
    pub fn retryable_status_codes(&self) -> Vec<Code> {
        self.retryable.to_vec()
    }

    pub(crate) fn retryable(&self) -> StatusCodes {
        self.retryable
    }

    /// The bound of the delay before retry number `retry` (1 for the first).
    pub(crate) fn backoff_bound(&self, retry: u32) -> Duration {
        let grown = self.initial_backoff.as_secs_f64()
            * self
                .backoff_multiplier
                .powi(retry.saturating_sub(1).min(64) as i32);
        let bound = self.max_backoff.as_secs_f64().min(grown);
        Duration::try_from_secs_f64(bound).unwrap_or(self.max_backoff)
    }

    pub(crate) fn validate(&self, at: &str) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::InvalidConfig(format!("{at}: {what}")));
        if self.max_attempts < 2 {
            return bad("maxAttempts must be 2 or more (1 would never retry)");
        }
        if self.initial_backoff.is_zero() {
            return bad("initialBackoff must be above 0");
        }
        if self.max_backoff.is_zero() {
            return bad("maxBackoff must be above 0");
        }
        if !(self.backoff_multiplier.is_finite() && self.backoff_multiplier > 0.0) {
            return bad("backoffMultiplier must be a finite number above 0");
        }
        if self.retryable.is_empty() {
            return bad("retryableStatusCodes must name at least one code");
        }
        if self.retryable.contains(Code::Ok) {
            return bad("retryableStatusCodes must not contain OK");
        }
        Ok(())
    }
}
