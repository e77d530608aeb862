//! The interop servers' "echo metadata" feature for the tonic server, as a Tower layer:
//! `x-grpc-test-echo-initial` comes back among the response headers and
//! `x-grpc-test-echo-trailing-bin` among the trailers. A layer, because a tonic handler can
//! set headers but not the trailers of a call that succeeds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue};
use http_body::{Frame, SizeHint};
use tonic::body::Body;
use tower::{Layer, Service};

/// The request header echoed among the response headers.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";

/// The request header (binary metadata) echoed among the trailers.
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

/// Wraps a tonic server's routes in [`EchoMetadata`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoMetadataLayer;

impl<S> Layer<S> for EchoMetadataLayer {
    type Service = EchoMetadata<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EchoMetadata { inner }
    }
}

/// Echoes the two test headers of a request onto its response (see the module docs).
#[derive(Debug, Clone)]
pub struct EchoMetadata<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for EchoMetadata<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let initial = request.headers().get(ECHO_INITIAL).cloned();
        let trailing = request.headers().get(ECHO_TRAILING).cloned();
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            if let Some(value) = initial {
                response.headers_mut().insert(ECHO_INITIAL, value);
            }
            let Some(value) = trailing else {
                return Ok(response);
            };
            if response.headers().contains_key("grpc-status") {
                // A trailers-only response: its headers are its trailers.
                response.headers_mut().insert(ECHO_TRAILING, value);
                return Ok(response);
            }
            Ok(response.map(|inner| {
                Body::new(WithTrailer {
                    inner,
                    extra: Some(value),
                })
            }))
        })
    }
}

/// A response body that adds one trailer (or a trailers frame, if the body had none).
struct WithTrailer {
    inner: Body,
    extra: Option<HeaderValue>,
}

impl http_body::Body for WithTrailer {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(trailers) = frame.trailers_mut()
                    && let Some(value) = this.extra.take()
                {
                    trailers.insert(ECHO_TRAILING, value);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => Poll::Ready(this.extra.take().map(|value| {
                let mut trailers = HeaderMap::new();
                trailers.insert(ECHO_TRAILING, value);
                Ok(Frame::trailers(trailers))
            })),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.extra.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
