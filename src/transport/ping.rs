//! An HTTP/2 PING of our own on a hyper connection, to tell a frozen peer from a busy one.
//!
//! A stopped or hung server keeps its TCP connection: the kernel acknowledges what we send,
//! and keep-alive notices only after its interval and timeout. A call timing out does not say
//! which it is: a live server may just be slow. A PING does: every HTTP/2 server answers one
//! in its connection layer, ahead of any queued request and outside flow control, so a live
//! server answers within a round trip however busy its handlers are.
//!
//! hyper's client does not let us send a PING, so [`PingIo`] sits between hyper and the socket
//! (above TLS): asked by its [`Pinger`], it writes a PING frame between two of hyper's frames
//! (`frames.rs` follows the boundaries) and takes the answer out of what it reads, so hyper
//! never sees either. A ping that goes unanswered past its timeout breaks the stream: hyper's
//! connection ends with our error, the calls on it fail, and the endpoint leaves the ready set
//! until it reconnects — which counts only once the server speaks (`first_read.rs`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::frames::{Inbound, Outbound, PING, PING_LEN};

/// What the handle and the stream share.
#[derive(Debug, Default)]
struct Shared {
    /// Pings asked for so far; the stream sends one when this is ahead of what it has sent.
    asked: AtomicU64,
    /// How many of those have been answered (one answer covers every ask before its ping).
    answered: AtomicU64,
    /// Set when a ping went unanswered: the stream fails from then on.
    silent: AtomicBool,
    /// Set when the stream is dropped (the connection has ended).
    dropped: AtomicBool,
    /// The connection task, woken to send a ping or to fail.
    task: AtomicWaker,
    /// Wakes the handles waiting for an answer.
    answer: Notify,
}

/// How a ping went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pong {
    /// The peer answered in time.
    Answered,
    /// It did not; the connection is being closed.
    Silent,
    /// The connection ended first.
    Closed,
}

/// Sends pings on one connection; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Pinger(Arc<Shared>);

impl Pinger {
    /// Pings the peer; without an answer within `timeout`, the connection is closed with an
    /// error that says why.
    pub(crate) async fn ping(&self, timeout: Duration) -> Pong {
        let shared = &*self.0;
        let mine = shared.asked.fetch_add(1, Ordering::AcqRel) + 1;
        shared.task.wake();
        let answered = async {
            loop {
                let notified = shared.answer.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if shared.answered.load(Ordering::Acquire) >= mine {
                    return Pong::Answered;
                }
                if shared.dropped.load(Ordering::Acquire) {
                    return Pong::Closed;
                }
                notified.await;
            }
        };
        match tokio::time::timeout(timeout, answered).await {
            Ok(pong) => pong,
            Err(_) if shared.dropped.load(Ordering::Acquire) => Pong::Closed,
            Err(_) => {
                shared.silent.store(true, Ordering::Release);
                shared.task.wake();
                Pong::Silent
            }
        }
    }
}

/// A stream that can slip a PING of ours in between hyper's frames; see the module docs.
#[derive(Debug)]
pub(crate) struct PingIo<I> {
    io: I,
    shared: Arc<Shared>,
    outbound: Outbound,
    inbound: Inbound,
    /// The asks covered by our last ping sent.
    sent_for: u64,
    /// How much of our ping is written, while it is being written.
    writing: Option<usize>,
    /// Our ping went out and its answer has not come back.
    expecting: bool,
    /// The inner stream needs a flush after a ping written from the read side.
    flush: bool,
    /// Read while expecting an answer: filtered bytes not yet handed to hyper.
    filtered: Vec<u8>,
    filtered_at: usize,
}

/// How much is read at a time while an answer is expected.
const FILTER_READ: usize = 16 * 1024;

impl<I> PingIo<I> {
    /// Wraps `io`, the plaintext HTTP/2 stream of a client connection.
    pub(crate) fn new(io: I) -> (Self, Pinger) {
        let shared = Arc::new(Shared::default());
        let io = PingIo {
            io,
            shared: shared.clone(),
            outbound: Outbound::new(),
            inbound: Inbound::new(),
            sent_for: 0,
            writing: None,
            expecting: false,
            flush: false,
            filtered: Vec::new(),
            filtered_at: 0,
        };
        (io, Pinger(shared))
    }

