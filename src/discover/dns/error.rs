//! The error item of the DNS discovery stream: a resolution that changed nothing.

use std::fmt;
use std::time::Duration;

/// What went wrong with a resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DnsErrorKind {
    /// No answer within the timeout, on every attempt.
    Timeout,
    /// The server answered `SERVFAIL` (or another error code than `REFUSED` and `NXDOMAIN`).
    ServerFailure,
    /// The server answered `REFUSED`.
    Refused,
    /// The answer was truncated, also over TCP (or TCP was not possible).
    Truncated,
    /// No name server could be reached (connection refused or reset, no route).
    Unreachable,
    /// The answer could not be parsed.
    Malformed,
    /// `NXDOMAIN`, no records, or no usable record: the set is kept for now
    /// (see [`OnEmpty`](super::on_empty::OnEmpty)).
    NotFound,
    /// Anything else the resolver reported.
    Other,
}

impl fmt::Display for DnsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DnsErrorKind::Timeout => "timed out",
            DnsErrorKind::ServerFailure => "server failure",
            DnsErrorKind::Refused => "refused",
            DnsErrorKind::Truncated => "truncated answer",
            DnsErrorKind::Unreachable => "name server unreachable",
            DnsErrorKind::Malformed => "malformed answer",
            DnsErrorKind::NotFound => "no usable records",
            DnsErrorKind::Other => "resolver error",
        })
    }
}

/// A resolution that failed or found nothing, yielded as the stream's `Err` item. The stream
/// keeps the endpoint set it had and carries on; the balancer logs the error.
///
/// ```
/// use tower_lb::discover::dns::{DnsError, DnsErrorKind};
/// fn alert(e: &DnsError) -> bool {
///     e.kind() != DnsErrorKind::NotFound && e.kept() > 0
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError {
    pub(crate) name: String,
    pub(crate) kind: DnsErrorKind,
    pub(crate) detail: String,
    pub(crate) kept: usize,
    pub(crate) retry_in: Duration,
}

impl DnsError {
    /// The name that was being resolved.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What went wrong.
    pub fn kind(&self) -> DnsErrorKind {
        self.kind
    }

    /// The resolver's own words.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// How many endpoints the stream kept from the last good answer.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// When the stream tries again.
    pub fn retry_in(&self) -> Duration {
        self.retry_in
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tower-lb: DNS discovery of {}: {}: {}; keeping {} endpoint(s), next try in {:.1?}",
            self.name, self.kind, self.detail, self.kept, self.retry_in
        )
    }
}

impl std::error::Error for DnsError {}
