//! The run's clock: microseconds since the run began, comparable across callers and faults.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    pub(crate) fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub(crate) fn instant(&self, since_start: Duration) -> Instant {
        self.start + since_start
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