    fn check_silent(&self) -> io::Result<()> {
        if self.shared.silent.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not answer an HTTP/2 PING after a call on this connection timed \
                 out (a stopped or hung process?)",
            ));
        }
        Ok(())
    }

    /// The answer to our ping arrived.
    fn answered(&mut self) {
        self.expecting = false;
        self.shared.answered.store(self.sent_for, Ordering::Release);
        self.shared.answer.notify_waiters();
    }
}

impl<I: AsyncWrite + Unpin> PingIo<I> {
    /// Writes our ping if one is asked for and hyper is between frames; `Ready` once nothing
    /// of ours is left half-written.
    fn poll_ping(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.writing.is_none() {
            let asked = self.shared.asked.load(Ordering::Acquire);
            if asked == self.sent_for || self.expecting || !self.outbound.at_boundary() {
                return Poll::Ready(Ok(()));
            }
            self.sent_for = asked;
            self.writing = Some(0);
        }
        while let Some(at) = self.writing {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &PING[at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.writing = (at + n < PING_LEN).then_some(at + n);
        }
        self.expecting = true;
        self.flush = true;
        Poll::Ready(Ok(()))
    }
}

impl<I> Drop for PingIo<I> {
    fn drop(&mut self) {
        self.shared.dropped.store(true, Ordering::Release);
        self.shared.answer.notify_waiters();
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for PingIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.shared.task.register(cx.waker());
        this.check_silent()?;
        // hyper reads all the time but writes only when it has something to send: a ping
        // asked for while it is quiet goes out from here. Pending leaves the task registered
        // for the socket's write readiness.
        if let Poll::Ready(result) = this.poll_ping(cx) {
            result?;
            if this.flush && Pin::new(&mut this.io).poll_flush(cx)?.is_ready() {
                this.flush = false;
            }
        }
        loop {
            // Filtered bytes first, in order.
            if this.filtered_at < this.filtered.len() {
                let n = buf.remaining().min(this.filtered.len() - this.filtered_at);
                buf.put_slice(&this.filtered[this.filtered_at..this.filtered_at + n]);
                this.filtered_at += n;
                return Poll::Ready(Ok(()));
            }
            if !this.expecting && this.filtered.capacity() > 0 {
                // Answered: the buffer is not needed until the next ping.
                this.filtered = Vec::new();
                this.filtered_at = 0;
            }
            let (held, held_len) = this.inbound.take_held();
            if !this.expecting && held_len == 0 {
                // The common case: straight into hyper's buffer, frames followed as they pass.
                let before = buf.filled().len();
                ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                this.inbound.filter(&mut buf.filled_mut()[before..], false);
                return Poll::Ready(Ok(()));
            }
            // An answer may come: read into our own buffer, after what was held back.
            this.filtered.clear();
            this.filtered.extend_from_slice(&held[..held_len]);
            this.filtered.resize(held_len + FILTER_READ, 0);
            this.filtered_at = 0;
            let mut read = ReadBuf::new(&mut this.filtered[held_len..]);
            let poll = Pin::new(&mut this.io).poll_read(cx, &mut read);
            let n = read.filled().len();
            match poll {
                Poll::Ready(Ok(())) if n > 0 => {}
                Poll::Ready(Ok(())) => {
                    // The end of the stream: hand over what was held; hyper sees the rest.
                    this.filtered.truncate(held_len);
                    if held_len == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    continue;
                }
                other => {
                    this.filtered.clear();
                    this.inbound.hold(&held[..held_len]);
                    return other;
                }
            }
            let expecting = this.expecting;
            let (kept, answers) = this
                .inbound
                .filter(&mut this.filtered[..held_len + n], expecting);
            this.filtered.truncate(kept);
            if answers > 0 {
                this.answered();
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for PingIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_silent()?;
        ready!(this.poll_ping(cx))?;
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.outbound.wrote(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_silent()?;
        ready!(this.poll_ping(cx))?;
        let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for buf in bufs {
            let part = left.min(buf.len());
            this.outbound.wrote(&buf[..part]);
            left -= part;
            if left == 0 {
                break;
            }
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_ping(cx))?;
        ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        this.flush = false;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
