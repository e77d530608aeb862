//! Publishing: from the control task's entries to the ready set calls pick from: the best tier with a
//! healthy endpoint, panic mode when too few of that tier are healthy, slow-start weights, and
//! why nothing is ready when nothing is.

use std::sync::Arc;

use tokio::time::Instant;

use super::control::Registry;
use super::entry::Entry;
use super::published::{FULL_ABOVE, Spare, Standing, Tally, patch};
use crate::discover::{Endpoint, Key};
use crate::endpoint::{EndpointState, ReadyEndpoint};
use crate::error::Unready;
use crate::health::slow_start;
use crate::policy::Plan;
use crate::ready_set::ReadySet;
use crate::time::now_ns;
use crate::transport::Connector;

/// What an entry counts for now: connected, ejected (its gate, which a failing call may have
/// shut), serving by its health check, its tier.
fn standing<T>(e: &Entry<T>) -> Standing {
    Standing {
        counted: true,
        priority: e.endpoint.priority(),
        connected: e.channel.is_some(),
        ejected: e.state.gate.is_ejected(),
        serving: e.check.serving(),
        unknown: e.check.unknown,
        failed: e.last_error.is_some(),
    }
}

/// Whether an entry of this standing is in the ready set of `tier` (in panic mode or not).
fn eligible(s: &Standing, tier: Option<u32>, panic: bool) -> bool {
    Some(s.priority) == tier
        && if panic {
            s.usable_in_panic()
        } else {
            s.healthy()
        }
}

/// A snapshot's two lists: the ready endpoints, and every endpoint.
type Lists<T> = (Vec<ReadyEndpoint<T>>, Vec<(Arc<EndpointState>, Endpoint)>);

/// Most ready endpoints read for the median a new endpoint's estimate starts at, spread evenly
/// over the set (all of them in a set up to twice this size).
const SEED_PEERS: usize = 256;

impl<C: Connector> Registry<C> {
    /// Notes that `key`'s entry changed in a way the ready set or the tally may show.
    pub(super) fn touch(&mut self, key: &Key) {
        let entries = self.entries.len();
        self.published.touch(key, entries);
    }

    /// The ready set of the entries as they stand.
    ///
    /// Patched from the lists of the snapshot before the current one when those came back
    /// (no call held that snapshot any more), were chosen under the same tier and panic mode,
    /// and few keys changed since: then a publish costs a binary search per changed key and one
    /// sequential move of the lists, and touches no other endpoint. Otherwise every entry is
    /// counted and the lists are built again.
    pub(super) fn ready_set(&mut self) -> ReadySet<C::Channel> {
        let now = Instant::now();
        let mut touched = std::mem::take(&mut self.published.touched);
        let many = (self.entries.len() / FULL_ABOVE).max(64);
        // Whether the touched keys are all that changed, and few enough to count one by one.
        let counted = !self.published.recount && touched.len() <= many;
        if counted {
            touched.sort_unstable();
            touched.dedup();
            self.count(&touched);
        }
        let spare = self.published.spare.take();
        let (tier, panic) = self.choose_tier();
        let patchable = |spare: &Spare<_>| {
            counted
                && self.health.slow_start.is_none()
                && spare.touched.len() + touched.len() <= many
                && (spare.tier, spare.panic) == (tier, panic)
        };
        let (ready, all, tier, panic) = match spare {
            Some(spare) if patchable(&spare) => {
                let (ready, all) = self.patch(spare, &touched, tier, panic);
                (ready, all, tier, panic)
            }
            spare => {
                // Emptied here, not in a call's task; its buffers are kept for merges.
                if let Some(Spare {
                    mut ready, mut all, ..
                }) = spare
                {
                    ready.clear();
                    all.clear();
                    self.published.other_ready = ready;
                    self.published.other_all = all;
                }
                self.recount();
                self.track_joins(now);
                let (tier, panic) = self.choose_tier();
                let (ready, all) = self.build(tier, panic, now);
                self.seed_estimates(&ready);
                (ready, all, tier, panic)
            }
        };
        self.published.recount = false;
        // After a build, the copy it made is the spare, and the replaced snapshot goes.
        self.published.last_touched = self.published.spare.is_none().then_some(touched);
        self.note_panic(tier, panic);
        let plan = Plan::build(
            &self.policy,
            &ready,
            self.defaults.total_in_flight.clone(),
            self.stay_on.as_ref(),
            self.probes.as_ref(),
        );
        self.stay_on = plan.first(&ready).cloned();
        ReadySet {
            ready: ready.into_boxed_slice(),
            all: all.into_boxed_slice(),
            why: self.why_unready(),
            plan,
            tier,
            panic,
            standby: self.standby.len(),
            discovery_error: self.discovery_error.clone(),
        }
    }

