//! Per-endpoint load: requests in flight and a PeakEWMA estimate of round-trip time.
//!
//! PeakEWMA (from Finagle, as in linkerd and tower) keeps an exponentially weighted moving
//! average of response latency that jumps up at once to any sample above it ("peak") and decays
//! towards newer samples over a time constant. An endpoint's cost is
//! `latency × (in_flight + 1)`, so a slow endpoint and a busy endpoint both look expensive.
//! The estimate also decays towards zero while no response arrives, so an endpoint that was
//! slow once is tried again later rather than starved for good.
//!
//! # What is stuck counts at once
//!
//! A sample arrives only with an answer, so an endpoint that stops answering (a stopped
//! process, a deadlock, a half-open network) would keep the estimate of its last good answer
//! and even see it decay. Two additions make it expensive within about one normal latency:
//!
//! * **The oldest waiting call is a floor on the latency term.** The cost's latency is
//!   `max(estimate, stall)`, where `stall` is the time since the endpoint last *made
//!   progress* — answered a call, or was sent one while none waited — and 0 when no timed call
//!   waits. An exact "oldest call in flight" needs a set of start times (a lock or a structure
//!   per endpoint); this needs one more atomic (the progress stamp, on the same cache line) and
//!   the count of waiting calls, kept in the high half of the in-flight word so a call's start
//!   stays one atomic add. It is a *lower bound* on the oldest waiting call's age: if the
//!   oldest began after the last progress, another call was waiting when it was sent (else
//!   that send was progress), and that call, no longer waiting, was answered or given up
//!   after — an answer would be later progress. So it never exaggerates for an endpoint that
//!   answers, and for one that stopped it equals the time since the stop (or more, when given
//!   up calls hide the older ones, which is the point). A healthy endpoint with `k` calls
//!   waiting answers about every `latency / k`, so the floor stays below its estimate and the
//!   cost is unchanged; an endpoint that stopped answering costs `age × (in_flight + 1)` and
//!   outgrows its peers after about one of their latencies. "Waiting" ends at the response
//!   headers, so a long stream that has its headers does not count as stuck.
//! * **A call given up without an answer is a censored sample.** When a timed call is dropped
//!   before its response (its deadline passed, the caller cancelled), the answer would have
//!   taken at least as long as it waited: the estimate is raised to that wait if it is below,
//!   never lowered. After a freeze, the endpoint's estimate is its callers' deadline, and it
//!   decays back with the usual time constant once it answers.
//!
//! The in-flight policies (p2c in flight, least request, least loaded) read no clock, so
//! they have no stall clock. They already count every stuck call for as long as it is held;
//! what they would lose is the memory once the deadline drops those calls. So their load is
//! `in_flight + unanswered`: calls given up without an answer count on, as if still in flight,
//! until the endpoint answers any call. A frozen endpoint is then sent new calls only while
//! its stuck and given-up calls number fewer than the other candidate's calls in flight — a
//! bounded number, not one per deadline — and one answer clears it. Without an answer the
//! count halves every second after the last call given up, so an endpoint that resumes is
//! tried again within seconds, not starved for good (the pick reads the clock for this only
//! while an endpoint has such calls; a transport error before any answer counts too, and such
//! connections leave the ready set anyway).
//!
//! # Alike costs
//!
//! Two costs within 10 % of each other are taken as alike, and the endpoint whose estimate
//! took a sample longer ago goes first ([`PeakEwmaLoad::before`]): among many identical
//! endpoints the noise of a few samples otherwise decides, and spreads calls wider than
//! random picks would.
//!
//! # Where the estimate starts
//!
//! The first sample replaces the initial estimate rather than being averaged into it: the
//! initial value is a guess, and averaging a 0.6 ms answer into a 30 ms guess with a 10 s time
//! constant keeps a LAN's endpoints looking alike for seconds. Until its first answer, an
//! endpoint is compared as if it answered like the candidate it is compared with (two such
//! endpoints by their stall and calls in flight): with the first sample replacing the guess, a
//! 30 ms guess would otherwise starve every endpoint not yet tried the moment one peer has
//! answered in 0.2 ms. An endpoint that joins a balancer whose other endpoints have samples
//! starts at the median of their current estimates (set by the control task when it publishes
//! the endpoint, `registry/publish.rs`), so it takes its share at once; its first answer
//! replaces that too. The configured initial RTT is then what the snapshot shows for an
//! endpoint nothing is known about.
//!
//! Everything is a relaxed atomic: the request path never takes a lock. Two responses that
//! land at the same instant may each decay the estimate by part of the elapsed time, and two
//! progress stamps may land out of order by the width of that race; the estimate stays within
//! the bounds of the samples, which is all p2c needs.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::time::now_ns;

