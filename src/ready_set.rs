//! The ready set: the immutable snapshot every call picks from, and the state the balancer's
//! clones share with the control task.
//!
//! The control task builds a new [`ReadySet`] on every change and swaps it in atomically
//! (`arc-swap`); callers load it without a lock and without touching a reference count on the
//! fast path.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, oneshot};

use crate::discover::Endpoint;
use crate::endpoint::EndpointState;
use crate::error::Unready;
use crate::limits::WaitingCalls;
use crate::policy::{Plan, Policy};
use crate::retry_budget::{Budget, RetryBudget};
use crate::status::Snapshot;

/// One endpoint that can take calls now.
pub(crate) struct ReadyEndpoint<T> {
    pub(crate) channel: T,
    pub(crate) state: Arc<EndpointState>,
    pub(crate) weight: u32,
}

/// A snapshot of the endpoint set.
pub(crate) struct ReadySet<T> {
    /// Endpoints with a live connection, in key order.
    pub(crate) ready: Box<[ReadyEndpoint<T>]>,
    /// Every endpoint discovery knows of, as discovery describes it, in key order.
    pub(crate) all: Box<[(Arc<EndpointState>, Endpoint)]>,
    /// Why nothing is ready, for the error of a call that finds `ready` empty.
    pub(crate) why: Unready,
    /// The policy's precomputed state for `ready`.
    pub(crate) plan: Plan,
    /// The priority tier of `ready`.
    pub(crate) tier: Option<u32>,
    /// Whether `ready` was chosen in panic mode.
    pub(crate) panic: bool,
    /// Endpoints on standby beyond the endpoint limit.
    pub(crate) standby: usize,
}

impl<T> ReadySet<T> {
    pub(crate) fn empty(why: Unready) -> Self {
        ReadySet {
            ready: Box::new([]),
            all: Box::new([]),
            why,
            plan: Plan::default(),
            tier: None,
            panic: false,
            standby: 0,
        }
    }
}

/// Settings the request path reads.
#[derive(Debug, Clone)]
pub(crate) struct CallConfig {
    pub(crate) policy: Policy,
    pub(crate) ready_timeout: Duration,
    pub(crate) max_unsent_retries: u32,
    pub(crate) max_waiting_calls: usize,
}

/// What all clones of one balancer share.
pub(crate) struct Shared<T> {
    pub(crate) set: ArcSwap<ReadySet<T>>,
    /// Woken on every new snapshot, for calls waiting for a ready endpoint.
    pub(crate) changed: Notify,
    pub(crate) config: CallConfig,
    /// Calls waiting for a ready endpoint now.
    pub(crate) waiting: WaitingCalls,
    /// Transparent retries left.
    pub(crate) budget: Budget,
    /// Dropped with the last clone (and the last call in flight): tells the control task to stop.
    _stop: oneshot::Sender<()>,
}

impl<T> Shared<T> {
    pub(crate) fn new(
        config: CallConfig,
        budget: RetryBudget,
        stop: oneshot::Sender<()>,
        why: Unready,
    ) -> Self {
        Shared {
            set: ArcSwap::from_pointee(ReadySet::empty(why)),
            changed: Notify::new(),
            config,
            waiting: WaitingCalls::default(),
            budget: Budget::new(budget),
            _stop: stop,
        }
    }

    /// Swaps in a new snapshot and wakes the calls waiting for one.
    pub(crate) fn publish(&self, set: ReadySet<T>) {
        self.set.store(Arc::new(set));
        self.changed.notify_waiters();
    }

    /// A view of the balancer as the current snapshot and the endpoints' counters show it.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.snapshot_of(&self.set.load())
    }

    /// A view of the balancer as `set` and the endpoints' counters show it.
    pub(crate) fn snapshot_of(&self, set: &ReadySet<T>) -> Snapshot {
        let decay = self
            .config
            .policy
            .peak_ewma()
            .unwrap_or_default()
            .decay_ns();
        Snapshot::read(set, decay, self.waiting.len(), self.budget.totals())
    }
}
