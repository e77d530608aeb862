//! What the interop servers saw happen to calls, for the assertions a client cannot make on
//! its own (a cancelled call ends without a status on the client side).
//!
//! Both server kinds write here: the tonic servers directly, the Python servers through
//! lines on their standard output (`event <what> <Method>`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A call the server saw begin (its headers arrived). The tonic servers note every call, the
/// Python servers their streaming calls.
pub const BEGAN: &str = "began";

/// A call the client cancelled: its stream was reset with `CANCEL` (tonic servers), or it
/// ended before the server finished it (Python servers).
pub const CANCELLED: &str = "cancelled";

/// A log of `(what, method)` events, shared by a fleet's servers; clones share one log.
#[derive(Debug, Clone, Default)]
pub struct Events(Arc<Mutex<Vec<(String, String)>>>);

impl Events {
    /// Notes that `what` happened to a call of `method` (e.g. `"StreamingInputCall"`).
    pub fn push(&self, what: &str, method: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((what.to_owned(), method.to_owned()));
    }

    /// How many times `what` happened to calls of `method` so far.
    pub fn count(&self, what: &str, method: &str) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(w, m)| w == what && m == method)
            .count()
    }

    /// Waits until `what` has happened to a call of `method` at least `n` times, for at most
    /// `within`; `false` if it had not by then.
    pub async fn wait_for(&self, what: &str, method: &str, n: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.count(what, method) >= n {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
