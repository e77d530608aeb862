//! The error item of the etcd discovery stream, and the error of registration.

use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EtcdErrorKind {
    /// No etcd member could be reached (refused, timed out, TLS failed), or the connection broke.
    Unreachable,
    /// etcd refused the user name or password, or the token.
    Auth,
    /// etcd answered a call with an error (e.g. no leader, permission denied).
    Rejected,
    /// The watch was cancelled by the server for another reason than compaction.
    WatchCanceled,
    /// The watcher's revision was compacted away; the prefix is listed again and diffed.
    Compacted,
    /// Values under the prefix that name no endpoint: skipped.
    BadValue,
    /// The lease of a registration expired or was revoked by someone else; registered again.
    LeaseLost,
    /// A setting that cannot work (a malformed etcd URL, a TLS file that does not parse).
    Config,
}

impl fmt::Display for EtcdErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EtcdErrorKind::Unreachable => "etcd unreachable",
            EtcdErrorKind::Auth => "etcd authentication failed",
            EtcdErrorKind::Rejected => "etcd refused the call",
            EtcdErrorKind::WatchCanceled => "watch cancelled by etcd",
            EtcdErrorKind::Compacted => "watch revision compacted",
            EtcdErrorKind::BadValue => "values skipped",
            EtcdErrorKind::LeaseLost => "lease lost",
            EtcdErrorKind::Config => "etcd settings",
        })
    }
}

/// An etcd fault or a bad value, with what was kept.
///
/// As an item of [`EtcdDiscovery`](super::EtcdDiscovery) it changed nothing by itself: the
/// balancer logs it and keeps its set; changes follow once etcd answers again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdError {
    kind: EtcdErrorKind,
    message: String,
}

impl EtcdError {
    pub(crate) fn new(kind: EtcdErrorKind, message: impl Into<String>) -> Self {
        EtcdError {
            kind,
            message: message.into(),
        }
    }

    /// From a failed call: the status code says which kind.
    pub(crate) fn from_status(what: &str, status: &tonic::Status) -> Self {
        use tonic::Code;
        let kind = match status.code() {
            Code::Unauthenticated => EtcdErrorKind::Auth,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                EtcdErrorKind::Unreachable
            }
            _ => EtcdErrorKind::Rejected,
        };
        let message = status.message();
        let message = if message.is_empty() {
            format!("{what}: {}", status.code())
        } else {
            format!("{what}: {} ({message})", status.code())
        };
        EtcdError::new(kind, message)
    }

    /// What went wrong.
    pub fn kind(&self) -> EtcdErrorKind {
        self.kind
    }

    /// The details: which member, which call, which keys.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for EtcdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for EtcdError {}
