//! `Balancer::builder()`: the one place where configuration meets its defaults.

use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::oneshot;

use crate::balancer::Balancer;
use crate::discover::Change;
use crate::endpoint::Backoff;
use crate::error::{BoxError, Error, Unready};
use crate::layer::BalanceLayer;
use crate::layer4::{TcpBalancer, TcpProbe};
use crate::policy::Policy;
use crate::ready_set::{CallConfig, Shared};
use crate::registry::Registry;
use crate::transport::{Connector, Http2Connector};

/// Configuration of a [`Balancer`].
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`policy`](Self::policy) | p2c over PeakEWMA (30 ms, 10 s) | how an endpoint is picked |
/// | [`ready_timeout`](Self::ready_timeout) | 1 s | how long a call waits for a ready endpoint before `UNAVAILABLE` (0: fail at once); a shorter `grpc-timeout` on the call wins |
/// | [`unsent_retries`](Self::unsent_retries) | 3 | how often a request handed back unsent by a connection is re-picked |
/// | [`backoff`](Self::backoff) | 200 ms ×1.6 up to 10 s, ±20 % | reconnect backoff per endpoint |
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{Balancer, Policy};
/// let builder = Balancer::builder()
///     .policy(Policy::p2c_in_flight())
///     .ready_timeout(Duration::ZERO);
/// ```
#[derive(Clone)]
pub struct Builder {
    policy: Policy,
    ready_timeout: Duration,
    unsent_retries: u32,
    backoff: Backoff,
    on_all_unreachable: Option<OnAllUnreachable>,
}

/// A hook run by the control task when every discovered endpoint has failed to connect.
pub(crate) type OnAllUnreachable = Arc<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("policy", &self.policy)
            .field("ready_timeout", &self.ready_timeout)
            .field("unsent_retries", &self.unsent_retries)
            .field("backoff", &self.backoff)
            .field("on_all_unreachable", &self.on_all_unreachable.is_some())
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            policy: Policy::default(),
            ready_timeout: Duration::from_secs(1),
            unsent_retries: 3,
            backoff: Backoff::default(),
            on_all_unreachable: None,
        }
    }
}

impl Builder {
    /// The balancing policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How long a call waits for a ready endpoint (zero: fail at once when none is ready).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How many times a request the connection handed back unsent is picked again.
    pub fn unsent_retries(mut self, retries: u32) -> Self {
        self.unsent_retries = retries;
        self
    }

    /// The reconnect backoff of every endpoint.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Runs `hook` while every discovered endpoint has failed to connect: once when that
    /// happens, then again after each further failed attempt or discovery change. Made for asking discovery to look again at
    /// once — the endpoints may have moved — with a hook that rate-limits itself, such as the
    /// DNS stream's refresher.
    ///
    /// ```no_run
    /// # fn example() -> Result<(), tower_lb::Error> {
    /// use tower_lb::{Balancer, discover::dns::Dns};
    /// let discovery = Dns::srv("_grpc._tcp.echo.default.svc.cluster.local.").build()?;
    /// let refresher = discovery.refresher();
    /// let balancer = Balancer::builder()
    ///     .on_all_unreachable(move || refresher.refresh())
    ///     .build(discovery)?;
    /// # Ok(()) }
    /// ```
    pub fn on_all_unreachable(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_all_unreachable = Some(Arc::new(hook));
        self
    }

    /// Builds a balancer for tonic clients: HTTP/2 over TCP to each endpoint, fed by
    /// `discovery`.
    ///
    /// Must be called inside a tokio runtime (the control task is spawned on it); otherwise
    /// returns [`Error::InvalidConfig`].
    pub fn build<D, E>(self, discovery: D) -> Result<Balancer, Error>
    where
        D: Stream<Item = Result<Change, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.build_with(Http2Connector::new(), discovery)
    }

    /// Builds a balancer that dials endpoints with `connector` (another request body type,
    /// custom HTTP/2 settings, or in-process services).
    pub fn build_with<C, D, E>(
        self,
        connector: C,
        discovery: D,
    ) -> Result<Balancer<C::Channel>, Error>
    where
        C: Connector,
        D: Stream<Item = Result<Change, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidConfig(
                "a balancer must be built inside a tokio runtime (its control task runs there)"
                    .into(),
            )
        })?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared::new(
            self.call_config(),
            stop_tx,
            Unready::NoEndpointsDiscovered,
        ));
        let (registry, events) = Registry::new(
            connector,
            self.policy.clone(),
            self.backoff,
            self.on_all_unreachable.clone(),
        );
        runtime.spawn(registry.run(events, discovery, Arc::downgrade(&shared), stop_rx));
        Ok(Balancer::from_shared(shared))
    }

    /// Builds a layer 4 balancer: a [`tower::Service<http::Uri>`] that opens a TCP connection
    /// to an endpoint picked by the policy (see [`TcpBalancer`]). Endpoints join after a TCP
    /// connect probe; `unsent_retries` bounds how many endpoints one call dials.
    pub fn build_tcp<D, E>(self, discovery: D) -> Result<TcpBalancer, Error>
    where
        D: Stream<Item = Result<Change, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let connect_timeout = crate::transport::DEFAULT_CONNECT_TIMEOUT;
        let inner = self.build_with(TcpProbe { connect_timeout }, discovery)?;
        Ok(TcpBalancer::new(inner, connect_timeout))
    }

    /// The [`tower::Layer`] form: wraps a [`Connector`] into a balancer over a clone of
    /// `discovery` (which must be `Clone`; use [`build`](Self::build) for one-shot streams).
    pub fn layer<D>(self, discovery: D) -> BalanceLayer<D> {
        BalanceLayer::new(self, discovery)
    }

    /// A balancer that fails every call, for a layer applied outside a runtime.
    pub(crate) fn closed<C: Connector>(&self) -> Balancer<C::Channel> {
        let (stop_tx, _) = oneshot::channel();
        Balancer::from_shared(Arc::new(Shared::new(
            self.call_config(),
            stop_tx,
            Unready::Closed,
        )))
    }

    fn call_config(&self) -> CallConfig {
        CallConfig {
            policy: self.policy.clone(),
            ready_timeout: self.ready_timeout,
            max_unsent_retries: self.unsent_retries,
        }
    }
}
