//! Slow start: a new or returning endpoint's weight ramps up over a window instead of taking
//! its full share at once (a cold cache, a JIT still warming, a pool still filling).

use std::time::Duration;

use crate::error::Error;

/// Slow start for endpoints that join the ready set: new ones, reconnected ones, ones back
/// from an ejection or from `NOT_SERVING`.
///
/// For `window` after it joins, an endpoint's weight is scaled by Envoy's factor
/// `max(min_weight_percent / 100, (t / window) ^ (1 / aggression))`, `t` the time since it
/// joined (at least 1 ms). Aggression 1 (the default) ramps linearly; above 1 the weight
/// climbs faster at first. The control task publishes a new snapshot every 1/16 of the window
/// while an endpoint ramps.
///
/// Slow start applies to the weight-aware policies (p2c, least-loaded, round robin, weighted
/// random); a consistent-hashing policy refuses it, since a ramping weight would move keys on
/// every step.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{Balancer, health::SlowStart};
/// let builder = Balancer::builder().slow_start(SlowStart::new(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStart {
    pub(crate) window: Duration,
    pub(crate) aggression: f64,
    pub(crate) min_weight_percent: f64,
}

impl SlowStart {
    /// Ramps over `window`, linearly, from 10 % of the weight.
    pub fn new(window: Duration) -> Self {
        SlowStart {
            window,
            aggression: 1.0,
            min_weight_percent: 10.0,
        }
    }

    /// The ramp's aggression (above 0; 1 is linear).
    pub fn aggression(mut self, aggression: f64) -> Self {
        self.aggression = aggression;
        self
    }

    /// The weight share an endpoint starts from, in percent (above 0, at most 100).
    pub fn min_weight_percent(mut self, percent: f64) -> Self {
        self.min_weight_percent = percent;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let ok = !self.window.is_zero()
            && self.aggression.is_finite()
            && self.aggression > 0.0
            && self.min_weight_percent > 0.0
            && self.min_weight_percent <= 100.0;
        if ok {
            return Ok(());
        }
        Err(Error::InvalidConfig(format!(
            "slow start: need a window above 0, a finite aggression above 0 and a minimum \
             weight percent in (0, 100]; got {:?}, {}, {}",
            self.window, self.aggression, self.min_weight_percent
        )))
    }

    /// The weight factor `elapsed` after joining; `None` once the window is over.
    pub(crate) fn factor(&self, elapsed: Duration) -> Option<f64> {
        if elapsed >= self.window {
            return None;
        }
        let t = elapsed.max(Duration::from_millis(1)).as_secs_f64() / self.window.as_secs_f64();
        let ramp = if self.aggression == 1.0 {
            t
        } else {
            t.powf(1.0 / self.aggression)
        };
        Some(ramp.max(self.min_weight_percent / 100.0).min(1.0))
    }

    /// How often the ramp is republished.
    pub(crate) fn step(&self) -> Duration {
        (self.window / 16).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// Weights in a snapshot with slow start are scaled up by this much (less for huge weights),
/// so that a ramping weight-1 endpoint can have a tenth of its weight.
pub(crate) fn scale(max_weight: u32) -> u32 {
    (u32::MAX / max_weight.max(1)).clamp(1, 1000)
}

/// A weight under slow start: `weight × scale × factor`, at least 1.
pub(crate) fn ramped(weight: u32, scale: u32, factor: Option<f64>) -> u32 {
    let full = weight.saturating_mul(scale);
    match factor {
        None => full,
        Some(f) => ((f64::from(full) * f).round() as u32).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ramp_from_the_minimum() {
        let s = SlowStart::new(Duration::from_secs(10));
        assert_eq!(s.factor(Duration::ZERO), Some(0.1));
        assert_eq!(s.factor(Duration::from_secs(5)), Some(0.5));
        assert_eq!(s.factor(Duration::from_secs(10)), None);
        let fast = s.aggression(2.0);
        let f = fast.factor(Duration::from_millis(2500)).unwrap();
        assert!((f - 0.5).abs() < 1e-9, "{f}");
    }

    #[test]
    fn scaled_weights_keep_ratios_and_never_reach_zero() {
        assert_eq!(scale(1), 1000);
        assert_eq!(scale(u32::MAX), 1);
        assert_eq!(ramped(3, 1000, None), 3000);
        assert_eq!(ramped(1, 1000, Some(0.1)), 100);
        assert_eq!(
            ramped(u32::MAX, 1, Some(0.1)),
            (f64::from(u32::MAX) * 0.1).round() as u32
        );
        assert_eq!(ramped(1, 1, Some(0.1)), 1);
    }

    #[test]
    fn bad_settings_are_refused() {
        let s = SlowStart::new(Duration::from_secs(1));
        assert!(s.validate().is_ok());
        assert!(SlowStart::new(Duration::ZERO).validate().is_err());
        assert!(s.aggression(0.0).validate().is_err());
        assert!(s.aggression(f64::NAN).validate().is_err());
        assert!(s.min_weight_percent(0.0).validate().is_err());
        assert!(s.min_weight_percent(150.0).validate().is_err());
    }
}