    /// Takes back the lists of the snapshot a publish replaced, if no call holds it, for the
    /// next publish to patch.
    pub(super) fn reclaim(&mut self, old: Arc<ReadySet<C::Channel>>) {
        let touched = self.published.last_touched.take();
        if let Some(touched) = touched
            && self.published.spare.is_none()
            && self.health.slow_start.is_none()
            && let Ok(set) = Arc::try_unwrap(old)
        {
            self.published.spare = Some(Spare {
                ready: set.ready.into_vec(),
                all: set.all.into_vec(),
                tier: set.tier,
                panic: set.panic,
                touched,
            });
        }
    }

    /// Counts the touched entries' standing again.
    fn count(&mut self, touched: &[Key]) {
        let tally = &mut self.published.tally;
        for key in touched {
            if let Some(e) = self.entries.get_mut(key) {
                let now = standing(e);
                tally.remove(&e.counted);
                tally.add(&now);
                e.counted = now;
            }
        }
    }

    /// Counts every entry's standing again.
    fn recount(&mut self) {
        let mut tally = Tally::default();
        for e in self.entries.values_mut() {
            e.counted = standing(e);
            tally.add(&e.counted);
        }
        self.published.tally = tally;
    }

    /// The lists of `spare` with the entries of its touched keys and `touched` as they stand.
    fn patch(
        &mut self,
        spare: Spare<C::Channel>,
        touched: &[Key],
        tier: Option<u32>,
        panic: bool,
    ) -> Lists<C::Channel> {
        let Spare {
            mut ready,
            mut all,
            touched: mut keys,
            ..
        } = spare;
        keys.extend_from_slice(touched);
        keys.sort_unstable();
        keys.dedup();
        let edits = keys
            .iter()
            .map(|key| {
                let e = self.entries.get(key);
                (
                    key.clone(),
                    e.map(|e| (e.state.clone(), e.endpoint.clone())),
                )
            })
            .collect();
        patch(
            &mut all,
            &mut self.published.other_all,
            |(state, _)| &state.key,
            edits,
        );
        let mut joined = Vec::new();
        let edits = keys
            .into_iter()
            .map(|key| {
                let ready = self
                    .entries
                    .get(&key)
                    .filter(|e| eligible(&e.counted, tier, panic))
                    .and_then(|e| {
                        let channel = e.channel.as_ref()?;
                        Some(ReadyEndpoint {
                            channel: channel.clone(),
                            state: e.state.clone(),
                            weight: e.endpoint.weight(),
                        })
                    });
                if let Some(e) = &ready {
                    joined.push(e.state.clone());
                }
                (key, ready)
            })
            .collect();
        patch(
            &mut ready,
            &mut self.published.other_ready,
            |e| &e.state.key,
            edits,
        );
        self.seed_joined(&joined, &ready);
        #[cfg(debug_assertions)]
        self.check_patch(&ready, &all, tier, panic);
        (ready, all)
    }

