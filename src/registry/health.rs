//! The control task's side of endpoint health: ejections (from a failing call or from the
//! interval's statistics) and their returns, health-check verdicts, and the timers for both.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Entry, Registry};
use crate::discover::Key;
use crate::endpoint::EndpointState;
use crate::health::outlier::{self, Reason, Sample};
use crate::health::{Health, Signal};
use crate::transport::Connector;

/// Outlier detection's record of one endpoint.
#[derive(Debug, Default)]
pub(super) struct Ejection {
    /// A50's ejection time multiplier: up by one per ejection, down by one per interval out of
    /// ejection.
    multiplier: u32,
    /// When the current ejection ends.
    pub(super) until: Option<Instant>,
    /// The call counts at the last interval, to take this interval's from the totals.
    last: Sample,
}

/// Active health checking's record of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct CheckState {
    task: Option<JoinHandle<()>>,
    /// Which check task is current: verdicts of an older one are ignored.
    epoch: u64,
    /// The last verdict: `None` while checking without an answer yet.
    serving: Option<bool>,
}

impl CheckState {
    /// Starts following a new check task (or none: checks off).
    pub(super) fn start(&mut self, task: Option<JoinHandle<()>>, state: &EndpointState) {
        self.stop();
        self.serving = match task {
            Some(_) => None,
            None => Some(true),
        };
        self.task = task;
        state.set_checked(self.health());
    }

    /// What the check says, as the endpoint's status shows it (an ejection shows over it).
    fn health(&self) -> Health {
        match self.serving {
            Some(true) => Health::Healthy,
            Some(false) => Health::NotServing,
            None => Health::Checking,
        }
    }

    pub(super) fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.epoch += 1;
    }

    /// Whether the health check (if any) lets the endpoint take calls.
    pub(super) fn serving(&self) -> bool {
        self.serving == Some(true)
    }

    /// The epoch the next check task will have.
    pub(super) fn next_epoch(&self) -> u64 {
        self.epoch + 1
    }
}

impl<C: Connector> Registry<C> {
    pub(super) fn on_signal(&mut self, signal: Signal) -> bool {
        match signal {
            Signal::Ejected(state) => {
                let run = state.counters.consecutive.load(Relaxed);
                match self.entry_of(&state) {
                    // Its ejection was already lifted (the cap shrank with the set).
                    Some(_) if !state.gate.is_ejected() => false,
                    Some(key) => {
                        let now = Instant::now();
                        self.record_ejection(&key, Reason::ConsecutiveFailures(run), now);
                        true
                    }
                    // Removed meanwhile: its calls still in flight ejected it; undo.
                    None => {
                        self.defaults.passive.end_ejection(&state);
                        false
                    }
                }
            }
            #[cfg(feature = "health")]
            Signal::Health {
                state,
                epoch,
                verdict,
            } => self.on_verdict(&state, epoch, verdict),
        }
    }

    #[cfg(feature = "health")]
    fn on_verdict(
        &mut self,
        state: &Arc<EndpointState>,
        epoch: u64,
        verdict: crate::health::check::Verdict,
    ) -> bool {
        use crate::health::check::Verdict;
        let Some(key) = self.entry_of(state) else {
            return false;
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return false;
        };
        if entry.check.epoch != epoch {
            return false;
        }
        let serving = !matches!(verdict, Verdict::NotServing(_));
        match &verdict {
            Verdict::Serving => {
                tracing::info!(endpoint = %key, addr = %entry.endpoint.addr(), "health check: SERVING")
            }
            Verdict::NoHealthService => tracing::info!(
                endpoint = %key,
                addr = %entry.endpoint.addr(),
                "health check: no grpc.health.v1 service; counted as healthy (gRPC A17)"
            ),
            Verdict::NotServing(why) => tracing::warn!(
                endpoint = %key,
                addr = %entry.endpoint.addr(),
                reason = %why,
                "health check: not serving; leaving the ready set"
            ),
        }
        let changed = entry.check.serving != Some(serving);
        entry.check.serving = Some(serving);
        entry.state.set_checked(entry.check.health());
        changed
    }

    /// Starts the health check of an endpoint whose connection just came up, if checks are on.
    #[cfg(feature = "health")]
    pub(super) fn health_check_for(
        &self,
        key: &Key,
        state: &Arc<EndpointState>,
        channel: &C::Channel,
        epoch: u64,
    ) -> Option<JoinHandle<()>> {
        let config = self.health.check.clone()?;
        let signals = self.signals_tx.clone();
        let state = state.clone();
        Some(crate::health::check::spawn_health_check(
            channel.clone(),
            config,
            key.clone(),
            move |verdict| {
                let _ = signals.send(Signal::Health {
                    state: state.clone(),
                    epoch,
                    verdict,
                });
            },
        ))
    }

    #[cfg(not(feature = "health"))]
    pub(super) fn health_check_for(
        &self,
        _key: &Key,
        _state: &Arc<EndpointState>,
        _channel: &C::Channel,
        _epoch: u64,
    ) -> Option<JoinHandle<()>> {
        None
    }

    /// The key of the live entry whose state this is (not a replaced or removed one).
    fn entry_of(&self, state: &Arc<EndpointState>) -> Option<Key> {
        self.entries
            .get(&state.key)
            .filter(|e| Arc::ptr_eq(&e.state, state))
            .map(|_| state.key.clone())
    }

