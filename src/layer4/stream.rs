//! A balanced TCP connection: the stream, plus its hold on the endpoint's load.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::endpoint::InFlight;

pin_project_lite::pin_project! {
    /// A connection made by [`TcpBalancer`](crate::TcpBalancer). It counts as one unit of load
    /// on its endpoint until dropped, so least-loaded and p2c in-flight balance open
    /// connections ("least connections").
    pub struct BalancedStream {
        #[pin]
        stream: TcpStream,
        hold: InFlight,
    }
}

impl BalancedStream {
    pub(crate) fn new(stream: TcpStream, hold: InFlight) -> Self {
        BalancedStream { stream, hold }
    }

    /// The endpoint's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.hold.endpoint().addr
    }

    /// The underlying stream (e.g. to set socket options).
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }
}

impl std::fmt::Debug for BalancedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedStream")
            .field("peer", &self.peer_addr())
            .finish()
    }
}

impl AsyncRead for BalancedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().stream.poll_read(cx, buf)
    }
}

impl AsyncWrite for BalancedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
