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
//! **The request path** runs in the caller's task. [`Balancer::call`](tower::Service::call)
//! loads an immutable snapshot of ready endpoints (an atomic pointer load), picks one with the
//! [`Policy`] — power of two choices over PeakEWMA latency × in-flight load by default — and
//! sends the request on that endpoint's own HTTP/2 connection. No lock, no channel hop, no
//! worker task. The response body holds the call's load until it ends or is dropped.
//!
//! **The control path** is one background task per balancer: it reads the
//! [discovery](discover) stream (a static list, [DNS](discover::dns), or your own), keeps one
//! HTTP/2 connection per endpoint (eager connect,
//! reconnect with exponential backoff and jitter) and publishes a new snapshot whenever an
//! endpoint joins, leaves, connects or loses its connection.
//!
//! **Failure is explicit.** With no ready endpoint a call waits up to the
//! [ready timeout](Builder::ready_timeout) for one, then fails with `UNAVAILABLE` and a message
//! that says why (nothing discovered, or all endpoints unreachable, with the last connection
//! error). A request a connection hands back unsent is picked again onto another endpoint.
//! An endpoint removed by discovery takes no new calls; its in-flight calls finish.
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
//! ## Policies, tiers and routing
//!
//! [`Policy`] explains each algorithm and its trade-off: p2c (PeakEWMA or in-flight), least
//! request over k choices, least-loaded, smooth weighted round robin, weighted random, pick
//! first, and consistent hashing on a request [`HashKey`] — ring hash, Maglev, and bounded
//! loads on either. Every policy but pick first respects endpoint weights. Endpoints also carry a [priority](discover::Endpoint::with_priority): calls
//! go to the best tier with a ready endpoint. [`Router`] sends requests to different balancers
//! by gRPC service or method; [`TcpBalancer`] balances TCP connections for other protocols;
//! [`Picker`] runs a policy outside a balancer, for simulations and dispatchers of your own.
//! A gRPC [service config](service_config) JSON (feature `service-config`) maps onto a policy,
//! outlier detection and a health check, so a grpc-go configuration carries over.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod balancer;
mod body;
mod builder;
pub mod discover;
mod endpoint;
mod error;
mod future;
mod grpc_timeout;
pub mod health;
mod layer;
mod layer4;
mod picker;
mod policy;
mod ready_set;
mod registry;
mod router;
#[cfg(feature = "service-config")]
pub mod service_config;
pub mod transport;

pub use balancer::Balancer;
pub use body::ResponseBody;
pub use builder::Builder;
pub use endpoint::load::PeakEwma;
pub use endpoint::{Backoff, ConnectionState, EndpointStatus};
pub use error::{BoxError, Error, Unready};
pub use future::{CallResult, ResponseFuture};
pub use layer::BalanceLayer;
pub use layer4::{BalancedStream, TcpBalancer};
pub use picker::Picker;
pub use policy::{HashKey, Policy, RequestHead, hash_bytes};
pub use router::Router;
#[cfg(feature = "service-config")]
pub use service_config::ServiceConfig;