/// PeakEWMA settings. Defaults follow linkerd: 30 ms assumed RTT for an endpoint with no
/// samples yet, and a 10 s decay time constant.
///
/// The assumed RTT is a guess and is treated as one: p2c compares an endpoint that has not
/// answered yet as if it answered like the candidate beside it, its first answer replaces the
/// guess, and an endpoint that joins a balancer whose other endpoints have answered starts at
/// the median of their estimates instead. An endpoint whose oldest waiting call has waited longer
/// than its estimate is costed by that wait, and a call given up unanswered raises the
/// estimate to how long it waited.
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
    /// The RTT shown for an endpoint before anything is known about it (default 30 ms). The
    /// pick does not rank by it: see the type's docs.
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

/// One call waiting for its answer, in the high half of [`Load`]'s call count.
const WAITING: u64 = 1 << 32;

/// The estimate is the configured initial RTT: nothing is known.
const GUESS: u8 = 0;
/// The estimate was seeded from the endpoint's peers.
const SEEDED: u8 = 1;
/// The estimate rests on the endpoint's own answers.
const SAMPLED: u8 = 2;

/// How fast the in-flight policies forget calls given up without an answer: their count
/// halves every second after the last one.
const UNANSWERED_HALF_LIFE_NS: u64 = 1_000_000_000;

/// The load counters of one endpoint. One cache line each, so picks and completions on
/// different endpoints never contend on the same line.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Load {
    /// Calls in flight (low 32 bits) and, of those, timed calls still waiting for their
    /// answer (high 32 bits): one word, so a call's start is one atomic add.
    calls: AtomicU64,
    /// Calls given up without an answer since the endpoint last answered.
    unanswered: AtomicU32,
    /// `now_ns()` of the last call given up without an answer.
    unanswered_ns: AtomicU64,
    /// What the estimate rests on: a guess, a seed from peers, or samples (the first sample
    /// replaces a guess or a seed).
    known: AtomicU8,
    /// f64 bits: the RTT estimate in nanoseconds.
    rtt_ns: AtomicU64,
    /// `now_ns()` of the last estimate update.
    stamp_ns: AtomicU64,
    /// `now_ns()` of the last progress: an answer, or a timed call sent while none waited.
    progress_ns: AtomicU64,
}

impl Load {
    pub(crate) fn new(initial_rtt: Duration) -> Self {
        let now = now_ns();
        Load {
            calls: AtomicU64::new(0),
            unanswered: AtomicU32::new(0),
            unanswered_ns: AtomicU64::new(0),
            known: AtomicU8::new(GUESS),
            rtt_ns: AtomicU64::new((initial_rtt.as_nanos() as f64).to_bits()),
            stamp_ns: AtomicU64::new(now),
            progress_ns: AtomicU64::new(now),
        }
    }

    /// Moves the estimate's timestamps to `now` on another clock (the `Picker`'s).
    pub(crate) fn restamp(&self, now: u64) {
        self.stamp_ns.store(now, Relaxed);
        self.progress_ns.store(now, Relaxed);
    }

    /// Calls in flight.
    #[inline]
    pub(crate) fn in_flight(&self) -> u32 {
        self.calls.load(Relaxed) as u32
    }

    /// Timed calls waiting for their answer.
    pub(crate) fn waiting(&self) -> u32 {
        (self.calls.load(Relaxed) >> 32) as u32
    }

    /// Calls given up without an answer since the endpoint last answered.
    #[inline]
    pub(crate) fn unanswered(&self) -> u32 {
        self.unanswered.load(Relaxed)
    }

    /// What the in-flight policies rank by: calls in flight, plus calls given up without an
    /// answer since the endpoint last answered, halved for every second since the last of
    /// them (see the module docs). `now`: the pick's clock reading if it has one; the clock is
    /// read only when there are such calls.
    #[inline]
    pub(crate) fn in_flight_load(&self, now: Option<u64>) -> u64 {
        let unanswered = self.unanswered();
        let in_flight = u64::from(self.in_flight());
        if unanswered == 0 {
            return in_flight;
        }
        in_flight + self.remembered(unanswered, now)
    }

