//! One endpoint as the balancer keeps it: its shared counters, its connection task and the
//! read-only view of it that [`Balancer::endpoints`](crate::Balancer::endpoints) returns.

mod backoff;
mod connection;
mod in_flight;
pub(crate) mod load;

pub use backoff::Backoff;
pub(crate) use connection::{Event, spawn_connection};
pub(crate) use in_flight::InFlight;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::discover::{Endpoint, Key};
use crate::health::gate::Gate;
use crate::health::passive::{CallCounters, Passive};
use crate::health::{BreakerState, Health};
use crate::policy::Policy;
use load::Load;

/// Where an endpoint's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Dialling (first attempt or a reconnect).
    Connecting,
    /// Connected: eligible for calls.
    Ready,
    /// The last attempt failed or the connection broke; waiting out a backoff.
    Backoff,
}

impl ConnectionState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => ConnectionState::Ready,
            2 => ConnectionState::Backoff,
            _ => ConnectionState::Connecting,
        }
    }
    fn as_u8(self) -> u8 {
        match self {
            ConnectionState::Connecting => 0,
            ConnectionState::Ready => 1,
            ConnectionState::Backoff => 2,
        }
    }
}

/// The state one endpoint shares between the request path and the control task.
#[derive(Debug)]
pub(crate) struct EndpointState {
    pub(crate) load: Load,
    pub(crate) key: Key,
    pub(crate) addr: SocketAddr,
    /// Whether the picker may give it a call (ejection, circuit breaker, concurrency cap).
    pub(crate) gate: Gate,
    pub(crate) counters: CallCounters,
    /// How calls judge their outcome; shared by the balancer's endpoints.
    pub(crate) passive: Arc<Passive>,
    connection: AtomicU8,
    /// What its health check last said (`Health` as a number; `Healthy` without checks),
    /// for status reads. An ejection is read from the gate.
    checked: AtomicU8,
    /// The balancer-wide count of calls in flight, when the policy needs it (bounded loads).
    total_in_flight: Option<Arc<AtomicU64>>,
}

/// What every endpoint of one balancer is created with.
#[derive(Debug, Clone)]
pub(crate) struct EndpointDefaults {
    pub(crate) initial_rtt: Duration,
    pub(crate) total_in_flight: Option<Arc<AtomicU64>>,
    pub(crate) max_in_flight: Option<u32>,
    pub(crate) passive: Arc<Passive>,
}

impl EndpointDefaults {
    /// The defaults for endpoints balanced by `policy`.
    pub(crate) fn new(policy: &Policy, max_in_flight: Option<u32>, passive: Arc<Passive>) -> Self {
        EndpointDefaults {
            initial_rtt: policy.initial_rtt(),
            total_in_flight: policy.total_in_flight_counter(),
            max_in_flight,
            passive,
        }
    }
}

impl EndpointState {
    pub(crate) fn new(key: Key, addr: SocketAddr, defaults: &EndpointDefaults) -> Self {
        EndpointState {
            load: Load::new(defaults.initial_rtt),
            key,
            addr,
            gate: Gate::new(defaults.max_in_flight),
            counters: CallCounters::default(),
            passive: defaults.passive.clone(),
            connection: AtomicU8::new(ConnectionState::Connecting.as_u8()),
            checked: AtomicU8::new(Health::Healthy as u8),
            total_in_flight: defaults.total_in_flight.clone(),
        }
    }

    pub(crate) fn set_connection(&self, state: ConnectionState) {
        self.connection.store(state.as_u8(), Relaxed);
    }

    pub(crate) fn connection(&self) -> ConnectionState {
        ConnectionState::from_u8(self.connection.load(Relaxed))
    }

    /// Notes what the endpoint's health check says.
    pub(crate) fn set_checked(&self, health: Health) {
        self.checked.store(health as u8, Relaxed);
    }

    /// Ejected (by the gate, the moment a call ejects it), else what its health check says.
    pub(crate) fn health(&self) -> Health {
        if self.gate.is_ejected() {
            return Health::Ejected;
        }
        match self.checked.load(Relaxed) {
            h if h == Health::NotServing as u8 => Health::NotServing,
            h if h == Health::Checking as u8 => Health::Checking,
            _ => Health::Healthy,
        }
    }

    /// Whether the picker may choose this endpoint now.
    #[inline]
    pub(crate) fn admits(&self) -> bool {
        self.gate.admits(self.load.in_flight())
    }

    /// A call starts on this endpoint: counted in flight here and, with bounded loads, on the
    /// whole balancer.
    #[inline]
    pub(crate) fn call_started(&self) {
        self.load.start();
        if let Some(total) = &self.total_in_flight {
            total.fetch_add(1, Relaxed);
        }
    }

    /// A call on this endpoint ended (its response body ended or was dropped).
    #[inline]
    pub(crate) fn call_ended(&self) {
        self.load.end();
        if let Some(total) = &self.total_in_flight {
            total.fetch_sub(1, Relaxed);
        }
    }
}

/// A point-in-time view of one endpoint, for dashboards, demos and tests.
///
/// Returned by [`Balancer::endpoints`](crate::Balancer::endpoints).
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
    /// Calls in flight now (until their response body ends or is dropped).
    pub in_flight: u32,
    /// The current PeakEWMA latency estimate.
    pub rtt_estimate: Duration,
    /// Calls finished on this endpoint (a call its caller cancelled is not counted).
    pub requests: u64,
    /// Of those, calls that failed, as [`Failures`](crate::health::Failures) counts them.
    pub failures: u64,
    /// Healthy, ejected, not serving, or waiting for its first health check.
    pub health: Health,
    /// The endpoint's circuit breaker.
    pub breaker: BreakerState,
}

impl EndpointStatus {
    pub(crate) fn read(state: &EndpointState, endpoint: &Endpoint, decay_ns: f64) -> Self {
        let rtt = state.load.rtt_estimate_ns(load::now_ns(), decay_ns);
        let failures = state.counters.failed.load(Relaxed);
        EndpointStatus {
            key: state.key.clone(),
            addr: state.addr,
            weight: endpoint.weight(),
            priority: endpoint.priority(),
            state: state.connection(),
            in_flight: state.load.in_flight(),
            rtt_estimate: Duration::from_nanos(rtt as u64),
            requests: state.counters.ok.load(Relaxed) + failures,
            failures,
            health: state.health(),
            breaker: state.gate.breaker(),
        }
    }
}
