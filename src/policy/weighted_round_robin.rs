//! Weighted round robin by the servers' own load reports, as gRPC A58 specifies
//! (`weighted_round_robin`): each endpoint's weight is `qps / (utilization + eps/qps ×
//! errorUtilizationPenalty)` from the ORCA report in its calls' trailers.
//!
//! The weights are turned into a schedule off the request path: the control task republishes
//! every `weightUpdatePeriod`, and the plan it builds reads each endpoint's weight (A58's
//! `GetWeight`, in `endpoint/reported.rs`) and lays out the same smooth weighted order as
//! [`round_robin`](super::round_robin) — A58's EDF scheduler's shares, walked per clone with
//! no shared cursor. A pick is an array read, as for round robin.

use std::time::Duration;

use super::round_robin::Schedule;
use crate::endpoint::{ReadyEndpoint, ReportedLoad};
use crate::error::Error;

/// Settings of [`Policy::weighted_round_robin`](crate::Policy::weighted_round_robin), with
/// gRPC A58's names and defaults.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{Policy, WeightedRoundRobin};
/// let wrr = WeightedRoundRobin::default()
///     .blackout_period(Duration::from_secs(2))
///     .error_utilization_penalty(2.0)?;
/// let policy = Policy::weighted_round_robin(wrr);
/// assert_eq!(policy.name(), "weighted_round_robin");
/// # Ok::<(), tower_lb::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightedRoundRobin {
    pub(crate) blackout: Duration,
    pub(crate) expiration: Duration,
    pub(crate) update: Duration,
    pub(crate) penalty: f64,
    pub(crate) oob: bool,
    pub(crate) oob_period: Duration,
}

impl Default for WeightedRoundRobin {
    fn default() -> Self {
        WeightedRoundRobin {
            blackout: Duration::from_secs(10),
            expiration: Duration::from_secs(180),
            update: Duration::from_secs(1),
            penalty: 1.0,
            oob: false,
            oob_period: Duration::from_secs(10),
        }
    }
}

/// A58: update periods below 100 ms are taken as 100 ms.
const MIN_UPDATE: Duration = Duration::from_millis(100);

/// Weights below a tenth or above ten times the mean are clamped there, as gRPC C-core's
/// scheduler does: one endpoint's odd report cannot starve it or flood it.
const MAX_RATIO: f64 = 10.0;

/// The heaviest weight in the schedule; with the clamp the lightest is at least 1 % of it.
const SCALE: f64 = 1000.0;

impl WeightedRoundRobin {
    /// How long an endpoint must report load without a gap before its weight is used
    /// (default 10 s; 0: at once). Starts again when it reconnects or its weight expires.
    pub fn blackout_period(mut self, period: Duration) -> Self {
        self.blackout = period;
        self
    }

    /// After how long without a usable report an endpoint's weight is dropped (default
    /// 3 min); it is then scheduled at the mean weight.
    pub fn weight_expiration_period(mut self, period: Duration) -> Self {
        self.expiration = period;
        self
    }

    /// How often the weights are recomputed (default 1 s; at least 100 ms).
    pub fn weight_update_period(mut self, period: Duration) -> Self {
        self.update = period.max(MIN_UPDATE);
        self
    }

    /// How much the error rate counts: `eps / qps × penalty` is added to the utilisation
    /// (default 1.0). Fails unless finite and at least 0.
    pub fn error_utilization_penalty(mut self, penalty: f64) -> Result<Self, Error> {
        if !(penalty.is_finite() && penalty >= 0.0) {
            return Err(Error::InvalidConfig(format!(
                "weighted round robin: error utilization penalty must be a finite number >= 0, got {penalty}"
            )));
        }
        self.penalty = penalty;
        Ok(self)
    }

    /// A58's `enableOobLoadReport` and `oobReportingPeriod` (default off, 10 s): when
    /// enabled, each connected endpoint is asked for its reports on the ORCA out-of-band
    /// stream (`OpenRcaService/StreamCoreMetrics`, gRPC A51) every `period` — the server may
    /// report less often — and calls' trailers are not read. Weights then follow the servers
    /// whether or not calls go to them.
    pub fn out_of_band(mut self, enabled: bool, period: Duration) -> Self {
        self.oob = enabled;
        self.oob_period = period;
        self
    }

    /// How often the control task rebuilds the schedule.
    pub(crate) fn update_period(&self) -> Duration {
        self.update
    }

    /// The schedule for `ready` now: each endpoint's A58 weight; those without one (no
    /// report, blackout, expired) at the mean of the others; all equal (plain round robin)
    /// while fewer than two have one.
    pub(crate) fn schedule<T>(&self, ready: &[ReadyEndpoint<T>], now_ns: u64) -> Schedule {
        let weights: Vec<f64> = ready
            .iter()
            .map(|e| match &e.state.reported {
                Some(r) => self.weight_of(r, now_ns),
                None => 0.0,
            })
            .collect();
        Schedule::build(&scaled(&weights))
    }

    /// One endpoint's weight now under these settings (0: none).
    pub(crate) fn weight_of(&self, reported: &ReportedLoad, now_ns: u64) -> f64 {
        reported.weight(now_ns, nanos(self.blackout), nanos(self.expiration))
    }
}

/// Float weights (0: unknown) as the integers a schedule takes.
fn scaled(weights: &[f64]) -> Vec<u32> {
    let known: Vec<f64> = weights.iter().copied().filter(|w| *w > 0.0).collect();
    if known.len() < 2 {
        return vec![1; weights.len()];
    }
    let mean = known.iter().sum::<f64>() / known.len() as f64;
    let clamped: Vec<f64> = weights
        .iter()
        .map(|&w| {
            if w > 0.0 {
                w.clamp(mean / MAX_RATIO, mean * MAX_RATIO)
            } else {
                mean
            }
        })
        .collect();
    let max = clamped.iter().copied().fold(0.0, f64::max);
    clamped
        .iter()
        .map(|w| ((w / max * SCALE).round() as u32).max(1))
        .collect()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_weights_get_the_mean_and_outliers_are_clamped() {
        assert_eq!(
            scaled(&[0.0, 5.0, 0.0]),
            vec![1, 1, 1],
            "one known: round robin"
        );
        assert_eq!(scaled(&[100.0, 200.0, 400.0]), vec![250, 500, 1000]);
        // The unknown one gets the mean of 100 and 300.
        assert_eq!(scaled(&[100.0, 0.0, 300.0]), vec![333, 667, 1000]);
        // 1 against a mean of 500.5: clamped to a tenth of it.
        assert_eq!(scaled(&[1.0, 1000.0]), vec![50, 1000]);
        assert!(
            WeightedRoundRobin::default()
                .error_utilization_penalty(-1.0)
                .is_err()
        );
        assert!(
            WeightedRoundRobin::default()
                .error_utilization_penalty(f64::NAN)
                .is_err()
        );
        let fast = WeightedRoundRobin::default().weight_update_period(Duration::ZERO);
        assert_eq!(fast.update_period(), MIN_UPDATE);
    }
}
