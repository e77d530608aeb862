//! `Balancer::builder()`: the one place where configuration meets its defaults, and where the
//! two paths are started: the shared state for the request path, the control task beside it.

use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::oneshot;

use crate::balancer::Balancer;
use crate::discover::Change;
use crate::error::{BoxError, Error, Unready};
#[cfg(feature = "health")]
use crate::health::HealthCheck;
use crate::health::{CircuitBreaker, Failures, HealthConfig, OutlierDetection, SlowStart};
use crate::layer4::{TcpBalancer, TcpProbe};
use crate::limits::Limits;
use crate::method_config::{MethodConfig, MethodTable, RetryThrottling};
use crate::policy::Policy;
use crate::ready_set::{CallConfig, Shared};
use crate::registry::{OnAllUnreachable, Registry};
use crate::retry_budget::RetryBudget;
use crate::time::Backoff;
use crate::transport::{Connector, Http2Connector};

/// The default [`Builder::retry_buffer_limit`]: 64 KiB.
const DEFAULT_RETRY_BUFFER_LIMIT: usize = 64 * 1024;

/// The runtime the caller runs in, where a balancer's control task goes.
pub(crate) fn current_runtime() -> Result<tokio::runtime::Handle, Error> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        Error::InvalidConfig(
            "a balancer must be built inside a tokio runtime (its control task runs there)".into(),
        )
    })
}

// Here, not in `balancer`: the request path does not import the builder that assembles it.
impl Balancer {
    /// Starts configuring a balancer.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), tower_lb::Error> {
    /// use std::time::Duration;
    /// use tower_lb::{Balancer, discover};
    ///
    /// let endpoints = ["127.0.0.1:50051", "127.0.0.1:50052"]
    ///     .iter()
    ///     .map(|a| a.parse())
    ///     .collect::<Result<Vec<discover::Endpoint>, _>>()?;
    /// let balancer = Balancer::builder()
    ///     .ready_timeout(Duration::from_millis(500))
    ///     .build(discover::fixed(endpoints))?;
    /// // let client = EchoClient::new(balancer);
    /// # Ok(()) }
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// Configuration of a [`Balancer`].
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`policy`](Self::policy) | p2c over PeakEWMA (30 ms, 10 s) | how an endpoint is picked |
/// | [`ready_timeout`](Self::ready_timeout) | 1 s | how long a call waits for a ready endpoint before `UNAVAILABLE` (0: fail at once); a shorter `grpc-timeout` on the call wins |
/// | [`timeout`](Self::timeout) | none | the deadline of calls without a shorter `grpc-timeout`; `DEADLINE_EXCEEDED` when it passes |
/// | [`unsent_retries`](Self::unsent_retries) | 3 | how often a request handed back unsent by a connection is re-picked |
/// | [`retry_budget`](Self::retry_budget) | 20 % of calls + 10/s over 10 s | how many such re-picks the whole balancer may make |
/// | [`limits`](Self::limits) | 10 000 endpoints, 1 024 waiting calls, 32 connection attempts at once | resource bounds, each with a clear error when reached |
/// | [`backoff`](Self::backoff) | 200 ms ×1.6 up to 10 s, ±20 % | reconnect backoff per endpoint |
/// | [`outlier_detection`](Self::outlier_detection) | on: 5 consecutive failures, success rate, failure percentage; 10 % cap | eject endpoints whose calls fail |
/// | [`circuit_breaker`](Self::circuit_breaker) | off | per-endpoint concurrency cap; open after consecutive failures, half-open trial |
/// | [`health_check`][health-check] (feature `health`) | off | grpc.health.v1 `Watch` / `Check` per endpoint |
/// | [`slow_start`](Self::slow_start) | off | ramp a (re)joining endpoint's weight |
/// | [`panic_threshold`](Self::panic_threshold) | 50 % | below this healthy share of a tier, endpoints held out by health checks take calls again |
/// | [`failures`](Self::failures) | server errors (gRPC UNAVAILABLE, INTERNAL, ...; HTTP 5xx) and timeouts | which call outcomes count against an endpoint |
/// | [`metrics`][metrics-method] (feature `metrics`) | off | export every endpoint's counters, load and health through the `metrics` facade |
///
/// Connections — TLS, timeouts, keep-alive, windows, the requests' authority and user agent —
/// are the connector's settings: give an [`Http2Connector`] to
/// [`build_with`](Self::build_with) (with TLS, see [`tls`][tls-module]); [`build`](Self::build)
/// uses one with tonic's defaults. The [`health`](crate::health) module explains each health
/// mechanism and its trade-off.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{Balancer, Policy};
/// let builder = Balancer::builder()
///     .policy(Policy::p2c_in_flight())
///     .ready_timeout(Duration::ZERO);
/// ```
///
// Links to items behind a feature: the item when the feature is on, else its docs.rs page.
#[cfg_attr(feature = "health", doc = "[health-check]: Self::health_check")]
#[cfg_attr(
    not(feature = "health"),
    doc = "[health-check]: https://docs.rs/tower-lb/latest/tower_lb/struct.Builder.html#method.health_check"
)]
#[cfg_attr(feature = "metrics", doc = "[metrics-method]: Self::metrics")]
#[cfg_attr(
    not(feature = "metrics"),
    doc = "[metrics-method]: https://docs.rs/tower-lb/latest/tower_lb/struct.Builder.html#method.metrics"
)]
#[cfg_attr(feature = "tls", doc = "[tls-module]: crate::tls")]
#[cfg_attr(
    not(feature = "tls"),
    doc = "[tls-module]: https://docs.rs/tower-lb/latest/tower_lb/tls/index.html"
)]
#[derive(Clone)]
pub struct Builder {
    policy: Policy,
    ready_timeout: Duration,
    timeout: Option<Duration>,
    unsent_retries: u32,
    retry_budget: RetryBudget,
    limits: Limits,
    backoff: Backoff,
    health: HealthConfig,
    on_all_unreachable: Option<OnAllUnreachable>,
    methods: Vec<MethodConfig>,
    retry_throttling: Option<RetryThrottling>,
    retry_buffer_limit: usize,
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("policy", &self.policy)
            .field("ready_timeout", &self.ready_timeout)
            .field("timeout", &self.timeout)
            .field("unsent_retries", &self.unsent_retries)
            .field("retry_budget", &self.retry_budget)
            .field("limits", &self.limits)
            .field("backoff", &self.backoff)
            .field("health", &self.health)
            .field("on_all_unreachable", &self.on_all_unreachable.is_some())
            .field("methods", &self.methods)
            .field("retry_throttling", &self.retry_throttling)
            .field("retry_buffer_limit", &self.retry_buffer_limit)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            policy: Policy::default(),
            ready_timeout: Duration::from_secs(1),
            timeout: None,
            unsent_retries: 3,
            retry_budget: RetryBudget::default(),
            limits: Limits::default(),
            backoff: Backoff::default(),
            health: HealthConfig::default(),
            on_all_unreachable: None,
            methods: Vec::new(),
            retry_throttling: None,
            retry_buffer_limit: DEFAULT_RETRY_BUFFER_LIMIT,
            #[cfg(feature = "metrics")]
            metrics: None,
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

