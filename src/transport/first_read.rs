//! Connected means the server has spoken: a stream that reports the first bytes it reads.
//!
//! An HTTP/2 server sends its SETTINGS frame first thing; hyper's client handshake does not
//! wait for it. So a TCP accept alone — the kernel's, for a process that is stopped, deadlocked
//! or not an HTTP/2 server — would count as a connection, and calls would go to it and hang.
//! A connection counts as established only once the server has sent its first bytes, within
//! the connect timeout. With TLS 1.3 this matters twice: the client's handshake is over before
//! the server has looked at the client's certificate, and a server that refuses it says so (an
//! alert, then a close) only after the client thinks it is connected.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// A stream that reports the first bytes the server sends.
pub(crate) struct FirstRead<I> {
    io: I,
    first: Option<oneshot::Sender<()>>,
}

impl<I> FirstRead<I> {
    /// Wraps `io`; the receiver resolves at the first plaintext byte (or fails if the stream
    /// is dropped before).
    pub(crate) fn new(io: I) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (
            FirstRead {
                io,
                first: Some(tx),
            },
            rx,
        )
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstRead<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before
            && let Some(first) = this.first.take()
        {
            let _ = first.send(());
        }
        poll
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstRead<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
