//! The state one endpoint shares between the request path and the control task, the
//! balancer-wide settings it points to for judging its calls ([`Passive`]), and what it
//! tells the control task ([`Signal`]). The three refer to each other, so they live together;
//! what passive health does with them is in `passive.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::counters::{CallCounters, EjectionCap};
use super::gate::Gate;
use super::load::Load;
use super::reported::ReportedLoad;
use crate::discover::Key;
use crate::health::{CircuitBreaker, Failures, Health};

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
    /// Waiting for a connection-attempt slot: as many attempts as
    /// [`Limits::max_connecting`](crate::Limits::max_connecting) allows are under way.
    Queued,
}

impl ConnectionState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => ConnectionState::Ready,
            2 => ConnectionState::Backoff,
            3 => ConnectionState::Queued,
            _ => ConnectionState::Connecting,
        }
    }
    fn as_u8(self) -> u8 {
        match self {
            ConnectionState::Connecting => 0,
            ConnectionState::Ready => 1,
            ConnectionState::Backoff => 2,
            ConnectionState::Queued => 3,
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
    /// Whether a probe of its connection is asked for or under way (one at a time).
    pub(crate) probing: AtomicBool,
    /// The balancer-wide count of calls in flight, when the policy needs it (bounded loads).
    total_in_flight: Option<Arc<AtomicU64>>,
    /// What the server reports about its load, when the policy reads it (ORCA).
    pub(crate) reported: Option<Box<ReportedLoad>>,
}

/// What every endpoint of one balancer is created with.
#[derive(Debug, Clone)]
pub(crate) struct EndpointDefaults {
    pub(crate) initial_rtt: Duration,
    pub(crate) total_in_flight: Option<Arc<AtomicU64>>,
    pub(crate) max_in_flight: Option<u32>,
    pub(crate) passive: Arc<Passive>,
    /// For a policy that reads ORCA reports: A58's `errorUtilizationPenalty`.
    pub(crate) reported_penalty: Option<f64>,
    /// Whether reports are read from calls' trailers (else only from the out-of-band stream).
    pub(crate) reports_in_trailers: bool,
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
            probing: AtomicBool::new(false),
            total_in_flight: defaults.total_in_flight.clone(),
            reported: defaults
                .reported_penalty
                .map(|penalty| Box::new(ReportedLoad::new(penalty, defaults.reports_in_trailers))),
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
            h if h == Health::ServiceUnknown as u8 => Health::ServiceUnknown,
            _ => Health::Healthy,
        }
    }

    /// Whether the picker may choose this endpoint now.
    #[inline]
    pub(crate) fn admits(&self) -> bool {
        self.gate.admits(self.load.in_flight())
    }

    /// A call starts on this endpoint: counted in flight here and, with bounded loads, on the
    /// whole balancer. `now`: its dispatch time, when it is timed (PeakEWMA).
    #[inline]
    pub(crate) fn call_started(&self, now: Option<u64>) {
        self.load.start(now);
        if let Some(total) = &self.total_in_flight {
            total.fetch_add(1, Relaxed);
        }
    }

    /// A call on this endpoint ended (its response body ended or was dropped). `waiting`: it
    /// was timed and never answered.
    #[inline]
    pub(crate) fn call_ended(&self, waiting: bool) {
        self.load.end(waiting);
        if let Some(total) = &self.total_in_flight {
            total.fetch_sub(1, Relaxed);
        }
    }
}

/// What a balancer's calls need to judge their endpoints; shared by all its endpoints.
#[derive(Debug)]
pub(crate) struct Passive {
    pub(crate) failures: Failures,
    /// Consecutive failures that eject an endpoint (outlier detection).
    pub(super) eject_after: Option<u32>,
    pub(super) breaker: CircuitBreaker,
    pub(crate) ejections: EjectionCap,
    pub(super) signals: UnboundedSender<Signal>,
}

impl Passive {
    pub(crate) fn new(
        failures: Failures,
        eject_after: Option<u32>,
        breaker: CircuitBreaker,
        signals: UnboundedSender<Signal>,
    ) -> Self {
        Passive {
            failures,
            eject_after,
            breaker,
            ejections: EjectionCap::default(),
            signals,
        }
    }

    /// A `Passive` that judges nothing, for endpoints outside a balancer (the `Picker`).
    pub(crate) fn inert() -> Self {
        let (signals, _) = tokio::sync::mpsc::unbounded_channel();
        Passive::new(Failures::none(), None, CircuitBreaker::default(), signals)
    }

    /// Whether calls must note their deadline, to tell a timeout from a cancellation.
    pub(crate) fn needs_deadline(&self) -> bool {
        self.failures.needs_deadline()
    }
}

/// A message to the control task about one endpoint: from the calls that judge it (here) and
/// from its health check.
pub(crate) enum Signal {
    /// Consecutive failures ejected this endpoint; its gate is already shut.
    Ejected(Arc<EndpointState>),
    /// A call on this endpoint hit its deadline: its connection should be probed.
    TimedOut(Arc<EndpointState>),
    /// An active health check's verdict (`epoch`: which check task of the endpoint).
    #[cfg(feature = "health")]
    Health {
        state: Arc<EndpointState>,
        epoch: u64,
        verdict: crate::health::Verdict,
    },
}