    /// The deadline of every call that has no shorter `grpc-timeout` of its own (default: none;
    /// tonic's `Endpoint::timeout`). The request then carries it as its `grpc-timeout`, so the
    /// server sees the deadline the client enforces.
    ///
    /// A call's deadline — this, or its own `grpc-timeout` (`tonic::Request::set_timeout`),
    /// whichever is shorter — covers the whole call: the wait for a ready endpoint, re-picks,
    /// the response headers, and the response body (every message of a stream, and the
    /// trailers). When it passes, the call ends with `DEADLINE_EXCEEDED`
    /// ([`Error::DeadlineExceeded`]), the endpoint's load is released, the HTTP/2 stream is
    /// reset so the server sees the cancellation, and the call counts as a timeout for
    /// [`failures`](Self::failures) (a failure by default). tonic's own `Channel` reports
    /// `CANCELLED` ("Timeout expired") for the same event; gRPC specifies `DEADLINE_EXCEEDED`
    /// for a deadline the client enforces, as grpc-go and grpc-java report it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_lb::Balancer;
    /// let builder = Balancer::builder().timeout(Duration::from_secs(2));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many times a request the connection handed back unsent is picked again.
    pub fn unsent_retries(mut self, retries: u32) -> Self {
        self.unsent_retries = retries;
        self
    }

    /// Bounds the transparent retries of the whole balancer (requests handed back unsent, and
    /// failed dials of a [`TcpBalancer`]) to a share of its calls; see [`RetryBudget`].
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Settings for the calls to some methods — timeout, wait-for-ready, a retry or a
    /// hedging policy (gRPC A6) — added to those set before; see
    /// [`method_config`](crate::method_config). Calls no config names take the ordinary path.
    ///
    /// ```
    /// use tonic::Code;
    /// use tower_lb::{Balancer, method_config::{MethodConfig, MethodName, RetryPolicy}};
    /// let builder = Balancer::builder().method_config(
    ///     MethodConfig::new([MethodName::method("echo.Echo", "Unary")])
    ///         .retry_policy(RetryPolicy::new(3, [Code::Unavailable])),
    /// );
    /// ```
    pub fn method_config(mut self, config: MethodConfig) -> Self {
        self.methods.push(config);
        self
    }