    /// Builds the lists from every entry; without slow start, also a copy of them as the
    /// spare the next publish patches (made in the same walk, while each endpoint's state is
    /// in the cache), so that one change after a build costs no second build.
    fn build(&mut self, tier: Option<u32>, panic: bool, now: Instant) -> Lists<C::Channel> {
        let in_set = |e: &Entry<C::Channel>| eligible(&e.counted, tier, panic);
        let slow_start = self.health.slow_start;
        let scale = match slow_start {
            Some(_) => slow_start::scale(
                self.entries
                    .values()
                    .filter(|e| in_set(e))
                    .map(|e| e.endpoint.weight())
                    .max()
                    .unwrap_or(1),
            ),
            None => 1,
        };
        let mut ramping = false;
        let mut ready = Vec::new();
        let mut all = Vec::with_capacity(self.entries.len());
        let mut copy = slow_start.is_none().then(|| Spare {
            ready: Vec::new(),
            all: Vec::with_capacity(self.entries.len()),
            tier,
            panic,
            touched: Vec::new(),
        });
        for e in self.entries.values() {
            let listed = (e.state.clone(), e.endpoint.clone());
            if let Some(copy) = &mut copy {
                copy.all.push(listed.clone());
            }
            all.push(listed);
            let Some(channel) = e.channel.as_ref().filter(|_| in_set(e)) else {
                continue;
            };
            let factor = slow_start
                .zip(e.joined)
                .and_then(|(s, joined)| s.factor(now.duration_since(joined)));
            ramping |= factor.is_some();
            let endpoint = ReadyEndpoint {
                channel: channel.clone(),
                state: e.state.clone(),
                weight: slow_start::ramped(e.endpoint.weight(), scale, factor),
            };
            if let Some(copy) = &mut copy {
                copy.ready.push(endpoint.clone());
            }
            ready.push(endpoint);
        }
        self.published.spare = copy;
        self.ramp_at = match (ramping, slow_start) {
            (true, Some(s)) => Some(now + s.step()),
            _ => None,
        };
        (ready, all)
    }

    /// The tier calls go to — the best priority with a healthy endpoint, else (panic mode)
    /// the best with a connected one — and whether it is in panic mode (from the tally).
    fn choose_tier(&self) -> (Option<u32>, bool) {
        let tiers = &self.published.tally.tiers;
        let best_healthy = tiers.iter().find(|(_, t)| t.healthy > 0);
        let Some(threshold) = self.health.panic_threshold else {
            return (best_healthy.map(|(tier, _)| *tier), false);
        };
        match best_healthy {
            Some((tier, t)) => (Some(*tier), (t.healthy as f64) < threshold * t.total as f64),
            None => {
                let tier = tiers
                    .iter()
                    .find(|(_, t)| t.usable > 0)
                    .map(|(tier, _)| *tier);
                (tier, tier.is_some())
            }
        }
    }

    /// Says so when panic mode begins or ends.
    fn note_panic(&mut self, tier: Option<u32>, panic: bool) {
        if panic == self.panic {
            return;
        }
        self.panic = panic;
        let t = self.published.tally.tier(tier);
        let (healthy_n, total, unknown) = (t.healthy, t.total, t.unknown);
        if panic && unknown > 0 {
            tracing::warn!(
                tier,
                healthy = healthy_n,
                endpoints = total,
                service_unknown = unknown,
                service = self.checked_service().unwrap_or(""),
                "panic mode entered because endpoints' health checks say the checked service is unknown: the health check is likely misconfigured (check its service name); calls still go to every connected endpoint that is not ejected"
            );
        } else if panic {
            tracing::warn!(
                tier,
                healthy = healthy_n,
                endpoints = total,
                threshold = self.health.panic_threshold,
                "panic mode entered: too few healthy endpoints; balancing over every connected endpoint that is not ejected"
            );
        } else {
            tracing::info!(healthy = healthy_n, endpoints = total, "panic mode left");
        }
    }

    /// Notes when each endpoint became healthy, for slow start.
    fn track_joins(&mut self, now: Instant) {
        if self.health.slow_start.is_none() {
            return;
        }
        for e in self.entries.values_mut() {
            match (e.counted.healthy(), e.joined) {
                (true, None) => e.joined = Some(now),
                (false, Some(_)) => e.joined = None,
                _ => {}
            }
        }
    }

    /// Why a call that finds no ready endpoint could not have one (from the tally).
    fn why_unready(&self) -> Unready {
        let tally = &self.published.tally;
        if self.entries.is_empty() {
            return match self.discovery_answered {
                true => Unready::NoEndpointsDiscovered,
                false => Unready::Discovering,
            };
        }
        if tally.connected > 0 {
            let unknown = tally.open_unknown;
            if unknown > 0
                && unknown == tally.open
                && let Some(service) = self.checked_service()
            {
                return Unready::HealthServiceUnknown {
                    service: service.to_owned(),
                    discovered: self.entries.len(),
                    unknown,
                };
            }
            return Unready::AllUnhealthy {
                discovered: self.entries.len(),
                ejected: tally.ejected,
                not_serving: tally.not_serving,
            };
        }
        Unready::AllUnreachable {
            discovered: self.entries.len(),
            connecting: tally.connecting,
            last_error: self.last_error.clone(),
        }
    }

