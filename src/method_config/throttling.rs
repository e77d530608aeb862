//! [`RetryThrottling`] (A6 `retryThrottling`) and its token bucket at run time.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use crate::error::Error;

/// A token bucket that stops retries and hedges while most attempts fail (A6
/// `retryThrottling`), one per balancer. It starts full at `max_tokens`; every attempt that
/// fails with a retryable (or non-fatal) code takes one token, every successful call puts
/// back `token_ratio`; while the bucket holds half of `max_tokens` or less, no further
/// attempt is made. With every backend failing, calls then make one attempt each.
///
/// ```
/// use tower_lb::{Balancer, method_config::RetryThrottling};
/// let builder = Balancer::builder().retry_throttling(RetryThrottling::new(10, 0.1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryThrottling {
    max_tokens: u32,
    token_ratio: f64,
}

impl RetryThrottling {
    /// A bucket of `max_tokens` (1 ..= 1000) refilled by `token_ratio` (above 0; three
    /// decimals count) per successful call.
    pub fn new(max_tokens: u32, token_ratio: f64) -> Self {
        RetryThrottling {
            max_tokens,
            token_ratio,
        }
    }

    /// The bucket's size.
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens
    }

    /// Tokens a successful call puts back.
    pub fn token_ratio(&self) -> f64 {
        self.token_ratio
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(1..=1000).contains(&self.max_tokens) {
            return Err(Error::InvalidConfig(format!(
                "retryThrottling.maxTokens must be within 1 ..= 1000, got {}",
                self.max_tokens
            )));
        }
        if !(self.token_ratio.is_finite() && self.token_ratio >= 0.001) {
            return Err(Error::InvalidConfig(format!(
                "retryThrottling.tokenRatio must be at least 0.001, got {}",
                self.token_ratio
            )));
        }
        Ok(())
    }
}

/// The bucket at run time, in thousandths of a token (A6 keeps three decimals).
#[derive(Debug)]
pub(crate) struct Throttle {
    max: i64,
    ratio: i64,
    tokens: AtomicI64,
}

impl Throttle {
    pub(crate) fn new(config: RetryThrottling) -> Self {
        let max = i64::from(config.max_tokens) * 1000;
        Throttle {
            max,
            ratio: (config.token_ratio * 1000.0) as i64,
            tokens: AtomicI64::new(max),
        }
    }

    /// An attempt failed with a retryable or non-fatal code: one token less.
    pub(crate) fn failed(&self) {
        let _ = self
            .tokens
            .fetch_update(Relaxed, Relaxed, |t| Some((t - 1000).max(0)));
    }

    /// A call succeeded: `token_ratio` back, up to the bucket's size.
    pub(crate) fn succeeded(&self) {
        let _ = self
            .tokens
            .fetch_update(Relaxed, Relaxed, |t| Some((t + self.ratio).min(self.max)));
    }

    /// Whether a further attempt may be made: more than half the bucket is left.
    pub(crate) fn allows(&self) -> bool {
        self.tokens.load(Relaxed) * 2 > self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_drains_and_refills() {
        let t = Throttle::new(RetryThrottling::new(10, 0.5));
        // 10 tokens; retries stop at 5 or less.
        for _ in 0..4 {
            t.failed();
        }
        assert!(t.allows(), "6 tokens left");
        t.failed();
        assert!(!t.allows(), "5 tokens: at the threshold");
        for _ in 0..20 {
            t.failed();
        }
        t.succeeded();
        t.succeeded();
        t.succeeded();
        assert!(!t.allows(), "1.5 tokens");
        for _ in 0..100 {
            t.succeeded();
        }
        assert_eq!(
            t.tokens.load(Relaxed),
            10_000,
            "capped at the bucket's size"
        );
    }
}
