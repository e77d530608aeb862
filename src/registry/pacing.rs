//! Pacing: when the control task may publish the next ready set.
//!
//! Building a ready set costs O(N) (every ready endpoint's channel and state, the policy's
//! plan), and the loop used to publish after every wake-up that changed something. Under a
//! stream of changes — N endpoints connecting at start-up, each connection its own event on a
//! one-worker runtime, or churn — that is O(N) per change and O(N²) in all: 10,000 in-process
//! endpoints took 13.6 s to become ready on one worker, and a 1 ms timer beside them ran 4.4 s
//! late. So a publish that closely follows another waits until the last one's cost, times
//! [`SPACING`], has passed: publishing takes at most a fifth of the control task's time
//! however fast changes come, and changes that arrive meanwhile go out together. A change after
//! a quiet spell is published at once, so small sets and rare changes see no delay; the
//! delay is bounded by a few builds of the set (4 ms per millisecond a build takes). A new
//! endpoint that is still connecting waits up to 2 ms for its connection's outcome, so that
//! one new endpoint costs one publish, not two back to back (the second would wait its turn).

use std::time::Duration;

use tokio::time::Instant;

/// The wait after a publish, as a multiple of what that publish cost.
const SPACING: u32 = 4;

/// How long a change calls need not see at once may wait for company (see [`Pacer::noted`]).
const LAZY: Duration = Duration::from_millis(2);

/// Whether something is waiting to be published, and from when it may be.
#[derive(Debug, Default)]
pub(super) struct Pacer {
    /// A change calls should see as soon as the spacing allows.
    urgent: bool,
    /// Since when a change that can wait (a new endpoint still connecting) has waited.
    noted_at: Option<Instant>,
    not_before: Option<Instant>,
}

impl Pacer {
    /// Something changed that calls should see: which endpoints are ready, their weights.
    pub(super) fn changed(&mut self) {
        self.urgent = true;
    }

    /// Something changed that only the snapshot and a failing call's reason show: a new
    /// endpoint that is still connecting. Its connection's outcome follows within moments and
    /// is published at once; this waits up to [`LAZY`] for it, so a new endpoint costs one
    /// publish, not two.
    pub(super) fn noted(&mut self, now: Instant) {
        self.noted_at.get_or_insert(now);
    }

    /// When what is waiting may go out, if anything is (`now` if it may go at once).
    pub(super) fn due(&self, now: Instant) -> Option<Instant> {
        let wanted = match (self.urgent, self.noted_at) {
            (true, _) => now,
            (false, Some(at)) => at + LAZY,
            (false, None) => return None,
        };
        Some(self.not_before.map_or(wanted, |at| at.max(wanted)))
    }

    /// Whether to publish now.
    pub(super) fn due_now(&self, now: Instant) -> bool {
        self.due(now).is_some_and(|at| now >= at)
    }

    /// A publish that began at `started` has just ended.
    pub(super) fn published(&mut self, started: Instant) {
        let now = Instant::now();
        let cost = now.saturating_duration_since(started);
        self.urgent = false;
        self.noted_at = None;
        self.not_before = Some(now + cost * SPACING);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_change_after_a_quiet_spell_goes_out_at_once_and_a_burst_waits() {
        let mut pacer = Pacer::default();
        assert!(!pacer.due_now(Instant::now()), "nothing changed");
        pacer.changed();
        assert!(
            pacer.due_now(Instant::now()),
            "the first change goes at once"
        );
        let started = Instant::now();
        tokio::time::advance(Duration::from_millis(2)).await;
        pacer.published(started);
        pacer.changed();
        let now = Instant::now();
        assert!(
            !pacer.due_now(now),
            "a change right after a 2 ms publish waits"
        );
        assert_eq!(
            pacer.due(now),
            Some(now + Duration::from_millis(2) * SPACING)
        );
        tokio::time::advance(Duration::from_millis(2) * SPACING).await;
        assert!(pacer.due_now(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_that_can_wait_waits_for_company_but_not_for_long() {
        let mut pacer = Pacer::default();
        let now = Instant::now();
        pacer.noted(now);
        assert!(!pacer.due_now(now));
        assert_eq!(pacer.due(now), Some(now + LAZY));
        // The connection comes up: both go out at once, in one publish.
        pacer.changed();
        assert!(pacer.due_now(now));
        pacer.published(now);
        // Alone, it goes out after LAZY.
        pacer.noted(now);
        tokio::time::advance(LAZY).await;
        assert!(pacer.due_now(Instant::now()));
    }
}
