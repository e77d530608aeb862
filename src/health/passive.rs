//! Passive health: each finished call's outcome, recorded on its endpoint by the call itself.
//!
//! The call counts as a success or a failure ([`Failures`]); a failure bumps the endpoint's
//! run of consecutive failures, which may open its circuit breaker or eject it right there —
//! the next pick already passes it over — and tell the control task, which takes it out of
//! the next snapshot and schedules its return.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

use tokio::sync::mpsc::UnboundedSender;

use super::outcome::{CANCELLED, Outcome, TIMEOUT, TRANSPORT};
use super::{CircuitBreaker, Failures, Signal};
use crate::endpoint::EndpointState;
use crate::endpoint::load::now_ns;
use crate::health::gate::Entry;
use crate::health::outlier::Sample;

/// What a balancer's calls need to judge their endpoints; shared by all its endpoints.
#[derive(Debug)]
pub(crate) struct Passive {
    pub(crate) failures: Failures,
    /// Consecutive failures that eject an endpoint (outlier detection).
    eject_after: Option<u32>,
    breaker: CircuitBreaker,
    pub(crate) ejections: EjectionCap,
    signals: UnboundedSender<Signal>,
}

impl Passive {
    pub(crate) fn new(
        failures: Failures,
        eject_after: Option<u32>,
        breaker: CircuitBreaker,
        signals: UnboundedSender<Signal>,
    ) -> Self {
        Passive {
            failures,
            eject_after,
            breaker,
            ejections: EjectionCap::default(),
            signals,
        }
    }

    /// A `Passive` that judges nothing, for endpoints outside a balancer (the `Picker`).
    pub(crate) fn inert() -> Self {
        let (signals, _) = tokio::sync::mpsc::unbounded_channel();
        Passive::new(Failures::none(), None, CircuitBreaker::default(), signals)
    }

    /// Whether calls must note their deadline, to tell a timeout from a cancellation.
    pub(crate) fn needs_deadline(&self) -> bool {
        self.failures.needs_deadline()
    }

    /// A call on `state` ended. `outcome`: what the response said, `None` if the caller
    /// dropped the call first; `deadline_ns`: the caller's deadline in `now_ns()` time (0:
    /// unknown).
    #[inline]
    pub(crate) fn record(
        &self,
        state: &Arc<EndpointState>,
        outcome: Option<Outcome>,
        entry: Entry,
        deadline_ns: u64,
    ) {
        let outcome = match outcome {
            Some(o) => o,
            None => dropped(deadline_ns),
        };
        let counters = &state.counters;
        let failed = self.failures.is_failure(outcome);
        if !failed && matches!(outcome, TRANSPORT | TIMEOUT | CANCELLED) {
            // Says nothing about the endpoint either way (a broken connection, a caller that
            // gave up): neither a success nor a failure, and a trial that ended so decides
            // nothing.
            if entry == Entry::Trial {
                state.gate.retry_trial();
            }
            return;
        }
        if failed {
            counters.failed.fetch_add(1, Relaxed);
            let run = counters.consecutive.fetch_add(1, Relaxed).saturating_add(1);
            self.on_failure(state, run, entry);
        } else {
            counters.ok.fetch_add(1, Relaxed);
            if counters.consecutive.load(Relaxed) != 0 {
                counters.consecutive.store(0, Relaxed);
            }
            if entry == Entry::Trial {
                state.gate.close();
                tracing::info!(endpoint = %state.key, "circuit breaker closed: the trial call succeeded");
            }
        }
    }

    #[cold]
    fn on_failure(&self, state: &Arc<EndpointState>, run: u32, entry: Entry) {
        if entry == Entry::Trial {
            let openings = state.gate.reopen(&self.breaker.backoff);
            tracing::warn!(endpoint = %state.key, openings, "circuit breaker reopened: the trial call failed");
        } else if self.breaker.open_after.is_some_and(|n| run >= n)
            && state.gate.open(&self.breaker.backoff)
        {
            tracing::warn!(endpoint = %state.key, consecutive_failures = run, "circuit breaker opened");
        }
        if self.eject_after.is_some_and(|n| run >= n) && self.eject(state) {
            // The control task logs the ejection and schedules the return.
            let _ = self.signals.send(Signal::Ejected(state.clone()));
        }
    }

