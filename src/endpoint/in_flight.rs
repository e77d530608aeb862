//! A call's hold on its endpoint: counts the call in flight from dispatch until the response
//! body ends or is dropped, feeds the latency estimate, and records the outcome.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use super::EndpointState;
use super::load::now_ns;

/// Held by the response future, then by the response body.
pub(crate) struct InFlight {
    state: Arc<EndpointState>,
    /// `now_ns()` at dispatch; 0 when latency is not tracked.
    start_ns: u64,
    decay_ns: f64,
    /// `Some(failed)` once the outcome is known.
    outcome: Option<bool>,
    /// The HTTP status was not a success.
    http_failed: bool,
}

impl InFlight {
    /// Counts a new call on the endpoint. `start_ns` is 0 when latency is not tracked.
    #[inline]
    pub(crate) fn start(state: Arc<EndpointState>, start_ns: u64, decay_ns: f64) -> Self {
        state.call_started();
        InFlight {
            state,
            start_ns,
            decay_ns,
            outcome: None,
            http_failed: false,
        }
    }

    /// The endpoint this call is on.
    pub(crate) fn endpoint(&self) -> &Arc<EndpointState> {
        &self.state
    }

    /// The response headers arrived: one latency sample; a trailers-only gRPC response already
    /// carries its status here.
    #[inline]
    pub(crate) fn on_headers(&mut self, status: http::StatusCode, headers: &HeaderMap) {
        if self.start_ns != 0 {
            let now = now_ns();
            self.state
                .load
                .record_rtt(now.saturating_sub(self.start_ns), now, self.decay_ns);
        }
        self.http_failed = !status.is_success();
        if let Some(ok) = grpc_ok(headers) {
            self.outcome = Some(!ok);
        }
    }

    /// A layer 4 connection was established: the connect time is the latency sample.
    pub(crate) fn on_connected(&mut self) {
        if self.start_ns != 0 {
            let now = now_ns();
            self.state
                .load
                .record_rtt(now.saturating_sub(self.start_ns), now, self.decay_ns);
        }
    }

    /// Trailers arrived.
    #[inline]
    pub(crate) fn on_trailers(&mut self, trailers: &HeaderMap) {
        if let Some(ok) = grpc_ok(trailers) {
            self.outcome = Some(!ok);
        }
    }

    /// The body ended without error.
    #[inline]
    pub(crate) fn on_end(&mut self) {
        if self.outcome.is_none() {
            self.outcome = Some(self.http_failed);
        }
    }

    /// The call failed (transport error before or during the response).
    #[inline]
    pub(crate) fn on_error(&mut self) {
        self.outcome = Some(true);
    }
}

impl Drop for InFlight {
    #[inline]
    fn drop(&mut self) {
        self.state.call_ended();
        if let Some(failed) = self.outcome {
            self.state.record_outcome(failed);
        }
    }
}

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// `Some(true)` for `grpc-status: 0`, `Some(false)` for any other status, `None` if absent.
#[inline]
fn grpc_ok(headers: &HeaderMap) -> Option<bool> {
    if headers.is_empty() {
        return None;
    }
    headers.get(&GRPC_STATUS).map(|v| v.as_bytes() == b"0")
}
