//! Passive outlier detection: endpoints whose calls fail more than their peers' are ejected
//! for a while, with gRPC A50 / Envoy semantics and defaults.
//!
//! Consecutive failures act on the failing call itself (see `passive.rs`); the two statistical
//! detectors run once per interval in the control task over each endpoint's calls in that
//! interval. All three share one cap on how many endpoints may be out at once.

use std::fmt;
use std::time::Duration;

use rand::Rng;

use crate::error::Error;

/// Outlier detection: which endpoints to eject, for how long, and how many at most.
///
/// On by default, with the defaults of gRPC A50 and Envoy:
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`consecutive_failures`](Self::consecutive_failures) | 5 | eject after this many failed calls in a row, at the failing call |
/// | [`success_rate`](Self::success_rate) | on | eject below mean − 1.9 σ of the peers' success rates (≥ 5 endpoints with ≥ 100 calls in the interval) |
/// | [`failure_percentage`](Self::failure_percentage) | on | eject above 85 % failed calls (≥ 5 endpoints with ≥ 50 calls) |
/// | [`interval`](Self::interval) | 10 s | how often the two statistics are computed |
/// | [`base_ejection_time`](Self::base_ejection_time) | 30 s | an ejection lasts base × times ejected ... |
/// | [`max_ejection_time`](Self::max_ejection_time) | 300 s | ... up to this; each interval not ejected lowers "times ejected" by one |
/// | [`max_ejection_percent`](Self::max_ejection_percent) | 10 % | at most this share of endpoints out at once — at least one, and never all |
///
/// What counts as a failed call is [`Failures`](super::Failures).
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{Balancer, health::OutlierDetection};
/// let builder = Balancer::builder().outlier_detection(
///     OutlierDetection::default()
///         .interval(Duration::from_secs(5))
///         .max_ejection_percent(30),
/// );
/// let off = Balancer::builder().outlier_detection(OutlierDetection::disabled());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlierDetection {
    pub(crate) enabled: bool,
    pub(crate) interval: Duration,
    pub(crate) base_ejection_time: Duration,
    pub(crate) max_ejection_time: Duration,
    pub(crate) max_ejection_percent: u8,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) success_rate: Option<SuccessRate>,
    pub(crate) failure_percentage: Option<FailurePercentage>,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            enabled: true,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            consecutive_failures: Some(5),
            success_rate: Some(SuccessRate::default()),
            failure_percentage: Some(FailurePercentage::default()),
        }
    }
}

impl OutlierDetection {
    /// No outlier detection: no endpoint is ever ejected.
    pub fn disabled() -> Self {
        OutlierDetection {
            enabled: false,
            ..OutlierDetection::default()
        }
    }

    /// How often the success-rate and failure-percentage statistics run (above 0).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The first ejection's length; the n-th lasts n times as long, up to the maximum.
    pub fn base_ejection_time(mut self, time: Duration) -> Self {
        self.base_ejection_time = time;
        self
    }

    /// The longest ejection (if below the base ejection time, the base is the longest).
    pub fn max_ejection_time(mut self, time: Duration) -> Self {
        self.max_ejection_time = time;
        self
    }

    /// The most endpoints out at once, as a percentage of those discovered (0 ..= 100); the
    /// cap is at least one endpoint and at most all but one.
    pub fn max_ejection_percent(mut self, percent: u8) -> Self {
        self.max_ejection_percent = percent;
        self
    }

    /// Eject after `n` consecutive failed calls (`None`: never for that reason).
    pub fn consecutive_failures(mut self, n: Option<u32>) -> Self {
        self.consecutive_failures = n;
        self
    }

    /// The success-rate detector (`None`: off).
    pub fn success_rate(mut self, detector: Option<SuccessRate>) -> Self {
        self.success_rate = detector;
        self
    }

