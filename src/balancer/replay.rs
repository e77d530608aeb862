//! A request kept for further attempts: its head, and its body buffered as frames.
//!
//! Only `tonic::body::Body` requests are buffered (the body type must be rebuilt for each
//! attempt, and that is the one we can build); the body is read while its frames are ready at
//! once, so a unary or server-streaming request (one message, then the end) is buffered whole
//! without waiting, and a stream that waits for its caller is never waited for here. A body
//! that is not complete at once, or larger than the limit, goes out once: the frames read so
//! far, then the rest.

use std::any::{Any, TypeId};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};

/// One frame of a buffered body.
#[derive(Clone)]
enum Piece {
    Data(Bytes),
    Trailers(HeaderMap),
}

/// A request that can be sent again.
pub(crate) struct Replay {
    head: http::Request<()>,
    pieces: Arc<[Piece]>,
}

/// What buffering made of a request.
pub(crate) enum Buffered<B> {
    /// Complete and within the limit: any number of attempts.
    Replayable(Replay),
    /// To be sent once, as it is.
    Once(http::Request<B>),
}

static PREVIOUS_ATTEMPTS: http::HeaderName =
    http::HeaderName::from_static("grpc-previous-rpc-attempts");

impl Replay {
    /// The head of the request (for its path and hash key).
    pub(crate) fn head(&self) -> &http::Request<()> {
        &self.head
    }

    /// The body's data, in order.
    pub(crate) fn data(&self) -> impl Iterator<Item = &Bytes> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Data(data) => Some(data),
            Piece::Trailers(_) => None,
        })
    }

    /// The request for an attempt after `previous` others, as body type `B`
    /// (`tonic::body::Body`, as [`buffer`] checked).
    pub(crate) fn request<B: 'static>(&self, previous: u32) -> http::Request<B> {
        let mut head = self.head.clone();
        if previous > 0 {
            head.headers_mut()
                .insert(PREVIOUS_ATTEMPTS.clone(), HeaderValue::from(previous));
        }
        let body = tonic::body::Body::new(Pieces {
            pieces: self.pieces.clone(),
            next: 0,
            rest: None,
        });
        head.map(|()| cast(body).expect("buffered only for tonic bodies"))
    }
}

/// Buffers `request`'s body for replay, up to `limit` bytes.
pub(crate) fn buffer<B: Send + 'static>(request: http::Request<B>, limit: usize) -> Buffered<B> {
    if TypeId::of::<B>() != TypeId::of::<tonic::body::Body>() {
        return Buffered::Once(request);
    }
    let (parts, body) = request.into_parts();
    let mut body: tonic::body::Body = cast(body).expect("checked above");
    let mut pieces = Vec::new();
    let mut size = 0usize;
    // Frames ready at once, without a waker: anything not ready now is not waited for.
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let ended = loop {
        if size > limit {
            break false;
        }
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    size += data.len();
                    pieces.push(Piece::Data(data));
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        pieces.push(Piece::Trailers(trailers));
                    }
                }
            },
            Poll::Ready(None) => break true,
            // An error is the rest's to report, when the body is sent.
            Poll::Ready(Some(Err(_))) | Poll::Pending => break false,
        }
    };
    let head = http::Request::from_parts(parts, ());
    if ended && size <= limit {
        return Buffered::Replayable(Replay {
            head,
            pieces: pieces.into(),
        });
    }
    let body = tonic::body::Body::new(Pieces {
        pieces: pieces.into(),
        next: 0,
        rest: Some(body),
    });
    Buffered::Once(head.map(|()| cast(body).expect("checked above")))
}

/// `value` as type `U`, when it is one (the two are the same type).
fn cast<T: 'static, U: 'static>(value: T) -> Option<U> {
    let boxed: Box<dyn Any> = Box::new(value);
    boxed.downcast::<U>().ok().map(|b| *b)
}

/// A buffered body: its frames, then (for a body sent once) the rest of the original.
struct Pieces {
    pieces: Arc<[Piece]>,
    next: usize,
    rest: Option<tonic::body::Body>,
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        if let Some(piece) = this.pieces.get(this.next) {
            this.next += 1;
            return Poll::Ready(Some(Ok(match piece.clone() {
                Piece::Data(data) => Frame::data(data),
                Piece::Trailers(trailers) => Frame::trailers(trailers),
            })));
        }
        match this.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.pieces.len() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: usize = self.pieces[self.next.min(self.pieces.len())..]
            .iter()
            .map(|p| match p {
                Piece::Data(d) => d.len(),
                Piece::Trailers(_) => 0,
            })
            .sum();
        match &self.rest {
            None => SizeHint::with_exact(buffered as u64),
            Some(_) => {
                let mut hint = SizeHint::new();
                hint.set_lower(buffered as u64);
                hint
            }
        }
    }
}
