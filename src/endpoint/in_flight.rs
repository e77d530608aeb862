//! A call's hold on its endpoint: counts the call in flight from dispatch until the response
//! body ends or is dropped, feeds the latency estimate, and records the outcome (passive
//! health).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName};

use super::gate::Entry;
use super::load::EwmaClock;
use super::state::EndpointState;
use crate::health::outcome::{self, Outcome};
use crate::time::now_ns;

/// Held by the response future, then by the response body.
pub(crate) struct InFlight {
    state: Arc<EndpointState>,
    /// The clock at dispatch, when the policy compares latency, until the answer.
    start: Option<EwmaClock>,
    /// Whether response headers (or, at layer 4, the connection) came.
    answered: bool,
    /// The caller's deadline in `now_ns()` time, to tell a timeout from a cancellation (0:
    /// none or not read).
    deadline_ns: u64,
    /// The gRPC status once known.
    outcome: Option<Outcome>,
    /// The outcome by HTTP status, for a response that ends without a gRPC status.
    http: Outcome,
    /// An ordinary call, or the trial of a half-open circuit.
    entry: Entry,
}

impl InFlight {
    /// Counts a new call on the endpoint. `start`: the clock at dispatch, when the call's
    /// latency feeds the estimate.
    #[inline]
    pub(crate) fn start(state: Arc<EndpointState>, start: Option<EwmaClock>, entry: Entry) -> Self {
        state.call_started(start.map(|clock| clock.now_ns()));
        InFlight {
            state,
            start,
            answered: false,
            deadline_ns: 0,
            outcome: None,
            http: outcome::HTTP_SUCCESS,
            entry,
        }
    }

    /// The endpoint this call is on.
    pub(crate) fn endpoint(&self) -> &Arc<EndpointState> {
        &self.state
    }

    /// Notes the call's timeout from now, when the outcome classes need it (to tell a call
    /// its caller dropped after the deadline from one it cancelled).
    #[inline]
    pub(crate) fn note_deadline(&mut self, timeout: Duration) {
        if self.state.passive.needs_deadline() {
            let timeout = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            self.deadline_ns = now_ns().saturating_add(timeout).max(1);
        }
    }

    /// The response headers arrived: one latency sample; a trailers-only gRPC response already
    /// carries its status here.
    #[inline]
    pub(crate) fn on_headers(&mut self, status: http::StatusCode, headers: &HeaderMap) {
        self.answer();
        self.http = outcome::from_http(status);
        if let Some(code) = grpc_status(headers) {
            self.outcome = Some(code);
            // Trailers-only: the load report, if any, is here too.
            if let Some(reported) = self.state.reported.as_deref() {
                reported.on_trailers(headers, self.state.load.in_flight(), &self.state.key);
            }
        }
    }

    /// A layer 4 connection was established: the connect time is the latency sample.
    pub(crate) fn on_connected(&mut self) {
        self.answer();
    }

    /// The endpoint answered: one latency sample, from dispatch to now, if the call tracks
    /// latency; either way, the calls it left unanswered before no longer count.
    #[inline]
    fn answer(&mut self) {
        self.answered = true;
        match self.start.take() {
            Some(start) => {
                let now = now_ns();
                let load = &self.state.load;
                load.record_rtt(now.saturating_sub(start.now_ns()), now, start.decay_ns);
                load.answered(now);
            }
            None => self.state.load.answered_untimed(),
        }
    }

    /// Trailers arrived.
    #[inline]
    pub(crate) fn on_trailers(&mut self, trailers: &HeaderMap) {
        if let Some(code) = grpc_status(trailers) {
            self.outcome = Some(code);
        }
        if let Some(reported) = self.state.reported.as_deref() {
            reported.on_trailers(trailers, self.state.load.in_flight(), &self.state.key);
        }
    }

    /// The body ended without error.
    #[inline]
    pub(crate) fn on_end(&mut self) {
        if self.outcome.is_none() {
            self.outcome = Some(self.http);
        }
    }

    /// Whether the response headers carried the call's status, and it was `CANCELLED` (a
    /// trailers-only answer).
    #[inline]
    pub(crate) fn answered_cancelled(&self) -> bool {
        self.outcome == Some(tonic::Code::Cancelled as Outcome)
    }

    /// The call's deadline passed before it completed (the client gave up on it).
    #[inline]
    pub(crate) fn on_timeout(&mut self) {
        self.outcome = Some(outcome::TIMEOUT);
        self.state.passive.call_timed_out(&self.state);
    }

    /// The call failed (transport error before or during the response).
    #[inline]
    pub(crate) fn on_error(&mut self) {
        self.outcome = Some(outcome::TRANSPORT);
    }
}

impl Drop for InFlight {
    #[inline]
    fn drop(&mut self) {
        self.state.call_ended(self.start.is_some());
        if !self.answered {
            // Given up (deadline, cancellation) or failed before any answer.
            let now = now_ns();
            let waited = self
                .start
                .map(|start| (now.saturating_sub(start.now_ns()), start.decay_ns));
            self.state.load.given_up(now, waited);
        }
        let passive = &self.state.passive;
        passive.record(&self.state, self.outcome, self.entry, self.deadline_ns);
    }
}

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The outcome a `grpc-status` header carries, if present.
#[inline]
fn grpc_status(headers: &HeaderMap) -> Option<Outcome> {
    if headers.is_empty() {
        return None;
    }
    headers
        .get(&GRPC_STATUS)
        .map(|v| outcome::from_grpc_status(v.as_bytes()))
}