    /// The failure-percentage detector (`None`: off).
    pub fn failure_percentage(mut self, detector: Option<FailurePercentage>) -> Self {
        self.failure_percentage = detector;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::InvalidConfig(format!("outlier detection: {why}")));
        if !self.enabled {
            return Ok(());
        }
        if self.interval.is_zero() {
            return bad("interval must be above 0".into());
        }
        if self.max_ejection_percent > 100 {
            return bad(format!(
                "max_ejection_percent must be 0..=100, got {}",
                self.max_ejection_percent
            ));
        }
        if self.consecutive_failures == Some(0) {
            return bad("consecutive_failures must be at least 1 (or None)".into());
        }
        if let Some(s) = &self.success_rate {
            if !(s.stdev_factor.is_finite() && s.stdev_factor >= 0.0) {
                return bad(format!(
                    "success rate: stdev_factor must be a finite number >= 0, got {}",
                    s.stdev_factor
                ));
            }
            if s.enforcement_percent > 100 {
                return bad(format!(
                    "success rate: enforcement_percent must be 0..=100, got {}",
                    s.enforcement_percent
                ));
            }
        }
        if let Some(f) = &self.failure_percentage
            && (f.threshold > 100 || f.enforcement_percent > 100)
        {
            return bad(format!(
                "failure percentage: threshold and enforcement_percent must be 0..=100, got {} and {}",
                f.threshold, f.enforcement_percent
            ));
        }
        Ok(())
    }

    /// How many of `n` endpoints may be out at once: `max_ejection_percent` of them, at least
    /// one, never all.
    pub(crate) fn max_ejected(&self, n: usize) -> usize {
        if !self.enabled || n <= 1 {
            return 0;
        }
        let share = n.saturating_mul(usize::from(self.max_ejection_percent)) / 100;
        share.clamp(1, n - 1)
    }

    /// How long the ejection of an endpoint ejected `multiplier` times lasts.
    pub(crate) fn ejection_time(&self, multiplier: u32) -> Duration {
        let cap = self.max_ejection_time.max(self.base_ejection_time);
        self.base_ejection_time
            .checked_mul(multiplier.max(1))
            .map_or(cap, |t| t.min(cap))
    }
}

/// Success-rate ejection (A50 `success_rate_ejection`): an endpoint whose success rate in the
/// interval is below `mean − stdev_factor × σ` of its peers' is ejected, with probability
/// `enforcement_percent`. Only endpoints with at least `request_volume` calls in the interval
/// count, and only when at least `minimum_hosts` of them do.
///
/// ```
/// use tower_lb::health::{OutlierDetection, SuccessRate};
/// let od = OutlierDetection::default()
///     .success_rate(Some(SuccessRate::default().request_volume(20).stdev_factor(1.0)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessRate {
    pub(crate) stdev_factor: f64,
    pub(crate) enforcement_percent: u8,
    pub(crate) minimum_hosts: u32,
    pub(crate) request_volume: u32,
}

impl Default for SuccessRate {
    fn default() -> Self {
        SuccessRate {
            stdev_factor: 1.9,
            enforcement_percent: 100,
            minimum_hosts: 5,
            request_volume: 100,
        }
    }
}

impl SuccessRate {
    /// How many standard deviations below the mean is an outlier (default 1.9; A50's
    /// `stdev_factor` of 1900 in thousandths).
    pub fn stdev_factor(mut self, factor: f64) -> Self {
        self.stdev_factor = factor;
        self
    }
    /// The chance, in percent, that an outlier found is ejected (default 100).
    pub fn enforcement_percent(mut self, percent: u8) -> Self {
        self.enforcement_percent = percent;
        self
    }
    /// Endpoints with enough calls needed before the detector runs (default 5).
    pub fn minimum_hosts(mut self, n: u32) -> Self {
        self.minimum_hosts = n;
        self
    }
    /// Calls in the interval for an endpoint to count (default 100).
    pub fn request_volume(mut self, n: u32) -> Self {
        self.request_volume = n;
        self
    }
}

/// Failure-percentage ejection (A50 `failure_percentage_ejection`): an endpoint with more than
/// `threshold` % failed calls in the interval is ejected, with probability
/// `enforcement_percent`. Only endpoints with at least `request_volume` calls count, and only
/// when at least `minimum_hosts` of them do.
///
/// ```
/// use tower_lb::health::{FailurePercentage, OutlierDetection};
/// let od = OutlierDetection::default()
///     .failure_percentage(Some(FailurePercentage::default().threshold(50)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailurePercentage {
    pub(crate) threshold: u8,
    pub(crate) enforcement_percent: u8,
    pub(crate) minimum_hosts: u32,
    pub(crate) request_volume: u32,
}

