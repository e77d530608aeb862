//! The response body: the service's body, with the load report added to its trailers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::tracker::Tracker;
use crate::orca;

/// One call's place in the tracker: ends the call once, at the trailers or when dropped.
#[derive(Debug)]
pub(super) struct CallGuard {
    tracker: Arc<Tracker>,
    started: Instant,
    /// Calls in flight at its start, itself included.
    load: u64,
    ended: bool,
}

impl CallGuard {
    pub(super) fn start(tracker: Arc<Tracker>) -> Self {
        let (started, load) = tracker.start();
        CallGuard {
            tracker,
            started,
            load,
            ended: false,
        }
    }

    /// The call ends with these trailers (or trailers-only headers): counted, and the report
    /// added to them.
    pub(super) fn end_with(&mut self, trailers: &mut HeaderMap) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let error = trailers
            .get("grpc-status")
            .is_some_and(|v| v.as_bytes() != b"0");
        if let Some(report) = self.tracker.end(self.started, self.load, error, true) {
            trailers.insert(orca::TRAILER, orca::to_header_value(&report));
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.ended {
            // Ended without trailers (cancelled, broken): counted, nothing to report on.
            self.tracker.end(self.started, self.load, true, false);
        }
    }
}

pin_project_lite::pin_project! {
    /// The body of a response from an [`OrcaService`](super::OrcaService): the inner body,
    /// with an ORCA load report added to its trailers; or the layer's own out-of-band stream
    /// of reports.
    pub struct ReportingBody<B> {
        #[pin]
        inner: B,
        call: Option<CallGuard>,
        out_of_band: Option<OutOfBandStream>,
    }
}

impl<B> ReportingBody<B> {
    pub(super) fn new(inner: B, call: Option<CallGuard>) -> Self {
        ReportingBody {
            inner,
            call,
            out_of_band: None,
        }
    }

    pub(super) fn out_of_band(unused: B, stream: OutOfBandStream) -> Self {
        ReportingBody {
            inner: unused,
            call: None,
            out_of_band: Some(stream),
        }
    }
}

/// An out-of-band stream's reports: one at once, then one per interval, until the client
/// goes.
#[derive(Debug)]
pub(super) struct OutOfBandStream {
    tracker: Arc<Tracker>,
    ticks: tokio::time::Interval,
}

impl OutOfBandStream {
    pub(super) fn new(tracker: Arc<Tracker>, interval: Duration) -> Self {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        OutOfBandStream { tracker, ticks }
    }

    fn poll_report(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        std::task::ready!(self.ticks.poll_tick(cx));
        Poll::Ready(orca::grpc_frame(&self.tracker.probe().encode()))
    }
}

impl<B> Body for ReportingBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        if let Some(stream) = this.out_of_band {
            let report = std::task::ready!(stream.poll_report(cx));
            return Poll::Ready(Some(Ok(Frame::data(B::Data::from(report)))));
        }
        let mut frame = std::task::ready!(this.inner.poll_frame(cx));
        match &mut frame {
            Some(Ok(f)) => {
                if let (Some(trailers), Some(call)) = (f.trailers_mut(), this.call.as_mut()) {
                    call.end_with(trailers);
                }
            }
            // An error or the end without trailers: the guard counts the call.
            Some(Err(_)) | None => drop(this.call.take()),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.out_of_band.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.out_of_band {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}
