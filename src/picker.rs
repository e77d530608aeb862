//! A policy outside a balancer: the same pick code over a fixed set of weighted endpoints,
//! with the caller keeping time and counting calls. For simulations, property tests and
//! dispatchers of one's own.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;

use crate::discover::Key;
use crate::endpoint::{EndpointState, EwmaClock, Passive, ReadyEndpoint};
use crate::error::{Error, Unready};
use crate::policy::{Call, PickState, Plan, Policy};
use crate::ready_set::ReadySet;
use crate::transport::NoRequests;

/// Picks among a fixed set of weighted endpoints with exactly the code a
/// [`Balancer`](crate::Balancer) runs per call, without connections.
///
/// Endpoints are kept in key order (as in a balancer), so a hashing policy maps a key to the
/// same endpoint here as in a balancer over the same keys and weights. Load-aware policies see
/// the calls the caller reports with [`begin`](Self::begin) and [`end`](Self::end); time is
/// the caller's (`now`, from any origin), so a simulation can run on a virtual clock.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{HashKey, Picker, Policy, discover::Key};
///
/// let endpoints = (0..4).map(|i| (Key::from(format!("backend-{i}")), 1));
/// let mut picker = Picker::new(Policy::p2c_in_flight(), endpoints, 7)?;
/// let i = picker.pick(None, Duration::ZERO).unwrap();
/// picker.begin(i);
/// assert_eq!(picker.in_flight(i), 1);
/// picker.end(i, Duration::from_millis(3), Duration::from_millis(3));
///
/// let mut sticky = Picker::new(Policy::maglev(HashKey::path()), [(Key::from("a"), 1), (Key::from("b"), 1)], 7)?;
/// let h = tower_lb::hash_bytes(b"user-42");
/// assert_eq!(sticky.pick(Some(h), Duration::ZERO), sticky.pick(Some(h), Duration::ZERO));
/// # Ok::<(), tower_lb::Error>(())
/// ```
pub struct Picker {
    set: ReadySet<NoRequests<()>>,
    policy: Policy,
    state: PickState<SmallRng>,
    /// The `now` of the latest pick, when a call begins.
    last_pick_ns: u64,
}

