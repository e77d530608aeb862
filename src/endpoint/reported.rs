//! What an endpoint's server says about its own load (ORCA reports in the calls' trailers),
//! kept only for a policy that reads it: every other policy's endpoints have none and their
//! calls never look at a trailer for it.
//!
//! The request path stores the last report and, as gRPC A58's `UpdateWeight` does, the weight
//! it gives and since when reports have been usable; the control task reads the weight
//! (A58's `GetWeight`, with the blackout and expiry) when it rebuilds the schedule. Relaxed
//! atomics throughout: two reports landing together may mix their fields, which is as good
//! as either.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use http::HeaderMap;

use crate::orca::{self, DecodeError, LoadReport};
use crate::time::now_ns;

/// Warnings about bad reports from one endpoint: at most one per this long.
const WARN_EVERY_NS: u64 = 10_000_000_000;

/// An endpoint's last load report and the weight it gives.
#[derive(Debug, Default)]
pub(crate) struct ReportedLoad {
    /// gRPC A58's `errorUtilizationPenalty`, fixed per balancer.
    penalty: f64,
    /// Whether calls' trailers are read (not with out-of-band reports, as A58 says).
    from_trailers: bool,
    utilization: AtomicU64,
    qps: AtomicU64,
    eps: AtomicU64,
    /// The named metrics `in_flight` and `latency_seconds`, NaN when not sent.
    in_flight: AtomicU64,
    latency: AtomicU64,
    /// A58's weight from the last usable report (utilisation and QPS above 0).
    weight: AtomicU64,
    /// `now_ns()` of the last usable report (A58 `last_updated`); 0: none.
    last_updated: AtomicU64,
    /// Since when usable reports have come without a gap (A58 `non_empty_since`); 0: not now.
    non_empty_since: AtomicU64,
    /// Reports read, and reports that did not decode or came too late.
    pub(crate) reports: AtomicU64,
    pub(crate) rejected: AtomicU64,
    last_warned: AtomicU64,
    /// Discovery removed the endpoint: its late reports are ignored.
    retired: AtomicBool,
    /// The last report's calls in flight and latency as a probing policy reads them, packed
    /// in one word so a pick reads them together (see [`Probed`]).
    probed: AtomicU64,
    /// `now_ns()` when `probed` was written; 0: never.
    probed_at: AtomicU64,
}

/// What one report (a probe's answer or a call's trailer) said, as a probing policy reads
/// it: the server's calls in flight, this client's own calls in flight to it at that moment
/// (so a pick can add the ones it sent since), and the server's latency estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probed {
    pub(crate) in_flight: u32,
    pub(crate) own_in_flight: u32,
    pub(crate) latency_us: u32,
}

impl Probed {
    const MAX16: u32 = u16::MAX as u32;

    /// What `report` says to a probing policy, taken when this client had `own_in_flight`
    /// calls to the endpoint; `None` without calls in flight. Latency in whole microseconds,
    /// saturated; no latency reads as 0 (unknown).
    pub(crate) fn of(report: &LoadReport, own_in_flight: u32) -> Option<Self> {
        let in_flight = report.in_flight?;
        Some(Probed {
            in_flight: in_flight.min(f64::from(u32::MAX)) as u32,
            own_in_flight,
            latency_us: report
                .latency
                .map_or(0, |l| (l * 1e6).min(f64::from(u32::MAX)) as u32),
        })
    }

    fn pack(self) -> u64 {
        // Saturated, not wrapped: 65,535 calls in flight is as hot as any more.
        u64::from(self.in_flight.min(Self::MAX16)) << 48
            | u64::from(self.own_in_flight.min(Self::MAX16)) << 32
            | u64::from(self.latency_us)
    }

    fn unpack(word: u64) -> Self {
        Probed {
            in_flight: (word >> 48) as u32,
            own_in_flight: (word >> 32) as u32 & Self::MAX16,
            latency_us: word as u32,
        }
    }
}

/// The last report and its weight, as the status view shows them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReportedTotals {
    pub(crate) report: LoadReport,
    pub(crate) reports: u64,
    pub(crate) rejected: u64,
    /// Nanoseconds since the last usable report, if any.
    pub(crate) age_ns: Option<u64>,
}

impl ReportedLoad {
    pub(crate) fn new(penalty: f64, from_trailers: bool) -> Self {
        let nan = AtomicU64::new(f64::NAN.to_bits());
        ReportedLoad {
            penalty,
            from_trailers,
            in_flight: nan,
            latency: AtomicU64::new(f64::NAN.to_bits()),
            ..ReportedLoad::default()
        }
    }

