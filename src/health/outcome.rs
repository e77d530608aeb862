//! What became of a call, and which of those outcomes count against the endpoint.
//!
//! The call's hold on its endpoint learns the outcome from the response: a gRPC status in the
//! headers (a trailers-only response) or the trailers, else the HTTP status; a transport error;
//! or nothing at all, because the caller dropped the call — after its own deadline (a timeout)
//! or before it (a cancellation). Each outcome is one small number, and [`Failures`] is a
//! bit set over them, so classifying a call is one shift and one mask.

/// The outcome of one call, as a small number (`0..=16`: the gRPC code; then the others).
pub(crate) type Outcome = u8;

/// Outcomes after the 17 gRPC codes.
pub(crate) const HTTP_SUCCESS: Outcome = 17;
pub(crate) const HTTP_FAILURE: Outcome = 18;
pub(crate) const TRANSPORT: Outcome = 19;
pub(crate) const TIMEOUT: Outcome = 20;
pub(crate) const CANCELLED: Outcome = 21;

/// The outcome of a response without a gRPC status: by its HTTP status.
#[inline]
pub(crate) fn from_http(status: http::StatusCode) -> Outcome {
    if status.is_server_error() {
        HTTP_FAILURE
    } else {
        HTTP_SUCCESS
    }
}

/// The outcome carried by a `grpc-status` value; an unknown or malformed code is UNKNOWN (2),
/// as gRPC itself reads it.
#[inline]
pub(crate) fn from_grpc_status(value: &[u8]) -> Outcome {
    match value {
        [d @ b'0'..=b'9'] => d - b'0',
        [b'1', d @ b'0'..=b'6'] => 10 + (d - b'0'),
        _ => tonic::Code::Unknown as u8,
    }
}

/// Which call outcomes count as the endpoint's failures, for outlier detection and the circuit
/// breaker.
///
/// The default counts what says the endpoint is in trouble, and not what says the request was
/// wrong or the caller changed its mind:
///
/// | outcome | failure by default |
/// |---|---|
/// | gRPC `UNAVAILABLE`, `INTERNAL`, `UNKNOWN`, `DATA_LOSS`, `DEADLINE_EXCEEDED` | yes |
/// | gRPC `OK` and every other code (`INVALID_ARGUMENT`, `NOT_FOUND`, `RESOURCE_EXHAUSTED`, `UNIMPLEMENTED`, ...) | no |
/// | HTTP 5xx without a gRPC status | yes |
/// | transport error (the connection broke mid-call) | no: the connection's own state takes the endpoint out and brings it back; counting these would keep a restarted server ejected for 30 s |
/// | timeout: the caller dropped the call after its `grpc-timeout` had passed | yes |
/// | cancellation: the caller dropped the call before its deadline (or it had none) | no |
///
/// A call is classified once: by its gRPC status when one arrives, else by how it ended.
///
/// ```
/// use tonic::Code;
/// use tower_lb::health::Failures;
/// // Count RESOURCE_EXHAUSTED too (an overloaded backend), and no timeouts.
/// let failures = Failures::default().code(Code::ResourceExhausted, true).timeouts(false);
/// assert!(failures.counts_code(Code::ResourceExhausted));
/// assert!(!failures.counts_code(Code::NotFound));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// Bit `o` set: outcome `o` is a failure.
    mask: u32,
}

impl Default for Failures {
    fn default() -> Self {
        use tonic::Code;
        let codes = [
            Code::Unknown,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
        ];
        let mut mask = codes.iter().fold(0, |m, &c| m | 1 << c as u32);
        mask |= 1 << HTTP_FAILURE | 1 << TIMEOUT;
        Failures { mask }
    }
}

impl Failures {
    /// Counts no outcome as a failure (outlier detection and the breaker then never act).
    pub fn none() -> Self {
        Failures { mask: 0 }
    }

    /// Whether a gRPC status `code` counts as a failure. `OK` never does.
    pub fn code(self, code: tonic::Code, failure: bool) -> Self {
        if code == tonic::Code::Ok {
            return self;
        }
        self.with(code as u8, failure)
    }

    /// Whether an HTTP 5xx response without a gRPC status counts (default: yes).
    pub fn http_5xx(self, failure: bool) -> Self {
        self.with(HTTP_FAILURE, failure)
    }

    /// Whether a transport error counts (default: no; see the table above).
    pub fn transport_errors(self, failure: bool) -> Self {
        self.with(TRANSPORT, failure)
    }

    /// Whether a call dropped by its caller after its `grpc-timeout` passed counts (default:
    /// yes). Reading the deadline costs a header lookup per call while this is on.
    pub fn timeouts(self, failure: bool) -> Self {
        self.with(TIMEOUT, failure)
    }

    /// Whether a call dropped by its caller before its deadline counts (default: no — a client
    /// cancelling its own call is not the endpoint's fault).
    pub fn cancellations(self, failure: bool) -> Self {
        self.with(CANCELLED, failure)
    }

    /// Whether gRPC status `code` counts as a failure.
    pub fn counts_code(&self, code: tonic::Code) -> bool {
        self.is_failure(code as u8)
    }

    /// Whether the caller's deadline must be read at dispatch (timeouts count differently from
    /// cancellations).
    pub(crate) fn needs_deadline(&self) -> bool {
        self.is_failure(TIMEOUT) != self.is_failure(CANCELLED)
    }

    #[inline]
    pub(crate) fn is_failure(&self, outcome: Outcome) -> bool {
        self.mask >> outcome & 1 == 1
    }

    fn with(mut self, outcome: Outcome, failure: bool) -> Self {
        if failure {
            self.mask |= 1 << outcome;
        } else {
            self.mask &= !(1 << outcome);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn grpc_status_values_map_to_codes() {
        for code in 0..=16u8 {
            assert_eq!(from_grpc_status(code.to_string().as_bytes()), code);
        }
        for bad in [&b""[..], b"17", b"-1", b"x", b"007", b"1a", b"99999999999"] {
            assert_eq!(from_grpc_status(bad), Code::Unknown as u8, "{bad:?}");
        }
    }

    #[test]
    fn default_counts_server_trouble_only() {
        let f = Failures::default();
        for c in [
            Code::Unavailable,
            Code::Internal,
            Code::Unknown,
            Code::DataLoss,
            Code::DeadlineExceeded,
        ] {
            assert!(f.counts_code(c), "{c:?}");
        }
        for c in [
            Code::Ok,
            Code::Cancelled,
            Code::InvalidArgument,
            Code::NotFound,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::Unimplemented,
            Code::Unauthenticated,
        ] {
            assert!(!f.counts_code(c), "{c:?}");
        }
        assert!(f.is_failure(TIMEOUT) && f.is_failure(HTTP_FAILURE));
        assert!(
            !f.is_failure(CANCELLED) && !f.is_failure(HTTP_SUCCESS) && !f.is_failure(TRANSPORT)
        );
        assert!(f.needs_deadline());
        assert!(!f.timeouts(false).needs_deadline());
    }

    #[test]
    fn ok_can_never_be_a_failure() {
        assert!(
            !Failures::default()
                .code(Code::Ok, true)
                .counts_code(Code::Ok)
        );
    }

    #[test]
    fn http_status_classes() {
        assert_eq!(from_http(http::StatusCode::OK), HTTP_SUCCESS);
        assert_eq!(from_http(http::StatusCode::NOT_FOUND), HTTP_SUCCESS);
        assert_eq!(from_http(http::StatusCode::BAD_GATEWAY), HTTP_FAILURE);
    }
}
