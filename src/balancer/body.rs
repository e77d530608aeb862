//! The response body: the endpoint's body, plus the call's [`InFlight`] hold, released when
//! the body ends or is dropped (so a long stream counts as load for as long as it runs).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::endpoint::InFlight;

pin_project_lite::pin_project! {
    /// The body of a response returned by a [`Balancer`](crate::Balancer).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        in_flight: Option<InFlight>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, in_flight: Option<InFlight>) -> Self {
        ResponseBody { inner, in_flight }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(trailers), Some(hold)) = (f.trailers_ref(), this.in_flight.as_mut()) {
                    hold.on_trailers(trailers);
                }
            }
            Some(Err(_)) => {
                if let Some(mut hold) = this.in_flight.take() {
                    hold.on_error();
                }
            }
            None => {
                if let Some(mut hold) = this.in_flight.take() {
                    hold.on_end();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
