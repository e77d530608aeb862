//! The attempts of one call after its first pick found nothing, or its first endpoint refused
//! it: the one retry loop's state, shared by HTTP calls (a request handed back unsent) and the
//! layer 4 balancer (a dial that failed).
//!
//! Each attempt waits for a ready endpoint until the call's deadline, passes over the endpoint
//! that refused the last attempt, and — from the second attempt on — draws on the balancer's
//! retry budget; after `unsent_retries` refusals the call gives up.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::pick::{NotPicked, pick, pick_or_wait};
use crate::endpoint::{EndpointState, InFlight};
use crate::error::Error;
use crate::policy::{Call, PickState};
use crate::ready_set::Shared;
use crate::transport::EndpointChannel;

/// Where one call stands in its attempts.
pub(crate) struct Attempts<T> {
    shared: Arc<Shared<T>>,
    hash: Option<u64>,
    state: PickState<SmallRng>,
    /// The endpoint that refused the last attempt.
    avoid: Option<Arc<EndpointState>>,
    /// Attempts refused so far.
    refused: u32,
    /// Whether the next pick is a retry, which the retry budget must allow.
    retrying: bool,
    began: Instant,
    deadline: Instant,
}

impl<T: EndpointChannel> Attempts<T> {
    /// A call that may wait `wait` for a ready endpoint from now, and not past `until` (its
    /// own deadline); `hash` is its key's hash, `seed` its clone's draw for the random choices.
    pub(crate) fn new(
        shared: Arc<Shared<T>>,
        hash: Option<u64>,
        seed: u64,
        wait: Duration,
        until: Option<Instant>,
    ) -> Self {
        let began = Instant::now();
        let waited = began.checked_add(wait).unwrap_or_else(far_future);
        Attempts {
            shared,
            hash,
            state: PickState::new(seed),
            avoid: None,
            refused: 0,
            retrying: false,
            deadline: until.map_or(waited, |until| until.min(waited)),
            began,
        }
    }

    /// The attempts of a call to `request` (its head is enough): waiting for a ready endpoint
    /// for the ready timeout — or, `wait_for_ready`, until `until` — and never past `until`.
    pub(crate) fn of_request<B>(
        shared: Arc<Shared<T>>,
        request: &http::Request<B>,
        seed: u64,
        wait_for_ready: bool,
        until: Option<Instant>,
    ) -> Self {
        let hash = shared.config.policy.request_hash(request);
        let wait = match (wait_for_ready, until) {
            (false, _) => shared.config.ready_timeout,
            (true, Some(until)) => until.saturating_duration_since(Instant::now()),
            (true, None) => Duration::MAX,
        };
        Attempts::new(shared, hash, seed, wait, until)
    }

    /// The balancer's shared state.
    pub(crate) fn shared(&self) -> &Shared<T> {
        &self.shared
    }

    /// When the call began waiting.
    pub(crate) fn began(&self) -> Instant {
        self.began
    }

    /// The next endpoint, with the call counted on it. A retry must first be allowed by the
    /// budget; then the pick waits for a ready endpoint until the deadline.
    pub(crate) async fn next(&mut self) -> Result<(T, InFlight), Stopped> {
        if std::mem::take(&mut self.retrying) && !self.shared.budget.withdraw() {
            tracing::debug!(
                attempts = self.refused,
                "attempt refused; retry budget spent"
            );
            return Err(Stopped::BudgetSpent {
                attempts: self.refused,
            });
        }
        let avoid = self.avoid.as_deref();
        pick_or_wait(
            &self.shared,
            self.hash,
            avoid,
            &mut self.state,
            self.deadline,
        )
        .await
        .map_err(|why| Stopped::NotPicked {
            why,
            began: self.began,
        })
    }

    /// The attempt on `hold`'s endpoint was refused (the request came back unsent, the dial
    /// failed): the next pick passes that endpoint over. `Err` with the number of attempts
    /// once more than `unsent_retries` were refused.
    pub(crate) fn refused(&mut self, hold: InFlight) -> Result<(), u32> {
        self.avoid = Some(hold.endpoint().clone());
        drop(hold);
        self.refused += 1;
        self.retrying = true;
        match self.refused > self.shared.config.max_unsent_retries {
            true => Err(self.refused),
            false => Ok(()),
        }
    }

    /// The next pick passes over `endpoint` (a configured retry or a hedge goes elsewhere).
    pub(crate) fn pass_over(&mut self, endpoint: &Arc<EndpointState>) {
        self.avoid = Some(endpoint.clone());
    }

    /// An endpoint from the current snapshot, without waiting (for a hedge: the attempts
    /// already sent must not wait behind it).
    pub(crate) fn pick_now(&mut self) -> Option<(T, InFlight)> {
        let policy = &self.shared.config.policy;
        let call = Call::new(policy, self.hash, self.avoid.as_deref());
        pick(&self.shared.set.load(), policy, call, &mut self.state)
    }

    /// The random numbers of this call (for backoff jitter).
    pub(crate) fn rng(&mut self) -> &mut SmallRng {
        &mut self.state.rng
    }

    /// The number of the attempt under way (1 for the first).
    pub(crate) fn attempt(&self) -> u32 {
        self.refused + 1
    }
}

/// Why a call makes no further attempt.
pub(crate) enum Stopped {
    /// A retry, refused by the retry budget.
    BudgetSpent { attempts: u32 },
    /// No endpoint took the call until its deadline, or too many calls waited already.
    NotPicked { why: NotPicked, began: Instant },
}

impl Stopped {
    /// The error of the call to `path`.
    pub(crate) fn into_error(self, path: String) -> Error {
        match self {
            Stopped::BudgetSpent { attempts } => Error::RetryBudgetExhausted { path, attempts },
            Stopped::NotPicked { why, began } => why.into_error(path, began),
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}
