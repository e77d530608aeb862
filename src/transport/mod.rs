//! How the balancer talks to endpoints: a [`Connector`] dials them (control path) and a
//! [`EndpointChannel`] carries requests on an established connection (request path).
//!
//! The default is HTTP/2 over TCP with hyper ([`Http2Connector`]). [`ServiceConnector`] wraps
//! in-process Tower services instead, for tests and benchmarks that measure the balancer alone.
//!
//! ## From tonic's `Endpoint`
//!
//! Every setting of tonic's `Endpoint`, and where it lives here: the connection's settings on
//! [`Http2Connector`], which [`Builder::build_with`](crate::Builder::build_with) takes
//! (`build()` uses one with these defaults); the calls' on the [`Builder`](crate::Builder).
//!
//! | tonic `Endpoint` | here | default |
//! |---|---|---|
//! | `timeout` | [`Builder::timeout`](crate::Builder::timeout) (client-side deadline, `DEADLINE_EXCEEDED`) | none |
//! | `tls_config` | `Http2Connector::tls` (feature `tls`) | plaintext |
//! | `connect_timeout` | `connect_timeout` | 5 s |
//! | `http2_keep_alive_interval`, `keep_alive_timeout` | `keep_alive(interval, timeout)` | 5 min, 20 s (tonic: none) |
//! | `keep_alive_while_idle` | `keep_alive_while_idle` | off |
//! | `tcp_nodelay` | `tcp_nodelay` | on |
//! | `tcp_keepalive`, `tcp_keepalive_interval`, `tcp_keepalive_retries` | same names | off; the system's |
//! | — | `tcp_user_timeout` (Linux, Android) | the system's |
//! | `initial_stream_window_size`, `initial_connection_window_size` | same names | hyper's (2 MiB, 5 MiB) |
//! | `http2_adaptive_window` | `adaptive_window` | off |
//! | `max_frame_size` | `max_frame_size` | 16 KiB |
//! | `http2_max_header_list_size` | `max_header_list_size` | hyper's (16 KiB) |
//! | `origin` | `authority` (the request's `:authority`; scheme from the connection) | the caller's, else the endpoint's |
//! | `user_agent` | `user_agent` (`"{yours} tower-lb/{version}"`) | `tower-lb/{version}` |
//! | `concurrency_limit` | [`CircuitBreaker::max_in_flight`](crate::health::CircuitBreaker::max_in_flight), per endpoint | none |
//! | `rate_limit` | not a balancer's job: put `tower::limit::RateLimitLayer` around the balancer | — |
//! | `buffer_size` | does not apply: there is no `Buffer`; calls pick in their own task | — |
//! | `executor` | does not apply: connection tasks run on the runtime that built the balancer | — |
//! | `http2_header_table_size`, `http2_max_concurrent_reset_streams`, `http2_max_local_error_reset_streams`, `http2_reset_stream_duration` | not exposed (hyper's defaults) | — |
//! | `local_address` | not supported | — |
//! | `connect_with_connector` | [`Builder::build_with`](crate::Builder::build_with) with a [`Connector`] of yours | — |

mod channel;
mod connector;
mod first_read;
mod frames;
mod http2;
mod in_process;
mod no_requests;
mod ping;
mod settings;

pub use channel::{EndpointChannel, ProbeFuture, SendError};
pub use connector::{ConnectFuture, Connection, Connector};
pub use http2::{Http2Channel, Http2Connector};
pub use in_process::{ServiceChannel, ServiceConnector, ServiceFuture};
pub(crate) use no_requests::NoRequests;
pub(crate) use settings::DEFAULT_CONNECT_TIMEOUT;
