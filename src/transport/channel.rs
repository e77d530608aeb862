//! The request path's side of a connection: [`EndpointChannel`], and what a failed send hands back.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::error::BoxError;

/// A handle to one live connection, as the request path uses it: cheap to clone, checked for
/// readiness without blocking, and able to hand a request back unsent.
pub trait EndpointChannel: Clone + Send + Sync + 'static {
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

    /// Checks, after a call on this connection timed out, that the peer still answers within
    /// `timeout`; a channel that finds it silent closes its connection (whose
    /// [`closed`](super::Connection::closed) then resolves with the reason), which takes the
    /// endpoint out of the ready set until it reconnects. `None`: this channel cannot probe
    /// (the default).
    fn probe(&self, timeout: Duration) -> Option<ProbeFuture> {
        let _ = timeout;
        None
    }
}

/// A probe under way; see [`EndpointChannel::probe`].
pub type ProbeFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

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
