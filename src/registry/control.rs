//! The control loop: discovery changes, connection events, signals from calls and health
//! checks, and timers in; a new ready set out after each batch that changed something.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::{Arc, Weak};

use futures_core::Stream;
use futures_util::{FutureExt, StreamExt};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::mpsc;
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

use super::connection::{Dialer, Event};
use super::entry::Entry;
use super::pacing::Pacer;
use super::published::Published;
use super::task::OwnedTask;
use crate::discover::{Change, Endpoint, Key};
use crate::endpoint::{EndpointDefaults, Passive, Signal};
use crate::error::BoxError;
use crate::health::HealthConfig;
use crate::limits::Limits;
use crate::policy::{Policy, ProbePool};
use crate::ready_set::Shared;
use crate::time::{Backoff, now_ns};
use crate::transport::Connector;

/// Most changes taken from one wake-up before a snapshot goes out, so a flood of discovery
/// changes cannot starve connection events.
const MAX_BATCH: usize = 1024;

/// A turn of the loop this long or longer yields before the next.
const LONG_TURN: std::time::Duration = std::time::Duration::from_millis(1);

/// A hook run by the control task when every discovered endpoint has failed to connect.
pub(crate) type OnAllUnreachable = Arc<dyn Fn() + Send + Sync>;

/// The control task's state: every endpoint discovery listed, and what it needs to keep
/// them connected, judged and published.
pub(crate) struct Registry<C: Connector> {
    pub(super) dialer: Arc<Dialer<C>>,
    pub(super) policy: Policy,
    pub(super) defaults: EndpointDefaults,
    pub(super) health: HealthConfig,
    pub(super) entries: BTreeMap<Key, Entry<C::Channel>>,
    /// Endpoints offered beyond `max_endpoints`, in key order: they join as others leave.
    pub(super) standby: BTreeMap<Key, Endpoint>,
    /// Endpoints refused outright (the standby list was full too), for the log.
    pub(super) refused: u64,
    pub(super) max_endpoints: usize,
    pub(super) next_generation: u64,
    pub(super) events_tx: mpsc::UnboundedSender<Event<C::Channel>>,
    /// For health checks' verdicts.
    #[cfg_attr(not(feature = "health"), allow(dead_code))]
    pub(super) signals_tx: mpsc::UnboundedSender<Signal>,
    pub(super) last_error: Option<String>,
    pub(super) on_all_unreachable: Option<OnAllUnreachable>,
    pub(super) all_unreachable: bool,
    /// Whether the last snapshot was in panic mode.
    pub(super) panic: bool,
    /// When the outlier statistics run next.
    pub(super) next_interval: Instant,
    /// When the next slow-start step is published, while an endpoint ramps.
    pub(super) ramp_at: Option<Instant>,
    /// For pick-first: the endpoint the last snapshot sent calls to, first again while ready.
    pub(super) stay_on: Option<Key>,
    pub(super) rng: SmallRng,
    /// When the next ready set may go out.
    pub(super) publish: Pacer,
    /// Whether discovery has answered at all (a change, an error or its end): until then an
    /// empty set is "discovering", not "no endpoints discovered".
    pub(super) discovery_answered: bool,
    /// The discovery stream's last error and when it came, until it delivers a change (shown
    /// in the snapshot).
    pub(super) discovery_error: Option<(String, Instant)>,
    /// When weighted round robin next recomputes its weights (a publish rebuilds the plan).
    pub(super) reweigh_at: Option<Instant>,
    /// Prequal's probe pool, which every plan shares.
    pub(super) probes: Option<Arc<ProbePool>>,
    /// What the last publishes left for the next.
    pub(super) published: Published<C::Channel>,
}

