//! How the balancer talks to endpoints: a [`Connector`] dials them (control path) and a
//! [`Channel`] carries requests on an established connection (request path).
//!
//! The default is HTTP/2 over TCP with hyper ([`Http2Connector`]). [`ServiceConnector`] wraps
//! in-process Tower services instead, for tests and benchmarks that measure the balancer alone.

mod http2;
mod in_process;
mod no_requests;

pub use http2::{Http2Channel, Http2Connector};
pub use in_process::{ServiceChannel, ServiceConnector, ServiceFuture};
pub(crate) use no_requests::NoRequests;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::discover::Endpoint;
use crate::error::BoxError;

/// How long a dial may take before it counts as failed.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle to one live connection, as the request path uses it: cheap to clone, checked for
/// readiness without blocking, and able to hand a request back unsent.
pub trait Channel: Clone + Send + Sync + 'static {
    /// The request body type the connection sends.
    type RequestBody: Send + 'static;
    /// The response body type it returns.
    type ResponseBody: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
    /// The future of one call.
    type Future: Future<Output = Result<http::Response<Self::ResponseBody>, SendError<Self::RequestBody>>>
        + Send
        + 'static;

    /// Whether the connection can take a request now (a hint: it may still refuse it).
    fn is_ready(&self) -> bool;

    /// Sends the request.
    fn send(&mut self, request: http::Request<Self::RequestBody>) -> Self::Future;
}

/// Why a channel did not return a response.
// The request travels by value, as in hyper's `TrySendError`: boxing it would cost an
// allocation exactly when a connection is failing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SendError<B> {
    /// The request never left the client: it is handed back, so it can go to another endpoint.
    Unsent {
        /// The request, untouched.
        request: http::Request<B>,
        /// Why it was refused.
        error: BoxError,
    },
    /// The request may have reached the endpoint; it cannot be retried transparently.
    Failed(BoxError),
}

/// An established connection: the channel for requests, and a future that resolves when the
/// connection has closed (with the error, if it broke).
pub struct Connection<T> {
    /// The request handle.
    pub channel: T,
    /// Resolves once the connection is closed.
    pub closed: Pin<Box<dyn Future<Output = Option<BoxError>> + Send>>,
}

/// The future of one connection attempt.
pub type ConnectFuture<T> = Pin<Box<dyn Future<Output = Result<Connection<T>, BoxError>> + Send>>;

/// Dials endpoints. Runs on the control path only (once per connection attempt), so it may
/// allocate freely.
pub trait Connector: Send + Sync + 'static {
    /// The channel type of its connections.
    type Channel: Channel;

    /// Opens a connection to the endpoint.
    fn connect(&self, endpoint: &Endpoint) -> ConnectFuture<Self::Channel>;
}
