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
    requests: AtomicU64,
    failures: AtomicU64,
    connection: AtomicU8,
    /// The balancer-wide count of calls in flight, when the policy needs it (bounded loads).
    total_in_flight: Option<Arc<AtomicU64>>,
}

impl EndpointState {
    pub(crate) fn new(
        key: Key,
        addr: SocketAddr,
        initial_rtt: Duration,
        total_in_flight: Option<Arc<AtomicU64>>,
    ) -> Self {
        EndpointState {
            load: Load::new(initial_rtt),
            key,
            addr,
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            connection: AtomicU8::new(ConnectionState::Connecting.as_u8()),
            total_in_flight,
        }
    }

    pub(crate) fn set_connection(&self, state: ConnectionState) {
        self.connection.store(state.as_u8(), Relaxed);
    }

    pub(crate) fn connection(&self) -> ConnectionState {
        ConnectionState::from_u8(self.connection.load(Relaxed))
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

    /// Counts a finished call (`failed`: transport error or non-OK gRPC status).
    pub(crate) fn record_outcome(&self, failed: bool) {
        self.requests.fetch_add(1, Relaxed);
        if failed {
            self.failures.fetch_add(1, Relaxed);
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
    /// Calls finished on this endpoint (a call dropped by its caller before the end is not
    /// counted).
    pub requests: u64,
    /// Of those, calls that failed: a transport error or a gRPC status other than OK.
    pub failures: u64,
}

impl EndpointStatus {
    pub(crate) fn read(state: &EndpointState, endpoint: &Endpoint, decay_ns: f64) -> Self {
        let rtt = state.load.rtt_estimate_ns(load::now_ns(), decay_ns);
        EndpointStatus {
            key: state.key.clone(),
            addr: state.addr,
            weight: endpoint.weight(),
            priority: endpoint.priority(),
            state: state.connection(),
            in_flight: state.load.in_flight(),
            rtt_estimate: Duration::from_nanos(rtt as u64),
            requests: state.requests.load(Relaxed),
            failures: state.failures.load(Relaxed),
        }
    }
}