/// The receiving ends the control loop reads.
pub(crate) struct Inbox<T> {
    pub(super) events: mpsc::UnboundedReceiver<Event<T>>,
    pub(super) signals: mpsc::UnboundedReceiver<Signal>,
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
        let reweigh_at = policy
            .wrr_settings()
            .map(|w| Instant::now() + w.update_period());
        let registry = Registry {
            dialer: Arc::new(Dialer {
                connector,
                backoff,
                slots: Arc::new(Semaphore::new(limits.max_connecting)),
            }),
            defaults: policy.endpoint_defaults(health.breaker.max_in_flight, passive),
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
            rng: SmallRng::seed_from_u64(now_ns()),
            publish: Pacer::default(),
            discovery_answered: false,
            discovery_error: None,
            reweigh_at,
            probes: None,
            published: Published::default(),
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
        // Prequal's probes run beside this loop and stop with it.
        let _probing = self.policy.prequal_settings().map(|config| {
            let pool = Arc::new(ProbePool::default());
            self.probes = Some(pool.clone());
            OwnedTask::spawn(super::load_probes::run(shared.clone(), pool, config))
        });
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
            let woke = Instant::now();
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
            for _ in 0..MAX_BATCH {
                if !discovering {
                    break;
                }
                let Some(change) = discovery.next().now_or_never() else {
                    break;
                };
                dirty |= self.on_discovery(change, &mut discovering);
            }
            if dirty {
                self.publish.changed();
            }
            if self.publish.due_now(Instant::now()) {
                let Some(shared) = shared.upgrade() else {
                    break;
                };
                let started = Instant::now();
                let old = shared.publish(self.ready_set());
                self.reclaim(old);
                self.check_all_unreachable();
                self.publish.published(started);
            }
            // While nothing can connect, every failed attempt (each wake-up) asks again.
            if self.all_unreachable
                && let Some(hook) = &self.on_all_unreachable
            {
                hook();
            }
            // A long turn (a big batch, a publish of a large set) gives the worker back before
            // the next: on a one-worker runtime, the calls and timers beside this task run.
            if woke.elapsed() >= LONG_TURN {
                tokio::task::yield_now().await;
            }
        }
        tracing::debug!(
            endpoints = self.entries.len(),
            "balancer dropped; control task stops"
        );
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
                if let Some(reported) = &state.reported {
                    // A58: a weight is used again only after a new blackout period.
                    reported.became_ready();
                }
                // A new stream over the new connection; the old one's stops.
                entry.reports = self.policy.out_of_band_interval().map(|interval| {
                    OwnedTask::spawn(super::out_of_band::run(
                        channel.clone(),
                        state.clone(),
                        interval,
                    ))
                });
                entry.channel = Some(channel);
                self.touch(&key);
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
                    entry.reports = None;
                    let first_failure = entry.last_error.is_none();
                    if let Some(e) = &error {
                        self.last_error = Some(format!("{}: {e}", entry.endpoint.addr()));
                    }
                    entry.last_error = error;
                    // A first failure changes what a failing call reports; repeated failures
                    // of an endpoint already down do not need a new snapshot.
                    let changed = was_ready || first_failure;
                    if changed {
                        self.touch(&key);
                    }
                    changed
                }
                _ => false,
            },
        }
    }

    /// Whether every discovered endpoint has failed its last connection attempt (checked with
    /// each new snapshot; repeated failures of endpoints already down change nothing).
    fn check_all_unreachable(&mut self) {
        let all_failed = self.all_failed();
        if all_failed && !self.all_unreachable {
            tracing::warn!(
                endpoints = self.entries.len(),
                "every endpoint is unreachable"
            );
        }
        self.all_unreachable = all_failed;
    }

    /// Runs the timers that are due: the outlier interval, ejections ending, a slow-start step.
    /// (A publish waiting for its turn needs nothing here: the loop publishes when it is due.)
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
        if let (Some(at), Some(wrr)) = (self.reweigh_at, self.policy.wrr_settings())
            && now >= at
        {
            // The publish this causes rebuilds the schedule from the reported weights.
            self.reweigh_at = Some(now + wrr.update_period());
            dirty |= !self.entries.is_empty();
        }
        dirty
    }

    /// When the next timer is due, if any.
    pub(super) fn next_timer(&self) -> Option<Instant> {
        let interval =
            (self.health.outlier.enabled && !self.entries.is_empty()).then_some(self.next_interval);
        // Ejection ends are looked for only while something is ejected: the loop asks for
        // its timer on every wake-up, and a scan of every entry each time is O(N²) overall.
        let ejected = self.defaults.passive.ejections.ejected() > 0;
        let returns = self
            .entries
            .values()
            .take(if ejected { usize::MAX } else { 0 })
            .filter_map(|e| e.ejection.until);
        interval
            .into_iter()
            .chain(returns)
            .chain(self.ramp_at)
            .chain(self.reweigh_at)
            .chain(self.publish.due(Instant::now()))
            .min()
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
