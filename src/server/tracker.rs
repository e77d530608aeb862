//! What the layer measures: calls in flight now, and per window (1 s by default) the rate of
//! finished calls, of errors, their mean latency and the utilisation. A report carries the last
//! full window's figures (steady, not one call's noise) and the calls in flight now.
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
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing here panics while holding the lock; a poisoned lock's data is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A call started; returns its start time.
    pub(super) fn start(&self) -> Instant {
        let now = Instant::now();
        let mut s = self.state();
        s.advance(now);
        s.in_flight += 1;
        now
    }

    /// A call that started at `started` ended; `error`: with a non-OK status. Returns the
    /// report to send with it, if asked.
    pub(super) fn end(&self, started: Instant, error: bool, report: bool) -> Option<LoadReport> {
        let now = Instant::now();
        let mut s = self.state();
        s.advance(now);
        s.in_flight = s.in_flight.saturating_sub(1);
        s.finished += 1;
        s.errors += u64::from(error);
        s.latency_sum += now.duration_since(started).as_secs_f64();
        if now.duration_since(s.start) >= self.window {
            self.roll(&mut s, now);
        }
        report.then(|| {
            let mut r = s.last;
            r.in_flight = Some(s.in_flight as f64);
            r
        })
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
        let started = t.start();
        let first = t.end(started, false, true).unwrap();
        assert_eq!(first.rps_fractional, 0.0, "no full window yet");
        assert_eq!(first.in_flight, Some(0.0));
        let a = t.start();
        std::thread::sleep(Duration::from_millis(25));
        let b = t.start();
        let r = t.end(a, true, true).unwrap();
        assert!(r.rps_fractional > 0.0 && r.eps > 0.0, "{r:?}");
        assert!(
            r.application_utilization > 0.0 && r.application_utilization <= 1.0,
            "{r:?}"
        );
        assert!(r.latency.unwrap() > 0.0);
        assert_eq!(r.in_flight, Some(1.0));
        assert!(t.end(b, false, false).is_none());
        let custom = Tracker::new(Utilization::Custom(Arc::new(|| f64::NAN)), Duration::ZERO);
        let s = custom.start();
        assert_eq!(
            custom.end(s, false, true).unwrap().application_utilization,
            0.0
        );
    }
}