impl Default for FailurePercentage {
    fn default() -> Self {
        FailurePercentage {
            threshold: 85,
            enforcement_percent: 100,
            minimum_hosts: 5,
            request_volume: 50,
        }
    }
}

impl FailurePercentage {
    /// The failed share, in percent, above which an endpoint is ejected (default 85).
    pub fn threshold(mut self, percent: u8) -> Self {
        self.threshold = percent;
        self
    }
    /// The chance, in percent, that an outlier found is ejected (default 100).
    pub fn enforcement_percent(mut self, percent: u8) -> Self {
        self.enforcement_percent = percent;
        self
    }
    /// Endpoints with enough calls needed before the detector runs (default 5).
    pub fn minimum_hosts(mut self, n: u32) -> Self {
        self.minimum_hosts = n;
        self
    }
    /// Calls in the interval for an endpoint to count (default 50).
    pub fn request_volume(mut self, n: u32) -> Self {
        self.request_volume = n;
        self
    }
}

/// One endpoint's calls in the last interval.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
}

impl Sample {
    /// Calls finished: successes and failures.
    pub(crate) fn volume(&self) -> u64 {
        self.ok + self.failed
    }
    fn success_rate(&self) -> f64 {
        self.ok as f64 / self.volume() as f64
    }
}

/// Why an endpoint was ejected, for logs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reason {
    ConsecutiveFailures(u32),
    SuccessRate { rate: f64, threshold: f64 },
    FailurePercentage { percent: f64, threshold: u8 },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ConsecutiveFailures(n) => write!(f, "{n} consecutive failed calls"),
            Reason::SuccessRate { rate, threshold } => write!(
                f,
                "success rate {:.1} % below the peers' threshold {:.1} %",
                rate * 100.0,
                threshold * 100.0
            ),
            Reason::FailurePercentage { percent, threshold } => {
                write!(
                    f,
                    "{percent:.1} % of calls failed (threshold {threshold} %)"
                )
            }
        }
    }
}

