//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`):
//! any recorder — Prometheus, StatsD, OpenTelemetry — sees every endpoint's calls, failures,
//! load and health, and the balancer's ready-set size and panic mode.
//!
//! **How:** a task per balancer reads [`Balancer::snapshot`](crate::Balancer::snapshot) on an
//! interval (1 s by default) and sets the metrics from it. The request path records nothing:
//! the counters it already keeps for balancing (atomic, per endpoint) are the source, so
//! turning metrics on costs calls nothing. The price is that values are up to one interval
//! old, which is what a scrape every 10–60 s sees anyway.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `tower_lb_requests_total` | counter | `balancer`, `endpoint` | calls finished on the endpoint |
//! | `tower_lb_failures_total` | counter | `balancer`, `endpoint` | of those, failures (as [`Failures`](crate::health::Failures) counts them) |
//! | `tower_lb_ejections_total` | counter | `balancer`, `endpoint` | times outlier detection ejected it |
//! | `tower_lb_in_flight` | gauge | `balancer`, `endpoint` | calls in flight |
//! | `tower_lb_latency_estimate_seconds` | gauge | `balancer`, `endpoint` | the PeakEWMA latency estimate |
//! | `tower_lb_endpoint_ready` | gauge | `balancer`, `endpoint` | 1 while it takes calls |
//! | `tower_lb_endpoint_health` | gauge | `balancer`, `endpoint`, `state` | 1 for its state: `healthy`, `ejected`, `not_serving`, `checking`; 0 for the others |
//! | `tower_lb_breaker_state` | gauge | `balancer`, `endpoint`, `state` | 1 for its state: `closed`, `open`, `half_open`; 0 for the others |
//! | `tower_lb_server_utilization` | gauge | `balancer`, `endpoint` | the utilisation its server last reported (ORCA; only under [`weighted_round_robin`](crate::Policy::weighted_round_robin)) |
//! | `tower_lb_server_qps` | gauge | `balancer`, `endpoint` | the requests per second its server last reported (ORCA) |
//! | `tower_lb_server_weight` | gauge | `balancer`, `endpoint` | its weighted-round-robin weight from those reports (0: none yet) |
//! | `tower_lb_load_reports_total` | counter | `balancer`, `endpoint` | ORCA load reports read |
//! | `tower_lb_load_reports_rejected_total` | counter | `balancer`, `endpoint` | ORCA load reports ignored (undecodable, NaN or negative values, endpoint gone) |
//! | `tower_lb_endpoints` | gauge | `balancer` | endpoints discovered |
//! | `tower_lb_ready_endpoints` | gauge | `balancer` | endpoints that take calls |
//! | `tower_lb_panic_mode` | gauge | `balancer` | 1 while in panic mode |
//! | `tower_lb_standby_endpoints` | gauge | `balancer` | endpoints waiting beyond the endpoint limit |
//! | `tower_lb_waiting_calls` | gauge | `balancer` | calls waiting for a ready endpoint |
//! | `tower_lb_retries_total` | counter | `balancer` | transparent retries made |
//! | `tower_lb_retries_refused_total` | counter | `balancer` | transparent retries the retry budget refused |
//! | `tower_lb_configured_retries_total` | counter | `balancer` | attempts after the first of calls with a retry policy |
//! | `tower_lb_hedged_attempts_total` | counter | `balancer` | attempts after the first of calls with a hedging policy |
//! | `tower_lb_retries_throttled_total` | counter | `balancer` | further attempts refused by retry throttling or the retry budget |
//!
//! `endpoint` is the discovery key (by default the socket address). An endpoint discovery
//! removes has its counters set a last time and its gauges set to 0, and is then left alone
//! (calls it was still draining are not counted); configure your exporter's idle
//! timeout to drop such series. Install the recorder before building the balancer: metric
//! handles are registered once per endpoint, with the recorder installed at that moment.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Label, Unit, counter, describe_counter, describe_gauge, gauge};
use tokio::time::MissedTickBehavior;

