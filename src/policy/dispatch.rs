//! The pick: one call, one snapshot, one policy — the request path's entry into this module.
//! Each algorithm's own file does the choosing; this one routes to it.

use rand::RngCore;

use super::candidate::{fallback, index, usable};
use super::config::{Kind, Policy};
use super::consistent::{self, Bound};
use super::p2c::LoadMetric;
use super::plan::{BasePlan, Plan};
use super::{least_loaded, least_request, p2c, pick_first, prequal};
use crate::endpoint::{EndpointState, EwmaClock, ReadyEndpoint};
use crate::transport::EndpointChannel;

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

/// What a pick knows of its call, beside the snapshot and the policy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Call<'a> {
    /// The hash of the request's key, for a hashing policy and a request that has the key.
    pub(crate) hash: Option<u64>,
    /// An endpoint that just handed this request back unsent: passed over unless it is the
    /// only one ready.
    pub(crate) avoid: Option<&'a EndpointState>,
    /// The clock, for a pick that compares latency (p2c over PeakEWMA, no hashed key); the
    /// call's hold keeps it as the start of its latency sample.
    pub(crate) clock: Option<EwmaClock>,
}

impl<'a> Call<'a> {
    /// A call under `policy`: reads the clock only when the pick compares latency, which a
    /// hashed request never does.
    #[inline]
    pub(crate) fn new(
        policy: &Policy,
        hash: Option<u64>,
        avoid: Option<&'a EndpointState>,
    ) -> Self {
        let clock = match (hash, policy.peak_ewma()) {
            (None, Some(config)) => Some(EwmaClock::now(&config)),
            _ => None,
        };
        Call { hash, avoid, clock }
    }
}

impl Policy {
    /// Picks one of `ready` (a snapshot's endpoints, with its `plan`) for `call`. `None` only
    /// when no endpoint is ready.
    #[inline]
    pub(crate) fn pick<T: EndpointChannel, R: RngCore>(
        &self,
        ready: &[ReadyEndpoint<T>],
        plan: &Plan,
        call: Call<'_>,
        state: &mut PickState<R>,
    ) -> Option<usize> {
        let Call { hash, avoid, clock } = call;
        let now = clock.map(|c| c.now_ns());
        if let (Some(hash), Some(table), Some(hashing)) = (hash, &plan.table, &self.hashing) {
            let bound = match (hashing.bound, &plan.in_flight) {
                (Some(epsilon), Some(in_flight)) => {
                    Some(Bound::new(epsilon, in_flight, plan.weight_sum))
                }
                _ => None,
            };
            return consistent::pick(ready, table, hash, bound.as_ref(), avoid);
        }
        let i = match (&self.kind, &plan.base) {
            (Kind::P2c(metric), _) => {
                return p2c::pick(ready, metric, clock, avoid, &mut state.rng);
            }
            (Kind::LeastLoaded, _) => return least_loaded::pick(ready, now, avoid, &mut state.rng),
            (Kind::LeastRequest(k), _) => {
                return least_request::pick(ready, *k, now, avoid, &mut state.rng);
            }
            (Kind::Prequal, BasePlan::Probed(plan)) => {
                let now = now.unwrap_or_else(crate::time::now_ns);
                return prequal::pick(ready, plan, now, avoid, &mut state.rng);
            }
            // Without a probe pool (a `Picker`): p2c over calls in flight, as with no answers.
            (Kind::Prequal, _) => {
                return p2c::pick(ready, &LoadMetric::InFlight, None, avoid, &mut state.rng);
            }
            (Kind::PickFirst { .. }, BasePlan::Order(order)) => {
                return pick_first::pick(ready, order, avoid);
            }
            (Kind::RoundRobin | Kind::WeightedRoundRobin, BasePlan::Schedule(schedule)) => {
                state.cursor = state.cursor.wrapping_add(1);
                schedule.at(state.cursor)?
            }
            (Kind::WeightedRandom, BasePlan::Cumulative(cumulative)) => {
                cumulative.pick(&mut state.rng)?
            }
            // A snapshot built for another policy cannot happen; pick uniformly rather than fail.
            _ => index(&mut state.rng, ready.len().max(1)),
        };
        if ready.get(i).is_some_and(|e| usable(e, avoid)) {
            return Some(i);
        }
        fallback(ready, avoid, i)
    }
}
