//! The tonic server's [`Events`], as a Tower layer: [`BEGAN`] as a call's headers arrive,
//! [`CANCELLED`] when its request stream ends in a reset from the client. At the HTTP level,
//! because tonic hands a handler a cancelled request stream as a plain end of stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tonic::body::Body;
use tower::{Layer, Service};

use super::events::{BEGAN, CANCELLED, Events};

/// Wraps a tonic server's routes in [`CallEvents`].
#[derive(Debug, Clone)]
pub struct CallEventsLayer {
    events: Events,
}

impl CallEventsLayer {
    /// Notes into `events`.
    pub fn new(events: Events) -> Self {
        Self { events }
    }
}

impl<S> Layer<S> for CallEventsLayer {
    type Service = CallEvents<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallEvents {
            inner,
            events: self.events.clone(),
        }
    }
}

/// Notes what happens to the calls it passes on (see the module docs).
#[derive(Debug, Clone)]
pub struct CallEvents<S> {
    inner: S,
    events: Events,
}

impl<S, B> Service<http::Request<B>> for CallEvents<S>
where
    S: Service<http::Request<Body>>,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        self.events.push(BEGAN, &method);
        let events = self.events.clone();
        self.inner.call(request.map(|inner| {
            Body::new(Watched {
                inner,
                events,
                method,
            })
        }))
    }
}

/// A request body that notes [`CANCELLED`] if it ends in a `CANCEL` reset.
struct Watched<B> {
    inner: B,
    events: Events,
    method: String,
}

/// Whether `error` is, or is caused by, an HTTP/2 reset with `CANCEL`.
fn is_cancel(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::CANCEL);
        }
        cause = e.source();
    }
    false
}

impl<B> http_body::Body for Watched<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(error))) => {
                let error: tonic::codegen::StdError = error.into();
                if is_cancel(&*error) {
                    this.events.push(CANCELLED, &this.method);
                }
                Poll::Ready(Some(Err(error)))
            }
            other => other.map(|frame| frame.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
