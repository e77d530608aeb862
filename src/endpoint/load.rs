//! Per-endpoint load: requests in flight and a PeakEWMA estimate of round-trip time.
//!
//! PeakEWMA (from Finagle, as in linkerd and tower) keeps an exponentially weighted moving
//! average of response latency that jumps up at once to any sample above it ("peak") and decays
//! towards newer samples over a time constant. An endpoint's cost is
//! `rtt_estimate × (in_flight + 1)`, so a slow endpoint and a busy endpoint both look expensive.
//! The estimate also decays towards zero while no response arrives, so an endpoint that was
//! slow once is tried again later rather than starved for good.
//!
//! Everything is a relaxed atomic: the request path never takes a lock. Two responses that
//! land at the same instant may each decay the estimate by part of the elapsed time; the
//! estimate stays within the bounds of the samples, which is all p2c needs.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::time::now_ns;

/// PeakEWMA settings. Defaults follow linkerd: 30 ms assumed RTT for an endpoint with no
/// samples yet, and a 10 s decay time constant.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::PeakEwma;
/// let ewma = PeakEwma::default().default_rtt(Duration::from_millis(5));
/// assert_eq!(ewma.decay_time(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakEwma {
    default_rtt: Duration,
    decay: Duration,
    /// `decay` in nanoseconds, kept as a float for the request path.
    decay_ns: f64,
}

impl Default for PeakEwma {
    fn default() -> Self {
        PeakEwma {
            default_rtt: Duration::from_millis(30),
            decay: Duration::from_secs(10),
            decay_ns: 10e9,
        }
    }
}

impl PeakEwma {
    /// The RTT assumed for an endpoint before its first response (default 30 ms).
    pub fn default_rtt(mut self, rtt: Duration) -> Self {
        self.default_rtt = rtt;
        self
    }

    /// The decay time constant (default 10 s): how long the estimate takes to forget a peak.
    /// Clamped to at least 1 ms.
    pub fn decay(mut self, decay: Duration) -> Self {
        self.decay = decay.max(Duration::from_millis(1));
        self.decay_ns = self.decay.as_nanos() as f64;
        self
    }

    /// The RTT assumed before the first response.
    pub fn initial_rtt(&self) -> Duration {
        self.default_rtt
    }

    /// The decay time constant.
    pub fn decay_time(&self) -> Duration {
        self.decay
    }

    #[inline]
    pub(crate) fn decay_ns(&self) -> f64 {
        self.decay_ns
    }
}

/// One reading of the clock for PeakEWMA: the time now and the decay constant estimates are
/// judged by. Read once per call that compares latency, for the pick and as the call's start;
/// a call that does not compare latency (another policy, a hashed request) carries none.
///
/// The reading is never zero (the clock's origin reads as 1 ns), so an `Option<EwmaClock>`
/// takes no more room than the clock: it sits in every call's hold, which the response future
/// moves, and a larger future costs a `memcpy` per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EwmaClock {
    now_ns: NonZeroU64,
    pub(crate) decay_ns: f64,
}

impl EwmaClock {
    /// Reads the clock for `config`.
    #[inline]
    pub(crate) fn now(config: &PeakEwma) -> Self {
        EwmaClock::at(now_ns(), config.decay_ns)
    }

    /// A reading of `now_ns` on another clock (the `Picker`'s).
    #[inline]
    pub(crate) fn at(now_ns: u64, decay_ns: f64) -> Self {
        EwmaClock {
            now_ns: NonZeroU64::new(now_ns).unwrap_or(NonZeroU64::MIN),
            decay_ns,
        }
    }

    /// The reading, in nanoseconds.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.now_ns.get()
    }
}

/// The load counters of one endpoint. One cache line each, so picks and completions on
/// different endpoints never contend on the same line.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Load {
    in_flight: AtomicU32,
    /// f64 bits: the RTT estimate in nanoseconds.
    rtt_ns: AtomicU64,
    /// `now_ns()` of the last estimate update.
    stamp_ns: AtomicU64,
}

