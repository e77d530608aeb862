//! The balancer's clock: one process-wide origin, read as nanoseconds.

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds since the first use of the balancer's clock (a process-wide `Instant`).
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
