//! What a policy precomputes for one snapshot, on the control path, so the pick on the request
//! path is O(1) or O(log n).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::config::{Kind, Policy};
use super::consistent::Table;
use super::probe_pool::ProbePool;
use super::{pick_first, prequal, round_robin, weighted_random};
use crate::discover::Key;
use crate::endpoint::ReadyEndpoint;
use crate::time::now_ns;

/// What a policy precomputes for one snapshot.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(super) base: BasePlan,
    /// The hash table, for a hashing policy.
    pub(super) table: Option<Table>,
    /// Sum of the ready weights, for bounded loads (0 without them).
    pub(super) weight_sum: u64,
    /// Calls in flight on the whole balancer, for bounded loads.
    pub(super) in_flight: Option<Arc<AtomicU64>>,
}

/// The precomputed state of the policy for requests without a hashed key.
#[derive(Debug, Default)]
pub(super) enum BasePlan {
    #[default]
    None,
    Schedule(round_robin::Schedule),
    Cumulative(weighted_random::Cumulative),
    Order(pick_first::Order),
    Probed(prequal::ProbedPlan),
}

impl Plan {
    /// Precomputes for the ready endpoints of a new snapshot (nothing, for p2c and
    /// least-loaded, which read live load at pick time). `in_flight`: the balancer-wide
    /// count, when the policy has bounded loads. `stay_on`: for pick-first, the endpoint the
    /// previous snapshot sent calls to (see [`first`](Self::first)). `probes`: the
    /// balancer's probe pool, for Prequal.
    pub(crate) fn build<T>(
        policy: &Policy,
        ready: &[ReadyEndpoint<T>],
        in_flight: Option<Arc<AtomicU64>>,
        stay_on: Option<&Key>,
        probes: Option<&Arc<ProbePool>>,
    ) -> Self {
        let weights = || ready.iter().map(|e| e.weight).collect::<Vec<u32>>();
        let base = match policy.kind {
            Kind::RoundRobin => BasePlan::Schedule(match ready.first() {
                // Equal weights (the usual case) need no table: no walk into a list of N.
                Some(first) if ready.iter().all(|e| e.weight == first.weight) => {
                    round_robin::Schedule::in_order(ready.len())
                }
                _ => round_robin::Schedule::build(&weights()),
            }),
            Kind::WeightedRoundRobin => match policy.wrr_settings() {
                Some(wrr) => BasePlan::Schedule(wrr.schedule(ready, now_ns())),
                None => BasePlan::None,
            },
            Kind::WeightedRandom => {
                BasePlan::Cumulative(weighted_random::Cumulative::build(&weights()))
            }
            Kind::PickFirst { salt } => {
                BasePlan::Order(pick_first::Order::build(ready, salt, stay_on))
            }
            Kind::Prequal => match (probes, policy.prequal_settings()) {
                (Some(pool), Some(config)) => BasePlan::Probed(prequal::ProbedPlan {
                    pool: pool.clone(),
                    epoch: pool.next_epoch(),
                    max_age_ns: u64::try_from(config.max_age.as_nanos()).unwrap_or(u64::MAX),
                }),
                _ => BasePlan::None,
            },
            Kind::P2c(_) | Kind::LeastRequest(_) | Kind::LeastLoaded => BasePlan::None,
        };
        Plan {
            base,
            table: policy
                .hashing
                .as_ref()
                .map(|h| Table::build(h.table, ready)),
            // Only bounded loads read it: a walk of 100,000 endpoints costs about 0.3 ms.
            weight_sum: match in_flight {
                Some(_) => ready.iter().map(|e| u64::from(e.weight)).sum(),
                None => 0,
            },
            in_flight,
        }
    }

    /// For Prequal: this snapshot's epoch in the probe pool (for the probe task, which holds
    /// the pool itself).
    pub(crate) fn probe_epoch(&self) -> Option<u16> {
        match &self.base {
            BasePlan::Probed(p) => Some(p.epoch),
            _ => None,
        }
    }

    /// For pick-first, the key of the endpoint calls go to first (the next snapshot's
    /// `stay_on`); `None` for other policies.
    pub(crate) fn first<'a, T>(&self, ready: &'a [ReadyEndpoint<T>]) -> Option<&'a Key> {
        match &self.base {
            BasePlan::Order(order) => order.first(ready),
            _ => None,
        }
    }
}
