//! The ready set: the one place where the two paths meet, as tower's `buffer` request side and
//! worker meet in one message type.
//!
//! The control path (`registry`) builds a new [`ReadySet`] on every change and [publishes]
//! it into [`Shared`] (an atomic swap, `arc-swap`); the request path (`balancer`) loads it
//! without a lock and without touching a reference count on the fast path, and picks from it.
//! Neither path imports the other.
//!
//! [publishes]: Shared::publish

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, oneshot};

use rand::RngCore;

use crate::discover::Endpoint;
use crate::endpoint::{EndpointState, ReadyEndpoint};
use crate::error::Unready;
use crate::limits::WaitingCalls;
use crate::method_config::{MethodTable, RetryThrottling, Throttle};
use crate::policy::{Call, PickState, Plan, Policy};
use crate::retry_budget::{Budget, RetryBudget};
use crate::transport::EndpointChannel;

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
    /// The discovery stream's last error and when it came, until it delivers a change.
    pub(crate) discovery_error: Option<(String, tokio::time::Instant)>,
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
            discovery_error: None,
        }
    }
}

impl<T: EndpointChannel> ReadySet<T> {
    /// Which ready endpoint `policy` picks for `call`; `None` only when none is ready.
    #[inline]
    pub(crate) fn pick<R: RngCore>(
        &self,
        policy: &Policy,
        call: Call<'_>,
        state: &mut PickState<R>,
    ) -> Option<&ReadyEndpoint<T>> {
        let i = policy.pick(&self.ready, &self.plan, call, state)?;
        self.ready.get(i)
    }
}

/// Settings the request path reads.
#[derive(Debug, Clone)]
pub(crate) struct CallConfig {
    pub(crate) policy: Policy,
    pub(crate) ready_timeout: Duration,
    /// The deadline of a call without a shorter `grpc-timeout` of its own.
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_unsent_retries: u32,
    pub(crate) max_waiting_calls: usize,
    /// Per-method settings; empty unless set.
    pub(crate) methods: MethodTable,
    /// The largest request body buffered for a retry or hedge.
    pub(crate) retry_buffer_limit: usize,
}

/// What the calls with a retry or hedging policy did, since the balancer was built.
#[derive(Debug, Default)]
pub(crate) struct AttemptCounters {
    /// Attempts after the first, of calls with a retry policy.
    pub(crate) retries: AtomicU64,
    /// Attempts after the first, of calls with a hedging policy.
    pub(crate) hedges: AtomicU64,
    /// Further attempts not made because retry throttling or the retry budget refused them.
    pub(crate) throttled: AtomicU64,
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
    /// A6 retry throttling, when set.
    pub(crate) throttle: Option<Throttle>,
    /// Attempts of calls with a retry or hedging policy.
    pub(crate) attempts: AttemptCounters,
    /// Dropped with the last clone (and the last call in flight): tells the control task to stop.
    _stop: oneshot::Sender<()>,
}

impl<T> Shared<T> {
    pub(crate) fn new(
        config: CallConfig,
        budget: RetryBudget,
        throttling: Option<RetryThrottling>,
        stop: oneshot::Sender<()>,
        why: Unready,
    ) -> Self {
        Shared {
            set: ArcSwap::from_pointee(ReadySet::empty(why)),
            changed: Notify::new(),
            config,
            waiting: WaitingCalls::default(),
            budget: Budget::new(budget),
            throttle: throttling.map(Throttle::new),
            attempts: AttemptCounters::default(),
            _stop: stop,
        }
    }

    /// Swaps in a new snapshot and wakes the calls waiting for one; returns the one it
    /// replaced (which the control task takes apart for the next, when no call holds it).
    pub(crate) fn publish(&self, set: ReadySet<T>) -> Arc<ReadySet<T>> {
        let old = self.set.swap(Arc::new(set));
        self.changed.notify_waiters();
        old
    }
}
