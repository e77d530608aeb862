//! The control path's own gRPC calls — health checks, load probes, the ORCA out-of-band
//! stream — go out on an endpoint's channel, whose request body type is the channel's choice.
//! They can when that type is tonic's body, the one a tonic client sends (every `Balancer`
//! built by [`build`](crate::Builder::build)); with another body type they are refused when the
//! balancer is built, or skipped.

use std::any::{Any, TypeId};

use crate::transport::EndpointChannel;

/// Whether channels of type `T` carry tonic's request body, and so the control path's calls.
pub(crate) fn carries_grpc<T: EndpointChannel>() -> bool {
    TypeId::of::<T::RequestBody>() == TypeId::of::<tonic::body::Body>()
}

/// `body` as the channel's request body: `Some` exactly when [`carries_grpc`] holds.
pub(super) fn channel_body<T: EndpointChannel>(body: tonic::body::Body) -> Option<T::RequestBody> {
    let body: Box<dyn Any> = Box::new(body);
    body.downcast::<T::RequestBody>().ok().map(|body| *body)
}

/// A unary or streaming gRPC request to `path` (`/package.Service/Method`) with `body`
/// (already framed), for the channel's body type.
pub(super) fn grpc_request<T: EndpointChannel>(
    path: &'static str,
    body: tonic::body::Body,
) -> Option<http::Request<T::RequestBody>> {
    let mut request = http::Request::new(channel_body::<T>(body)?);
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static(path);
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    Some(request)
}
