//! What the control task keeps per endpoint: its discovery record, shared state, connection,
//! and its standing with outlier detection and health checks.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::published::Standing;
use super::task::OwnedTask;
use crate::discover::Endpoint;
use crate::endpoint::EndpointState;
use crate::health::Health;
use crate::health::outlier::Sample;

/// One endpoint discovery listed (not one on standby).
pub(super) struct Entry<T> {
    pub(super) endpoint: Endpoint,
    pub(super) state: Arc<EndpointState>,
    pub(super) generation: u64,
    pub(super) task: JoinHandle<()>,
    pub(super) channel: Option<T>,
    pub(super) last_error: Option<String>,
    /// Outlier detection's view of it.
    pub(super) ejection: Ejection,
    /// Active health checking's view of it.
    pub(super) check: CheckState,
    /// Since when it has been healthy and ready (slow start), `None` while it is not.
    pub(super) joined: Option<Instant>,
    /// Its out-of-band load-report stream, while connected (weighted round robin with
    /// out-of-band reports); dropping it stops the stream.
    pub(super) reports: Option<OwnedTask>,
    /// What it counts for in the registry's tally, as of the last publish that looked at it.
    pub(super) counted: Standing,
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        self.task.abort();
        self.check.stop();
    }
}

/// Outlier detection's record of one endpoint.
#[derive(Debug, Default)]
pub(super) struct Ejection {
    /// A50's ejection time multiplier: up by one per ejection, down by one per interval out of
    /// ejection.
    pub(super) multiplier: u32,
    /// When the current ejection ends.
    pub(super) until: Option<Instant>,
    /// The call counts at the last interval, to take this interval's from the totals.
    pub(super) last: Sample,
}

/// Active health checking's record of one endpoint.
#[derive(Debug, Default)]
pub(super) struct CheckState {
    task: Option<JoinHandle<()>>,
    /// Which check task is current: verdicts of an older one are ignored.
    pub(super) epoch: u64,
    /// The last verdict: `None` while checking without an answer yet.
    pub(super) serving: Option<bool>,
    /// Whether the last verdict was that the server does not know the service.
    pub(super) unknown: bool,
}

impl CheckState {
    /// Starts following a new check task (or none: checks off).
    pub(super) fn start(&mut self, task: Option<JoinHandle<()>>, state: &EndpointState) {
        self.stop();
        self.unknown = false;
        self.serving = match task {
            Some(_) => None,
            None => Some(true),
        };
        self.task = task;
        state.set_checked(self.health());
    }

    /// What the check says, as the endpoint's status shows it (an ejection shows over it).
    pub(super) fn health(&self) -> Health {
        match self.serving {
            Some(true) => Health::Healthy,
            Some(false) if self.unknown => Health::ServiceUnknown,
            Some(false) => Health::NotServing,
            None => Health::Checking,
        }
    }

    pub(super) fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.epoch += 1;
    }

    /// Whether the health check (if any) lets the endpoint take calls.
    pub(super) fn serving(&self) -> bool {
        self.serving == Some(true)
    }

    /// The epoch the next check task will have.
    pub(super) fn next_epoch(&self) -> u64 {
        self.epoch + 1
    }
}