use crate::discover::{Endpoint, Key};
use crate::endpoint::EndpointState;
use crate::error::{Error, Error::InvalidConfig};
use crate::health::{BreakerState, Health};
use crate::ready_set::Shared;
use crate::status::{EndpointStatus, Snapshot};

/// Exports a balancer's state through the `metrics` facade; see the [module](self) for the
/// metrics and how they are gathered. Set with
/// [`Builder::metrics`](crate::Builder::metrics).
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{Balancer, metrics::Metrics};
///
/// let builder = Balancer::builder()
///     .metrics(Metrics::new("orders").interval(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    name: Arc<str>,
    interval: Duration,
}

impl Metrics {
    /// Metrics labelled `balancer="<name>"`, to tell apart the balancers of one process (one
    /// per upstream service, say).
    pub fn new(name: impl Into<String>) -> Self {
        Metrics {
            name: Arc::from(name.into()),
            interval: Duration::from_secs(1),
        }
    }

    /// How often the metrics are set from the balancer's state (default 1 s; at least 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.interval < Duration::from_millis(10) {
            return Err(InvalidConfig(format!(
                "metrics interval must be at least 10 ms, got {:?}",
                self.interval
            )));
        }
        Ok(())
    }

    /// Starts the task that exports `shared`'s state until the balancer is gone.
    pub(crate) fn spawn<T: crate::transport::EndpointChannel>(
        &self,
        runtime: &tokio::runtime::Handle,
        shared: Weak<Shared<T>>,
    ) {
        let mut exporter = Exporter::new(self.name.clone());
        let interval = self.interval;
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // Only a weak hold: the exporter must not keep the balancer alive.
                let Some(shared) = shared.upgrade() else {
                    break;
                };
                let set = shared.set.load_full();
                let snapshot = Snapshot::of_set(&shared, &set);
                drop(shared);
                exporter.publish(&snapshot, &set.all);
            }
            exporter.retire_all();
        });
    }
}

/// The metric handles of one balancer, registered once and set on every tick.
struct Exporter {
    name: Arc<str>,
    /// Each endpoint's handles, and its state for a last reading when discovery removes it.
    endpoints: HashMap<Key, (Arc<EndpointState>, EndpointMetrics)>,
    discovered: Gauge,
    ready: Gauge,
    panic: Gauge,
    standby: Gauge,
    waiting: Gauge,
    retries: Counter,
    retries_refused: Counter,
    configured_retries: Counter,
    hedged_attempts: Counter,
    retries_throttled: Counter,
}

impl Exporter {
    fn new(name: Arc<str>) -> Self {
        describe();
        let label = || vec![Label::new("balancer", name.to_string())];
        Exporter {
            discovered: gauge!("tower_lb_endpoints", label()),
            ready: gauge!("tower_lb_ready_endpoints", label()),
            panic: gauge!("tower_lb_panic_mode", label()),
            standby: gauge!("tower_lb_standby_endpoints", label()),
            waiting: gauge!("tower_lb_waiting_calls", label()),
            retries: counter!("tower_lb_retries_total", label()),
            retries_refused: counter!("tower_lb_retries_refused_total", label()),
            configured_retries: counter!("tower_lb_configured_retries_total", label()),
            hedged_attempts: counter!("tower_lb_hedged_attempts_total", label()),
            retries_throttled: counter!("tower_lb_retries_throttled_total", label()),
            endpoints: HashMap::new(),
            name,
        }
    }

