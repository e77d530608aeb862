//! What the layer measures: calls in flight now, and per window (1 s by default) the rate of
//! finished calls, of errors and the utilisation. A report carries the last full window's
//! rates (steady, not one call's noise), the calls in flight now, and the latency a call that
//! starts now can expect.
//!
//! That latency is Prequal's: a server's latency depends on how many calls it is running,
//! so it is estimated per count in flight at a call's start (a moving average per count,
//! 1 to 32 and "more"), and a report gives the estimate at the count a new call would start
//! at; where that count has no recent sample, the nearest count that has.
//!
//! One mutex, held for a few arithmetic steps at each call's start and end: a server's
//! request path can afford that, and it keeps the time-weighted in-flight integral exact.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::cpu::CpuSample;
use crate::orca::LoadReport;

/// Where the reported utilisation comes from.
#[derive(Clone, Default)]
pub(super) enum Utilization {
    /// None: the report has rates and latency only.
    #[default]
    None,
    /// The process's CPU (`cpu_utilization`).
    Cpu,
    /// The mean calls in flight over the window per this many slots
    /// (`application_utilization`).
    InFlightPer(f64),
    /// The caller's own figure (`application_utilization`).
    Custom(Arc<dyn Fn() -> f64 + Send + Sync>),
}

impl std::fmt::Debug for Utilization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Utilization::None => f.write_str("None"),
            Utilization::Cpu => f.write_str("Cpu"),
            Utilization::InFlightPer(slots) => write!(f, "InFlightPer({slots})"),
            Utilization::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// The measurements of one server (one layer and every service it made).
#[derive(Debug)]
pub(super) struct Tracker {
    utilization: Utilization,
    window: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    in_flight: u64,
    /// The window being measured.
    start: Instant,
    last_change: Instant,
    /// ∫ in flight dt over the window, in call-seconds.
    area: f64,
    finished: u64,
    errors: u64,
    latency_sum: f64,
    cpu: Option<CpuSample>,
    /// The last full window's figures.
    last: LoadReport,
    /// Latency by calls in flight at the start.
    latency: LatencyByLoad,
}

/// Calls in flight at their start above which calls share one estimate.
const LOAD_BUCKETS: usize = 33;

/// Weight of a new sample in its count's moving average.
const ALPHA: f64 = 0.25;

/// An estimate not updated for this long is not used.
const STALE: Duration = Duration::from_secs(5);

/// Latency estimates per calls in flight at a call's start (index 0 unused: a call counts
/// itself).
#[derive(Debug)]
struct LatencyByLoad {
    seconds: [f64; LOAD_BUCKETS],
    updated: [Option<Instant>; LOAD_BUCKETS],
}

impl LatencyByLoad {
    fn new() -> Self {
        LatencyByLoad {
            seconds: [0.0; LOAD_BUCKETS],
            updated: [None; LOAD_BUCKETS],
        }
    }

    fn record(&mut self, load: u64, latency: f64, now: Instant) {
        let b = (load as usize).min(LOAD_BUCKETS - 1);
        self.seconds[b] = match self.fresh(b, now) {
            true => self.seconds[b] + ALPHA * (latency - self.seconds[b]),
            false => latency,
        };
        self.updated[b] = Some(now);
    }

    fn fresh(&self, b: usize, now: Instant) -> bool {
        self.updated[b].is_some_and(|at| now.duration_since(at) < STALE)
    }

    /// The estimate for a call starting at `load` in flight: its own count's, else the
    /// nearest count's below, else above; `None` without a recent sample.
    fn at(&self, load: u64, now: Instant) -> Option<f64> {
        let b = (load as usize).clamp(1, LOAD_BUCKETS - 1);
        let below = (1..=b).rev();
        let above = b + 1..LOAD_BUCKETS;
        below
            .chain(above)
            .find(|&i| self.fresh(i, now))
            .map(|i| self.seconds[i])
    }
}

