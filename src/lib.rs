//! # tower-lb
//!
//! Client-side load balancing for tonic and any HTTP/2 client: one Tower service that spreads
//! a microservice's outgoing calls over many backends — no proxy, no service mesh.
//!
//! ```no_run
//! # mod pb { pub struct EchoClient<T>(T); impl<T> EchoClient<T> { pub fn new(t: T) -> Self { Self(t) } } }
//! # use pb::EchoClient;
//! use tower_lb::{Balancer, discover};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoints = ["10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"]
//!     .iter()
//!     .map(|a| a.parse())
//!     .collect::<Result<Vec<discover::Endpoint>, _>>()?;
//! let balancer = Balancer::builder().build(discover::fixed(endpoints))?;
//! let client = EchoClient::new(balancer); // any tonic generated client
//! # Ok(()) }
//! ```
//!
//! ## How it works
//!
//! **The request path** runs in the caller's task. [`Balancer::call`](https://docs.rs/tower/0.5/tower/trait.Service.html#tymethod.call)
//! loads an immutable snapshot of ready endpoints (an atomic pointer load), picks one with the
//! [`Policy`] — power of two choices over PeakEWMA latency × in-flight load by default — and
//! sends the request on that endpoint's own HTTP/2 connection. No lock, no channel hop, no
//! worker task. The response body holds the call's load until it ends or is dropped.
//!
//! **The control path** is one background task per balancer: it reads the
//! [discovery](discover) stream (a static list, [DNS][dns-module], or your own), keeps one
//! HTTP/2 connection per endpoint (eager connect,
//! reconnect with exponential backoff and jitter) and publishes a new snapshot whenever an
//! endpoint joins, leaves, connects or loses its connection.
//!
//! **The client keeps the deadline.** A call's `grpc-timeout` (tonic's `Request::set_timeout`),
//! or the builder's default [`timeout`](Builder::timeout), bounds the whole call — the wait
//! for an endpoint, the response, every message of a stream: at the deadline it ends with
//! `DEADLINE_EXCEEDED`, its stream is reset and its endpoint's load released, even against a
//! backend that accepted the call and never answers.
//!
//! **Failure is explicit.** With no ready endpoint a call waits up to the
//! [ready timeout](Builder::ready_timeout) for one, then fails with `UNAVAILABLE` and a message
//! that says why (nothing discovered, or all endpoints unreachable, with the last connection
//! error). A request a connection hands back unsent is picked again onto another endpoint,
//! as far as the [retry budget](RetryBudget) allows (20 % of calls plus 10 a second, so
//! retries cannot multiply load in an outage). An endpoint removed by discovery takes no new
//! calls; its in-flight calls finish.
//!
//! **Resources are bounded** ([`Limits`]): endpoints balanced over (more wait on standby),
//! calls waiting for an endpoint (more fail at once with `RESOURCE_EXHAUSTED`), and connection
//! attempts under way at once (more queue). `RELIABILITY.md` in the repository lists the
//! fault, soak, property and fuzz tests behind these promises, with their figures.
//!
//! ## Health
//!
//! Being connected is not enough to take calls. [Outlier detection](health::OutlierDetection)
//! (on by default) ejects an endpoint whose calls fail — at its 5th consecutive failure, or by
//! the success-rate and failure-percentage statistics — for a growing time, never more than
//! 10 % of endpoints at once. A [circuit breaker](health::CircuitBreaker) caps calls in flight
//! per endpoint and can open after failures, letting one trial call through after a backoff.
//! [Active health checks](health) over `grpc.health.v1` take `NOT_SERVING` endpoints out
//! before a call fails. [Slow start](health::SlowStart) ramps (re)joining endpoints, and panic
//! mode spreads calls over every connected endpoint when too few are healthy. The
//! [`health`] module explains each mechanism and its trade-off.
//!
//! ## Choosing a policy
//!
//! Each algorithm answers a different question; the trade-offs, before the API
//! ([`Policy`] has the constructors, `SIMULATION.md` the measured balance and key movement):
//!
//! * **Power of two choices (p2c)** — the default. Two endpoints at random, the less loaded one
//!   wins. A second random choice brings the worst endpoint's load down from
//!   `ln n / ln ln n` to `ln ln n / ln 2` above the mean (Mitzenmacher), nearly what asking
//!   every endpoint would give, at a constant cost per call at any size, and without the herd
//!   that "everyone picks the least loaded" causes when many clients see the same numbers.
//!   *Load* is either **PeakEWMA** — an exponentially weighted latency that jumps up at once on
//!   a slow response and decays slowly, times calls in flight (Finagle, linkerd) — which steers
//!   around slow endpoints, not just busy ones; or **in flight** alone, which ignores latency
//!   and needs no clock (gRPC's `least_request`). **Least request** over k > 2 random
//!   choices moves further toward least-loaded at a higher cost per pick.
//! * **Least-loaded** — scan every endpoint for the fewest calls in flight per weight. Exact,
//!   and the right choice for a handful of endpoints with long calls; O(n) per call.
//! * **Smooth weighted round robin** (nginx) — shares exactly follow the weights and a heavy
//!   endpoint's turns are spread out, not bunched. Blind to load: a slow endpoint gets its share
//!   anyway.
//! * **Weighted random** — like round robin in the long run, with no state between calls;
//!   shares wobble over short runs.
//! * **Pick first** — every call to one endpoint while it is usable, then the next; for
//!   servers that must see a client's calls together. Balances nothing; ignores weights.
//! * **Consistent hashing** — a request key (a header such as a user id, the method path, or a
//!   closure of yours) always lands on the same endpoint, for caches and sticky sessions. A
//!   **ring** moves the fewest keys when endpoints come and go (about 1/N) but balances to
//!   within about 1.2–1.3× the mean share; **Maglev** balances to within one table slot and
//!   picks with one table read but moves somewhat more keys. **Bounded loads** caps any
//!   endpoint at `(1 + ε)` × its share of calls in flight, so a hot key spills over to the
//!   next endpoint instead of swamping one.
//!
//! Every policy but pick first respects endpoint weights. Endpoints also carry a
//! [priority](discover::Endpoint::with_priority): calls go to the best tier with a ready
//! endpoint. [`Router`] sends requests to different balancers by gRPC service or method;
//! [`TcpBalancer`] balances TCP connections for other protocols; [`Picker`] runs a policy
//! outside a balancer, for simulations and dispatchers of your own. A gRPC
//! [service config][service-config-module] JSON (feature `service-config`) maps onto a policy,
//! outlier detection and a health check, so a grpc-go configuration carries over.
//!
//! ## Seeing into it
//!
//! * **Tracing.** Every call runs in a `DEBUG` span `call` (target `tower_lb::call`) with the
//!   `policy`, the `endpoint` chosen and the `attempt`; discovery changes, connections,
//!   ejections, breaker and health transitions and panic mode are events with the endpoint and
//!   the reason. With no subscriber listening at `DEBUG`, a call allocates nothing for it
//!   (`tests/allocations.rs` counts).
//! * **[`Balancer::snapshot`]**: every endpoint's address, tier, weight, connection, health,
//!   breaker, calls in flight, latency estimate and counters, for dashboards and tests.
//! * **Metrics** (feature `metrics`): the same, exported through the
//!   [`metrics`](https://docs.rs/metrics) facade to Prometheus or any other recorder.
//!
//! ## Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `dns` | on | [`discover::dns`][dns-module]: SRV and A/AAAA discovery re-resolved on the TTL (hickory-resolver) |
//! | `health` | on | active `grpc.health.v1` checks, [`health::HealthCheck`][health-check] (tonic-health) |
//! | `service-config` | on | [`service_config::ServiceConfig`][service-config]: gRPC service config JSON onto the builder (serde_json) |
//! | `etcd` | off | [`discover::etcd`][etcd-module]: a key prefix watched on etcd (Go naming convention), registration with leases (prost, tonic's channel with rustls/ring, serde_json) |
//! | `metrics` | off | [`metrics::Metrics`][metrics-type]: export through the `metrics` facade |
//! | `tls` | off | [`tls::ClientTls`][client-tls] for `transport::Http2Connector::tls`: TLS and mTLS to endpoints with rustls (ring), the server name from discovery or configuration, never the IP |
//!
//! ## Examples
//!
//! One per user story, each runnable on loopback with embedded backends
//! (`cargo run --example <name>`): `tonic_client` (add the balancer to a tonic client, as a
//! service or a Tower layer), `discovery_in_code` (a static list and a stream you feed),
//! `kubernetes_dns` (headless-service SRV and A records from a real DNS server),
//! `sticky_sessions` (consistent hashing on a header, bounded loads), `metrics` (Prometheus
//! text on a loopback port), `demo` (five backends, one slow, one killed, watched live),
//! `chaos` (kills, restarts and discovery churn under 256 callers, every call's outcome
//! counted), `soak` (10 million calls; memory, tasks and sockets stay flat) and
//! `retry_storm` (what the retry budget holds back in an outage).
//!
// Links to items behind a feature: the item when the feature is on, else its docs.rs page.
#![cfg_attr(feature = "dns", doc = "[dns-module]: discover::dns")]
#![cfg_attr(
    not(feature = "dns"),
    doc = "[dns-module]: https://docs.rs/tower-lb/latest/tower_lb/discover/dns/index.html"
)]
#![cfg_attr(feature = "etcd", doc = "[etcd-module]: discover::etcd")]
#![cfg_attr(
    not(feature = "etcd"),
    doc = "[etcd-module]: https://docs.rs/tower-lb/latest/tower_lb/discover/etcd/index.html"
)]
#![cfg_attr(
    feature = "service-config",
    doc = "[service-config-module]: service_config"
)]
#![cfg_attr(
    not(feature = "service-config"),
    doc = "[service-config-module]: https://docs.rs/tower-lb/latest/tower_lb/service_config/index.html"
)]
#![cfg_attr(
    feature = "service-config",
    doc = "[service-config]: service_config::ServiceConfig"
)]
#![cfg_attr(
    not(feature = "service-config"),
    doc = "[service-config]: https://docs.rs/tower-lb/latest/tower_lb/service_config/struct.ServiceConfig.html"
)]
#![cfg_attr(feature = "health", doc = "[health-check]: health::HealthCheck")]
#![cfg_attr(
    not(feature = "health"),
    doc = "[health-check]: https://docs.rs/tower-lb/latest/tower_lb/health/struct.HealthCheck.html"
)]
#![cfg_attr(feature = "metrics", doc = "[metrics-type]: metrics::Metrics")]
#![cfg_attr(
    not(feature = "metrics"),
    doc = "[metrics-type]: https://docs.rs/tower-lb/latest/tower_lb/metrics/struct.Metrics.html"
)]
#![cfg_attr(feature = "tls", doc = "[client-tls]: tls::ClientTls")]
#![cfg_attr(
    not(feature = "tls"),
    doc = "[client-tls]: https://docs.rs/tower-lb/latest/tower_lb/tls/struct.ClientTls.html"
)]
#![deny(missing_docs)]
// docs.rs builds with every feature and marks what each item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