    /// The calls given up without an answer that still count at `now`.
    #[cold]
    fn remembered(&self, unanswered: u32, now: Option<u64>) -> u64 {
        let now = now.unwrap_or_else(now_ns);
        let halvings =
            now.saturating_sub(self.unanswered_ns.load(Relaxed)) / UNANSWERED_HALF_LIFE_NS;
        u64::from(unanswered)
            .checked_shr(u32::try_from(halvings).unwrap_or(u32::MAX))
            .unwrap_or(0)
    }

    /// A call starts. `now`: its dispatch time, for a timed call (PeakEWMA), which then waits
    /// for its answer ([`answered`](Self::answered)).
    #[inline]
    pub(crate) fn start(&self, now: Option<u64>) {
        match now {
            None => {
                self.calls.fetch_add(1, Relaxed);
            }
            Some(now) => {
                let before = self.calls.fetch_add(1 | WAITING, Relaxed);
                // Nothing was waiting: the stall clock starts with this call.
                if before >> 32 == 0 {
                    self.progress_ns.store(now, Relaxed);
                }
            }
        }
    }

    /// A call ends. `waiting`: it was timed and never answered.
    #[inline]
    pub(crate) fn end(&self, waiting: bool) {
        self.calls
            .fetch_sub(if waiting { 1 | WAITING } else { 1 }, Relaxed);
    }

    /// A timed call was answered at `now`: it no longer waits, and the endpoint made progress.
    #[inline]
    pub(crate) fn answered(&self, now: u64) {
        self.calls.fetch_sub(WAITING, Relaxed);
        self.progress_ns.store(now, Relaxed);
        self.answered_untimed();
    }

    /// A call was answered: the calls given up before no longer count.
    #[inline]
    pub(crate) fn answered_untimed(&self) {
        if self.unanswered.load(Relaxed) != 0 {
            self.unanswered.store(0, Relaxed);
        }
    }

    /// A call was given up without an answer at `now`. `waited`: for a timed call, how long it
    /// waited (ns) and the decay constant: the answer would have taken at least that
    /// long, so the estimate is raised to it if it is below (never lowered: the true latency
    /// is unknown beyond that floor).
    #[cold]
    pub(crate) fn given_up(&self, now: u64, waited: Option<(u64, f64)>) {
        self.unanswered_ns.store(now, Relaxed);
        let _ = self
            .unanswered
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add(1)));
        if let Some((waited, decay_ns)) = waited
            && waited as f64 > self.rtt_estimate_ns(now, decay_ns)
        {
            self.record_rtt(waited, now, decay_ns);
        }
    }

    /// How long the oldest waiting timed call has waited at least (ns; 0 when none waits):
    /// the time since the endpoint last answered, or since the first of the waiting calls was
    /// sent if it answered nothing since. See the module docs for why this is a lower bound.
    /// (The pick reads it inside [`peak_ewma_cost`](Self::peak_ewma_cost).)
    #[cfg(test)]
    pub(crate) fn stalled_ns(&self, now: u64) -> u64 {
        if self.calls.load(Relaxed) >> 32 == 0 {
            return 0;
        }
        now.saturating_sub(self.progress_ns.load(Relaxed))
    }

    /// The RTT estimate at `now`, decayed towards zero for the time without samples.
    pub(crate) fn rtt_estimate_ns(&self, now: u64, decay_ns: f64) -> f64 {
        self.estimate_at(self.stamp_ns.load(Relaxed), now, decay_ns)
    }

    fn estimate_at(&self, stamp: u64, now: u64, decay_ns: f64) -> f64 {
        let rtt = f64::from_bits(self.rtt_ns.load(Relaxed));
        let elapsed = now.saturating_sub(stamp) as f64;
        rtt * decay_factor(elapsed / decay_ns)
    }

    /// What PeakEWMA compares, read once per candidate.
    #[inline]
    pub(crate) fn peak_ewma(&self, now: u64, decay_ns: f64) -> PeakEwmaLoad {
        let calls = self.calls.load(Relaxed);
        let stamp = self.stamp_ns.load(Relaxed);
        let estimate =
            (self.known.load(Relaxed) != GUESS).then(|| self.estimate_at(stamp, now, decay_ns));
        let stall = if calls >> 32 != 0 {
            now.saturating_sub(self.progress_ns.load(Relaxed)) as f64
        } else {
            0.0
        };
        PeakEwmaLoad {
            estimate,
            stall,
            in_flight: calls as u32,
            stamp,
        }
    }

    /// Whether the estimate rests on the endpoint's own answers.
    pub(crate) fn sampled(&self) -> bool {
        self.known.load(Relaxed) == SAMPLED
    }

    /// Starts the estimate of an endpoint without samples at `rtt_ns` (what its peers show);
    /// its first sample still replaces it.
    pub(crate) fn seed(&self, rtt_ns: f64, now: u64) {
        if !self.sampled() {
            self.rtt_ns.store(rtt_ns.to_bits(), Relaxed);
            self.stamp_ns.store(now, Relaxed);
            let _ = self.known.compare_exchange(GUESS, SEEDED, Relaxed, Relaxed);
        }
    }

    /// Folds one latency sample into the estimate. The first sample replaces the initial
    /// estimate, which was a guess.
    pub(crate) fn record_rtt(&self, sample_ns: u64, now: u64, decay_ns: f64) {
        let sample = sample_ns as f64;
        if self.known.load(Relaxed) != SAMPLED && self.known.swap(SAMPLED, Relaxed) != SAMPLED {
            self.rtt_ns.store(sample.to_bits(), Relaxed);
            self.stamp_ns.store(now, Relaxed);
            return;
        }
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

/// One endpoint's PeakEWMA terms at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeakEwmaLoad {
    /// The decayed estimate, unless it is still the configured guess.
    estimate: Option<f64>,
    /// How long the oldest waiting call has waited at least (0: none waits).
    stall: f64,
    in_flight: u32,
    /// When the estimate last took a sample (or was seeded).
    stamp: u64,
}

