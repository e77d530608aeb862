//! Per-method call settings (gRPC proposal A6 and the service config's `methodConfig`): which
//! methods a [`MethodConfig`] applies to, their timeout, and a [`RetryPolicy`] or a
//! [`HedgingPolicy`]; and the balancer-wide [`RetryThrottling`] that stops retries and hedges
//! while the backends are failing.
//!
//! ```
//! use std::time::Duration;
//! use tonic::Code;
//! use tower_lb::{Balancer, method_config::{MethodConfig, MethodName, RetryPolicy, RetryThrottling}};
//!
//! let builder = Balancer::builder()
//!     .method_config(
//!         MethodConfig::new([MethodName::service("echo.Echo")])
//!             .timeout(Duration::from_secs(2))
//!             .retry_policy(RetryPolicy::new(4, [Code::Unavailable])),
//!     )
//!     .retry_throttling(RetryThrottling::new(10, 0.1));
//! ```
//!
//! ## What a policy does to a call
//!
//! * **Retries** (A6): an attempt that fails with one of the retryable codes — in a
//!   Trailers-Only answer, in trailers before any response message, or as a transport error
//!   before the response (which tonic reports as `UNAVAILABLE`) — is sent again after a
//!   randomised exponential backoff, to an endpoint picked afresh that passes over the one that
//!   failed, up to `maxAttempts` attempts in all. Once the caller has been handed a response
//!   message, or a status that is not retryable, the call is **committed** and never retried.
//! * **Hedging** (A6): after `hedgingDelay` without a committed answer, another attempt goes
//!   to another endpoint, up to `maxAttempts` in all; the first answer that is not a
//!   non-fatal status wins, and every other attempt is dropped, which resets its HTTP/2 stream
//!   (`RST_STREAM` `CANCEL`): its server sees the cancellation. Every attempt counts as load
//!   on its own endpoint while it runs.
//! * Attempts after the first carry `grpc-previous-rpc-attempts`; a server's
//!   `grpc-retry-pushback-ms` sets the next delay, and a negative or unreadable one stops
//!   further attempts. Further attempts need both the balancer's
//!   [`RetryBudget`](crate::RetryBudget) and, when set, [`RetryThrottling`]. The call's
//!   deadline bounds the whole call, across attempts.
//! * **What can be replayed**: the request body is buffered for replay when it is complete at
//!   dispatch (unary and server-streaming calls, and client streams whose every message is
//!   ready) and no larger than [`Builder::retry_buffer_limit`](crate::Builder::retry_buffer_limit)
//!   (64 KiB by default), and the balancer's request body is `tonic::body::Body` (the default
//!   [`Balancer`](crate::Balancer)). Other calls go out once, as without a policy.
//!
//! Calls to methods without a policy take the balancer's ordinary path and pay nothing for
//! this feature but one check whether any method config is set.

mod hedging;
mod method;
mod retry;
mod status_codes;
mod table;
mod throttling;

pub use hedging::HedgingPolicy;
pub use method::{MethodConfig, MethodName};
pub use retry::RetryPolicy;
pub use throttling::RetryThrottling;

pub(crate) use method::AttemptPolicy;
pub(crate) use status_codes::StatusCodes;
pub(crate) use table::MethodTable;
pub(crate) use throttling::Throttle;
