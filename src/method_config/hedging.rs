//! [`HedgingPolicy`]: A6's `hedgingPolicy`.

use std::time::Duration;

use tonic::Code;

use super::retry::MAX_ATTEMPTS;
use super::status_codes::StatusCodes;
use crate::error::Error;

/// Hedged calls to a method (A6 `hedgingPolicy`): the first attempt goes out at once, and
/// another after every `hedging_delay` without an answer, each to another endpoint, up to
/// `max_attempts` in all; the first answer that is not one of the non-fatal status codes
/// wins, and the other attempts are cancelled. A non-fatal failure sends the next attempt at
/// once. See the [module docs](crate::method_config).
///
/// ```
/// use std::time::Duration;
/// use tonic::Code;
/// use tower_lb::method_config::HedgingPolicy;
/// let policy = HedgingPolicy::new(2, Duration::from_millis(5)).non_fatal_status_codes([Code::Unavailable]);
/// assert_eq!(policy.hedging_delay(), Duration::from_millis(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgingPolicy {
    max_attempts: u32,
    delay: Duration,
    non_fatal: StatusCodes,
}

impl HedgingPolicy {
    /// Up to `max_attempts` attempts (2 or more; above 5 is 5), one more after every `delay`
    /// (0: all at once); no status code is non-fatal until set.
    pub fn new(max_attempts: u32, delay: Duration) -> Self {
        HedgingPolicy {
            max_attempts: max_attempts.min(MAX_ATTEMPTS),
            delay,
            non_fatal: StatusCodes::default(),
        }
    }

    /// The status codes after which the other attempts go on (and the next is sent at once);
    /// any other answer wins.
    pub fn non_fatal_status_codes(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.non_fatal = StatusCodes::of(codes);
        self
    }

    /// Attempts in all, the first included (at most 5).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before each further attempt.
    pub fn hedging_delay(&self) -> Duration {
        self.delay
    }

    pub(crate) fn non_fatal(&self) -> StatusCodes {
        self.non_fatal
    }

    pub(crate) fn validate(&self, at: &str) -> Result<(), Error> {
        if self.max_attempts < 2 {
            return Err(Error::InvalidConfig(format!(
                "{at}: maxAttempts must be 2 or more (1 would never hedge)"
            )));
        }
        if self.non_fatal.contains(Code::Ok) {
            return Err(Error::InvalidConfig(format!(
                "{at}: nonFatalStatusCodes must not contain OK"
            )));
        }
        Ok(())
    }
}
