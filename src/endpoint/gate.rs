//! An endpoint's gate: whether the picker may give it a call right now.
//!
//! Three things shut it, all checked on the request path with one relaxed load while the gate
//! is open: an ejection that the failing call itself decided (the control task then leaves
//! the endpoint out of the next snapshot), an open circuit breaker, and the concurrency cap.
//! An open circuit whose backoff has passed admits exactly one trial call: the caller that
//! wins a compare-and-swap to half-open.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::health::BreakerState;
use crate::time::{Backoff, now_ns};

/// Ejected by outlier detection (set by the failing call, cleared by the control task).
const EJECTED: u8 = 1;
/// The circuit breaker is open: no calls until `open_until_ns`, then one trial.
const OPEN: u8 = 2;
/// The trial call is in flight: no other calls.
const HALF_OPEN: u8 = 4;

/// What the picker may do with an endpoint it chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// An ordinary call.
    Call,
    /// The trial call of a half-open circuit.
    Trial,
}

#[derive(Debug)]
pub(crate) struct Gate {
    bits: AtomicU8,
    /// When an open circuit admits its trial, in `now_ns()` time.
    open_until_ns: AtomicU64,
    /// Openings since the circuit last closed, for the growing backoff.
    openings: AtomicU32,
    /// Calls in flight at which the endpoint is passed over (`u32::MAX`: no cap).
    max_in_flight: u32,
}

impl Gate {
    pub(crate) fn new(max_in_flight: Option<u32>) -> Self {
        Gate {
            bits: AtomicU8::new(0),
            open_until_ns: AtomicU64::new(0),
            openings: AtomicU32::new(0),
            max_in_flight: max_in_flight.unwrap_or(u32::MAX),
        }
    }

    /// Whether the picker may choose this endpoint with `in_flight` calls on it. Pure: the
    /// trial of an open circuit is claimed by [`enter`](Self::enter) once chosen.
    #[inline]
    pub(crate) fn admits(&self, in_flight: u32) -> bool {
        match self.bits.load(Relaxed) {
            0 => in_flight < self.max_in_flight,
            bits => self.trial_due(bits),
        }
    }

    /// Claims a chosen endpoint: an ordinary call, the trial, or `None` when another caller
    /// took the trial (or the endpoint was ejected) since the pick.
    #[inline]
    pub(crate) fn enter(&self) -> Option<Entry> {
        match self.bits.load(Relaxed) {
            0 => Some(Entry::Call),
            bits => self.enter_slow(bits),
        }
    }

    #[cold]
    fn trial_due(&self, bits: u8) -> bool {
        bits == OPEN && now_ns() >= self.open_until_ns.load(Relaxed)
    }

    #[cold]
    fn enter_slow(&self, bits: u8) -> Option<Entry> {
        if !self.trial_due(bits) {
            return None;
        }
        self.bits
            .compare_exchange(OPEN, HALF_OPEN, Relaxed, Relaxed)
            .ok()
            .map(|_| Entry::Trial)
    }

    /// Opens a closed circuit for its first backoff. `false` if it was not closed.
    pub(crate) fn open(&self, backoff: &Backoff) -> bool {
        let mut bits = self.bits.load(Relaxed);
        loop {
            if bits & (OPEN | HALF_OPEN) != 0 {
                return false;
            }
            self.open_until_ns.store(until(backoff, 1), Relaxed);
            match self
                .bits
                .compare_exchange_weak(bits, bits | OPEN, Relaxed, Relaxed)
            {
                Ok(_) => {
                    self.openings.store(1, Relaxed);
                    return true;
                }
                Err(now) => bits = now,
            }
        }
    }

    /// The trial failed: open again, for longer. Returns the openings so far.
    pub(crate) fn reopen(&self, backoff: &Backoff) -> u32 {
        let openings = self.openings.fetch_add(1, Relaxed).saturating_add(1);
        self.open_until_ns.store(until(backoff, openings), Relaxed);
        self.half_open_to_open();
        openings
    }

    /// The trial succeeded: close the circuit.
    pub(crate) fn close(&self) {
        self.openings.store(0, Relaxed);
        self.bits.fetch_and(!(OPEN | HALF_OPEN), Relaxed);
    }

