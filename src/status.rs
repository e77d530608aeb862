//! Read-only views of a balancer, for dashboards, metrics and tests: the whole balancer
//! ([`Snapshot`]) and each endpoint in it ([`EndpointStatus`]).
//!
//! Reading them costs the request path nothing: they are built from the published ready set
//! and the endpoints' own atomic counters, the same ones the picker reads.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::discover::{Endpoint, Key};
use crate::endpoint::{ConnectionState, EndpointState};
use crate::error::Unready;
use crate::health::{BreakerState, Health};
use crate::orca::LoadReport;
use crate::policy::WeightedRoundRobin;
use crate::ready_set::{ReadySet, Shared};
use crate::retry_budget::BudgetTotals;
use crate::time::now_ns;

/// A point-in-time view of a whole balancer: every endpoint discovery knows of, which of
/// them take calls, the tier in use and whether panic mode is on.
///
/// Returned by [`Balancer::snapshot`](crate::Balancer::snapshot). The endpoints are read one
/// after another, not all at one instant, so counts taken while calls run may be a few calls
/// apart from each other.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_lb::Error> {
/// use tower_lb::{Balancer, discover};
///
/// let balancer = Balancer::builder().build(discover::fixed(vec![]))?;
/// let snapshot = balancer.snapshot();
/// assert_eq!(snapshot.ready, 0);
/// assert!(snapshot.endpoints.is_empty());
/// assert!(!snapshot.panic);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Every endpoint discovery knows of, in key order.
    pub endpoints: Vec<EndpointStatus>,
    /// How many endpoints take calls now (those with [`EndpointStatus::ready`] set).
    pub ready: usize,
    /// The priority tier calls go to: the best one with a healthy endpoint. `None` when no
    /// endpoint can take calls.
    pub tier: Option<u32>,
    /// Whether panic mode is on: too few endpoints of the tier are healthy, so endpoints held
    /// out by their health checks take calls too (see
    /// [`Builder::panic_threshold`](crate::Builder::panic_threshold)).
    pub panic: bool,
    /// Why no endpoint can take calls, when none can: what a call that finds none fails with.
    pub unready: Option<Unready>,
    /// Endpoints discovery offered beyond [`Limits::max_endpoints`](crate::Limits), waiting
    /// on standby for others to leave.
    pub standby: usize,
    /// The discovery stream's last error (a resolver or registry that could not be reached,
    /// an answer it could not use): the endpoints above are the last good set, kept. Cleared
    /// when the stream next delivers a change; a source that recovers with nothing to change
    /// leaves it, so read it with [`discovery_error_age`](Self::discovery_error_age).
    pub discovery_error: Option<String>,
    /// How long ago [`discovery_error`](Self::discovery_error) came.
    pub discovery_error_age: Option<std::time::Duration>,
    /// Calls waiting now for a ready endpoint.
    pub waiting: usize,
    /// Retries the [`RetryBudget`](crate::RetryBudget) allowed since the balancer was built:
    /// transparent ones (requests handed back unsent, failed dials) and the attempts after
    /// the first of calls with a retry or hedging policy.
    pub retries: u64,
    /// Transparent retries not made because the [`RetryBudget`](crate::RetryBudget) was spent.
    pub retries_refused: u64,
    /// Attempts after the first of calls with a [retry policy](crate::method_config::RetryPolicy).
    pub configured_retries: u64,
    /// Attempts after the first of calls with a [hedging policy](crate::method_config::HedgingPolicy).
    pub hedged_attempts: u64,
    /// Further attempts of calls with a retry or hedging policy not made because
    /// [retry throttling](crate::method_config::RetryThrottling) or the retry budget refused.
    pub retries_throttled: u64,
    /// Endpoints whose health check says the server does not know the checked service
    /// ([`Health::ServiceUnknown`](crate::health::Health::ServiceUnknown)): a configuration
    /// error. Non-zero together with [`panic`](Self::panic) means calls are going to endpoints
    /// the health check could not vouch for because it asks for the wrong service.
    pub service_unknown: usize,
}

impl Snapshot {
    /// The balancer as its current ready set and the endpoints' counters show it.
    pub(crate) fn of<T>(shared: &Shared<T>) -> Self {
        Snapshot::of_set(shared, &shared.set.load())
    }

    /// The balancer as `set` and the endpoints' counters show it.
    pub(crate) fn of_set<T>(shared: &Shared<T>, set: &ReadySet<T>) -> Self {
        let decay = shared
            .config
            .policy
            .peak_ewma()
            .unwrap_or_default()
            .decay_ns();
        let wrr = shared.config.policy.wrr_settings();
        let mut snapshot = Snapshot::read(
            set,
            decay,
            wrr,
            shared.waiting.len(),
            shared.budget.totals(),
        );
        let attempts = &shared.attempts;
        snapshot.configured_retries = attempts.retries.load(Relaxed);
        snapshot.hedged_attempts = attempts.hedges.load(Relaxed);
        snapshot.retries_throttled = attempts.throttled.load(Relaxed);
        snapshot
    }