    /// Notes an ejection whose gate is already shut, and schedules its end.
    fn record_ejection(&mut self, key: &Key, reason: Reason, now: Instant) {
        let config = self.health.outlier;
        let ejected = self.defaults.passive.ejections.ejected();
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        entry.ejection.multiplier = entry.ejection.multiplier.saturating_add(1);
        let time = config.ejection_time(entry.ejection.multiplier);
        entry.ejection.until = Some(now + time);
        tracing::warn!(
            endpoint = %key,
            addr = %entry.endpoint.addr(),
            %reason,
            ejection = ?time,
            times = entry.ejection.multiplier,
            ejected_now = ejected,
            "endpoint ejected by outlier detection"
        );
    }

    /// Runs the timers that are due: the outlier interval, ejections ending, a slow-start step.
    pub(super) fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        let mut dirty = false;
        if self.health.outlier.enabled && now >= self.next_interval {
            dirty |= self.run_interval(now);
            self.next_interval = now + self.health.outlier.interval;
        }
        dirty |= self.return_ejected(now);
        if self.ramp_at.is_some_and(|at| now >= at) {
            self.ramp_at = None;
            dirty = true;
        }
        dirty
    }

    /// When the next timer is due, if any.
    pub(super) fn next_timer(&self) -> Option<Instant> {
        let interval =
            (self.health.outlier.enabled && !self.entries.is_empty()).then_some(self.next_interval);
        let returns = self.entries.values().filter_map(|e| e.ejection.until);
        interval
            .into_iter()
            .chain(returns)
            .chain(self.ramp_at)
            .min()
    }

    /// One outlier-detection interval: this interval's calls per endpoint through the two
    /// statistics, ejections within the cap, and A50's multiplier decay.
    fn run_interval(&mut self, now: Instant) -> bool {
        let samples: Vec<Sample> = self
            .entries
            .values_mut()
            .map(|e| {
                let total = e.state.counters.totals();
                let interval = Sample {
                    ok: total.ok.saturating_sub(e.ejection.last.ok),
                    failed: total.failed.saturating_sub(e.ejection.last.failed),
                };
                e.ejection.last = total;
                interval
            })
            .collect();
        let found = outlier::outliers(&self.health.outlier, &samples, &mut self.rng);
        let keys: Vec<Key> = self.entries.keys().cloned().collect();
        let mut dirty = false;
        for (i, reason) in found {
            let key = &keys[i];
            let state = self.entries[key].state.clone();
            if state.gate.is_ejected() {
                continue;
            }
            if self.defaults.passive.eject(&state) {
                self.record_ejection(key, reason, now);
                dirty = true;
            } else {
                tracing::info!(endpoint = %key, %reason, "outlier not ejected: the ejection cap is reached");
            }
        }
        for e in self.entries.values_mut() {
            if e.ejection.until.is_none() {
                e.ejection.multiplier = e.ejection.multiplier.saturating_sub(1);
            }
        }
        dirty
    }

    /// Lifts the ejections that have ended.
    fn return_ejected(&mut self, now: Instant) -> bool {
        let mut dirty = false;
        for (key, e) in self.entries.iter_mut() {
            if e.ejection.until.is_some_and(|until| now >= until) {
                e.ejection.until = None;
                self.defaults.passive.end_ejection(&e.state);
                e.state.counters.consecutive.store(0, Relaxed);
                tracing::info!(endpoint = %key, addr = %e.endpoint.addr(), "ejection ended; endpoint back in the ready set");
                dirty = true;
            }
        }
        dirty
    }

    /// An entry leaves (removed, or replaced by a new address): its ejection no longer counts.
    pub(super) fn retire(&self, entry: &Entry<C::Channel>) {
        self.defaults.passive.end_ejection(&entry.state);
    }

    /// The ejection cap follows the number of endpoints. When discovery shrinks the set below
    /// what its ejections allow (say, the one healthy endpoint of two is removed), the
    /// ejections that would end soonest end now: the cap holds — never all ejected — whichever
    /// way the set changes, not only when an ejection is decided.
    pub(super) fn update_ejection_cap(&mut self) {
        let max = self.health.outlier.max_ejected(self.entries.len());
        self.defaults.passive.ejections.set_max(max);
        let mut ejected: Vec<(Option<Instant>, Key)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.state.gate.is_ejected())
            .map(|(key, e)| (e.ejection.until, key.clone()))
            .collect();
        let excess = ejected.len().saturating_sub(max);
        if excess == 0 {
            return;
        }
        // Soonest end first; one whose signal is still on its way (no end yet) last.
        ejected.sort_by_key(|(until, _)| (until.is_none(), *until));
        for (_, key) in ejected.into_iter().take(excess) {
            let Some(e) = self.entries.get_mut(&key) else {
                continue;
            };
            e.ejection.until = None;
            self.defaults.passive.end_ejection(&e.state);
            e.state.counters.consecutive.store(0, Relaxed);
            tracing::info!(endpoint = %key, addr = %e.endpoint.addr(), endpoints = self.entries.len(), max_ejected = max, "ejection ended early: fewer endpoints now, and the cap holds");
        }
    }
}