impl Load {
    pub(crate) fn new(initial_rtt: Duration) -> Self {
        Load {
            in_flight: AtomicU32::new(0),
            rtt_ns: AtomicU64::new((initial_rtt.as_nanos() as f64).to_bits()),
            stamp_ns: AtomicU64::new(now_ns()),
        }
    }

    /// Moves the estimate's timestamp to `now` on another clock (the `Picker`'s).
    pub(crate) fn restamp(&self, now: u64) {
        self.stamp_ns.store(now, Relaxed);
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    pub(crate) fn start(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// The RTT estimate at `now`, decayed towards zero for the time without samples.
    pub(crate) fn rtt_estimate_ns(&self, now: u64, decay_ns: f64) -> f64 {
        let rtt = f64::from_bits(self.rtt_ns.load(Relaxed));
        let elapsed = now.saturating_sub(self.stamp_ns.load(Relaxed)) as f64;
        rtt * decay_factor(elapsed / decay_ns)
    }

    /// PeakEWMA cost: the decayed RTT estimate times the requests in flight plus one.
    #[inline]
    pub(crate) fn peak_ewma_cost(&self, now: u64, decay_ns: f64) -> f64 {
        self.rtt_estimate_ns(now, decay_ns) * f64::from(self.in_flight() + 1)
    }

    /// Folds one latency sample into the estimate.
    pub(crate) fn record_rtt(&self, sample_ns: u64, now: u64, decay_ns: f64) {
        let sample = sample_ns as f64;
        let last = self.stamp_ns.swap(now, Relaxed);
        let elapsed = now.saturating_sub(last) as f64;
        let weight = decay_factor(elapsed / decay_ns);
        let mut current = self.rtt_ns.load(Relaxed);
        loop {
            let old = f64::from_bits(current);
            let next = if sample > old {
                sample
            } else {
                old * weight + sample * (1.0 - weight)
            };
            match self
                .rtt_ns
                .compare_exchange_weak(current, next.to_bits(), Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

/// `e^-x` for `x >= 0`. Under load most updates are microseconds apart against a decay of
/// seconds, so `x` is tiny and a second-order Taylor step (error below `x³/6`, under 2e-7 for
/// `x < 0.01`) stands in for the libm call on the request path.
#[inline]
fn decay_factor(x: f64) -> f64 {
    if x < 0.01 {
        1.0 - x + 0.5 * x * x
    } else {
        (-x).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECAY: f64 = 10e9;

    #[test]
    fn peak_is_taken_at_once_and_decays_towards_newer_samples() {
        let load = Load::new(Duration::from_millis(30));
        let t0 = now_ns();
        load.record_rtt(100_000_000, t0, DECAY);
        assert_eq!(load.rtt_estimate_ns(t0, DECAY), 100e6);
        // A fast sample one decay constant later pulls the estimate most of the way down.
        load.record_rtt(1_000_000, t0 + 10_000_000_000, DECAY);
        let est = load.rtt_estimate_ns(t0 + 10_000_000_000, DECAY);
        assert!(est > 1e6 && est < 100e6 * 0.5, "{est}");
    }

    #[test]
    fn decay_factor_matches_exp() {
        for x in [0.0, 1e-9, 1e-4, 0.0099, 0.01, 0.5, 3.0, 1e6] {
            assert!((decay_factor(x) - (-x).exp()).abs() < 1e-6, "{x}");
        }
    }

    #[test]
    fn cost_grows_with_in_flight_and_decays_when_idle() {
        let load = Load::new(Duration::from_millis(10));
        let t0 = now_ns();
        let idle = load.peak_ewma_cost(t0, DECAY);
        load.start();
        load.start();
        let busy = load.peak_ewma_cost(t0, DECAY);
        assert!(busy > 2.5 * idle, "{busy} vs {idle}");
        load.end();
        load.end();
        assert_eq!(load.in_flight(), 0);
        assert!(load.peak_ewma_cost(t0 + 100_000_000_000, DECAY) < idle / 100.0);
    }
}
