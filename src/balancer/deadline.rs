//! A call's deadline on the client: armed at dispatch from the call's `grpc-timeout` (or the
//! builder's default timeout), it bounds the wait for an endpoint, the re-picks, the response
//! headers and then the response body, and ends the call with `DEADLINE_EXCEEDED`.
//!
//! One timer per call that has a deadline, boxed so the response future stays small for calls
//! without one; it moves from the response future to the body.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use tokio::time::{Instant, Sleep};

use crate::endpoint::InFlight;
use crate::error::{BoxError, CallStage, Error};
use crate::time::{cap_grpc_timeout, grpc_timeout};

pin_project_lite::pin_project! {
    struct Timer {
        #[pin]
        sleep: Sleep,
        timeout: Duration,
        // The call's path, for the error.
        path: Option<PathAndQuery>,
    }
}

/// The deadline of one call.
pub(crate) struct Deadline {
    timer: Pin<Box<Timer>>,
}

impl Deadline {
    /// The deadline of a request: the shorter of its `grpc-timeout` and `default`; the request
    /// then carries it as its `grpc-timeout`, so the server sees what the client enforces.
    /// `None` without either, or for a timeout too far away to be a deadline.
    #[inline]
    pub(crate) fn of<B>(request: &mut http::Request<B>, default: Option<Duration>) -> Option<Self> {
        // Read once: an empty header map (no metadata at all) has no `grpc-timeout`.
        let headers = request.headers();
        let own = (!headers.is_empty())
            .then(|| grpc_timeout(headers))
            .flatten();
        let timeout = match (own, default) {
            (Some(own), Some(default)) => own.min(default),
            (own, default) => own.or(default)?,
        };
        if default.is_some() {
            cap_grpc_timeout(request.headers_mut(), own, timeout);
        }
        let at = Instant::now().checked_add(timeout)?;
        Some(Deadline {
            timer: Box::pin(Timer {
                sleep: tokio::time::sleep_until(at),
                timeout,
                path: request.uri().path_and_query().cloned(),
            }),
        })
    }

    /// Whether the deadline had passed when the call was made (a zero timeout): the call
    /// fails without being sent.
    #[inline]
    pub(crate) fn passed_at_once(&self) -> bool {
        self.timer.timeout.is_zero()
    }

    /// The call's timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timer.timeout
    }

    /// When the deadline passes.
    pub(crate) fn instant(&self) -> Instant {
        self.timer.sleep.deadline()
    }

    /// Whether the deadline has passed; if not, the task is woken when it does.
    #[inline]
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.as_mut().project().sleep.poll(cx).is_ready()
    }

    /// Waits until the deadline passes.
    pub(crate) async fn expired(&mut self) {
        std::future::poll_fn(|cx| match self.poll_expired(cx) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        })
        .await
    }

    /// Whether `hold`'s answer is the server keeping this deadline: a trailers-only
    /// `CANCELLED` read once it has passed. A server that enforces the `grpc-timeout` it was
    /// sent may answer so the moment it runs out (tonic's server does: "Timeout expired");
    /// its timer, started later, cannot fire before this client's, but its answer can be read
    /// before this client's timer is polled. Such an answer is the deadline, and the call ends
    /// with `DEADLINE_EXCEEDED` as the timer would have ended it.
    #[inline]
    pub(crate) fn kept_by_server(&self, hold: &InFlight) -> bool {
        hold.answered_cancelled() && Instant::now() >= self.instant()
    }

    /// The error of a call whose deadline passed `during` this stage.
    #[cold]
    pub(crate) fn exceeded(&self, during: CallStage) -> Error {
        Error::DeadlineExceeded {
            path: self
                .timer
                .path
                .as_ref()
                .map_or_else(|| "/".to_owned(), |p| p.path().to_owned()),
            timeout: self.timer.timeout,
            during,
        }
    }

    /// The deadline passed while `hold`'s endpoint had the call and no response yet: the
    /// call's outcome is a timeout, and its error names the endpoint.
    #[cold]
    pub(crate) fn expire(&self, hold: &mut InFlight) -> BoxError {
        hold.on_timeout();
        self.exceeded_boxed(CallStage::Headers(hold.endpoint().addr))
    }

    /// [`exceeded`](Self::exceeded), boxed as the balancer returns errors.
    #[cold]
    pub(crate) fn exceeded_boxed(&self, during: CallStage) -> BoxError {
        self.exceeded(during).boxed()
    }
}