    /// The trial ended without an outcome (its caller dropped it): the next call may try.
    pub(crate) fn retry_trial(&self) {
        self.open_until_ns.store(0, Relaxed);
        self.half_open_to_open();
    }

    /// One atomic step, so no caller sees the circuit closed in between.
    fn half_open_to_open(&self) {
        let _ = self
            .bits
            .fetch_update(Relaxed, Relaxed, |b| Some(b & !HALF_OPEN | OPEN));
    }

    /// Shuts the gate for an ejection; `false` if already ejected.
    pub(crate) fn eject(&self) -> bool {
        self.bits.fetch_or(EJECTED, Relaxed) & EJECTED == 0
    }

    /// Lifts an ejection; `false` if there was none.
    pub(crate) fn return_from_ejection(&self) -> bool {
        self.bits.fetch_and(!EJECTED, Relaxed) & EJECTED != 0
    }

    pub(crate) fn is_ejected(&self) -> bool {
        self.bits.load(Relaxed) & EJECTED != 0
    }

    /// Whether the gate holds calls back for a reason other than the cap (breaker, ejection).
    pub(crate) fn is_shut(&self) -> bool {
        let bits = self.bits.load(Relaxed);
        bits != 0 && !self.trial_due(bits)
    }

    pub(crate) fn at_cap(&self, in_flight: u32) -> bool {
        in_flight >= self.max_in_flight
    }

    pub(crate) fn breaker(&self) -> BreakerState {
        let bits = self.bits.load(Relaxed);
        if bits & HALF_OPEN != 0 {
            BreakerState::HalfOpen
        } else if bits & OPEN != 0 {
            BreakerState::Open
        } else {
            BreakerState::Closed
        }
    }
}

/// The end of the backoff after `openings` openings, jittered by the clock's low bits (this
/// runs on the request path of a failing call, where a random number generator is not at
/// hand; the nanosecond clock of different clients is as good a spread).
fn until(backoff: &Backoff, openings: u32) -> u64 {
    let now = now_ns();
    let unit = (now.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    let delay = backoff.delay(openings, unit);
    now.saturating_add(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn quick() -> Backoff {
        Backoff::default()
            .initial(Duration::ZERO)
            .max(Duration::ZERO)
    }

    #[test]
    fn cap_admits_below_it() {
        let g = Gate::new(Some(2));
        assert!(g.admits(0) && g.admits(1) && !g.admits(2));
        assert!(Gate::new(None).admits(u32::MAX - 1));
    }

    #[test]
    fn open_circuit_admits_one_trial_then_closes_or_reopens() {
        let g = Gate::new(None);
        assert!(g.open(&quick()));
        assert!(!g.open(&quick()), "already open");
        assert_eq!(g.breaker(), BreakerState::Open);
        // Zero backoff: the trial is due at once; exactly one caller gets it.
        assert!(g.admits(0));
        assert_eq!(g.enter(), Some(Entry::Trial));
        assert_eq!(g.enter(), None);
        assert!(!g.admits(0));
        assert_eq!(g.breaker(), BreakerState::HalfOpen);
        assert_eq!(g.reopen(&quick()), 2);
        assert_eq!(g.enter(), Some(Entry::Trial));
        g.close();
        assert_eq!(g.breaker(), BreakerState::Closed);
        assert_eq!(g.enter(), Some(Entry::Call));
    }

    #[test]
    fn open_circuit_waits_out_its_backoff() {
        let g = Gate::new(None);
        let slow = Backoff::default().initial(Duration::from_secs(60));
        assert!(g.open(&slow));
        assert!(!g.admits(0));
        assert_eq!(g.enter(), None);
        assert!(g.is_shut());
    }

    #[test]
    fn cancelled_trial_lets_the_next_call_try() {
        let g = Gate::new(None);
        g.open(&quick());
        assert_eq!(g.enter(), Some(Entry::Trial));
        g.retry_trial();
        assert_eq!(g.enter(), Some(Entry::Trial));
    }

    #[test]
    fn ejection_shuts_everything_and_lifts_once() {
        let g = Gate::new(None);
        assert!(g.eject());
        assert!(!g.eject());
        assert!(!g.admits(0));
        assert_eq!(g.enter(), None);
        assert!(g.return_from_ejection());
        assert!(!g.return_from_ejection());
        assert!(g.admits(0));
    }
}
