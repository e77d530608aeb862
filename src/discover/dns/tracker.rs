//! What the stream knows between resolutions — the set it published, how long answers have
//! been empty, how many resolutions in a row failed — and how a resolution's outcome becomes
//! changes, errors and the time of the next one.

use std::time::Duration;

use tokio::time::Instant;

use super::OnEmpty;
use super::candidates::{EndpointSet, endpoint_set};
use super::diff::diff;
use super::error::{DnsError, DnsErrorKind};
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
    /// The next resolution is a retry after a failed or empty one (a refresh does not cut it
    /// short: the server has just shown it has nothing better).
    pub(crate) backing_off: bool,
}

#[derive(Debug)]
pub(crate) struct Tracker {
    name: String,
    schedule: Schedule,
    on_empty: OnEmpty,
    max_endpoints: usize,
    current: EndpointSet,
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
        Next {
            items: removes,
            wait,
            backing_off: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::dns::candidates::Candidate;

    fn tracker(on_empty: OnEmpty) -> Tracker {
        Tracker::new(
            "_grpc._tcp.x.".into(),
            Schedule {
                min_ttl: Duration::from_secs(1),
                max_ttl: Duration::from_secs(30),
                backoff: Schedule::default_backoff(),
            },
            on_empty,
            100,
        )
    }

    fn found(addrs: &[&str], ttl: u64) -> Outcome {
        Outcome::Found {
            candidates: addrs
                .iter()
                .map(|a| Candidate {
                    addr: a.parse().unwrap(),
                    priority: 0,
                    weight: 100,
                    server_name: None,
                })
                .collect(),
            ttl: Some(Duration::from_secs(ttl)),
        }
    }

    fn empty() -> Outcome {
        Outcome::Empty {
            detail: "NXDOMAIN".into(),
        }
    }

    fn failed() -> Outcome {
        Outcome::Failed {
            kind: DnsErrorKind::ServerFailure,
            detail: "SERVFAIL".into(),
        }
    }

    #[test]
    fn answers_become_diffs_on_the_ttl_schedule() {
        let mut t = tracker(OnEmpty::default());
        let now = Instant::now();
        let next = t.on_round(found(&["10.0.0.1:80", "10.0.0.2:80"], 5), now, 0.0);
        assert_eq!(next.items.len(), 2);
        assert_eq!(next.wait, Duration::from_secs(5));
        assert!(!next.backing_off);
        let next = t.on_round(found(&["10.0.0.1:80", "10.0.0.2:80"], 5), now, 0.0);
        assert!(next.items.is_empty(), "an unchanged answer sends nothing");
        let next = t.on_round(found(&["10.0.0.2:80", "10.0.0.3:80"], 5), now, 0.0);
        assert!(matches!(
            &next.items[..],
            [Ok(Change::Insert(..)), Ok(Change::Remove(k))] if k.as_str() == "10.0.0.1:80"
        ));
    }

    #[test]
    fn failures_keep_the_set_and_back_off_then_recover() {
        let mut t = tracker(OnEmpty::default());
        let now = Instant::now();
        t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            let next = t.on_round(failed(), now, 0.5);
            let [Err(e)] = &next.items[..] else {
                panic!("one error item: {:?}", next.items)
            };
            assert_eq!(e.kind(), DnsErrorKind::ServerFailure);
            assert_eq!(e.kept(), 1);
            assert!(next.backing_off);
            assert!(next.wait >= last && next.wait <= Duration::from_secs(30));
            last = next.wait;
        }
        assert_eq!(last, Duration::from_secs(30));
        let next = t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
        assert!(
            next.items.is_empty(),
            "recovery with the same answer changes nothing"
        );
        assert_eq!(t.on_round(failed(), now, 0.5).wait, Duration::from_secs(1));
    }

    #[test]
    fn empty_answers_keep_the_set_for_the_grace_period_then_clear_it() {
        let mut t = tracker(OnEmpty::KeepFor(Duration::from_secs(10)));
        let start = Instant::now();
        t.on_round(found(&["10.0.0.1:80", "10.0.0.2:80"], 5), start, 0.0);
        let next = t.on_round(empty(), start, 0.5);
        assert!(
            matches!(&next.items[..], [Err(e)] if e.kind() == DnsErrorKind::NotFound && e.kept() == 2)
        );
        // Still within the grace period: kept, and the next look is no later than its end.
        let next = t.on_round(empty(), start + Duration::from_secs(9), 0.5);
        assert!(matches!(&next.items[..], [Err(_)]));
        assert!(next.wait <= Duration::from_secs(1));
        // A good answer ends the grace period.
        t.on_round(
            found(&["10.0.0.1:80", "10.0.0.2:80"], 5),
            start + Duration::from_secs(9),
            0.0,
        );
        let later = start + Duration::from_secs(30);
        assert!(matches!(
            &t.on_round(empty(), later, 0.5).items[..],
            [Err(_)]
        ));
        let next = t.on_round(empty(), later + Duration::from_secs(10), 0.5);
        assert_eq!(next.items.len(), 2);
        assert!(
            next.items
                .iter()
                .all(|i| matches!(i, Ok(Change::Remove(_))))
        );
        // Nothing left: further empty answers are errors with nothing kept.
        let next = t.on_round(empty(), later + Duration::from_secs(11), 0.5);
        assert!(matches!(&next.items[..], [Err(e)] if e.kept() == 0));
    }

    #[test]
    fn clear_and_keep() {
        let now = Instant::now();
        let mut t = tracker(OnEmpty::Clear);
        t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
        assert!(matches!(
            &t.on_round(empty(), now, 0.5).items[..],
            [Ok(Change::Remove(_))]
        ));
        let mut t = tracker(OnEmpty::Keep);
        t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
        let much_later = now + Duration::from_secs(86_400 * 365);
        assert!(matches!(
            &t.on_round(empty(), much_later, 0.5).items[..],
            [Err(_)]
        ));
        // Grace periods too long to add to an instant keep the set instead of panicking.
        let mut t = tracker(OnEmpty::KeepFor(Duration::MAX));
        t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
        assert!(matches!(&t.on_round(empty(), now, 0.5).items[..], [Err(_)]));
    }

    #[test]
    fn an_answer_with_nothing_usable_counts_as_empty() {
        let mut t = tracker(OnEmpty::Clear);
        let now = Instant::now();
        t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
        let next = t.on_round(found(&["0.0.0.0:80", "10.0.0.9:0"], 5), now, 0.5);
        assert!(matches!(&next.items[..], [Ok(Change::Remove(_))]));
    }
}