    /// `all`: the states of the snapshot's endpoints, in the same order.
    fn publish(&mut self, snapshot: &Snapshot, all: &[(Arc<EndpointState>, Endpoint)]) {
        self.discovered.set(snapshot.endpoints.len() as f64);
        self.ready.set(snapshot.ready as f64);
        self.panic.set(f64::from(u8::from(snapshot.panic)));
        self.standby.set(snapshot.standby as f64);
        self.waiting.set(snapshot.waiting as f64);
        self.retries.absolute(snapshot.retries);
        self.retries_refused.absolute(snapshot.retries_refused);
        self.configured_retries
            .absolute(snapshot.configured_retries);
        self.hedged_attempts.absolute(snapshot.hedged_attempts);
        self.retries_throttled.absolute(snapshot.retries_throttled);
        for (status, (state, _)) in snapshot.endpoints.iter().zip(all) {
            let (_, metrics) = self.endpoints.entry(status.key.clone()).or_insert_with(|| {
                let metrics = EndpointMetrics::register(&self.name, status);
                (state.clone(), metrics)
            });
            metrics.set(status);
        }
        // Endpoints discovery removed: count their last calls, zero their gauges, forget them.
        if self.endpoints.len() > snapshot.endpoints.len() {
            let known: HashSet<&Key> = snapshot.endpoints.iter().map(|s| &s.key).collect();
            self.endpoints.retain(|key, (state, metrics)| {
                let keep = known.contains(key);
                if !keep {
                    metrics.retire(state);
                }
                keep
            });
        }
    }

    /// The balancer is gone: nothing is ready or in flight any more.
    fn retire_all(&mut self) {
        self.discovered.set(0.0);
        self.ready.set(0.0);
        self.panic.set(0.0);
        self.standby.set(0.0);
        self.waiting.set(0.0);
        for (_, (state, metrics)) in self.endpoints.drain() {
            metrics.retire(&state);
        }
    }
}

const HEALTH_STATES: [(Health, &str); 5] = [
    (Health::Healthy, "healthy"),
    (Health::Ejected, "ejected"),
    (Health::NotServing, "not_serving"),
    (Health::Checking, "checking"),
    (Health::ServiceUnknown, "service_unknown"),
];

const BREAKER_STATES: [(BreakerState, &str); 3] = [
    (BreakerState::Closed, "closed"),
    (BreakerState::Open, "open"),
    (BreakerState::HalfOpen, "half_open"),
];

/// One endpoint's handles.
struct EndpointMetrics {
    requests: Counter,
    failures: Counter,
    ejections: Counter,
    in_flight: Gauge,
    latency: Gauge,
    ready: Gauge,
    health: [Gauge; HEALTH_STATES.len()],
    breaker: [Gauge; BREAKER_STATES.len()],
    /// Under a policy that reads ORCA load reports.
    server: Option<ServerMetrics>,
}

/// One endpoint's handles for what its server reports.
struct ServerMetrics {
    utilization: Gauge,
    qps: Gauge,
    weight: Gauge,
    reports: Counter,
    rejected: Counter,
}

impl EndpointMetrics {
    fn register(balancer: &str, status: &EndpointStatus) -> Self {
        let key = &status.key;
        let labels = || {
            vec![
                Label::new("balancer", balancer.to_owned()),
                Label::new("endpoint", key.as_str().to_owned()),
            ]
        };
        let state = |s: &'static str| {
            let mut l = labels();
            l.push(Label::new("state", s));
            l
        };
        EndpointMetrics {
            requests: counter!("tower_lb_requests_total", labels()),
            failures: counter!("tower_lb_failures_total", labels()),
            ejections: counter!("tower_lb_ejections_total", labels()),
            in_flight: gauge!("tower_lb_in_flight", labels()),
            latency: gauge!("tower_lb_latency_estimate_seconds", labels()),
            ready: gauge!("tower_lb_endpoint_ready", labels()),
            health: HEALTH_STATES.map(|(_, s)| gauge!("tower_lb_endpoint_health", state(s))),
            breaker: BREAKER_STATES.map(|(_, s)| gauge!("tower_lb_breaker_state", state(s))),
            server: status.server_load.as_ref().map(|_| ServerMetrics {
                utilization: gauge!("tower_lb_server_utilization", labels()),
                qps: gauge!("tower_lb_server_qps", labels()),
                weight: gauge!("tower_lb_server_weight", labels()),
                reports: counter!("tower_lb_load_reports_total", labels()),
                rejected: counter!("tower_lb_load_reports_rejected_total", labels()),
            }),
        }
    }

    fn set(&self, s: &EndpointStatus) {
        self.requests.absolute(s.requests);
        self.failures.absolute(s.failures);
        self.ejections.absolute(s.ejections);
        self.in_flight.set(f64::from(s.in_flight));
        self.latency.set(s.rtt_estimate.as_secs_f64());
        self.ready.set(f64::from(u8::from(s.ready)));
        for (gauge, (health, _)) in self.health.iter().zip(HEALTH_STATES) {
            gauge.set(f64::from(u8::from(s.health == health)));
        }
        for (gauge, (breaker, _)) in self.breaker.iter().zip(BREAKER_STATES) {
            gauge.set(f64::from(u8::from(s.breaker == breaker)));
        }
        if let (Some(m), Some(load)) = (&self.server, &s.server_load) {
            m.utilization.set(load.report.application_utilization);
            m.qps.set(load.report.rps_fractional);
            m.weight.set(load.weight);
            m.reports.absolute(load.reports);
            m.rejected.absolute(load.rejected);
        }
    }

    /// Gone from discovery: its final counts; no calls in flight, not ready, in no state.
    fn retire(&self, state: &EndpointState) {
        let calls = state.counters.totals();
        self.requests.absolute(calls.volume());
        self.failures.absolute(calls.failed);
        self.in_flight.set(0.0);
        self.ready.set(0.0);
        for gauge in self.health.iter().chain(&self.breaker) {
            gauge.set(0.0);
        }
        if let Some(m) = &self.server {
            m.weight.set(0.0);
        }
    }
}

