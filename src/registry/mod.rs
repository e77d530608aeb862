//! The control task: one per balancer. It consumes discovery, runs each endpoint's connection
//! task (and health check), judges endpoint health, and publishes a new ready-set snapshot
//! whenever something changed.
//!
//! * `mod.rs`: the loop, discovery changes and connection events;
//! * `health.rs`: ejections and their returns, health-check verdicts, the outlier interval;
//! * `snapshot.rs`: from entries to a snapshot (tiers, panic mode, slow start).
//!
//! It holds only a weak reference to the shared state, and stops when the last balancer clone
//! (and the last call in flight) is gone. Stopping aborts the connection tasks; connections
//! already made close once their in-flight calls end.

mod health;
mod snapshot;

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::{Arc, Weak};

use futures_core::Stream;
use futures_util::{FutureExt, StreamExt};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::mpsc;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::builder::OnAllUnreachable;
use crate::discover::{Change, Endpoint, Key};
use crate::endpoint::{Backoff, Dialer, EndpointDefaults, EndpointState, Event, spawn_connection};
use crate::error::BoxError;
use crate::health::passive::Passive;
use crate::health::{HealthConfig, Signal};
use crate::limits::Limits;
use crate::policy::Policy;
use crate::ready_set::Shared;
use crate::transport::Connector;

pub(crate) use health::CheckState;

/// Most changes taken from one wake-up before a snapshot goes out, so a flood of discovery
/// changes cannot starve connection events.
const MAX_BATCH: usize = 1024;

struct Entry<T> {
    endpoint: Endpoint,
    state: Arc<EndpointState>,
    generation: u64,
    task: JoinHandle<()>,
    channel: Option<T>,
    last_error: Option<String>,
    /// Outlier detection's view of it.
    ejection: health::Ejection,
    /// Active health checking's view of it.
    check: CheckState,
    /// Since when it has been healthy and ready (slow start), `None` while it is not.
    joined: Option<Instant>,
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        self.task.abort();
        self.check.stop();
    }
}

pub(crate) struct Registry<C: Connector> {
    dialer: Arc<Dialer<C>>,
    policy: Policy,
    defaults: EndpointDefaults,
    health: HealthConfig,
    entries: BTreeMap<Key, Entry<C::Channel>>,
    /// Endpoints offered beyond `max_endpoints`, in key order: they join as others leave.
    standby: BTreeMap<Key, Endpoint>,
    /// Endpoints refused outright (the standby list was full too), for the log.
    refused: u64,
    max_endpoints: usize,
    next_generation: u64,
    events_tx: mpsc::UnboundedSender<Event<C::Channel>>,
    /// For health checks' verdicts.
    #[cfg_attr(not(feature = "health"), allow(dead_code))]
    signals_tx: mpsc::UnboundedSender<Signal>,
    last_error: Option<String>,
    on_all_unreachable: Option<OnAllUnreachable>,
    all_unreachable: bool,
    /// Whether the last snapshot was in panic mode.
    panic: bool,
    /// When the outlier statistics run next.
    next_interval: Instant,
    /// When the next slow-start step is published, while an endpoint ramps.
    ramp_at: Option<Instant>,
    /// For pick-first: the endpoint the last snapshot sent calls to, first again while ready.
    stay_on: Option<Key>,
    rng: SmallRng,
}

/// The receiving ends the control loop reads.
pub(crate) struct Inbox<T> {
    events: mpsc::UnboundedReceiver<Event<T>>,
    signals: mpsc::UnboundedReceiver<Signal>,
}

impl<C: Connector> Registry<C> {
    pub(crate) fn new(
        connector: C,
        policy: Policy,
        backoff: Backoff,
        limits: Limits,
        health: HealthConfig,
        on_all_unreachable: Option<OnAllUnreachable>,
    ) -> (Self, Inbox<C::Channel>) {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let outlier = &health.outlier;
        let eject_after = outlier
            .enabled
            .then_some(outlier.consecutive_failures)
            .flatten();
        let passive = Arc::new(Passive::new(
            health.failures,
            eject_after,
            health.breaker,
            signals_tx.clone(),
        ));
        let registry = Registry {
            dialer: Arc::new(Dialer {
                connector,
                backoff,
                slots: Arc::new(Semaphore::new(limits.max_connecting)),
            }),
            defaults: EndpointDefaults::new(&policy, health.breaker.max_in_flight, passive),
            next_interval: Instant::now() + health.outlier.interval,
            health,
            policy,
            entries: BTreeMap::new(),
            standby: BTreeMap::new(),
            refused: 0,
            max_endpoints: limits.max_endpoints,
            next_generation: 0,
            events_tx,
            signals_tx,
            last_error: None,
            on_all_unreachable,
            all_unreachable: false,
            panic: false,
            ramp_at: None,
            stay_on: None,
            rng: SmallRng::seed_from_u64(crate::endpoint::load::now_ns()),
        };
        (registry, Inbox { events, signals })
    }

