//! Passive health: each finished call's outcome, recorded on its endpoint by the call itself.
//!
//! The call counts as a success or a failure ([`Failures`](crate::health::Failures)); a failure bumps the endpoint's
//! run of consecutive failures, which may open its circuit breaker or eject it right there —
//! the next pick already passes it over — and tell the control task, which takes it out of
//! the next snapshot and schedules its return.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::gate::Entry;
use super::state::{EndpointState, Passive, Signal};
use crate::health::outcome::{CANCELLED, Outcome, TIMEOUT, TRANSPORT};
use crate::time::now_ns;

impl Passive {
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

    /// A call on `state` hit its deadline: asks the control task to probe the endpoint's
    /// connection, unless a probe is already asked for or under way.
    #[cold]
    pub(crate) fn call_timed_out(&self, state: &Arc<EndpointState>) {
        if !state.probing.swap(true, Relaxed) {
            let _ = self.signals.send(Signal::TimedOut(state.clone()));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EndpointDefaults;
    use crate::health::{CircuitBreaker, Failures};

    fn endpoint(failures: Failures) -> Arc<EndpointState> {
        let (signals, _) = tokio::sync::mpsc::unbounded_channel();
        let breaker = CircuitBreaker::default().open_after(1);
        let passive = Arc::new(Passive::new(failures, Some(5), breaker, signals));
        let defaults = EndpointDefaults {
            initial_rtt: std::time::Duration::from_millis(30),
            total_in_flight: None,
            max_in_flight: None,
            passive,
            reported_penalty: None,
            reports_in_trailers: true,
        };
        let addr = "127.0.0.1:1".parse().unwrap();
        Arc::new(EndpointState::new(
            crate::discover::Key::from(addr),
            addr,
            &defaults,
        ))
    }

    #[test]
    fn outcomes_that_say_nothing_count_neither_way() {
        let state = endpoint(Failures::default());
        let p = state.passive.clone();
        p.record(&state, Some(TRANSPORT), Entry::Call, 0);
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
        p.record(&state, Some(TRANSPORT), Entry::Trial, 0);
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