    /// Ejects an endpoint if it is not ejected yet and the cap allows one more; `true` if it
    /// did. The gate shuts at once: the next pick on any core passes the endpoint over.
    pub(crate) fn eject(&self, state: &EndpointState) -> bool {
        if state.gate.is_ejected() || !self.ejections.take() {
            return false;
        }
        if state.gate.eject() {
            state.counters.ejections.fetch_add(1, Relaxed);
            return true;
        }
        // Another caller ejected it in between.
        self.ejections.give_back();
        false
    }

    /// Lifts an endpoint's ejection, if it has one, and frees its place under the cap.
    pub(crate) fn end_ejection(&self, state: &EndpointState) {
        if state.gate.return_from_ejection() {
            self.ejections.give_back();
        }
    }
}

/// A call dropped by its caller: a timeout if its deadline had passed, else a cancellation.
fn dropped(deadline_ns: u64) -> Outcome {
    if deadline_ns != 0 && now_ns() >= deadline_ns {
        TIMEOUT
    } else {
        CANCELLED
    }
}

/// How many endpoints are ejected, against the cap the control task keeps up to date.
#[derive(Debug, Default)]
pub(crate) struct EjectionCap {
    ejected: AtomicUsize,
    max: AtomicUsize,
}

impl EjectionCap {
    /// Takes one ejection if the cap allows it.
    pub(crate) fn take(&self) -> bool {
        let max = self.max.load(Relaxed);
        self.ejected
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// An ejection ended (or was not used).
    pub(crate) fn give_back(&self) {
        let _ = self
            .ejected
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Relaxed);
    }

    pub(crate) fn ejected(&self) -> usize {
        self.ejected.load(Relaxed)
    }
}

/// One endpoint's finished calls, as the passive checks count them, and its ejections.
#[derive(Debug, Default)]
pub(crate) struct CallCounters {
    pub(crate) ok: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) consecutive: AtomicU32,
    /// Times ejected, ever (for status and metrics).
    pub(crate) ejections: AtomicU64,
}

impl CallCounters {
    /// The calls finished so far: for the outlier statistics, status and metrics.
    pub(crate) fn totals(&self) -> Sample {
        Sample {
            ok: self.ok.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_under_contention() {
        let cap = Arc::new(EjectionCap::default());
        cap.set_max(3);
        let taken: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..100).filter(|_| cap.take()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken, 3);
        assert_eq!(cap.ejected(), 3);
        cap.give_back();
        assert!(cap.take());
        assert!(!cap.take());
        cap.set_max(0);
        for _ in 0..10 {
            cap.give_back();
        }
        assert_eq!(cap.ejected(), 0, "never below zero");
    }

    fn endpoint(failures: Failures) -> Arc<EndpointState> {
        use crate::endpoint::EndpointDefaults;
        let (signals, _) = tokio::sync::mpsc::unbounded_channel();
        let breaker = CircuitBreaker::default().open_after(1);
        let passive = Arc::new(Passive::new(failures, Some(5), breaker, signals));
        let defaults = EndpointDefaults::new(&crate::Policy::default(), None, passive);
        let addr = "127.0.0.1:1".parse().unwrap();
        Arc::new(EndpointState::new(
            crate::discover::Key::from(addr),
            addr,
            &defaults,
        ))
    }

    #[test]
    fn outcomes_that_say_nothing_count_neither_way() {
        use crate::health::gate::Entry;
        let state = endpoint(Failures::default());
        let p = state.passive.clone();
        p.record(
            &state,
            Some(super::super::outcome::TRANSPORT),
            Entry::Call,
            0,
        );
        p.record(&state, None, Entry::Call, 0);
        assert_eq!(state.counters.ok.load(Relaxed), 0);
        assert_eq!(state.counters.failed.load(Relaxed), 0);
        // An application error is the endpoint working: a success.
        p.record(&state, Some(tonic::Code::NotFound as u8), Entry::Call, 0);
        assert_eq!(state.counters.ok.load(Relaxed), 1);
        // A failure opens the breaker (open_after 1); a trial cut off by a broken connection
        // decides nothing: the circuit stays open for the next trial.
        p.record(&state, Some(tonic::Code::Unavailable as u8), Entry::Call, 0);
        assert_eq!(state.gate.breaker(), crate::health::BreakerState::Open);
        p.record(
            &state,
            Some(super::super::outcome::TRANSPORT),
            Entry::Trial,
            0,
        );
        assert_eq!(state.gate.breaker(), crate::health::BreakerState::Open);
    }

    #[test]
    fn a_drop_after_the_deadline_is_a_timeout() {
        assert_eq!(dropped(0), CANCELLED);
        now_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(dropped(1), TIMEOUT);
        assert_eq!(dropped(u64::MAX), CANCELLED);
    }
}
