//! Exponential backoff with jitter between connection attempts.

use std::time::Duration;

/// Reconnect backoff: the first retry waits `initial`, each next one `multiplier` times longer,
/// up to `max`; every delay is spread by ±`jitter` so that clients that lost the same backend
/// do not reconnect in lock step.
///
/// Defaults: 200 ms initial, ×1.6, 10 s max, ±20 % jitter. gRPC's own defaults (1 s initial,
/// 120 s max) suit dialling across the internet; inside a cluster a refused connect is cheap
/// and a shorter cap brings a restarted pod back sooner.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::Backoff;
/// let b = Backoff::default().initial(Duration::from_millis(50)).max(Duration::from_secs(1));
/// assert_eq!(b.max_delay(), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
            multiplier: 1.6,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before the first retry.
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    /// The longest delay.
    pub fn max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }

    /// Growth per failed attempt; values below 1 are taken as 1.
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = if m.is_finite() { m.max(1.0) } else { 1.0 };
        self
    }

    /// The jitter fraction, clamped to 0 ..= 1.
    pub fn jitter(mut self, j: f64) -> Self {
        self.jitter = if j.is_finite() {
            j.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The longest delay.
    pub fn max_delay(&self) -> Duration {
        self.max
    }

    /// The nominal delay (before jitter) after `failures` consecutive failed attempts.
    pub(crate) fn nominal(&self, failures: u32) -> Duration {
        let factor = self
            .multiplier
            .powi(failures.saturating_sub(1).min(64) as i32);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        secs_to_duration(secs)
    }

    /// The delay to wait after `failures` consecutive failures, with `unit` a uniform random
    /// number in [0, 1) for the jitter.
    pub(crate) fn delay(&self, failures: u32, unit: f64) -> Duration {
        let nominal = self.nominal(failures).as_secs_f64();
        let spread = 1.0 + self.jitter * (2.0 * unit - 1.0);
        secs_to_duration((nominal * spread).min(self.max.as_secs_f64()))
    }
}

/// Seconds to a `Duration`, saturating instead of panicking on NaN, negatives or overflow.
fn secs_to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_jitters_within_bounds() {
        let b = Backoff::default();
        assert_eq!(b.nominal(1), Duration::from_millis(200));
        assert_eq!(b.nominal(2), Duration::from_millis(320));
        assert_eq!(b.nominal(100), Duration::from_secs(10));
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(10));
        for u in [0.0, 0.5, 0.999] {
            let d = b.delay(2, u).as_secs_f64();
            assert!((0.256..=0.384).contains(&d), "{d}");
        }
        assert!(b.delay(100, 0.999) <= Duration::from_secs(10));
    }

    #[test]
    fn hostile_settings_do_not_panic() {
        let b = Backoff::default()
            .multiplier(f64::NAN)
            .jitter(f64::INFINITY)
            .initial(Duration::MAX)
            .max(Duration::MAX);
        let _ = b.delay(u32::MAX, 0.5);
    }
}
