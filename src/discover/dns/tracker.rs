//! What the stream knows between resolutions — the set it published, how long answers have
//! been empty, how many resolutions in a row failed — and how a resolution's outcome becomes
//! changes, errors and the time of the next one.

use std::time::Duration;

use tokio::time::Instant;

use super::candidates::{EndpointSet, endpoint_set};
use super::diff::diff;
use super::error::{DnsError, DnsErrorKind};
use super::on_empty::OnEmpty;
use super::resolve::Outcome;
use super::schedule::Schedule;
use crate::discover::Change;

/// What to do after a resolution.
#[derive(Debug)]
pub(crate) struct Next {
    /// Items for the stream, in order.
    pub(crate) items: Vec<Result<Change, DnsError>>,
    /// When to resolve again.
    pub(crate) wait: Duration,
    /// The next resolution is a retry after a failed or empty one (for the stream's debug
    /// view; a refresh still cuts it short, rate-limited).
    pub(crate) backing_off: bool,
}

#[derive(Debug)]
pub(crate) struct Tracker {
    name: String,
    schedule: Schedule,
    on_empty: OnEmpty,
    max_endpoints: usize,
    current: EndpointSet,
    /// The smallest TTL of the last good answer, which paces the wait for records to come
    /// back once the set is empty.
    last_ttl: Option<Duration>,
    misses: u32,
    empty_since: Option<Instant>,
}

impl Tracker {
    pub(crate) fn new(
        name: String,
        schedule: Schedule,
        on_empty: OnEmpty,
        max_endpoints: usize,
    ) -> Self {
        Tracker {
            name,
            schedule,
            on_empty,
            max_endpoints,
            current: EndpointSet::new(),
            last_ttl: None,
            misses: 0,
            empty_since: None,
        }
    }

    pub(crate) fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Takes a resolution's outcome at `now`; `unit` is uniform in [0, 1) for the jitter.
    pub(crate) fn on_round(&mut self, outcome: Outcome, now: Instant, unit: f64) -> Next {
        match outcome {
            Outcome::Found { candidates, ttl } => {
                let set = endpoint_set(&self.name, candidates, self.max_endpoints);
                if set.is_empty() {
                    return self.on_empty("no usable record".into(), now, unit);
                }
                let changes = diff(&self.current, &set);
                if !changes.is_empty() {
                    tracing::debug!(name = %self.name, endpoints = set.len(), changes = changes.len(), "DNS answer changed the endpoint set");
                }
                self.current = set;
                self.last_ttl = ttl;
                self.misses = 0;
                self.empty_since = None;
                Next {
                    items: changes.into_iter().map(Ok).collect(),
                    wait: self.schedule.after_answer(ttl, unit),
                    backing_off: false,
                }
            }
            Outcome::Empty { detail } => self.on_empty(detail, now, unit),
            Outcome::Failed { kind, detail } => {
                let wait = self.miss(unit);
                Next {
                    items: vec![Err(self.error(kind, detail, wait))],
                    wait,
                    backing_off: true,
                }
            }
        }
    }

    fn miss(&mut self, unit: f64) -> Duration {
        self.misses = self.misses.saturating_add(1);
        self.schedule.after_failure(self.misses, unit)
    }

    fn error(&self, kind: DnsErrorKind, detail: String, retry_in: Duration) -> DnsError {
        DnsError {
            name: self.name.clone(),
            kind,
            detail,
            kept: self.current.len(),
            retry_in,
        }
    }

    fn on_empty(&mut self, detail: String, now: Instant, unit: f64) -> Next {
        let mut wait = self.miss(unit);
        if self.current.is_empty() {
            // Nothing left to lose (emptied before): wait for records to come
            // back no longer than the last good answer's TTL (clamped to the bounds), as a
            // normal re-resolution would have, instead of the growing backoff.
            wait = wait.min(self.schedule.after_answer(self.last_ttl, unit));
        }
        let clear = !self.current.is_empty()
            && match self.on_empty {
                OnEmpty::Clear => true,
                OnEmpty::Keep => false,
                OnEmpty::KeepFor(grace) => {
                    let since = *self.empty_since.get_or_insert(now);
                    match since.checked_add(grace) {
                        Some(end) if now >= end => true,
                        Some(end) => {
                            // Look again when the grace period ends: only an empty answer
                            // then clears the set.
                            wait = wait.min(end - now);
                            false
                        }
                        None => false,
                    }
                }
            };
        if !clear {
            let detail = if self.current.is_empty() {
                detail
            } else {
                format!("{detail} (the last good endpoints are kept)")
            };
            return Next {
                items: vec![Err(self.error(DnsErrorKind::NotFound, detail, wait))],
                wait,
                backing_off: true,
            };
        }
        tracing::warn!(name = %self.name, removed = self.current.len(), %detail, on_empty = ?self.on_empty, "DNS answer is empty; endpoint set cleared");
        let removes = std::mem::take(&mut self.current)
            .into_keys()
            .map(|key| Ok(Change::Remove(key)))
            .collect();
        self.empty_since = None;
        let wait = wait.min(self.schedule.after_answer(self.last_ttl, unit));
        Next {
            items: removes,
            wait,
            backing_off: true,
        }
    }
}

#[cfg(test)]
mod tests;