/// The interval's outliers among `samples` (indices into it, success rate first, then failure
/// percentage, as A50 orders them; an index may appear under both). The caller applies the
/// ejection cap.
pub(crate) fn outliers(
    config: &OutlierDetection,
    samples: &[Sample],
    rng: &mut impl Rng,
) -> Vec<(usize, Reason)> {
    let mut found = Vec::new();
    let enforce = |percent: u8, rng: &mut dyn rand::RngCore| {
        percent >= 100 || rng.random_range(0..100u8) < percent
    };
    if let Some(sr) = &config.success_rate {
        let volume = u64::from(sr.request_volume);
        let counted: Vec<(usize, f64)> = samples
            .iter()
            .enumerate()
            .filter(|(_, s)| s.volume() >= volume.max(1))
            .map(|(i, s)| (i, s.success_rate()))
            .collect();
        if counted.len() >= sr.minimum_hosts.max(1) as usize {
            let n = counted.len() as f64;
            let mean = counted.iter().map(|(_, r)| r).sum::<f64>() / n;
            let variance = counted.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / n;
            let threshold = mean - sr.stdev_factor * variance.sqrt();
            for &(i, rate) in &counted {
                if rate < threshold && enforce(sr.enforcement_percent, rng) {
                    found.push((i, Reason::SuccessRate { rate, threshold }));
                }
            }
        }
    }
    if let Some(fp) = &config.failure_percentage {
        let volume = u64::from(fp.request_volume);
        let counted = samples.iter().filter(|s| s.volume() >= volume.max(1));
        if counted.count() >= fp.minimum_hosts.max(1) as usize {
            for (i, s) in samples.iter().enumerate() {
                if s.volume() < volume.max(1) {
                    continue;
                }
                let percent = s.failed as f64 * 100.0 / s.volume() as f64;
                if percent > f64::from(fp.threshold) && enforce(fp.enforcement_percent, rng) {
                    found.push((
                        i,
                        Reason::FailurePercentage {
                            percent,
                            threshold: fp.threshold,
                        },
                    ));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    fn sample(ok: u64, failed: u64) -> Sample {
        Sample { ok, failed }
    }

    #[test]
    fn success_rate_singles_out_the_low_one() {
        let od = OutlierDetection::default().failure_percentage(None);
        let mut s = vec![sample(200, 0); 5];
        s[3] = sample(100, 100);
        let found = outliers(&od, &s, &mut SmallRng::seed_from_u64(1));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 3);
        assert!(matches!(found[0].1, Reason::SuccessRate { .. }));
    }

    #[test]
    fn success_rate_needs_enough_hosts_and_volume() {
        let od = OutlierDetection::default().failure_percentage(None);
        let mut s = vec![sample(200, 0); 4];
        s[0] = sample(0, 200);
        assert!(outliers(&od, &s, &mut SmallRng::seed_from_u64(1)).is_empty());
        let mut s = vec![sample(99, 0); 6];
        s[0] = sample(0, 99);
        assert!(outliers(&od, &s, &mut SmallRng::seed_from_u64(1)).is_empty());
    }

    #[test]
    fn equal_rates_eject_nobody() {
        let od = OutlierDetection::default();
        let s = vec![sample(100, 100); 10];
        assert!(outliers(&od, &s, &mut SmallRng::seed_from_u64(1)).is_empty());
    }

    #[test]
    fn failure_percentage_above_threshold() {
        let od = OutlierDetection::default().success_rate(None);
        let mut s = vec![sample(60, 0); 5];
        s[1] = sample(5, 55); // 91.7 %
        s[2] = sample(10, 50); // 83.3 %: under 85
        let found = outliers(&od, &s, &mut SmallRng::seed_from_u64(1));
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn enforcement_zero_never_ejects() {
        let od = OutlierDetection::default()
            .success_rate(Some(SuccessRate::default().enforcement_percent(0)))
            .failure_percentage(Some(FailurePercentage::default().enforcement_percent(0)));
        let mut s = vec![sample(200, 0); 5];
        s[0] = sample(0, 200);
        assert!(outliers(&od, &s, &mut SmallRng::seed_from_u64(1)).is_empty());
    }

    #[test]
    fn the_cap_is_at_least_one_and_never_all() {
        let od = OutlierDetection::default();
        assert_eq!(od.max_ejected(0), 0);
        assert_eq!(od.max_ejected(1), 0);
        assert_eq!(od.max_ejected(2), 1);
        assert_eq!(od.max_ejected(10), 1);
        assert_eq!(od.max_ejected(30), 3);
        let all = od.max_ejection_percent(100);
        assert_eq!(all.max_ejected(5), 4);
        assert_eq!(OutlierDetection::disabled().max_ejected(10), 0);
    }

    #[test]
    fn ejection_time_grows_to_the_cap() {
        let od = OutlierDetection::default();
        assert_eq!(od.ejection_time(1), Duration::from_secs(30));
        assert_eq!(od.ejection_time(3), Duration::from_secs(90));
        assert_eq!(od.ejection_time(100), Duration::from_secs(300));
        assert_eq!(od.ejection_time(u32::MAX), Duration::from_secs(300));
        let short_max = od.max_ejection_time(Duration::from_secs(1));
        assert_eq!(short_max.ejection_time(5), Duration::from_secs(30));
    }

    #[test]
    fn bad_settings_are_refused() {
        let od = OutlierDetection::default();
        assert!(od.validate().is_ok());
        assert!(od.interval(Duration::ZERO).validate().is_err());
        assert!(od.max_ejection_percent(101).validate().is_err());
        assert!(od.consecutive_failures(Some(0)).validate().is_err());
        let nan = SuccessRate::default().stdev_factor(f64::NAN);
        assert!(od.success_rate(Some(nan)).validate().is_err());
        let over = FailurePercentage::default().threshold(101);
        assert!(od.failure_percentage(Some(over)).validate().is_err());
        assert!(
            OutlierDetection::disabled()
                .interval(Duration::ZERO)
                .validate()
                .is_ok()
        );
    }
}