/// Descriptions and units, for recorders that export them (Prometheus `# HELP`).
fn describe() {
    describe_counter!("tower_lb_requests_total", "Calls finished on the endpoint");
    describe_counter!(
        "tower_lb_failures_total",
        "Calls finished on the endpoint that failed"
    );
    describe_counter!(
        "tower_lb_ejections_total",
        "Times outlier detection ejected the endpoint"
    );
    describe_gauge!("tower_lb_in_flight", "Calls in flight on the endpoint");
    describe_gauge!(
        "tower_lb_latency_estimate_seconds",
        Unit::Seconds,
        "PeakEWMA latency estimate of the endpoint"
    );
    describe_gauge!(
        "tower_lb_endpoint_ready",
        "1 while the endpoint takes calls"
    );
    describe_gauge!(
        "tower_lb_endpoint_health",
        "1 for the endpoint's health state (healthy, ejected, not_serving, checking)"
    );
    describe_gauge!(
        "tower_lb_breaker_state",
        "1 for the state of the endpoint's circuit breaker (closed, open, half_open)"
    );
    describe_gauge!(
        "tower_lb_server_utilization",
        "Utilisation the endpoint's server last reported (ORCA)"
    );
    describe_gauge!(
        "tower_lb_server_qps",
        "Requests per second the endpoint's server last reported (ORCA)"
    );
    describe_gauge!(
        "tower_lb_server_weight",
        "Weighted round robin's weight for the endpoint from its load reports"
    );
    describe_counter!("tower_lb_load_reports_total", "ORCA load reports read");
    describe_counter!(
        "tower_lb_load_reports_rejected_total",
        "ORCA load reports ignored as undecodable, insane or late"
    );
    describe_gauge!("tower_lb_endpoints", "Endpoints discovered");
    describe_gauge!("tower_lb_ready_endpoints", "Endpoints that take calls");
    describe_gauge!(
        "tower_lb_panic_mode",
        "1 while the balancer is in panic mode"
    );
    describe_gauge!(
        "tower_lb_standby_endpoints",
        "Endpoints waiting beyond the endpoint limit"
    );
    describe_gauge!(
        "tower_lb_waiting_calls",
        "Calls waiting for a ready endpoint"
    );
    describe_counter!("tower_lb_retries_total", "Transparent retries made");
    describe_counter!(
        "tower_lb_retries_refused_total",
        "Transparent retries the retry budget refused"
    );
    describe_counter!(
        "tower_lb_configured_retries_total",
        "Attempts after the first of calls with a retry policy"
    );
    describe_counter!(
        "tower_lb_hedged_attempts_total",
        "Attempts after the first of calls with a hedging policy"
    );
    describe_counter!(
        "tower_lb_retries_throttled_total",
        "Further attempts refused by retry throttling or the retry budget"
    );
}