impl PeakEwmaLoad {
    /// Whether this endpoint goes before `peer`, given both costs (this one's `cost`, the
    /// peer's `peer_cost`, each already scaled by weight). The cheaper goes first, unless the
    /// two are within [`ALIKE`] of each other: then the one whose estimate took a sample
    /// longer ago does.
    ///
    /// Why: with few samples an estimate is mostly its endpoint's last answers, noise included
    /// (a peak is taken at once and forgotten over seconds), so among identical endpoints the
    /// one whose answers happened to be lucky looked cheaper and won every comparison until an
    /// answer raised it. With 64 calls over 10,000 endpoints that bias alone spread the calls
    /// wider than random picks (busiest ÷ mean 1.62 against 1.45; `examples/simulate`,
    /// section 8). Inside the band, "answered least recently" is a count that evens itself out
    /// (the endpoint picked answers, and goes to the back), so the spread drops below
    /// random's (1.28); outside it, a slower endpoint (the band is narrower than one call's
    /// worth of difference in flight, and than any slow endpoint worth avoiding) or one
    /// whose calls stall is passed over as before.
    #[inline]
    pub(crate) fn before(&self, cost: f64, peer: &PeakEwmaLoad, peer_cost: f64) -> bool {
        if (cost - peer_cost).abs() <= ALIKE * cost.max(peer_cost) {
            self.stamp <= peer.stamp
        } else {
            cost < peer_cost
        }
    }

    /// The cost compared with `peer`: `max(estimate, stall) × (in flight + 1)`. An endpoint
    /// whose estimate is still the configured guess is assumed to answer like its peer (and
    /// two such endpoints compare by stall and calls in flight): a guess must not make a new
    /// endpoint look better or worse than one that has answered.
    #[inline]
    pub(crate) fn cost(&self, peer: &PeakEwmaLoad) -> f64 {
        let estimate = self.estimate.or(peer.estimate).unwrap_or(1.0);
        estimate.max(self.stall) * f64::from(self.in_flight + 1)
    }
}

