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

use super::pick::{NotPicked, pick_or_wait};
use crate::endpoint::{EndpointState, InFlight};
use crate::error::Error;
use crate::policy::PickState;
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
            deadline: until.map_or(waited, |until| until.min(waited)),
            began,
        }
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
        if self.refused > 0 && !self.shared.budget.withdraw() {
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
        match self.refused > self.shared.config.max_unsent_retries {
            true => Err(self.refused),
            false => Ok(()),
        }
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
