//! What the discovery task says about itself: connected or keeping the last good set.

use std::sync::{Arc, Mutex, PoisonError};

use super::error::EtcdError;

/// A read-only view of an etcd discovery stream's state; cheap to clone.
///
/// While etcd cannot be reached the balancer keeps the last good set; this says so (and why),
/// next to the balancer's own [`Snapshot`](crate::Snapshot) of its endpoints.
#[derive(Debug, Clone, Default)]
pub struct EtcdStatus(Arc<Mutex<State>>);

#[derive(Debug, Default, Clone)]
struct State {
    watching: bool,
    member: Option<String>,
    revision: i64,
    endpoints: usize,
    last_error: Option<EtcdError>,
    lists: u64,
}

impl EtcdStatus {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether a watch is running now. `false`: etcd is unreachable (or not yet reached) and
    /// the last good set is kept.
    pub fn watching(&self) -> bool {
        self.with(|s| s.watching)
    }

    /// The member watched (its URL), while watching.
    pub fn member(&self) -> Option<String> {
        self.with(|s| s.member.clone())
    }

    /// The last revision seen: the set is the registry's as of this revision.
    pub fn revision(&self) -> i64 {
        self.with(|s| s.revision)
    }

    /// Endpoints published.
    pub fn endpoints(&self) -> usize {
        self.with(|s| s.endpoints)
    }

    /// Full lists of the prefix so far: 1 at the start, one more after each compaction that
    /// overtook the watch.
    pub fn lists(&self) -> u64 {
        self.with(|s| s.lists)
    }

    /// The last fault (also logged, and yielded as the stream's `Err` item).
    pub fn last_error(&self) -> Option<EtcdError> {
        self.with(|s| s.last_error.clone())
    }

    pub(crate) fn watching_on(&self, member: &str) {
        self.with(|s| {
            s.watching = true;
            s.member = Some(member.to_owned());
        });
    }

    pub(crate) fn failed(&self, error: &EtcdError) {
        self.with(|s| {
            s.watching = false;
            s.member = None;
            s.last_error = Some(error.clone());
        });
    }

    pub(crate) fn listed(&self) {
        self.with(|s| s.lists += 1);
    }

    pub(crate) fn published(&self, revision: i64, endpoints: usize) {
        self.with(|s| {
            s.revision = revision;
            s.endpoints = endpoints;
        });
    }
}
