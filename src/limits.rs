//! Bounds on what one balancer may hold: endpoints, calls waiting for an endpoint, and
//! connection attempts at once. Each is a promise that a flood (a hostile or broken discovery
//! source, an outage that leaves nothing ready, a restart of every backend) costs bounded memory
//! and sockets, and each says so clearly when it is reached.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::error::Error;

/// The resource limits of a balancer. Set with [`Builder::limits`](crate::Builder::limits).
///
/// | limit | default | when reached |
/// |---|---|---|
/// | [`max_endpoints`](Self::max_endpoints) | 10 000 | further endpoints wait on a standby list (as many again at most, then are dropped), and join in key order as others leave; a warning is logged and [`Snapshot::standby`](crate::Snapshot::standby) counts them |
/// | [`max_waiting_calls`](Self::max_waiting_calls) | 1 024 | a call that would wait for a ready endpoint fails at once with `RESOURCE_EXHAUSTED` ([`Error::TooManyWaiting`]) |
/// | [`max_connecting`](Self::max_connecting) | 32 | further connection attempts queue for a slot ([`ConnectionState::Queued`](crate::ConnectionState::Queued)) |
///
/// The defaults follow Envoy's circuit-breaker defaults for pending requests (1 024) and stay
/// out of the way of any sane deployment.
///
/// ```
/// use tower_lb::{Balancer, Limits};
/// let builder = Balancer::builder().limits(
///     Limits::default()
///         .max_endpoints(500)
///         .max_waiting_calls(256)
///         .max_connecting(8),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub(crate) max_endpoints: usize,
    pub(crate) max_waiting_calls: usize,
    pub(crate) max_connecting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_endpoints: 10_000,
            max_waiting_calls: 1024,
            max_connecting: 32,
        }
    }
}

impl Limits {
    /// Most endpoints connected and balanced over at once (at least 1).
    pub fn max_endpoints(mut self, max: usize) -> Self {
        self.max_endpoints = max;
        self
    }

    /// Most calls waiting at once for a ready endpoint (0: never wait, fail at once).
    pub fn max_waiting_calls(mut self, max: usize) -> Self {
        self.max_waiting_calls = max;
        self
    }

    /// Most connection attempts in progress at once (at least 1).
    pub fn max_connecting(mut self, max: usize) -> Self {
        self.max_connecting = max;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.max_endpoints == 0 {
            return Err(Error::InvalidConfig(
                "max_endpoints must be at least 1".into(),
            ));
        }
        if self.max_connecting == 0 || self.max_connecting > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(Error::InvalidConfig(format!(
                "max_connecting must be within 1..={}, got {}",
                tokio::sync::Semaphore::MAX_PERMITS,
                self.max_connecting
            )));
        }
        Ok(())
    }
}

/// The count of calls waiting for a ready endpoint, shared by all clones of a balancer.
#[derive(Debug, Default)]
pub(crate) struct WaitingCalls {
    count: AtomicUsize,
}

impl WaitingCalls {
    /// A place in the wait, or `None` when `max` calls already wait.
    pub(crate) fn enter(&self, max: usize) -> Option<WaitSlot<'_>> {
        self.count
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| WaitSlot { of: self })
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Relaxed)
    }
}

/// One call's place in the wait; given back on drop (the call got an endpoint, gave up, or was
/// cancelled).
pub(crate) struct WaitSlot<'a> {
    of: &'a WaitingCalls,
}

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.of.count.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_calls_are_bounded_and_given_back() {
        let waiting = WaitingCalls::default();
        let a = waiting.enter(2).unwrap();
        let b = waiting.enter(2).unwrap();
        assert!(waiting.enter(2).is_none());
        assert_eq!(waiting.len(), 2);
        drop(a);
        let c = waiting.enter(2).unwrap();
        drop((b, c));
        assert_eq!(waiting.len(), 0);
        assert!(waiting.enter(0).is_none(), "0 means never wait");
    }

    #[test]
    fn zero_endpoints_or_connections_are_refused() {
        assert!(Limits::default().validate().is_ok());
        assert!(Limits::default().max_endpoints(0).validate().is_err());
        assert!(Limits::default().max_connecting(0).validate().is_err());
        assert!(
            Limits::default()
                .max_connecting(usize::MAX)
                .validate()
                .is_err()
        );
        assert!(Limits::default().max_waiting_calls(0).validate().is_ok());
    }
}
