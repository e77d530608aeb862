//! Prequal (Wydrowski, Kleinberg, Rumble, Archer: "Load is not what you should balance",
//! NSDI 2024): pick by what the servers say about themselves right now — calls in flight
//! and the latency a new call can expect — from a small pool of recent probe answers, with
//! the hot-cold rule.
//!
//! The probe task (`registry/load_probes.rs`) sends load probes to random ready endpoints,
//! `probes_per_query` per pick, and files the answers in the pool (`probe_pool.rs`); each
//! call's own trailers refresh its endpoint's report too. A pick reads the pool's live
//! entries: an entry is hot when its calls in flight exceed the `q_rif` quantile of recent
//! answers; the cold entry with the lowest latency wins, and when all are hot, the one with
//! the fewest calls in flight. With no live entry (the first calls, servers that do not
//! answer probes) the pick falls back to p2c over this client's own calls in flight.
//!
//! Where this differs from the paper, and why:
//! * calls in flight are read as the answer's count plus the calls this client has sent to
//!   the endpoint since, minus those that ended (the paper adds one per use of an entry): the
//!   client knows exactly what it added, and what it took away;
//! * a pick does not remove the pool's oldest or worst entry; the probe task replaces them
//!   when it files an answer, so the request path only decrements a use count;
//! * error aversion: an endpoint whose last call failed is hot whatever it reports (a
//!   server that fails fast looks idle and fast), and outlier detection takes it out of the
//!   ready set after consecutive failures — the pool never sees it again until it returns;
//! * a new snapshot voids the pool (entries name snapshot positions); it refills at the
//!   probing rate within a few picks;
//! * a probe owed to an endpoint whose last report (often a call's trailer, which carries
//!   the same figures) is younger than `fresh_report` is not sent; that report is filed
//!   instead. In a fleet of short calls the paper's 3 probes per call cost as much work as
//!   the calls themselves, for figures the trailers already bring.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rand::RngCore;

use super::candidate::usable;
use super::p2c::{self, LoadMetric};
use super::probe_pool::{ProbePool, SLOTS, Slot};
use crate::endpoint::{EndpointState, ReadyEndpoint};
use crate::error::Error;
use crate::transport::EndpointChannel;

/// Settings of [`Policy::prequal`](crate::Policy::prequal); defaults from the paper.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{Policy, Prequal};
/// let prequal = Prequal::default()
///     .probes_per_query(2.0)?
///     .hot_quantile(0.8)?
///     .max_age(Duration::from_millis(500));
/// assert_eq!(Policy::prequal(prequal).name(), "prequal");
/// # Ok::<(), tower_lb::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prequal {
    pub(crate) probes_per_query: f64,
    pub(crate) q_rif: f64,
    pub(crate) max_age: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) reuse_delta: f64,
    pub(crate) fresh_report: Duration,
}

impl Default for Prequal {
    fn default() -> Self {
        Prequal {
            probes_per_query: 3.0,
            q_rif: 0.84,
            max_age: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(250),
            reuse_delta: 1.0,
            fresh_report: Duration::from_millis(5),
        }
    }
}

/// Most uses of one probe answer, however small the fleet.
pub(crate) const MAX_REUSE: u16 = 16;

impl Prequal {
    /// Probes sent per pick (default 3, the paper's `r_probe`); fractions accumulate.
    /// Fails unless finite and in 0.1..=16.
    pub fn probes_per_query(mut self, rate: f64) -> Result<Self, Error> {
        if !(0.1..=16.0).contains(&rate) {
            return Err(Error::InvalidConfig(format!(
                "prequal: probes per query must be in 0.1..=16, got {rate}"
            )));
        }
        self.probes_per_query = rate;
        Ok(self)
    }

    /// The quantile of recent answers' calls in flight above which an answer is hot (default
    /// 0.84, the paper's `Q_RIF`). Fails unless in 0..=1.
    pub fn hot_quantile(mut self, q: f64) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&q) {
            return Err(Error::InvalidConfig(format!(
                "prequal: the hot quantile must be in 0..=1, got {q}"
            )));
        }
        self.q_rif = q;
        Ok(self)
    }

    /// How long a probe answer may be used (default 1 s).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How long a probe may wait for its answer (default 250 ms); one not answered by then
    /// is dropped — a server too busy to answer a probe is not one to send calls to.
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// A probe owed to an endpoint whose last report — a probe's answer or a call's trailer —
    /// is younger than this is not sent: that report goes into the pool instead (default
    /// 5 ms; zero: always probe). Where calls are short and frequent, their trailers keep
    /// every endpoint's report fresh and probing would only add three calls' worth of work
    /// per call to both sides; where calls are slow or an endpoint gets none, probes go out.
    pub fn fresh_report(mut self, age: Duration) -> Self {
        self.fresh_report = age;
        self
    }

    /// How many picks one answer may serve, for a fleet of `n` endpoints: the paper's
    /// `1 + δ / ((1 - m/n) · r_probe)` (pool size `m`, no removals by picks), at least 1, at
    /// most [`MAX_REUSE`] (a fleet no larger than the pool).
    pub(crate) fn reuse_budget(&self, n: usize) -> u16 {
        let spare = 1.0 - SLOTS as f64 / n.max(1) as f64;
        let denominator = spare * self.probes_per_query;
        if denominator <= 0.0 {
            return MAX_REUSE;
        }
        let budget = (1.0 + self.reuse_delta / denominator).ceil();
        budget.clamp(1.0, f64::from(MAX_REUSE)) as u16
    }
}

