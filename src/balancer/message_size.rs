//! gRPC message sizes against a method's `maxRequestMessageBytes` and
//! `maxResponseMessageBytes`: the request is checked before it is sent, the response as it is
//! read. A message is a 5-byte prefix (a compression flag, then the length, big-endian) and
//! its bytes; HTTP/2 cuts the stream into frames anywhere, so the prefixes are followed across
//! frames.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};

use super::replay::{Buffered, buffer};
use crate::error::BoxError;

const PREFIX: usize = 5;

/// Follows message prefixes through a stream of data chunks.
#[derive(Debug, Default, Clone)]
pub(crate) struct Messages {
    prefix: [u8; PREFIX],
    prefix_seen: usize,
    /// Bytes of the current message still to come.
    rest: u64,
}

impl Messages {
    /// Moves past `chunk`; returns the length of the largest message whose prefix it held.
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Option<u64> {
        let mut largest = None;
        while !chunk.is_empty() {
            if self.rest > 0 {
                let n = (chunk.len() as u64).min(self.rest);
                self.rest -= n;
                chunk.advance(n as usize);
                continue;
            }
            let n = (PREFIX - self.prefix_seen).min(chunk.len());
            self.prefix[self.prefix_seen..self.prefix_seen + n].copy_from_slice(&chunk[..n]);
            self.prefix_seen += n;
            chunk.advance(n);
            if self.prefix_seen == PREFIX {
                self.prefix_seen = 0;
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]);
                self.rest = u64::from(len);
                largest = largest.max(Some(self.rest));
            }
        }
        largest
    }
}

/// `request`, or `RESOURCE_EXHAUSTED` if a message in it is over `limit` bytes. Only a body
/// complete at dispatch (a unary or server-streaming call's, with tonic's body type) can be
/// checked before it is sent; any other goes out unchecked.
pub(crate) fn check_request<B: Send + 'static>(
    request: http::Request<B>,
    limit: u32,
) -> Result<http::Request<B>, BoxError> {
    match buffer(request, usize::MAX) {
        Buffered::Once(request) => Ok(request),
        Buffered::Replayable(replay) => {
            let mut messages = Messages::default();
            let largest = replay.data().filter_map(|d| messages.feed(d)).max();
            match largest {
                Some(size) if size > u64::from(limit) => {
                    Err(too_large("trying to send", size, limit))
                }
                _ => Ok(replay.request(0)),
            }
        }
    }
}

/// The error of a message over the limit, as grpc-go words it.
pub(crate) fn too_large(direction: &str, size: u64, limit: u32) -> BoxError {
    Box::new(tonic::Status::resource_exhausted(format!(
        "tower-lb: {direction} message larger than max ({size} vs. {limit})"
    )))
}

pin_project_lite::pin_project! {
    /// A response body that fails with `RESOURCE_EXHAUSTED` at the first message over the
    /// limit, before handing on any of it.
    pub(crate) struct Limited<B> {
        #[pin]
        body: B,
        messages: Messages,
        limit: u32,
        failed: bool,
    }
}

impl<B> Limited<B> {
    pub(crate) fn new(body: B, limit: u32) -> Self {
        Limited {
            body,
            messages: Messages::default(),
            limit,
            failed: false,
        }
    }
}

impl<B> Body for Limited<B>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if *this.failed {
            return Poll::Ready(None);
        }
        let frame = std::task::ready!(this.body.poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
            && let Some(data) = data
            && let Some(size) = this.messages.feed(data)
            && size > u64::from(*this.limit)
        {
            *this.failed = true;
            return Poll::Ready(Some(Err(too_large("received", size, *this.limit))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&(len as u32).to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len));
        m
    }

    #[test]
    fn prefixes_are_followed_across_any_cut() {
        let stream = [message(3), message(300), message(0), message(20)].concat();
        for cut in 1..stream.len() {
            let mut m = Messages::default();
            let a = m.feed(&stream[..cut]);
            let b = m.feed(&stream[cut..]);
            assert_eq!(a.max(b), Some(300), "cut at {cut}");
        }
        assert_eq!(Messages::default().feed(&message(5)[..4]), None);
    }
}