    /// The token bucket that stops retries and hedges while most attempts fail (A6
    /// `retryThrottling`; off by default). Retries are bounded by the
    /// [retry budget](Self::retry_budget) either way.
    pub fn retry_throttling(mut self, throttling: RetryThrottling) -> Self {
        self.retry_throttling = Some(throttling);
        self
    }

    /// The largest request body buffered so a call with a retry or hedging policy can be
    /// sent again (default 64 KiB); a larger request goes out once, unretried.
    pub fn retry_buffer_limit(mut self, bytes: usize) -> Self {
        self.retry_buffer_limit = bytes;
        self
    }

    /// Resource limits: endpoints, calls waiting for an endpoint, connection attempts at
    /// once; see [`Limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The reconnect backoff of every endpoint.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Outlier detection (on by default; [`OutlierDetection::disabled`] turns it off).
    pub fn outlier_detection(mut self, outlier: OutlierDetection) -> Self {
        self.health.outlier = outlier;
        self
    }

    /// Circuit breaking per endpoint (off by default).
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.health.breaker = breaker;
        self
    }

    /// Active health checks with grpc.health.v1 on every endpoint's connection (off by
    /// default). Needs a channel whose request body is `tonic::body::Body` (the default).
    ///
    /// ```
    /// use tower_lb::{Balancer, health::HealthCheck};
    /// let builder = Balancer::builder().health_check(HealthCheck::grpc().service("echo.Echo"));
    /// ```
    #[cfg(feature = "health")]
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.health.check = Some(check);
        self
    }

    /// Applies a gRPC service config: its policy, outlier detection and health check, each
    /// only if the config has it (the rest of the builder is left as it is). Settings made
    /// after this call win. See [`service_config`](crate::service_config) for the mapping.
    ///
    /// ```
    /// use tower_lb::{Balancer, service_config::ServiceConfig};
    /// let config = ServiceConfig::from_json(r#"{
    ///     "loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}],
    ///     "outlierDetection": {"failurePercentageEjection": {"threshold": 50}}
    /// }"#)?;
    /// let builder = Balancer::builder().service_config(&config);
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    #[cfg(feature = "service-config")]
    pub fn service_config(mut self, config: &crate::service_config::ServiceConfig) -> Self {
        if let Some(policy) = config.policy() {
            self.policy = policy.clone();
        }
        if let Some(outlier) = config.outlier_detection() {
            self.health.outlier = outlier;
        }
        self.methods.extend_from_slice(config.method_configs());
        if let Some(throttling) = config.retry_throttling() {
            self.retry_throttling = Some(throttling);
        }
        #[cfg(feature = "health")]
        if let Some(check) = config.health_check() {
            self.health.check = Some(check.clone());
        }
        self
    }

    /// Slow start for endpoints that join or come back (off by default; not with consistent
    /// hashing).
    pub fn slow_start(mut self, slow_start: SlowStart) -> Self {
        self.health.slow_start = Some(slow_start);
        self
    }

    /// Panic mode: when fewer than `threshold` (0 ..= 1) of a tier's endpoints are healthy,
    /// endpoints held out only by their health check take calls again (`None`: never). Default
    /// 0.5. Outlier ejections stay in force.
    pub fn panic_threshold(mut self, threshold: Option<f64>) -> Self {
        self.health.panic_threshold = threshold;
        self
    }

    /// Which call outcomes count as an endpoint's failures (see [`Failures`]).
    pub fn failures(mut self, failures: Failures) -> Self {
        self.health.failures = failures;
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

    /// Exports the balancer's state through the `metrics` facade (feature `metrics`; off
    /// until set). See [`metrics`](crate::metrics) for what is exported.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Builds a balancer for tonic clients: plaintext HTTP/2 over TCP to each endpoint, with
    /// [`Http2Connector`]'s default settings, fed by `discovery`.
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

    /// Builds a balancer that dials endpoints with `connector`: an [`Http2Connector`] with
    /// settings of yours — TLS, timeouts, keep-alive, windows, authority, user agent: every
    /// connection setting of tonic's `Endpoint` (the [`transport`](crate::transport) module
    /// maps them) — or another request body type, or in-process services.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_lb::Error> {
    /// use std::time::Duration;
    /// use tower_lb::{Balancer, discover, transport::Http2Connector};
    /// let endpoints = vec!["127.0.0.1:50051".parse::<discover::Endpoint>()?];
    /// let connector = Http2Connector::new()
    ///     .connect_timeout(Duration::from_secs(1))
    ///     .authority("echo.internal:50051");
    /// let balancer = Balancer::builder()
    ///     .timeout(Duration::from_secs(2))
    ///     .build_with(connector, discover::fixed(endpoints))?;
    /// # drop(balancer); Ok(()) }
    /// ```
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
        let runtime = current_runtime()?;
        self.build_on(&runtime, connector, discovery)
    }

    /// [`build_with`](Self::build_with) with the control task spawned on `runtime`.
    pub(crate) fn build_on<C, D, E>(
        self,
        runtime: &tokio::runtime::Handle,
        connector: C,
        discovery: D,
    ) -> Result<Balancer<C::Channel>, Error>
    where
        C: Connector,
        D: Stream<Item = Result<Change, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.validate::<C::Channel>()?;
        connector.validate()?;
        let policy = self.policy.clone().for_balancer();
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared::new(
            CallConfig {
                policy: policy.clone(),
                ..self.call_config()
            },
            self.retry_budget,
            self.retry_throttling,
            stop_tx,
            Unready::Discovering,
        ));
        let (registry, inbox) = Registry::new(
            connector,
            policy,
            self.backoff,
            self.limits,
            self.health.clone(),
            self.on_all_unreachable.clone(),
        );
        runtime.spawn(registry.run(inbox, discovery, Arc::downgrade(&shared), stop_rx));
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.spawn(runtime, Arc::downgrade(&shared));
        }
        Ok(Balancer::from_shared(shared))
    }

    /// Builds a layer 4 balancer: a [`tower::Service<http::Uri>`](https://docs.rs/tower/0.5/tower/trait.Service.html) that opens a TCP connection
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

    /// A balancer that fails every call, for a layer applied outside a runtime.
    pub(crate) fn closed<C: Connector>(&self) -> Balancer<C::Channel> {
        let (stop_tx, _) = oneshot::channel();
        Balancer::from_shared(Arc::new(Shared::new(
            self.call_config(),
            self.retry_budget,
            self.retry_throttling,
            stop_tx,
            Unready::Closed,
        )))
    }

    /// Refuses settings that cannot work together, before anything starts.
    #[cfg_attr(not(feature = "health"), allow(clippy::extra_unused_type_parameters))]
    fn validate<T: crate::transport::EndpointChannel>(&self) -> Result<(), Error> {
        self.validate_for_any_connector()?;
        #[cfg(feature = "health")]
        if self.health.check.is_some() && !crate::registry::health_check_supported::<T>() {
            return Err(Error::InvalidConfig(
                "health checks need a channel whose request body is tonic::body::Body".into(),
            ));
        }
        Ok(())
    }

    /// What [`validate`](Self::validate) checks, but for the connector's channel type.
    pub(crate) fn validate_for_any_connector(&self) -> Result<(), Error> {
        self.health.outlier.validate()?;
        self.limits.validate()?;
        self.retry_budget.validate()?;
        MethodTable::new(&self.methods)?;
        if let Some(throttling) = &self.retry_throttling {
            throttling.validate()?;
        }
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.validate()?;
        }
        if let Some(slow_start) = &self.health.slow_start {
            slow_start.validate()?;
            if self.policy.hashing.is_some() {
                return Err(Error::InvalidConfig(
                    "slow start does not apply to consistent hashing: a ramping weight would move keys on every step"
                        .into(),
                ));
            }
        }
        if let Some(t) = self.health.panic_threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(Error::InvalidConfig(format!(
                "panic threshold must be within 0..=1 (a share of endpoints), got {t}"
            )));
        }
        Ok(())
    }

    fn call_config(&self) -> CallConfig {
        CallConfig {
            policy: self.policy.clone(),
            ready_timeout: self.ready_timeout,
            timeout: self.timeout,
            max_unsent_retries: self.unsent_retries,
            max_waiting_calls: self.limits.max_waiting_calls,
            // Checked by `validate` before any balancer is built.
            methods: MethodTable::new(&self.methods).unwrap_or_default(),
            retry_buffer_limit: self.retry_buffer_limit,
        }
    }
}