    /// Reads the report in a call's trailers (or trailers-only headers), if there is one.
    /// `own_in_flight`: this client's calls in flight to the endpoint now.
    pub(crate) fn on_trailers(
        &self,
        trailers: &HeaderMap,
        own_in_flight: u32,
        endpoint: &dyn std::fmt::Display,
    ) {
        if !self.from_trailers {
            return;
        }
        if let Some(report) = orca::from_trailers(trailers) {
            self.on_report(report, own_in_flight, endpoint);
        }
    }

    /// Takes a report from a call's trailers or a probe's answer: stored, or counted as
    /// rejected (with a rate-limited warning) when it did not decode or the endpoint left.
    pub(crate) fn on_report(
        &self,
        report: Result<LoadReport, DecodeError>,
        own_in_flight: u32,
        endpoint: &dyn std::fmt::Display,
    ) {
        match report {
            Ok(_) if self.retired.load(Relaxed) => self.reject(
                endpoint,
                &DecodeError::new("the endpoint has left the balancer"),
            ),
            Ok(report) => {
                let now = now_ns();
                self.record(&report, now);
                self.record_probed(&report, own_in_flight, now);
            }
            Err(e) => self.reject(endpoint, &e),
        }
    }

    /// Keeps what a probing policy reads from a report that has calls in flight.
    fn record_probed(&self, report: &LoadReport, own_in_flight: u32, now: u64) {
        let Some(probed) = Probed::of(report, own_in_flight) else {
            return;
        };
        self.probed.store(probed.pack(), Relaxed);
        self.probed_at.store(now.max(1), Relaxed);
    }

    /// The last report a probing policy may use at `now`: none, or older than `max_age_ns`,
    /// is `None`.
    #[inline]
    pub(crate) fn probed(&self, now: u64, max_age_ns: u64) -> Option<Probed> {
        let at = self.probed_at.load(Relaxed);
        if at == 0 || now.saturating_sub(at) > max_age_ns {
            return None;
        }
        Some(Probed::unpack(self.probed.load(Relaxed)))
    }

    /// Stores a report; A58's `UpdateWeight`.
    pub(crate) fn record(&self, report: &LoadReport, now: u64) {
        self.reports.fetch_add(1, Relaxed);
        let (qps, eps) = (report.rps_fractional, report.eps);
        let mut utilization = report.utilization();
        store(&self.utilization, utilization);
        store(&self.qps, qps);
        store(&self.eps, eps);
        store(&self.in_flight, report.in_flight.unwrap_or(f64::NAN));
        store(&self.latency, report.latency.unwrap_or(f64::NAN));
        if utilization > 0.0 && qps > 0.0 {
            utilization += eps / qps * self.penalty;
        }
        let weight = if utilization > 0.0 {
            qps / utilization
        } else {
            0.0
        };
        if !(weight > 0.0 && weight.is_finite()) {
            return;
        }
        let _ = self
            .non_empty_since
            .compare_exchange(0, now.max(1), Relaxed, Relaxed);
        self.last_updated.store(now.max(1), Relaxed);
        store(&self.weight, weight);
    }

    /// A58's `GetWeight`: the weight to schedule by, 0 while none may be used — no usable
    /// report yet, the last one older than `expiration` (which restarts the blackout), or
    /// reports usable for less than `blackout`.
    pub(crate) fn weight(&self, now: u64, blackout_ns: u64, expiration_ns: u64) -> f64 {
        let last = self.last_updated.load(Relaxed);
        if last == 0 || now.saturating_sub(last) >= expiration_ns {
            self.non_empty_since.store(0, Relaxed);
            return 0.0;
        }
        let since = self.non_empty_since.load(Relaxed);
        if blackout_ns > 0 && (since == 0 || now.saturating_sub(since) < blackout_ns) {
            return 0.0;
        }
        load(&self.weight)
    }

    /// The endpoint (re)connected: its blackout starts again with its next report (A58's
    /// `OnSubchannelBecomesReady`).
    pub(crate) fn became_ready(&self) {
        self.non_empty_since.store(0, Relaxed);
    }

