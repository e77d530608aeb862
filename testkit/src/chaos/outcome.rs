//! What a call's result means, and which failures the scenario allows.
//!
//! A failed call is first sorted by what it is (the `Status` alone), then, for the kinds
//! that depend on when they happened, by the fault log. The rules, and why the windows need no
//! padding, are in the `chaos` module's docs ("Which failures are allowed").

use std::error::Error as _;

use tonic::{Code, Status};

use super::faults::FaultLog;
use crate::INJECTED_FAILURE;

/// Longest description kept for a failure.
const MAX_DESCRIPTION: usize = 200;
/// Examples of unexpected failures kept for the report.
pub(crate) const MAX_EXAMPLES: usize = 10;

/// Failures whose class depends on when they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timed {
    /// A connection failure (hyper, h2 or I/O error as the status's source).
    Transport,
    /// `tower_lb::Error::NotSent`, or `RetryBudgetExhausted`: handed back unsent.
    NotSent,
    /// `tower_lb::Error::NoReadyEndpoint`.
    NoReady,
}

pub(crate) enum Sorted {
    ServerError,
    ResourceExhausted,
    Timed(Timed),
    Unexpected,
}

/// Sorts a failed call by its status alone.
pub(crate) fn sort(status: &Status) -> Sorted {
    if let Some(e) = status
        .source()
        .and_then(|s| s.downcast_ref::<tower_lb::Error>())
    {
        return match e {
            tower_lb::Error::NoReadyEndpoint { .. } => Sorted::Timed(Timed::NoReady),
            tower_lb::Error::NotSent { .. } | tower_lb::Error::RetryBudgetExhausted { .. } => {
                Sorted::Timed(Timed::NotSent)
            }
            _ if status.code() == Code::ResourceExhausted => Sorted::ResourceExhausted,
            _ => Sorted::Unexpected,
        };
    }
    if status.code() == Code::ResourceExhausted {
        return Sorted::ResourceExhausted;
    }
    if from_connection(status) {
        return Sorted::Timed(Timed::Transport);
    }
    if status.code() == Code::Unavailable
        && status.message() == INJECTED_FAILURE
        && status.source().is_none()
    {
        return Sorted::ServerError;
    }
    Sorted::Unexpected
}

/// Whether tonic built `status` from a failure of the connection rather than from the
/// server's answer.
fn from_connection(status: &Status) -> bool {
    let mut source = status.source();
    // A source chain is finite; the bound only guards against a cyclic one.
    for _ in 0..32 {
        let Some(e) = source else { return false };
        if e.is::<hyper::Error>() || e.is::<h2::Error>() || e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// A one-line description of a failed call, for the report.
pub(crate) fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = status.source() {
        text.push_str(&format!(" (source: {source})"));
    }
    text.chars().take(MAX_DESCRIPTION).collect()
}

/// A failure to be attributed once the fault log is complete.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) kind: Timed,
    pub(crate) start_us: u64,
    pub(crate) end_us: u64,
    /// The status, for the first [`KEPT_DESCRIPTIONS`] failures only (a soak run must not
    /// grow its own bookkeeping by much).
    pub(crate) what: Option<Box<str>>,
}

/// Pending failures that keep their description.
pub(crate) const KEPT_DESCRIPTIONS: usize = 1_000;

impl Pending {
    /// Whether the fault log allows this failure.
    pub(crate) fn allowed(&self, log: &FaultLog) -> bool {
        match self.kind {
            Timed::Transport | Timed::NotSent => log
                .kills
                .iter()
                .any(|k| k.start_us <= self.end_us && self.start_us <= k.end_us()),
            Timed::NoReady => log
                .blackout
                .is_some_and(|b| b.start_us <= self.end_us && self.start_us <= b.end_us),
        }
    }

    pub(crate) fn example(&self) -> String {
        let kind = match self.kind {
            Timed::Transport => "connection failure outside any kill",
            Timed::NotSent => "not sent outside any kill",
            Timed::NoReady => "fail-fast outside the blackout",
        };
        format!(
            "{kind}: call from {:.3} s to {:.3} s: {}",
            self.start_us as f64 / 1e6,
            self.end_us as f64 / 1e6,
            self.what.as_deref().unwrap_or("(description not kept)")
        )
    }
}