    fn read<T>(
        set: &ReadySet<T>,
        decay_ns: f64,
        wrr: Option<WeightedRoundRobin>,
        waiting: usize,
        budget: BudgetTotals,
    ) -> Self {
        let now = now_ns();
        let mut ready = set.ready.iter().map(|e| &*e.state).peekable();
        let endpoints = set
            .all
            .iter()
            .map(|(state, endpoint)| {
                // Both lists are in key order: one walk finds which endpoints are ready.
                let published = ready.next_if(|r| std::ptr::eq(*r, &**state)).is_some();
                // A failing call ejects at once (the gate); the set is republished after.
                let is_ready = published && !state.gate.is_ejected();
                let mut status = EndpointStatus::read(state, endpoint, is_ready, now, decay_ns);
                status.server_load = ServerLoad::read(state, wrr, now);
                status
            })
            .collect::<Vec<_>>();
        let ready = endpoints.iter().filter(|e| e.ready).count();
        let service_unknown = endpoints
            .iter()
            .filter(|e| e.health == Health::ServiceUnknown)
            .count();
        Snapshot {
            service_unknown,
            endpoints,
            ready,
            tier: set.tier,
            panic: set.panic,
            unready: (ready == 0).then(|| set.why.clone()),
            standby: set.standby,
            discovery_error: set.discovery_error.as_ref().map(|(e, _)| e.clone()),
            discovery_error_age: set.discovery_error.as_ref().map(|(_, at)| at.elapsed()),
            waiting,
            retries: budget.retried,
            retries_refused: budget.refused,
            configured_retries: 0,
            hedged_attempts: 0,
            retries_throttled: 0,
        }
    }
}

/// A point-in-time view of one endpoint.
///
/// One of the endpoints of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EndpointStatus {
    /// The discovery key.
    pub key: Key,
    /// The socket address.
    pub addr: SocketAddr,
    /// The weight from discovery.
    pub weight: u32,
    /// The priority tier from discovery (0 is the first choice).
    pub priority: u32,
    /// The connection state.
    pub state: ConnectionState,
    /// Whether the endpoint takes calls now: connected, healthy (or in panic mode), not
    /// ejected, and in the tier calls go to. Its circuit breaker may still turn a call away.
    pub ready: bool,
    /// Calls in flight now (until their response body ends or is dropped).
    pub in_flight: u32,
    /// The current PeakEWMA latency estimate.
    pub rtt_estimate: Duration,
    /// Calls finished on this endpoint (a call its caller cancelled is not counted).
    pub requests: u64,
    /// Of those, calls that failed, as [`Failures`](crate::health::Failures) counts them.
    pub failures: u64,
    /// How many times outlier detection has ejected it.
    pub ejections: u64,
    /// Healthy, ejected, not serving, or waiting for its first health check.
    pub health: Health,
    /// The endpoint's circuit breaker.
    pub breaker: BreakerState,
    /// What its server reports about its load (ORCA), under a policy that reads the reports
    /// ([`Policy::weighted_round_robin`](crate::Policy::weighted_round_robin)); `None` under
    /// the others.
    pub server_load: Option<ServerLoad>,
}

/// What an endpoint's server last said about its load, in the ORCA trailer of a call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerLoad {
    /// The last report read (its utilisation in `application_utilization`: the one
    /// weighted round robin uses, the application's when sent, else the CPU's).
    pub report: LoadReport,
    /// Reports read.
    pub reports: u64,
    /// Reports ignored: not decodable, NaN or negative values, or from an endpoint that had
    /// left.
    pub rejected: u64,
    /// How long since the last report that gave a weight (utilisation and QPS above 0).
    pub since_last_usable: Option<Duration>,
    /// The weight weighted round robin gives it now, before the mean fills in for endpoints
    /// without one and before clamping: 0 while it has none (no usable report, blackout,
    /// expired).
    pub weight: f64,
}

impl ServerLoad {
    fn read(state: &EndpointState, wrr: Option<WeightedRoundRobin>, now: u64) -> Option<Self> {
        let reported = state.reported.as_deref()?;
        let totals = reported.totals(now);
        let weight = wrr.map_or(0.0, |w| w.weight_of(reported, now));
        Some(ServerLoad {
            report: totals.report,
            reports: totals.reports,
            rejected: totals.rejected,
            since_last_usable: totals.age_ns.map(Duration::from_nanos),
            weight,
        })
    }
}

impl EndpointStatus {
    pub(crate) fn read(
        state: &EndpointState,
        endpoint: &Endpoint,
        ready: bool,
        now: u64,
        decay_ns: f64,
    ) -> Self {
        let rtt = state.load.rtt_estimate_ns(now, decay_ns);
        let calls = state.counters.totals();
        EndpointStatus {
            key: state.key.clone(),
            addr: state.addr,
            weight: endpoint.weight(),
            priority: endpoint.priority(),
            state: state.connection(),
            ready,
            in_flight: state.load.in_flight(),
            rtt_estimate: Duration::from_nanos(rtt as u64),
            requests: calls.volume(),
            failures: calls.failed,
            ejections: state.counters.ejections.load(Relaxed),
            health: state.health(),
            breaker: state.gate.breaker(),
            server_load: None,
        }
    }
}