/// What a Prequal plan carries: the balancer's pool and this snapshot's epoch in it.
#[derive(Debug)]
pub(crate) struct ProbedPlan {
    pub(crate) pool: std::sync::Arc<ProbePool>,
    pub(crate) epoch: u16,
    pub(crate) max_age_ns: u64,
}

/// An entry as a pick ranks it.
#[derive(Clone, Copy)]
struct Ranked {
    slot: usize,
    seen: Slot,
    rif: u32,
    /// The latency's class (see [`latency_class`]); unknown reads as the largest.
    latency: u32,
}

/// The latency a new call can expect from a server that reported `latency_us` at
/// `in_flight`, now that this client has sent it `added` more calls: scaled by the calls in
/// flight (a server's queue grows its latency in proportion), so an answer used again is
/// not taken for as fast as when it came.
#[inline]
fn expected_latency(latency_us: u32, in_flight: u32, added: u32) -> u32 {
    if added == 0 {
        return latency_us;
    }
    let base = u64::from(in_flight) + 1;
    let scaled = u64::from(latency_us) * (base + u64::from(added)) / base;
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

/// Latencies within about an eighth of each other fall in one class: the class is the
/// position of the highest set bit and the three bits below it (a float with a 3-bit
/// mantissa). Among cold entries of one class the fewest in flight wins, so servers whose
/// estimates differ only by noise share calls by load instead of the marginally faster one
/// taking every call until it turns hot.
#[inline]
fn latency_class(us: u32) -> u32 {
    let top = 31 - (us | 1).leading_zeros();
    let mantissa = match top {
        0..=2 => us & 7,
        _ => (us >> (top - 3)) & 7,
    };
    top << 3 | mantissa
}

/// The hot-cold pick over the pool's live entries; p2c over in-flight without one.
#[inline]
pub(crate) fn pick<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    plan: &ProbedPlan,
    now: u64,
    avoid: Option<&EndpointState>,
    rng: &mut impl RngCore,
) -> Option<usize> {
    let pool = &*plan.pool;
    pool.note_pick();
    let hot_above = pool.hot_above();
    let mut cold: Option<Ranked> = None;
    let mut coolest: Option<Ranked> = None;
    for slot in 0..SLOTS {
        let Some(seen) = pool.live(slot, plan.epoch) else {
            continue;
        };
        let Some(e) = endpoints.get(seen.index as usize) else {
            continue;
        };
        let Some(report) = e.state.reported.as_deref() else {
            continue;
        };
        let Some(probed) = report.probed(now, plan.max_age_ns) else {
            continue;
        };
        if !usable(e, avoid) {
            continue;
        }
        let own = e.state.load.in_flight();
        let failing = e.state.counters.consecutive.load(Relaxed) > 0;
        let added = own.saturating_sub(probed.own_in_flight);
        let rif = match failing {
            true => u32::MAX,
            false => probed.in_flight.saturating_add(added),
        };
        let latency = match probed.latency_us {
            0 => u32::MAX,
            l => latency_class(expected_latency(l, probed.in_flight, added)),
        };
        let entry = Ranked {
            slot,
            seen,
            rif,
            latency,
        };
        if rif <= hot_above && cold.is_none_or(|c| (latency, rif) < (c.latency, c.rif)) {
            cold = Some(entry);
        }
        if coolest.is_none_or(|c| (rif, latency) < (c.rif, c.latency)) {
            coolest = Some(entry);
        }
    }
    match cold.or(coolest) {
        Some(chosen) => {
            pool.use_once(chosen.slot, chosen.seen);
            Some(chosen.seen.index as usize)
        }
        None => p2c::pick(endpoints, &LoadMetric::InFlight, None, avoid, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_grows_with_the_calls_sent_since_the_answer() {
        assert_eq!(expected_latency(1000, 3, 0), 1000);
        assert_eq!(expected_latency(1000, 3, 4), 2000);
        assert_eq!(expected_latency(1000, 0, 1), 2000);
        assert_eq!(expected_latency(u32::MAX, 0, 5), u32::MAX);
    }

    #[test]
    fn latencies_within_an_eighth_share_a_class() {
        assert_eq!(latency_class(1050), latency_class(1100));
        assert!(latency_class(1000) < latency_class(1200));
        assert!(latency_class(40_000) < latency_class(80_000));
        // Ordered and distinct for small values.
        let small: Vec<u32> = (1..16).map(latency_class).collect();
        assert!(small.windows(2).all(|w| w[0] <= w[1]), "{small:?}");
        // Monotone everywhere it is sampled.
        let mut last = 0;
        for us in (1..5_000_000).step_by(997) {
            let c = latency_class(us);
            assert!(c >= last, "{us}");
            last = c;
        }
        assert!(latency_class(u32::MAX - 1) < u32::MAX);
    }

    #[test]
    fn settings_are_checked_and_the_reuse_budget_follows_the_paper() {
        let p = Prequal::default();
        assert!(p.probes_per_query(0.0).is_err());
        assert!(p.probes_per_query(f64::NAN).is_err());
        assert!(p.hot_quantile(1.5).is_err());
        assert!(p.hot_quantile(f64::NAN).is_err());
        // No larger than the pool: the most uses.
        assert_eq!(p.reuse_budget(10), MAX_REUSE);
        assert_eq!(p.reuse_budget(16), MAX_REUSE);
        // 20 endpoints, 3 probes per query: 1 + 1 / (0.2 × 3) = 2.67 → 3.
        assert_eq!(p.reuse_budget(20), 3);
        // A large fleet: 1 + 1 / 3 → 2.
        assert_eq!(p.reuse_budget(100_000), 2);
    }
}
