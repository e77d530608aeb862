//! The control task: one per balancer. It consumes discovery, runs each endpoint's connection
//! task, and publishes a new ready-set snapshot whenever something changed.
//!
//! It holds only a weak reference to the shared state, and stops when the last balancer clone
//! (and the last call in flight) is gone. Stopping aborts the connection tasks; connections
//! already made close once their in-flight calls end.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

use futures_core::Stream;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::builder::OnAllUnreachable;
use crate::discover::{Change, Endpoint, Key};
use crate::endpoint::{Backoff, EndpointState, Event, spawn_connection};
use crate::error::{BoxError, Unready};
use crate::policy::{Plan, Policy};
use crate::ready_set::{ReadyEndpoint, ReadySet, Shared};
use crate::transport::Connector;

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
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) struct Registry<C: Connector> {
    connector: Arc<C>,
    policy: Policy,
    backoff: Backoff,
    initial_rtt: std::time::Duration,
    /// Calls in flight on all endpoints, counted only when the policy has bounded loads.
    in_flight: Option<Arc<AtomicU64>>,
    entries: BTreeMap<Key, Entry<C::Channel>>,
    next_generation: u64,
    events_tx: mpsc::UnboundedSender<Event<C::Channel>>,
    last_error: Option<String>,
    on_all_unreachable: Option<OnAllUnreachable>,
    all_unreachable: bool,
}

impl<C: Connector> Registry<C> {
    pub(crate) fn new(
        connector: C,
        policy: Policy,
        backoff: Backoff,
        on_all_unreachable: Option<OnAllUnreachable>,
    ) -> (Self, mpsc::UnboundedReceiver<Event<C::Channel>>) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let registry = Registry {
            connector: Arc::new(connector),
            backoff,
            initial_rtt: policy.initial_rtt(),
            in_flight: policy.total_in_flight_counter(),
            policy,
            entries: BTreeMap::new(),
            next_generation: 0,
            events_tx,
            last_error: None,
            on_all_unreachable,
            all_unreachable: false,
        };
        (registry, events_rx)
    }

    /// Runs until the balancer is dropped.
    pub(crate) async fn run<D, E>(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event<C::Channel>>,
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
            let mut dirty = tokio::select! {
                biased;
                _ = &mut stop => break,
                Some(event) = events.recv() => self.on_event(event),
                change = discovery.next(), if discovering => self.on_discovery(change, &mut discovering),
            };
            // Take whatever else is already waiting, then publish once.
            for _ in 0..MAX_BATCH {
                let Ok(event) = events.try_recv() else { break };
                dirty |= self.on_event(event);
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
                shared.publish(self.snapshot());
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
            if entry.endpoint.addr() == endpoint.addr() {
                if entry.endpoint == endpoint {
                    return false;
                }
                tracing::debug!(endpoint = %key, weight = endpoint.weight(), priority = endpoint.priority(), "weight or priority updated");
                entry.endpoint = endpoint;
                return true;
            }
            tracing::info!(endpoint = %key, from = %entry.endpoint.addr(), to = %endpoint.addr(), "address changed; reconnecting");
        } else {
            tracing::info!(endpoint = %key, addr = %endpoint.addr(), weight = endpoint.weight(), priority = endpoint.priority(), "endpoint added");
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let state = Arc::new(EndpointState::new(
            key.clone(),
            endpoint.addr(),
            self.initial_rtt,
            self.in_flight.clone(),
        ));
        let task = spawn_connection(
            self.connector.clone(),
            key.clone(),
            generation,
            endpoint.clone(),
            state.clone(),
            self.backoff,
            self.events_tx.clone(),
        );
        // Replacing an entry drops the old one, which aborts its connection task.
        self.entries.insert(
            key,
            Entry {
                endpoint,
                state,
                generation,
                task,
                channel: None,
                last_error: None,
            },
        );
        true
    }

    fn remove(&mut self, key: &Key) -> bool {
        match self.entries.remove(key) {
            Some(entry) => {
                tracing::info!(endpoint = %key, addr = %entry.endpoint.addr(), in_flight = entry.state.load.in_flight(), "endpoint removed; draining in-flight calls");
                true
            }
            None => {
                tracing::warn!(endpoint = %key, "discovery removed an unknown endpoint; ignored");
                false
            }
        }
    }

    fn on_event(&mut self, event: Event<C::Channel>) -> bool {
        match event {
            Event::Up {
                key,
                generation,
                channel,
            } => match self.entries.get_mut(&key) {
                Some(entry) if entry.generation == generation => {
                    entry.channel = Some(channel);
                    entry.last_error = None;
                    true
                }
                _ => false,
            },
            Event::Down {
                key,
                generation,
                error,
            } => match self.entries.get_mut(&key) {
                Some(entry) if entry.generation == generation => {
                    let was_ready = entry.channel.take().is_some();
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

    fn snapshot(&self) -> ReadySet<C::Channel> {
        // Calls go to the best priority tier that has a ready endpoint; lower tiers wait.
        let tier = self
            .entries
            .values()
            .filter(|e| e.channel.is_some())
            .map(|e| e.endpoint.priority())
            .min();
        let ready: Box<[_]> = self
            .entries
            .values()
            .filter(|e| Some(e.endpoint.priority()) == tier)
            .filter_map(|e| {
                e.channel.as_ref().map(|channel| ReadyEndpoint {
                    channel: channel.clone(),
                    state: e.state.clone(),
                    weight: e.endpoint.weight(),
                })
            })
            .collect();
        let all = self
            .entries
            .values()
            .map(|e| (e.state.clone(), e.endpoint.clone()))
            .collect();
        let why = if self.entries.is_empty() {
            Unready::NoEndpointsDiscovered
        } else {
            Unready::AllUnreachable {
                discovered: self.entries.len(),
                connecting: self
                    .entries
                    .values()
                    .filter(|e| e.channel.is_none() && e.last_error.is_none())
                    .count(),
                last_error: self.last_error.clone(),
            }
        };
        let plan = Plan::build(&self.policy, &ready, self.in_flight.clone());
        ReadySet {
            ready,
            all,
            why,
            plan,
        }
    }
}
