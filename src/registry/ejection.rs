//! Outlier detection's bookkeeping: ejections (decided by a failing call, or by the
//! interval's statistics), their timing, their end, and the cap as the set changes.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::time::Instant;

use super::control::Registry;
use super::entry::Entry;
use crate::discover::Key;
use crate::endpoint::{EndpointState, Passive, Signal};
use crate::health::outlier::{self, Reason, Sample};
use crate::transport::Connector;

impl<C: Connector> Registry<C> {
    pub(super) fn on_signal(&mut self, signal: Signal) -> bool {
        match signal {
            Signal::TimedOut(state) => {
                self.probe(&state);
                false
            }
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

    /// The key of the live entry whose state this is (not a replaced or removed one).
    pub(super) fn entry_of(&self, state: &Arc<EndpointState>) -> Option<Key> {
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
        self.touch(key);
    }

    /// One outlier-detection interval: this interval's calls per endpoint through the two
    /// statistics, ejections within the cap, and A50's multiplier decay.
    pub(super) fn run_interval(&mut self, now: Instant) -> bool {
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
    pub(super) fn return_ejected(&mut self, now: Instant) -> bool {
        let mut ended = Vec::new();
        for (key, e) in self.entries.iter_mut() {
            if e.ejection.until.is_some_and(|until| now >= until) {
                end_ejection(&self.defaults.passive, e);
                tracing::info!(endpoint = %key, addr = %e.endpoint.addr(), "ejection ended; endpoint back in the ready set");
                ended.push(key.clone());
            }
        }
        for key in &ended {
            self.touch(key);
        }
        !ended.is_empty()
    }

    /// An entry leaves (removed, or replaced by a new address): its ejection no longer counts.
    pub(super) fn retire(&mut self, entry: &Entry<C::Channel>) {
        self.defaults.passive.end_ejection(&entry.state);
        self.published.tally.remove(&entry.counted);
    }

    /// The ejection cap follows the number of endpoints. When discovery shrinks the set below
    /// what its ejections allow (say, the one healthy endpoint of two is removed), the
    /// ejections that would end soonest end now: the cap holds — never all ejected — whichever
    /// way the set changes, not only when an ejection is decided.
    pub(super) fn update_ejection_cap(&mut self) {
        let max = self.health.outlier.max_ejected(self.entries.len());
        self.defaults.passive.ejections.set_max(max);
        // The count is kept as ejections start and end: no scan unless the cap is exceeded.
        if self.defaults.passive.ejections.ejected() <= max {
            return;
        }
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
            end_ejection(&self.defaults.passive, e);
            tracing::info!(endpoint = %key, addr = %e.endpoint.addr(), endpoints = self.entries.len(), max_ejected = max, "ejection ended early: fewer endpoints now, and the cap holds");
            self.touch(&key);
        }
    }
}

/// Ends an entry's ejection: its gate opens, its place under the cap is freed, and its run of
/// failures starts again from zero.
fn end_ejection<T>(passive: &Passive, e: &mut Entry<T>) {
    e.ejection.until = None;
    passive.end_ejection(&e.state);
    e.state.counters.consecutive.store(0, Relaxed);
}