    /// Discovery removed the endpoint; calls still draining may bring reports, now ignored.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Relaxed);
    }

    pub(crate) fn totals(&self, now: u64) -> ReportedTotals {
        let named = |a: &AtomicU64| Some(load(a)).filter(|v| !v.is_nan());
        let report = LoadReport {
            application_utilization: load(&self.utilization),
            rps_fractional: load(&self.qps),
            eps: load(&self.eps),
            in_flight: named(&self.in_flight),
            latency: named(&self.latency),
            ..LoadReport::default()
        };
        let last = self.last_updated.load(Relaxed);
        ReportedTotals {
            report,
            reports: self.reports.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            age_ns: (last != 0).then(|| now.saturating_sub(last)),
        }
    }

    /// A report that cannot be used: counted, and logged at most once per 10 s per endpoint.
    #[cold]
    fn reject(&self, endpoint: &dyn std::fmt::Display, error: &DecodeError) {
        let rejected = self.rejected.fetch_add(1, Relaxed) + 1;
        let now = now_ns();
        let last = self.last_warned.load(Relaxed);
        if (last == 0 || now.saturating_sub(last) >= WARN_EVERY_NS)
            && self
                .last_warned
                .compare_exchange(last, now.max(1), Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(%endpoint, rejected, "ignoring an ORCA load report: {error}");
        }
    }
}

fn store(a: &AtomicU64, v: f64) {
    a.store(v.to_bits(), Relaxed);
}

fn load(a: &AtomicU64) -> f64 {
    f64::from_bits(a.load(Relaxed))
}

#[cfg(test)]
mod tests {
    // Reports are built field by field, as a user outside the crate must (`#[non_exhaustive]`).
    #![allow(clippy::field_reassign_with_default)]

    use super::*;

    const S: u64 = 1_000_000_000;

    fn report(util: f64, qps: f64, eps: f64) -> LoadReport {
        let mut r = LoadReport::default();
        r.cpu_utilization = util;
        r.rps_fractional = qps;
        r.eps = eps;
        r
    }

    #[test]
    fn a58_blackout_expiry_and_penalty() {
        let r = ReportedLoad::new(1.0, true);
        let (blackout, expiry) = (10 * S, 180 * S);
        assert_eq!(r.weight(S, blackout, expiry), 0.0, "no report yet");
        r.record(&report(0.5, 100.0, 0.0), S);
        assert_eq!(r.weight(5 * S, blackout, expiry), 0.0, "in the blackout");
        assert_eq!(r.weight(11 * S, blackout, expiry), 200.0);
        // eps/qps × penalty adds to the utilisation: 100 / (0.5 + 0.5).
        r.record(&report(0.5, 100.0, 50.0), 12 * S);
        assert_eq!(r.weight(12 * S, blackout, expiry), 100.0);
        // A report without utilisation keeps the last weight (A58 ignores it).
        r.record(&report(0.0, 100.0, 0.0), 13 * S);
        assert_eq!(r.weight(13 * S, blackout, expiry), 100.0);
        // Expired: 0, and the blackout starts over with the next report.
        assert_eq!(r.weight(200 * S, blackout, expiry), 0.0);
        r.record(&report(1.0, 10.0, 0.0), 201 * S);
        assert_eq!(r.weight(202 * S, blackout, expiry), 0.0);
        assert_eq!(r.weight(212 * S, blackout, expiry), 10.0);
        // Reconnecting restarts the blackout too; no blackout means at once.
        r.became_ready();
        assert_eq!(r.weight(213 * S, blackout, expiry), 0.0);
        r.record(&report(1.0, 10.0, 0.0), 214 * S);
        assert_eq!(r.weight(214 * S, 0, expiry), 10.0);
    }

    #[test]
    fn bad_and_late_reports_are_counted_not_used() {
        let r = ReportedLoad::new(1.0, true);
        let mut h = HeaderMap::new();
        h.insert(orca::TRAILER, "%%%".parse().unwrap());
        r.on_trailers(&h, 0, &"e");
        assert_eq!(r.rejected.load(Relaxed), 1);
        assert_eq!(r.reports.load(Relaxed), 0);
        h.insert(orca::TRAILER, "CQAAAAAAAPh/".parse().unwrap()); // cpu_utilization = NaN
        r.on_trailers(&h, 0, &"e");
        assert_eq!(r.rejected.load(Relaxed), 2);
        r.retire();
        h.insert(orca::TRAILER, "CQAAAAAAAOA/".parse().unwrap()); // cpu_utilization = 0.5
        r.on_trailers(&h, 0, &"e");
        assert_eq!(r.rejected.load(Relaxed), 3);
        assert_eq!(r.weight(now_ns(), 0, u64::MAX), 0.0);
    }
}