/// Costs within this fraction of the larger are alike (see [`PeakEwmaLoad::before`]).
const ALIKE: f64 = 0.1;

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

    /// The cost against a peer that knows nothing either.
    fn cost(load: &Load, now: u64) -> f64 {
        let terms = load.peak_ewma(now, DECAY);
        terms.cost(&terms)
    }

    #[test]
    fn peak_is_taken_at_once_and_decays_towards_newer_samples() {
        let load = Load::new(Duration::from_millis(30));
        let t0 = now_ns();
        load.record_rtt(100_000_000, t0, DECAY);
        // The first sample replaced the initial estimate; a lower second one decays towards.
        load.record_rtt(50_000_000, t0, DECAY);
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
        load.record_rtt(10_000_000, t0, DECAY);
        let idle = cost(&load, t0);
        load.start(None);
        load.start(None);
        let busy = cost(&load, t0);
        assert!(busy > 2.5 * idle, "{busy} vs {idle}");
        load.end(false);
        load.end(false);
        assert_eq!(load.in_flight(), 0);
        assert!(cost(&load, t0 + 100_000_000_000) < idle / 100.0);
    }

    #[test]
    fn the_first_sample_replaces_the_initial_estimate() {
        let load = Load::new(Duration::from_millis(30));
        let t0 = now_ns();
        load.seed(5e6, t0);
        assert_eq!(load.rtt_estimate_ns(t0, DECAY), 5e6);
        load.record_rtt(600_000, t0, DECAY);
        assert_eq!(load.rtt_estimate_ns(t0, DECAY), 600_000.0);
        load.seed(5e6, t0);
        assert_eq!(
            load.rtt_estimate_ns(t0, DECAY),
            600_000.0,
            "seeds only the unsampled"
        );
    }

    #[test]
    fn a_stalled_endpoint_costs_the_age_of_its_oldest_waiting_call() {
        let load = Load::new(Duration::from_millis(1));
        let t0 = 1_000_000_000;
        load.restamp(t0);
        load.record_rtt(1_000_000, t0, DECAY);
        load.start(Some(t0));
        // Within its estimate, a waiting call changes nothing but the count.
        assert_eq!(load.stalled_ns(t0 + 500_000), 500_000);
        let normal = cost(&load, t0 + 500_000);
        assert!(normal < 2.1e6, "{normal}");
        // Unanswered 100 ms on: the latency term is its age.
        let stuck = cost(&load, t0 + 100_000_000);
        assert!(stuck >= 2.0 * 100e6 * 0.99, "{stuck}");
        // A second call sent meanwhile does not reset the stall clock.
        load.start(Some(t0 + 100_000_000));
        assert_eq!(load.stalled_ns(t0 + 100_000_000), 100_000_000);
        // Given up at its deadline: the estimate is raised to its wait, and it is remembered.
        load.end(true);
        load.given_up(t0 + 200_000_000, Some((200_000_000, DECAY)));
        assert!(load.rtt_estimate_ns(t0 + 200_000_000, DECAY) >= 199e6);
        assert_eq!(load.unanswered(), 1);
        assert_eq!(load.in_flight_load(Some(t0 + 200_000_000)), 2);
        // Forgotten, for the in-flight policies, as time passes without another.
        assert_eq!(load.in_flight_load(Some(t0 + 1_300_000_000)), 1);
        // An answer: progress, and the given-up call no longer counts.
        load.answered(t0 + 300_000_000);
        load.end(false);
        assert_eq!(load.stalled_ns(t0 + 400_000_000), 0);
        assert_eq!(load.in_flight_load(None), 0);
    }

    #[test]
    fn a_call_given_up_early_does_not_lower_the_estimate() {
        let load = Load::new(Duration::from_millis(1));
        let t0 = now_ns();
        load.record_rtt(10_000_000, t0, DECAY);
        load.start(Some(t0));
        load.end(true);
        load.given_up(t0 + 1_000, Some((1_000, DECAY)));
        assert!(load.rtt_estimate_ns(t0 + 1_000, DECAY) > 9.9e6);
    }

    #[test]
    fn alike_costs_go_to_the_endpoint_answered_least_recently_and_others_to_the_cheaper() {
        let t0 = now_ns();
        let (old, recent) = (Load::new(Duration::ZERO), Load::new(Duration::ZERO));
        old.record_rtt(1_050_000, t0, DECAY);
        recent.record_rtt(1_000_000, t0 + 5_000_000, DECAY);
        let now = t0 + 6_000_000;
        let (lo, lr) = (old.peak_ewma(now, DECAY), recent.peak_ewma(now, DECAY));
        let (co, cr) = (lo.cost(&lr), lr.cost(&lo));
        // 5 % apart: alike, and the one that answered longer ago goes first.
        assert!(lo.before(co, &lr, cr) && !lr.before(cr, &lo, co));
        // 50 % apart: the cheaper, whatever the stamps.
        recent.record_rtt(1_600_000, now, DECAY);
        let lr = recent.peak_ewma(now, DECAY);
        let cr = lr.cost(&lo);
        assert!(lo.before(co, &lr, cr));
        let fast = Load::new(Duration::ZERO);
        fast.record_rtt(500_000, now, DECAY);
        let lf = fast.peak_ewma(now, DECAY);
        assert!(lf.before(lf.cost(&lo), &lo, co) && !lo.before(co, &lf, lf.cost(&lo)));
    }
}
