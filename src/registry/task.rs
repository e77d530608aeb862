//! A task the control path runs beside something it owns, and stops with it.

use tokio::task::JoinHandle;

/// A spawned task, aborted when this is dropped.
pub(super) struct OwnedTask(JoinHandle<()>);

impl OwnedTask {
    /// Spawns `future` on the current runtime.
    pub(super) fn spawn(future: impl Future<Output = ()> + Send + 'static) -> Self {
        OwnedTask(tokio::spawn(future))
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