    /// Whether every entry failed its last connection attempt, as last counted.
    pub(super) fn all_failed(&self) -> bool {
        let tally = &self.published.tally;
        !self.entries.is_empty() && tally.connected == 0 && tally.connecting == 0
    }

    /// Checks a patched set against one built from every entry (debug builds, small sets).
    #[cfg(debug_assertions)]
    fn check_patch(
        &self,
        ready: &[ReadyEndpoint<C::Channel>],
        all: &[(Arc<EndpointState>, Endpoint)],
        tier: Option<u32>,
        panic: bool,
    ) {
        if self.entries.len() > 4096 {
            return;
        }
        let mut tally = Tally::default();
        for (key, e) in &self.entries {
            let mut live = standing(e);
            // A failing call shuts the gate before its signal reaches this task.
            live.ejected &= e.counted.ejected;
            assert_eq!(live, e.counted, "{key}: an entry changed untouched");
            tally.add(&e.counted);
        }
        assert_eq!(tally, self.published.tally, "the tally drifted");
        let expected: Vec<_> = self
            .entries
            .values()
            .filter(|e| e.channel.is_some() && eligible(&e.counted, tier, panic))
            .map(|e| (Arc::as_ptr(&e.state), e.endpoint.weight()))
            .collect();
        let got: Vec<_> = ready
            .iter()
            .map(|e| (Arc::as_ptr(&e.state), e.weight))
            .collect();
        assert_eq!(got, expected, "the patched ready list differs");
        let expected: Vec<_> = self
            .entries
            .values()
            .map(|e| (Arc::as_ptr(&e.state), &e.endpoint))
            .collect();
        let got: Vec<_> = all.iter().map(|(s, e)| (Arc::as_ptr(s), e)).collect();
        assert_eq!(got, expected, "the patched list of all endpoints differs");
    }
}

impl<C: Connector> Registry<C> {
    /// Starts the PeakEWMA estimate of each ready endpoint without samples at the median of
    /// its sampled peers' current estimates, instead of the fixed initial RTT: a new endpoint
    /// joins at what its peers cost, takes its share, and its first answer replaces the guess.
    /// With no sampled peer (a fresh balancer) the initial RTT stands until the first answer.
    fn seed_estimates(&self, ready: &[ReadyEndpoint<C::Channel>]) {
        self.seed(ready.iter().map(|e| &e.state), ready);
    }

    /// [`seed_estimates`](Self::seed_estimates) for the endpoints a patch added or changed.
    fn seed_joined(&self, joined: &[Arc<EndpointState>], ready: &[ReadyEndpoint<C::Channel>]) {
        self.seed(joined.iter(), ready);
    }

    /// Seeds those of `candidates` without samples at the median estimate of the sampled
    /// endpoints among up to [`SEED_PEERS`] of `ready`, spread evenly.
    fn seed<'a>(
        &self,
        candidates: impl Iterator<Item = &'a Arc<EndpointState>>,
        ready: &[ReadyEndpoint<C::Channel>],
    ) {
        let Some(config) = self.policy.peak_ewma() else {
            return;
        };
        let unsampled: Vec<&Arc<EndpointState>> =
            candidates.filter(|s| !s.load.sampled()).collect();
        if unsampled.is_empty() {
            return;
        }
        let now = now_ns();
        let step = (ready.len() / SEED_PEERS).max(1);
        let mut known: Vec<f64> = ready
            .iter()
            .step_by(step)
            .filter(|e| e.state.load.sampled())
            .map(|e| e.state.load.rtt_estimate_ns(now, config.decay_ns()))
            .collect();
        if known.is_empty() {
            return;
        }
        known.sort_unstable_by(f64::total_cmp);
        let median = known[known.len() / 2];
        for state in unsampled {
            state.load.seed(median, now);
        }
    }
}
