//! Balancing policies: how one endpoint is chosen from the ready set for each call.
//!
//! Every policy picks from an immutable snapshot of ready endpoints, in the caller's task, with
//! no lock and no allocation. What a policy needs precomputed (a round-robin period, cumulative
//! weights) is built by the control task with each snapshot, so a pick is O(1) or O(log n);
//! only the least-loaded scan is O(n), by definition.

mod least_loaded;
mod p2c;
mod round_robin;
mod weighted_random;

use rand::RngCore;

use crate::endpoint::EndpointState;
use crate::endpoint::load::PeakEwma;
use crate::ready_set::{ReadyEndpoint, ReadySet};
use crate::transport::Channel;

/// How a [`Balancer`](crate::Balancer) chooses an endpoint. Every policy respects the
/// endpoints' weights.
///
/// | policy | pick cost | what it does |
/// |---|---|---|
/// | [`p2c_peak_ewma`](Policy::p2c_peak_ewma) (default) | O(1) | two random endpoints, the one with the lower latency estimate × (in-flight + 1) / weight |
/// | [`p2c_in_flight`](Policy::p2c_in_flight) | O(1) | two random endpoints, the one with fewer requests in flight per weight |
/// | [`least_loaded`](Policy::least_loaded) | O(n) | the endpoint with the fewest in flight per weight ("least connections") |
/// | [`round_robin`](Policy::round_robin) | O(1) | smooth weighted round robin (nginx): shares follow weights, no bursts |
/// | [`weighted_random`](Policy::weighted_random) | O(log n) | random, with probability weight / total |
///
/// Power of two choices: Mitzenmacher showed that a second random choice brings the maximum
/// load down from `ln n / ln ln n` to `ln ln n / ln 2` — nearly as good as asking every
/// endpoint, at a constant cost per call however many endpoints there are. PeakEWMA also
/// sees latency, so a slow endpoint gets less traffic, not just a busy one.
///
/// ```
/// use tower_lb::{Policy, PeakEwma};
/// let p = Policy::p2c_peak_ewma(PeakEwma::default());
/// assert_eq!(p, Policy::default());
/// assert_ne!(p, Policy::round_robin());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    P2c(LoadMetric),
    LeastLoaded,
    RoundRobin,
    WeightedRandom,
}

/// The load measure of p2c.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LoadMetric {
    InFlight,
    PeakEwma(PeakEwma),
}

impl Policy {
    /// p2c over PeakEWMA cost (the default).
    pub fn p2c_peak_ewma(config: PeakEwma) -> Self {
        Policy {
            kind: Kind::P2c(LoadMetric::PeakEwma(config)),
        }
    }

    /// p2c over requests in flight.
    pub fn p2c_in_flight() -> Self {
        Policy {
            kind: Kind::P2c(LoadMetric::InFlight),
        }
    }

    /// The fewest requests in flight per unit of weight, by a full scan (O(n)).
    pub fn least_loaded() -> Self {
        Policy {
            kind: Kind::LeastLoaded,
        }
    }

    /// Smooth weighted round robin.
    pub fn round_robin() -> Self {
        Policy {
            kind: Kind::RoundRobin,
        }
    }

    /// Weighted random.
    pub fn weighted_random() -> Self {
        Policy {
            kind: Kind::WeightedRandom,
        }
    }

    /// The PeakEWMA settings, if the policy tracks latency.
    pub(crate) fn peak_ewma(&self) -> Option<PeakEwma> {
        match self.kind {
            Kind::P2c(LoadMetric::PeakEwma(c)) => Some(c),
            _ => None,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::p2c_peak_ewma(PeakEwma::default())
    }
}

/// What a policy precomputes for one snapshot.
#[derive(Debug)]
pub(crate) enum Plan {
    None,
    Schedule(round_robin::Schedule),
    Cumulative(weighted_random::Cumulative),
}

impl Plan {
    /// Precomputes for the ready endpoints of a new snapshot (nothing, for p2c and
    /// least-loaded, which read live load at pick time).
    pub(crate) fn build<T>(policy: &Policy, ready: &[ReadyEndpoint<T>]) -> Self {
        let weights = || ready.iter().map(|e| e.weight).collect::<Vec<u32>>();
        match policy.kind {
            Kind::RoundRobin => Plan::Schedule(round_robin::Schedule::build(&weights())),
            Kind::WeightedRandom => {
                Plan::Cumulative(weighted_random::Cumulative::build(&weights()))
            }
            Kind::P2c(_) | Kind::LeastLoaded => Plan::None,
        }
    }
}

/// What one balancer clone carries between picks.
#[derive(Debug, Clone)]
pub(crate) struct PickState<R> {
    pub(crate) rng: R,
    /// Position in the round-robin period; each clone walks it on its own.
    pub(crate) cursor: usize,
}

impl<R: rand::SeedableRng> PickState<R> {
    pub(crate) fn new(seed: u64) -> Self {
        PickState {
            rng: R::seed_from_u64(seed),
            // Clones start at different points of the round-robin period.
            cursor: seed as usize,
        }
    }
}

/// Picks an endpoint of the snapshot. `now` is `now_ns()` when the policy tracks latency.
/// `avoid`: an endpoint that just refused the request unsent, passed over unless it is the
/// only one ready. `None` only when no endpoint is ready.
#[inline]
pub(crate) fn pick<T: Channel, R: RngCore>(
    set: &ReadySet<T>,
    policy: &Policy,
    now: u64,
    avoid: Option<&EndpointState>,
    state: &mut PickState<R>,
) -> Option<usize> {
    let endpoints = &set.ready;
    let i = match (&policy.kind, &set.plan) {
        (Kind::P2c(metric), _) => return p2c::pick(endpoints, metric, now, avoid, &mut state.rng),
        (Kind::LeastLoaded, _) => return least_loaded::pick(endpoints, avoid, &mut state.rng),
        (Kind::RoundRobin, Plan::Schedule(schedule)) => {
            state.cursor = state.cursor.wrapping_add(1);
            schedule.at(state.cursor)?
        }
        (Kind::WeightedRandom, Plan::Cumulative(cumulative)) => cumulative.pick(&mut state.rng)?,
        // A snapshot built for another policy cannot happen; pick uniformly rather than fail.
        _ => index(&mut state.rng, endpoints.len().max(1)),
    };
    if endpoints.get(i).is_some_and(|e| usable(e, avoid)) {
        return Some(i);
    }
    fallback(endpoints, avoid, i)
}

/// Whether a picked endpoint can take the call: connected, and not the one to avoid.
#[inline]
pub(super) fn usable<T: Channel>(e: &ReadyEndpoint<T>, avoid: Option<&EndpointState>) -> bool {
    e.channel.is_ready() && !avoid.is_some_and(|x| std::ptr::eq(x, &*e.state))
}

/// The chosen endpoint is out (its connection closed since this snapshot was published, or it
/// is the one to avoid): take the next usable one after it, the avoided one last.
#[cold]
pub(super) fn fallback<T: Channel>(
    endpoints: &[ReadyEndpoint<T>],
    avoid: Option<&EndpointState>,
    from: usize,
) -> Option<usize> {
    let n = endpoints.len();
    let mut ring = (1..=n).map(|step| (from + step) % n);
    ring.find(|&i| usable(&endpoints[i], avoid))
        .or_else(|| (0..n).find(|&i| endpoints[i].channel.is_ready()))
}

/// A uniform index below `n` (Lemire's multiply-shift; bias below 2^-32 for any real `n`).
#[inline]
pub(crate) fn index(rng: &mut impl RngCore, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}
