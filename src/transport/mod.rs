//! How the balancer talks to endpoints: a [`Connector`] dials them (control path) and a
//! [`Channel`] carries requests on an established connection (request path).
//!
//! The default is HTTP/2 over TCP with hyper ([`Http2Connector`]). [`ServiceConnector`] wraps
//! in-process Tower services instead, for tests and benchmarks that measure the balancer alone.

mod channel;
mod connector;
mod http2;
mod in_process;
mod no_requests;

pub use channel::{Channel, SendError};
pub(crate) use connector::DEFAULT_CONNECT_TIMEOUT;
pub use connector::{ConnectFuture, Connection, Connector};
pub use http2::{Http2Channel, Http2Connector};
pub use in_process::{ServiceChannel, ServiceConnector, ServiceFuture};
pub(crate) use no_requests::NoRequests;
