//! A channel for ready sets that carry no HTTP requests: the `Picker`'s endpoints and the
//! layer 4 balancer's targets. It lets them share the ready set, the control task and the
//! policies with the HTTP/2 path without a second trait.

use super::channel::{EndpointChannel, SendError};

/// Wraps what such a ready set holds per endpoint; always ready, refuses every request.
#[derive(Clone)]
pub(crate) struct NoRequests<T>(pub(crate) T);

impl<T: Clone + Send + Sync + 'static> EndpointChannel for NoRequests<T> {
    type RequestBody = ();
    type ResponseBody = tonic::body::Body;
    type Future = std::future::Ready<Result<http::Response<tonic::body::Body>, SendError<()>>>;

    fn is_ready(&self) -> bool {
        true
    }

    /// Never called by the crate: the owners of these sets dispatch by other means.
    fn send(&mut self, _request: http::Request<()>) -> Self::Future {
        std::future::ready(Err(SendError::Failed(
            "this endpoint set carries no HTTP requests".into(),
        )))
    }
}
