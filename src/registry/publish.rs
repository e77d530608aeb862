//! Publishing: from the control task's entries to the ready set calls pick from: the best tier with a
//! healthy endpoint, panic mode when too few of that tier are healthy, slow-start weights, and
//! why nothing is ready when nothing is.

use tokio::time::Instant;

use super::control::Registry;
use super::entry::Entry;
use crate::endpoint::ReadyEndpoint;
use crate::error::Unready;
use crate::health::slow_start;
use crate::policy::Plan;
use crate::ready_set::ReadySet;
use crate::time::now_ns;
use crate::transport::Connector;

/// Connected, not ejected, and serving by its health check (if checked).
fn healthy<T>(e: &Entry<T>) -> bool {
    e.channel.is_some() && !e.state.gate.is_ejected() && e.check.serving()
}

/// What panic mode adds: connected and not ejected, whatever its health check says.
fn usable_in_panic<T>(e: &Entry<T>) -> bool {
    e.channel.is_some() && !e.state.gate.is_ejected()
}

impl<C: Connector> Registry<C> {
    /// The ready set of the entries as they stand.
    pub(super) fn ready_set(&mut self) -> ReadySet<C::Channel> {
        let now = Instant::now();
        self.track_joins(now);
        let (tier, panic) = self.choose_tier();
        self.note_panic(tier, panic);
        let eligible = |e: &Entry<C::Channel>| {
            Some(e.endpoint.priority()) == tier
                && if panic {
                    usable_in_panic(e)
                } else {
                    healthy(e)
                }
        };
        let slow_start = self.health.slow_start;
        let scale = match slow_start {
            Some(_) => slow_start::scale(
                self.entries
                    .values()
                    .filter(|e| eligible(e))
                    .map(|e| e.endpoint.weight())
                    .max()
                    .unwrap_or(1),
            ),
            None => 1,
        };
        let mut ramping = false;
        let ready: Box<[_]> = self
            .entries
            .values()
            .filter(|e| eligible(e))
            .filter_map(|e| {
                let factor = slow_start
                    .zip(e.joined)
                    .and_then(|(s, joined)| s.factor(now.duration_since(joined)));
                ramping |= factor.is_some();
                e.channel.as_ref().map(|channel| ReadyEndpoint {
                    channel: channel.clone(),
                    state: e.state.clone(),
                    weight: slow_start::ramped(e.endpoint.weight(), scale, factor),
                })
            })
            .collect();
        self.seed_estimates(&ready);
        self.ramp_at = match (ramping, slow_start) {
            (true, Some(s)) => Some(now + s.step()),
            _ => None,
        };
        let all = self
            .entries
            .values()
            .map(|e| (e.state.clone(), e.endpoint.clone()))
            .collect();
        let plan = Plan::build(
            &self.policy,
            &ready,
            self.defaults.total_in_flight.clone(),
            self.stay_on.as_ref(),
            self.probes.as_ref(),
        );
        self.stay_on = plan.first(&ready).cloned();
        ReadySet {
            ready,
            all,
            why: self.why_unready(),
            plan,
            tier,
            panic,
            standby: self.standby.len(),
            discovery_error: self.discovery_error.clone(),
        }
    }

    /// The tier calls go to — the best priority with a healthy endpoint, else (panic mode)
    /// the best with a connected one — and whether it is in panic mode.
    fn choose_tier(&self) -> (Option<u32>, bool) {
        let entries = || self.entries.values();
        let best_healthy = entries()
            .filter(|e| healthy(e))
            .map(|e| e.endpoint.priority())
            .min();
        let Some(threshold) = self.health.panic_threshold else {
            return (best_healthy, false);
        };
        match best_healthy {
            Some(tier) => {
                let in_tier = || entries().filter(move |e| e.endpoint.priority() == tier);
                let healthy_n = in_tier().filter(|e| healthy(e)).count();
                let total = in_tier().count();
                (Some(tier), (healthy_n as f64) < threshold * total as f64)
            }
            None => {
                let tier = entries()
                    .filter(|e| usable_in_panic(e))
                    .map(|e| e.endpoint.priority())
                    .min();
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
        let in_tier = || {
            self.entries
                .values()
                .filter(|e| Some(e.endpoint.priority()) == tier)
        };
        let healthy_n = in_tier().filter(|e| healthy(e)).count();
        let total = in_tier().count();
        let unknown = in_tier().filter(|e| e.check.unknown).count();
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
            match (healthy(e), e.joined) {
                (true, None) => e.joined = Some(now),
                (false, Some(_)) => e.joined = None,
                _ => {}
            }
        }
    }

    /// Why a call that finds no ready endpoint could not have one.
    fn why_unready(&self) -> Unready {
        let entries = || self.entries.values();
        if self.entries.is_empty() {
            return match self.discovery_answered {
                true => Unready::NoEndpointsDiscovered,
                false => Unready::Discovering,
            };
        }
        if entries().any(|e| e.channel.is_some()) {
            let open = || entries().filter(|e| e.channel.is_some() && !e.state.gate.is_ejected());
            let unknown = open().filter(|e| e.check.unknown).count();
            if unknown > 0
                && unknown == open().count()
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
                ejected: entries().filter(|e| e.state.gate.is_ejected()).count(),
                not_serving: entries()
                    .filter(|e| e.channel.is_some() && !e.check.serving())
                    .count(),
            };
        }
        Unready::AllUnreachable {
            discovered: self.entries.len(),
            connecting: entries()
                .filter(|e| e.channel.is_none() && e.last_error.is_none())
                .count(),
            last_error: self.last_error.clone(),
        }
    }
}

impl<C: Connector> Registry<C> {
    /// Starts the PeakEWMA estimate of each ready endpoint without samples at the median of
    /// its sampled peers' current estimates, instead of the fixed initial RTT: a new endpoint
    /// joins at what its peers cost, takes its share, and its first answer replaces the guess.
    /// With no sampled peer (a fresh balancer) the initial RTT stands until the first answer.
    fn seed_estimates(&self, ready: &[ReadyEndpoint<C::Channel>]) {
        let Some(config) = self.policy.peak_ewma() else {
            return;
        };
        if ready.iter().all(|e| e.state.load.sampled()) {
            return;
        }
        let now = now_ns();
        let mut known: Vec<f64> = ready
            .iter()
            .filter(|e| e.state.load.sampled())
            .map(|e| e.state.load.rtt_estimate_ns(now, config.decay_ns()))
            .collect();
        if known.is_empty() {
            return;
        }
        known.sort_unstable_by(f64::total_cmp);
        let median = known[known.len() / 2];
        for e in ready.iter().filter(|e| !e.state.load.sampled()) {
            e.state.load.seed(median, now);
        }
    }
}
