//! A response body whose first frame was read ahead: a call with a retry or hedging policy
//! reads it to decide whether the call is committed (a message) or may be retried (trailers
//! with a retryable status), then hands the frame on first.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::error::BoxError;

pin_project_lite::pin_project! {
    /// The endpoint's body, and its first frame once read.
    pub(crate) struct Peeked<B> {
        first: Option<Result<Frame<Bytes>, BoxError>>,
        read: bool,
        #[pin]
        body: B,
    }
}

impl<B> Peeked<B> {
    /// The first frame, if read and there was one.
    pub(crate) fn first(&self) -> Option<&Result<Frame<Bytes>, BoxError>> {
        self.first.as_ref()
    }
}

impl<B> Peeked<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    /// `body`, boxed so it can be read ahead and then moved.
    pub(crate) fn new(body: B) -> Pin<Box<Self>> {
        Box::pin(Peeked {
            first: None,
            read: false,
            body,
        })
    }

    /// Reads the first frame (once): `None` when the body ended without one.
    pub(crate) fn poll_first(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<&Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if !*this.read {
            let frame = std::task::ready!(this.body.poll_frame(cx));
            *this.first = frame.map(|f| f.map_err(Into::into));
            *this.read = true;
        }
        Poll::Ready(this.first.as_ref())
    }
}

impl<B> Body for Peeked<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(first));
        }
        this.body
            .poll_frame(cx)
            .map(|f| f.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
