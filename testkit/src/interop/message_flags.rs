//! The compressed flag of every request message, for the tonic server's `expect_compressed`
//! check: a Tower layer that reads the gRPC message headers as the request body passes and
//! hands the flags to the handler in the request's extensions ([`MessageFlags`]). At the
//! HTTP level, because tonic decompresses before a handler sees a message.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};
use tonic::body::Body;
use tower::{Layer, Service};

/// The compressed flags of a request's messages so far, in order. Each message's flag is in
/// before tonic hands the message to the handler.
#[derive(Debug, Clone, Default)]
pub struct MessageFlags(Arc<Mutex<Vec<bool>>>);

impl MessageFlags {
    /// Whether message `index` (0-based) came compressed; `None` if it has not passed yet.
    pub fn compressed(&self, index: usize) -> Option<bool> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(index)
            .copied()
    }

    fn push(&self, compressed: bool) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(compressed);
    }
}

/// Wraps a tonic server's routes in [`ReadMessageFlags`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageFlagsLayer;

impl<S> Layer<S> for MessageFlagsLayer {
    type Service = ReadMessageFlags<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadMessageFlags { inner }
    }
}

/// Puts a [`MessageFlags`] in each request's extensions and fills it as the body passes.
#[derive(Debug, Clone)]
pub struct ReadMessageFlags<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for ReadMessageFlags<S>
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

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let flags = MessageFlags::default();
        request.extensions_mut().insert(flags.clone());
        self.inner.call(request.map(|inner| {
            Body::new(Reading {
                inner,
                flags,
                header: Vec::with_capacity(5),
                skip: 0,
            })
        }))
    }
}

/// A request body that notes each message's flag: it reads the 5-byte message headers
/// (flag, then length) and skips the messages, across data frames of any size.
struct Reading<B> {
    inner: B,
    flags: MessageFlags,
    /// The bytes of the message header read so far.
    header: Vec<u8>,
    /// The bytes of the current message still to pass.
    skip: usize,
}

impl<B> Reading<B> {
    fn scan(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data.advance(n);
                continue;
            }
            let n = (5 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..n]);
            data.advance(n);
            if self.header.len() == 5 {
                self.flags.push(self.header[0] == 1);
                let len = [
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ];
                self.skip = u32::from_be_bytes(len) as usize;
                self.header.clear();
            }
        }
    }
}

impl<B> http_body::Body for Reading<B>
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
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.scan(data);
        }
        polled.map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