impl Tracker {
    pub(super) fn new(utilization: Utilization, window: Duration) -> Self {
        let now = Instant::now();
        let cpu = match utilization {
            Utilization::Cpu => CpuSample::now(),
            _ => None,
        };
        Tracker {
            utilization,
            window,
            state: Mutex::new(State {
                in_flight: 0,
                start: now,
                last_change: now,
                area: 0.0,
                finished: 0,
                errors: 0,
                latency_sum: 0.0,
                cpu,
                last: LoadReport::default(),
                latency: LatencyByLoad::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing here panics while holding the lock; a poisoned lock's data is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A call started; returns its start time and the calls in flight with it.
    pub(super) fn start(&self) -> (Instant, u64) {
        let now = Instant::now();
        let mut s = self.state();
        s.advance(now);
        s.in_flight += 1;
        (now, s.in_flight)
    }

    /// A call that started at `started` with `load` in flight ended; `error`: with a non-OK
    /// status. Returns the report to send with it, if asked.
    pub(super) fn end(
        &self,
        started: Instant,
        load: u64,
        error: bool,
        report: bool,
    ) -> Option<LoadReport> {
        let now = Instant::now();
        let mut s = self.state();
        s.advance(now);
        s.in_flight = s.in_flight.saturating_sub(1);
        s.finished += 1;
        s.errors += u64::from(error);
        let latency = now.duration_since(started).as_secs_f64();
        s.latency_sum += latency;
        // A failed call's latency says nothing about a good one's (a server that fails fast
        // is not fast).
        if !error {
            s.latency.record(load, latency, now);
        }
        if now.duration_since(s.start) >= self.window {
            self.roll(&mut s, now);
        }
        report.then(|| s.report(now))
    }

    /// The report a load probe gets now.
    pub(super) fn probe(&self) -> LoadReport {
        let now = Instant::now();
        let mut s = self.state();
        if now.duration_since(s.start) >= self.window {
            s.advance(now);
            self.roll(&mut s, now);
        }
        s.report(now)
    }

    /// Closes the window: its rates, latency and utilisation become what reports say.
    fn roll(&self, s: &mut State, now: Instant) {
        let elapsed = now.duration_since(s.start).as_secs_f64();
        let mut r = LoadReport {
            rps_fractional: s.finished as f64 / elapsed,
            eps: s.errors as f64 / elapsed,
            latency: (s.finished > 0).then(|| s.latency_sum / s.finished as f64),
            ..LoadReport::default()
        };
        match &self.utilization {
            Utilization::None => {}
            Utilization::Cpu => {
                let sample = CpuSample::now();
                if let (Some(before), Some(after)) = (s.cpu, sample) {
                    r.cpu_utilization = before.utilization_until(&after);
                }
                s.cpu = sample;
            }
            Utilization::InFlightPer(slots) => {
                // Capped at 1: a queue is all slots busy, not more than all. Above 1, A58's
                // qps / utilization counted the backlog against a saturated server and left it
                // a share no larger than its capacity, so its queue never drained.
                r.application_utilization = (s.area / elapsed / slots).min(1.0);
            }
            Utilization::Custom(f) => {
                let u = f();
                // A figure no client could use is not sent.
                r.application_utilization = if u.is_finite() && u >= 0.0 { u } else { 0.0 };
            }
        }
        s.last = r;
        s.start = now;
        s.area = 0.0;
        s.finished = 0;
        s.errors = 0;
        s.latency_sum = 0.0;
    }
}

impl State {
    /// The last window's figures with the calls in flight now and the latency a call that
    /// starts now can expect (the window's mean where no count has a recent sample).
    fn report(&self, now: Instant) -> LoadReport {
        let mut r = self.last;
        r.in_flight = Some(self.in_flight as f64);
        if let Some(latency) = self.latency.at(self.in_flight + 1, now) {
            r.latency = Some(latency);
        }
        r
    }

    fn advance(&mut self, now: Instant) {
        self.area += self.in_flight as f64 * now.duration_since(self.last_change).as_secs_f64();
        self.last_change = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_report_rate_latency_and_slot_utilization() {
        let t = Tracker::new(Utilization::InFlightPer(2.0), Duration::from_millis(20));
        let (started, load) = t.start();
        let first = t.end(started, load, false, true).unwrap();
        assert_eq!(first.rps_fractional, 0.0, "no full window yet");
        assert_eq!(first.in_flight, Some(0.0));
        let a = t.start();
        std::thread::sleep(Duration::from_millis(25));
        let b = t.start();
        let r = t.end(a.0, a.1, true, true).unwrap();
        assert!(r.rps_fractional > 0.0 && r.eps > 0.0, "{r:?}");
        assert!(
            r.application_utilization > 0.0 && r.application_utilization <= 1.0,
            "{r:?}"
        );
        assert!(r.latency.unwrap() > 0.0);
        assert_eq!(r.in_flight, Some(1.0));
        assert!(t.end(b.0, b.1, false, false).is_none());
        let custom = Tracker::new(Utilization::Custom(Arc::new(|| f64::NAN)), Duration::ZERO);
        let s = custom.start();
        assert_eq!(
            custom
                .end(s.0, s.1, false, true)
                .unwrap()
                .application_utilization,
            0.0
        );
    }

    #[test]
    fn latency_is_estimated_per_calls_in_flight() {
        let now = Instant::now();
        let mut l = LatencyByLoad::new();
        assert_eq!(l.at(1, now), None);
        l.record(1, 0.010, now);
        l.record(4, 0.040, now);
        assert_eq!(l.at(1, now), Some(0.010));
        // No sample at 2 or 3: the nearest count below.
        assert_eq!(l.at(3, now), Some(0.010));
        assert_eq!(l.at(9, now), Some(0.040));
        // Averaged: a quarter of the way to the new sample.
        l.record(4, 0.080, now);
        assert!((l.at(4, now).unwrap() - 0.050).abs() < 1e-12);
        // Beyond the last count, one shared estimate; stale ones are not used.
        l.record(500, 1.0, now);
        assert_eq!(l.at(100, now), Some(1.0));
        assert_eq!(l.at(1, now + STALE), None);
    }
}
