//! Counters kept per endpoint and per balancer by the calls themselves: each endpoint's
//! finished calls, and how many endpoints are ejected against the cap.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::health::outlier::Sample;

/// How many endpoints are ejected, against the cap the control task keeps up to date.
#[derive(Debug, Default)]
pub(crate) struct EjectionCap {
    ejected: AtomicUsize,
    max: AtomicUsize,
}

impl EjectionCap {
    /// Takes one ejection if the cap allows it.
    pub(crate) fn take(&self) -> bool {
        let max = self.max.load(Relaxed);
        self.ejected
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// An ejection ended (or was not used).
    pub(crate) fn give_back(&self) {
        let _ = self
            .ejected
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Relaxed);
    }

    pub(crate) fn ejected(&self) -> usize {
        self.ejected.load(Relaxed)
    }
}

/// One endpoint's finished calls, as the passive checks count them, and its ejections.
#[derive(Debug, Default)]
pub(crate) struct CallCounters {
    pub(crate) ok: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) consecutive: AtomicU32,
    /// Times ejected, ever (for status and metrics).
    pub(crate) ejections: AtomicU64,
}

impl CallCounters {
    /// The calls finished so far: for the outlier statistics, status and metrics.
    pub(crate) fn totals(&self) -> Sample {
        Sample {
            ok: self.ok.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_cap_holds_under_contention() {
        let cap = Arc::new(EjectionCap::default());
        cap.set_max(3);
        let taken: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..100).filter(|_| cap.take()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken, 3);
        assert_eq!(cap.ejected(), 3);
        cap.give_back();
        assert!(cap.take());
        assert!(!cap.take());
        cap.set_max(0);
        for _ in 0..10 {
            cap.give_back();
        }
        assert_eq!(cap.ejected(), 0, "never below zero");
    }
}
