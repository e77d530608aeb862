//! When to resolve next: after a good answer on its TTL, after a failure on a backoff, and
//! on request no more often than the lower TTL bound.

use std::time::Duration;

use crate::time::Backoff;

/// Jitter taken off a TTL, as a fraction: many clients that got one answer at one moment
/// spread their next queries over the last tenth of its lifetime.
const TTL_JITTER: f64 = 0.1;

/// The re-resolution schedule of one stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) backoff: Backoff,
}

impl Schedule {
    /// The default backoff after failed resolutions: gRPC's 1 s ×1.6, at most 120 s, ±20 %.
    pub(crate) fn default_backoff() -> Backoff {
        Backoff::default()
            .initial(Duration::from_secs(1))
            .max(Duration::from_secs(120))
            .multiplier(1.6)
            .jitter(0.2)
    }

    /// The delay before the next resolution after an answer whose smallest TTL is `ttl`
    /// (`None`: no record carried one), with `unit` uniform in [0, 1) for the jitter.
    ///
    /// The TTL is clamped to the bounds, then shortened by up to 10 %, never below the lower
    /// bound: an answer is never used past its TTL.
    pub(crate) fn after_answer(&self, ttl: Option<Duration>, unit: f64) -> Duration {
        let ttl = ttl
            .unwrap_or(self.max_ttl)
            .clamp(self.min_ttl, self.max_ttl);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ttl.mul_f64(1.0 - TTL_JITTER * unit).max(self.min_ttl)
    }

    /// The delay before the next resolution after `failures` consecutive failed or empty
    /// resolutions: the backoff, clamped to the TTL bounds so that a recovered server is seen
    /// no later than a normal re-resolution would have seen a change.
    pub(crate) fn after_failure(&self, failures: u32, unit: f64) -> Duration {
        self.backoff
            .delay(failures.max(1), unit)
            .clamp(self.min_ttl, self.max_ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(30),
            backoff: Schedule::default_backoff(),
        }
    }

    #[test]
    fn ttl_is_clamped_and_jittered_down_only() {
        let s = schedule();
        assert_eq!(
            s.after_answer(Some(Duration::ZERO), 0.5),
            Duration::from_secs(1)
        );
        assert_eq!(
            s.after_answer(Some(Duration::from_secs(3600)), 0.0),
            Duration::from_secs(30)
        );
        assert_eq!(s.after_answer(None, 0.0), Duration::from_secs(30));
        for unit in [0.0, 0.3, 0.999, 1.0, f64::NAN, -5.0] {
            let d = s.after_answer(Some(Duration::from_secs(10)), unit);
            assert!(
                (Duration::from_secs(9)..=Duration::from_secs(10)).contains(&d),
                "{d:?}"
            );
        }
        // Jitter never takes the delay below the lower bound.
        assert_eq!(
            s.after_answer(Some(Duration::from_secs(1)), 0.999),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn failures_back_off_within_the_ttl_bounds() {
        let s = schedule();
        let first = s.after_failure(1, 0.5);
        assert_eq!(first, Duration::from_secs(1));
        let second = s.after_failure(2, 0.5);
        assert_eq!(second, Duration::from_millis(1600));
        assert_eq!(s.after_failure(50, 0.999), Duration::from_secs(30));
        assert_eq!(s.after_failure(u32::MAX, 0.0), Duration::from_secs(30));
        // With a higher upper bound, the backoff's own 120 s cap applies.
        let wide = Schedule {
            max_ttl: Duration::from_secs(600),
            ..s
        };
        assert_eq!(wide.after_failure(50, 0.999), Duration::from_secs(120));
    }
}