// Top to bottom, imports run one way (tests/module_graph.rs checks): the entry points
// (builder, layer, layer4, router, picker, metrics, service_config), then the two paths that
// meet only in the ready set — `balancer` (request path) and `registry` (control path) — then
// `status` (the public view), `ready_set` (the contract), `policy`, `endpoint`, `health`,
// `transport` and `tls`, `discover`, `limits` and `retry_budget`, and the leaves `time`, `error`.
mod balancer;
mod builder;
pub mod discover;
mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
mod layer;
mod layer4;
mod limits;
pub mod method_config;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod orca;
mod picker;
mod policy;
mod ready_set;
mod registry;
mod retry_budget;
mod router;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "service-config")]
pub mod service_config;
mod status;
mod time;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;

pub use balancer::{Balancer, CallResult, ResponseBody, ResponseFuture};
pub use builder::Builder;
pub use endpoint::{ConnectionState, PeakEwma};
pub use error::{BoxError, CallStage, Error, Unready};
pub use layer::BalanceLayer;
pub use layer4::{BalancedStream, TcpBalancer};
pub use limits::Limits;
pub use picker::Picker;
pub use policy::{HashKey, Policy, Prequal, RequestHead, WeightedRoundRobin, hash_bytes};
pub use retry_budget::RetryBudget;
pub use router::Router;
pub use status::{EndpointStatus, ServerLoad, Snapshot};
pub use time::Backoff;

// The README's code blocks run as doctests, so its first program has to compile (the snippets
// after it are marked `ignore`). That program uses tonic-health, which comes with `health`.
#[cfg(all(doctest, feature = "health"))]
#[doc = include_str!("../README.md")]
mod readme {}