impl Picker {
    /// A picker over `(key, weight)` pairs; `seed` makes the random choices repeatable.
    ///
    /// Fails for a weight of 0 and for a key given twice.
    pub fn new(
        policy: Policy,
        endpoints: impl IntoIterator<Item = (Key, u32)>,
        seed: u64,
    ) -> Result<Self, Error> {
        let mut endpoints: Vec<(Key, u32)> = endpoints.into_iter().collect();
        endpoints.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = endpoints.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidEndpoint(format!(
                "key {} given twice",
                w[0].0
            )));
        }
        if let Some((key, _)) = endpoints.iter().find(|(_, w)| *w == 0) {
            return Err(Error::InvalidEndpoint(format!(
                "{key}: weight 0 (weights run from 1 to {})",
                u32::MAX
            )));
        }
        let defaults = policy.endpoint_defaults(None, Arc::new(Passive::inert()));
        let unaddressed = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let ready: Box<[_]> = endpoints
            .into_iter()
            .map(|(key, weight)| ReadyEndpoint {
                channel: NoRequests(()),
                state: Arc::new(EndpointState::new(key, unaddressed, &defaults)),
                weight,
            })
            .collect();
        // Latency estimates start at time 0 of the caller's clock, not at the real clock.
        for e in ready.iter() {
            e.state.load.restamp(0);
        }
        let plan = Plan::build(
            &policy,
            &ready,
            defaults.total_in_flight.clone(),
            None,
            None,
        );
        let mut set = ReadySet::empty(Unready::NoEndpointsDiscovered);
        set.ready = ready;
        set.plan = plan;
        Ok(Picker {
            set,
            policy,
            state: PickState::new(seed),
            last_pick_ns: 0,
        })
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.set.ready.len()
    }

    /// Whether there are no endpoints (every pick is then `None`).
    pub fn is_empty(&self) -> bool {
        self.set.ready.is_empty()
    }

    /// The key of endpoint `i` (endpoints are in key order).
    pub fn key(&self, i: usize) -> Option<&Key> {
        self.set.ready.get(i).map(|e| &e.state.key)
    }

    /// Picks an endpoint for a request whose key hashes to `hash` (`None`: no key, or a policy
    /// that does not hash). `now` is the caller's clock, read by PeakEWMA. `None` only when
    /// there are no endpoints.
    pub fn pick(&mut self, hash: Option<u64>, now: Duration) -> Option<usize> {
        self.last_pick_ns = nanos(now);
        // Every policy gets the caller's clock: the in-flight ones read it to forget calls
        // given up long ago.
        let decay = self.policy.peak_ewma().unwrap_or_default().decay_ns();
        let clock = Some(EwmaClock::at(nanos(now), decay));
        let call = Call {
            hash,
            avoid: None,
            clock,
        };
        let (ready, plan) = (&self.set.ready, &self.set.plan);
        self.policy.pick(ready, plan, call, &mut self.state)
    }

    /// Picks for a request, taking its key as the policy says.
    pub fn pick_request<B>(&mut self, request: &http::Request<B>, now: Duration) -> Option<usize> {
        let hash = self.policy.request_hash(request);
        self.pick(hash, now)
    }

    /// A call started on endpoint `i`, at the `now` of the latest pick (PeakEWMA times it
    /// from then).
    pub fn begin(&self, i: usize) {
        if let Some(e) = self.set.ready.get(i) {
            let timed = self.policy.peak_ewma().is_some();
            e.state.call_started(timed.then_some(self.last_pick_ns));
        }
    }

    /// A call on endpoint `i` was answered at `now`, after `latency` (a PeakEWMA sample), and
    /// ended.
    pub fn end(&self, i: usize, latency: Duration, now: Duration) {
        let Some(e) = self.set.ready.get(i) else {
            return;
        };
        let load = &e.state.load;
        if load.in_flight() == 0 {
            return;
        }
        match self.policy.peak_ewma() {
            Some(config) if load.waiting() > 0 => {
                let sample = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                load.record_rtt(sample, nanos(now), config.decay_ns());
                load.answered(nanos(now));
            }
            _ => load.answered_untimed(),
        }
        e.state.call_ended(false);
    }

    /// A call on endpoint `i` was given up at `now`, `age` after it started, without an answer
    /// (the caller's deadline passed, or it cancelled), as a balancer's call whose future is
    /// dropped before the response: it counts against the endpoint until it answers again
    /// (see [`Policy::p2c_in_flight`] and [`Policy::p2c_peak_ewma`]).
    pub fn cancel(&self, i: usize, age: Duration, now: Duration) {
        let Some(e) = self.set.ready.get(i) else {
            return;
        };
        let load = &e.state.load;
        if load.in_flight() == 0 {
            return;
        }
        let timed = self.policy.peak_ewma().filter(|_| load.waiting() > 0);
        e.state.call_ended(timed.is_some());
        load.given_up(
            nanos(now),
            timed.map(|config| {
                let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
                (age, config.decay_ns())
            }),
        );
    }

    /// Calls in flight on endpoint `i`.
    pub fn in_flight(&self, i: usize) -> u32 {
        self.set
            .ready
            .get(i)
            .map_or(0, |e| e.state.load.in_flight())
    }
}

impl std::fmt::Debug for Picker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picker")
            .field("endpoints", &self.len())
            .field("policy", &self.policy)
            .finish()
    }
}

/// Nanoseconds on the caller's clock.
fn nanos(now: Duration) -> u64 {
    u64::try_from(now.as_nanos()).unwrap_or(u64::MAX)
}
