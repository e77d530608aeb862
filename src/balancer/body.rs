//! The response body: the endpoint's body, plus the call's [`InFlight`] hold and deadline.
//!
//! The hold is released — the endpoint's load drops and the call's outcome is recorded — at the
//! first of: the trailers (the end of a gRPC stream), the end of the body, an error, the
//! deadline, or the body being dropped. So a long stream counts as load for exactly as long as
//! it runs, and a stream read to its end stops counting before it is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::deadline::Deadline;
use super::message_size::Limited;
use super::peeked::Peeked;
use crate::endpoint::InFlight;
use crate::error::{BoxError, CallStage};

pin_project_lite::pin_project! {
    /// The body of a response returned by a [`Balancer`](crate::Balancer).
    ///
    /// Its errors are the endpoint body's own, and `DEADLINE_EXCEEDED` (a boxed
    /// [`tonic::Status`]) when the call's deadline passes while the body is read. The default
    /// value is an empty body, as tonic's interceptors need for the responses they refuse.
    pub struct ResponseBody<B> {
        #[pin]
        inner: Inner<B>,
        in_flight: Option<InFlight>,
        deadline: Option<Deadline>,
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner<B> {
        Body { #[pin] body: B },
        // A call with a retry or hedging policy read its first frame ahead.
        Peeked { body: Pin<Box<Peeked<B>>> },
        // A method with `maxResponseMessageBytes`: the whole body as it would be, checked.
        Limited { body: Pin<Box<Limited<ResponseBody<B>>>> },
        Empty,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(body: B, in_flight: Option<InFlight>, deadline: Option<Deadline>) -> Self {
        ResponseBody {
            inner: Inner::Body { body },
            in_flight,
            deadline,
        }
    }
}

impl<B> ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    /// `self`, failing with `RESOURCE_EXHAUSTED` at a message over `limit` bytes.
    pub(crate) fn limited(self, limit: u32) -> Self {
        ResponseBody {
            inner: Inner::Limited {
                body: Box::pin(Limited::new(self, limit)),
            },
            in_flight: None,
            deadline: None,
        }
    }

    /// The body of an attempt whose first frame was read ahead.
    pub(crate) fn peeked(
        body: Pin<Box<Peeked<B>>>,
        in_flight: Option<InFlight>,
        deadline: Option<Deadline>,
    ) -> Self {
        ResponseBody {
            inner: Inner::Peeked { body },
            in_flight,
            deadline,
        }
    }
}

impl<B> Default for ResponseBody<B> {
    fn default() -> Self {
        ResponseBody {
            inner: Inner::Empty,
            in_flight: None,
            deadline: None,
        }
    }
}

impl<B> Body for ResponseBody<B>
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
        let mut this = self.project();
        let polled = match this.inner.as_mut().project() {
            InnerProj::Body { body } => body
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(Into::into))),
            InnerProj::Peeked { body } => body.as_mut().poll_frame(cx),
            InnerProj::Limited { body } => return body.as_mut().poll_frame(cx),
            InnerProj::Empty => return Poll::Ready(None),
        };
        let frame = match polled {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let Some(deadline) = this.deadline.as_mut() else {
                    return Poll::Pending;
                };
                if !deadline.poll_expired(cx) {
                    return Poll::Pending;
                }
                if let Some(mut hold) = this.in_flight.take() {
                    hold.on_timeout();
                }
                let error = deadline.exceeded_boxed(CallStage::Body);
                *this.deadline = None;
                // Dropping the endpoint's body resets its stream: the server sees the cancel.
                this.inner.set(Inner::Empty);
                return Poll::Ready(Some(Err(error)));
            }
        };
        let ended = match &frame {
            Some(Ok(f)) => match (f.trailers_ref(), this.in_flight.as_mut()) {
                (Some(trailers), Some(hold)) => {
                    hold.on_trailers(trailers);
                    true
                }
                _ => false,
            },
            Some(Err(_)) => {
                if let Some(mut hold) = this.in_flight.take() {
                    hold.on_error();
                }
                true
            }
            None => true,
        };
        if ended || this.inner.is_end_stream() {
            // Trailers, an error or the end: the call is over, whether or not the caller
            // drops the body now.
            if let Some(mut hold) = this.in_flight.take() {
                hold.on_end();
            }
            *this.deadline = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Body { body } => body.size_hint(),
            Inner::Peeked { body } => body.size_hint(),
            Inner::Limited { body } => body.size_hint(),
            Inner::Empty => SizeHint::with_exact(0),
        }
    }
}

impl<B> Inner<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    fn is_end_stream(&self) -> bool {
        match self {
            Inner::Body { body } => body.is_end_stream(),
            Inner::Peeked { body } => body.is_end_stream(),
            Inner::Limited { body } => body.is_end_stream(),
            Inner::Empty => true,
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