    /// Runs until the balancer is dropped.
    pub(crate) async fn run<D, E>(
        mut self,
        mut inbox: Inbox<C::Channel>,
        discovery: D,
        shared: Weak<Shared<C::Channel>>,
        mut stop: oneshot::Receiver<()>,
    ) where
        D: Stream<Item = Result<Change, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let mut discovery = pin!(discovery);
        let mut discovering = true;
        loop {
            let timer = self.next_timer();
            let mut dirty = tokio::select! {
                biased;
                _ = &mut stop => break,
                Some(event) = inbox.events.recv() => self.on_event(event),
                Some(signal) = inbox.signals.recv() => self.on_signal(signal),
                change = discovery.next(), if discovering => self.on_discovery(change, &mut discovering),
                _ = sleep_until(timer), if timer.is_some() => self.on_timer(),
            };
            // Take whatever else is already waiting, then publish once.
            for _ in 0..MAX_BATCH {
                let Ok(event) = inbox.events.try_recv() else {
                    break;
                };
                dirty |= self.on_event(event);
            }
            for _ in 0..MAX_BATCH {
                let Ok(signal) = inbox.signals.try_recv() else {
                    break;
                };
                dirty |= self.on_signal(signal);
            }
            while discovering {
                let Some(change) = discovery.next().now_or_never() else {
                    break;
                };
                dirty |= self.on_discovery(change, &mut discovering);
            }
            if dirty {
                let Some(shared) = shared.upgrade() else {
                    break;
                };
                let snapshot = self.snapshot();
                shared.publish(snapshot);
                self.check_all_unreachable();
            }
            // While nothing can connect, every failed attempt (each wake-up) asks again.
            if self.all_unreachable
                && let Some(hook) = &self.on_all_unreachable
            {
                hook();
            }
        }
        tracing::debug!(
            endpoints = self.entries.len(),
            "balancer dropped; control task stops"
        );
    }

    fn on_discovery<E: Into<BoxError>>(
        &mut self,
        change: Option<Result<Change, E>>,
        discovering: &mut bool,
    ) -> bool {
        match change {
            Some(Ok(Change::Insert(key, endpoint))) => self.insert(key, endpoint),
            Some(Ok(Change::Remove(key))) => self.remove(&key),
            Some(Err(e)) => {
                let e: BoxError = e.into();
                tracing::warn!(error = %e, "discovery error; keeping the current endpoint set");
                false
            }
            None => {
                *discovering = false;
                tracing::info!(
                    endpoints = self.entries.len(),
                    "discovery stream ended; keeping the current endpoint set"
                );
                false
            }
        }
    }

    fn insert(&mut self, key: Key, endpoint: Endpoint) -> bool {
        if let Some(entry) = self.entries.get_mut(&key) {
            // A new server name is a new TLS peer identity: the connection made under the
            // old name must not carry on, so it reconnects like a new address.
            if entry.endpoint.addr() == endpoint.addr()
                && entry.endpoint.server_name() == endpoint.server_name()
            {
                if entry.endpoint == endpoint {
                    return false;
                }
                tracing::debug!(endpoint = %key, weight = endpoint.weight(), priority = endpoint.priority(), "weight or priority updated");
                entry.endpoint = endpoint;
                return true;
            }
            tracing::info!(endpoint = %key, from = %entry.endpoint.addr(), to = %endpoint.addr(), from_name = entry.endpoint.server_name(), to_name = endpoint.server_name(), "address or server name changed; reconnecting");
        } else if self.entries.len() >= self.max_endpoints {
            return self.hold_back(key, endpoint);
        } else {
            self.standby.remove(&key);
            tracing::info!(endpoint = %key, addr = %endpoint.addr(), weight = endpoint.weight(), priority = endpoint.priority(), "endpoint added");
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let state = Arc::new(EndpointState::new(
            key.clone(),
            endpoint.addr(),
            &self.defaults,
        ));
        let task = spawn_connection(
            self.dialer.clone(),
            key.clone(),
            generation,
            endpoint.clone(),
            state.clone(),
            self.events_tx.clone(),
        );
        // Replacing an entry drops the old one, which aborts its connection task.
        let entry = Entry {
            endpoint,
            state,
            generation,
            task,
            channel: None,
            last_error: None,
            ejection: health::Ejection::default(),
            check: CheckState::default(),
            joined: None,
        };
        if let Some(old) = self.entries.insert(key, entry) {
            self.retire(&old);
        }
        self.update_ejection_cap();
        true
    }

    /// Removes an endpoint, or forgets it if it waited on standby; room made lets the first
    /// standby endpoint join.
    fn remove(&mut self, key: &Key) -> bool {
        if self.standby.remove(key).is_some() {
            return true;
        }
        match self.entries.remove(key) {
            Some(entry) => {
                tracing::info!(endpoint = %key, addr = %entry.endpoint.addr(), in_flight = entry.state.load.in_flight(), "endpoint removed; draining in-flight calls");
                self.retire(&entry);
                self.update_ejection_cap();
                self.promote_standby();
                true
            }
            None => {
                tracing::warn!(endpoint = %key, "discovery removed an unknown endpoint; ignored");
                false
            }
        }
    }

    /// An endpoint beyond `max_endpoints`: on standby while there is room (as many again),
    /// with a warning when it first goes there; else dropped, with a warning each time.
    fn hold_back(&mut self, key: Key, endpoint: Endpoint) -> bool {
        let max = self.max_endpoints;
        if self.standby.contains_key(&key) || self.standby.len() < max {
            if self.standby.insert(key.clone(), endpoint).is_none() {
                tracing::warn!(endpoint = %key, max_endpoints = max, standby = self.standby.len(), "endpoint limit reached; endpoint on standby until another leaves");
            }
            return true;
        }
        self.refused += 1;
        tracing::warn!(endpoint = %key, max_endpoints = max, refused = self.refused, "endpoint limit reached and the standby list is full; endpoint dropped");
        false
    }

    /// Room was made: the first endpoint on standby (in key order) joins.
    fn promote_standby(&mut self) {
        if self.entries.len() < self.max_endpoints
            && let Some((key, endpoint)) = self.standby.pop_first()
        {
            tracing::info!(endpoint = %key, standby = self.standby.len(), "endpoint joins from standby");
            self.insert(key, endpoint);
        }
    }

    fn on_event(&mut self, event: Event<C::Channel>) -> bool {
        match event {
            Event::Up {
                key,
                generation,
                channel,
            } => {
                let (state, epoch) = match self.entries.get(&key) {
                    Some(e) if e.generation == generation => {
                        (e.state.clone(), e.check.next_epoch())
                    }
                    _ => return false,
                };
                let check = self.health_check_for(&key, &state, &channel, epoch);
                let Some(entry) = self.entries.get_mut(&key) else {
                    return false;
                };
                entry.last_error = None;
                entry.check.start(check, &state);
                entry.channel = Some(channel);
                true
            }
            Event::Down {
                key,
                generation,
                error,
            } => match self.entries.get_mut(&key) {
                Some(entry) if entry.generation == generation => {
                    let was_ready = entry.channel.take().is_some();
                    entry.check.stop();
                    let first_failure = entry.last_error.is_none();
                    if let Some(e) = &error {
                        self.last_error = Some(format!("{}: {e}", entry.endpoint.addr()));
                    }
                    entry.last_error = error;
                    // A first failure changes what a failing call reports; repeated failures
                    // of an endpoint already down do not need a new snapshot.
                    was_ready || first_failure
                }
                _ => false,
            },
        }
    }

    /// Whether every discovered endpoint has failed its last connection attempt (checked with
    /// each new snapshot; repeated failures of endpoints already down change nothing).
    fn check_all_unreachable(&mut self) {
        let all_failed = !self.entries.is_empty()
            && self
                .entries
                .values()
                .all(|e| e.channel.is_none() && e.last_error.is_some());
        if all_failed && !self.all_unreachable {
            tracing::warn!(
                endpoints = self.entries.len(),
                "every endpoint is unreachable"
            );
        }
        self.all_unreachable = all_failed;
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
