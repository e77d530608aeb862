//! Prequal's probe pool: up to [`SLOTS`] recent load reports, each naming one endpoint of the
//! current snapshot and how many more picks it may serve. The probe task fills it (off the
//! request path); picks read it and use entries up. One atomic word per slot, so neither side
//! locks and a pick allocates nothing.
//!
//! A slot holds only where to look (the endpoint's index in the snapshot) and its reuse
//! budget; the report itself lives on the endpoint (`endpoint/reported.rs`), where a call's
//! trailers refresh it too. A slot written for an older snapshot is void: indexes change
//! when the snapshot does.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Entries in the pool (the paper's default pool size).
pub(crate) const SLOTS: usize = 16;

/// A slot's word: snapshot epoch (16 bits, never 0) | uses left (16) | endpoint index (32).
/// 0 is an empty slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) epoch: u16,
    pub(crate) uses: u16,
    pub(crate) index: u32,
}

impl Slot {
    fn pack(self) -> u64 {
        u64::from(self.epoch) << 48 | u64::from(self.uses) << 32 | u64::from(self.index)
    }

    fn unpack(word: u64) -> Self {
        Slot {
            epoch: (word >> 48) as u16,
            uses: (word >> 32) as u16,
            index: word as u32,
        }
    }
}

/// One balancer's pool, shared by its snapshots' plans and its probe task.
#[derive(Debug)]
pub(crate) struct ProbePool {
    slots: [AtomicU64; SLOTS],
    /// The epoch of the newest snapshot (each plan takes the next one).
    epoch: AtomicU32,
    /// A report with more calls in flight than this is hot (the configured quantile of
    /// recent reports' counts); `u32::MAX` until there are some.
    hot_above: AtomicU32,
    /// Picks made, for the probe task to probe in proportion.
    picks: AtomicU64,
}

impl Default for ProbePool {
    fn default() -> Self {
        ProbePool {
            slots: Default::default(),
            epoch: AtomicU32::new(0),
            hot_above: AtomicU32::new(u32::MAX),
            picks: AtomicU64::new(0),
        }
    }
}

impl ProbePool {
    /// The epoch for a new snapshot's plan (control path): slots written for older ones
    /// become void.
    pub(crate) fn next_epoch(&self) -> u16 {
        loop {
            let e = self.epoch.fetch_add(1, Relaxed).wrapping_add(1) as u16;
            if e != 0 {
                return e;
            }
        }
    }

    /// Slot `i` as a pick reads it: `None` when empty, used up or of another snapshot.
    #[inline]
    pub(crate) fn live(&self, i: usize, epoch: u16) -> Option<Slot> {
        let slot = Slot::unpack(self.slots[i].load(Relaxed));
        (slot.epoch == epoch && slot.uses > 0).then_some(slot)
    }

    /// A pick used slot `i` as `seen`: one use fewer, emptied at the last. Lost to a
    /// concurrent pick or a refill, it is left as they made it.
    #[inline]
    pub(crate) fn use_once(&self, i: usize, seen: Slot) {
        let after = match seen.uses {
            0 | 1 => 0,
            n => Slot {
                uses: n - 1,
                ..seen
            }
            .pack(),
        };
        let _ = self.slots[i].compare_exchange(seen.pack(), after, Relaxed, Relaxed);
    }

    /// Stores `slot` at `i` (probe task).
    pub(crate) fn put(&self, i: usize, slot: Slot) {
        self.slots[i].store(slot.pack(), Relaxed);
    }

    /// Slot `i` whatever it holds (probe task).
    pub(crate) fn get(&self, i: usize) -> Slot {
        Slot::unpack(self.slots[i].load(Relaxed))
    }

    #[inline]
    pub(crate) fn hot_above(&self) -> u32 {
        self.hot_above.load(Relaxed)
    }

    pub(crate) fn set_hot_above(&self, rif: u32) {
        self.hot_above.store(rif, Relaxed);
    }

    #[inline]
    pub(crate) fn note_pick(&self) {
        self.picks.fetch_add(1, Relaxed);
    }

    pub(crate) fn picks(&self) -> u64 {
        self.picks.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_used_up_and_voided_by_a_new_epoch() {
        let pool = ProbePool::default();
        let e1 = pool.next_epoch();
        assert_ne!(e1, 0);
        assert_eq!(pool.live(0, e1), None, "empty");
        let slot = Slot {
            epoch: e1,
            uses: 2,
            index: 7,
        };
        pool.put(0, slot);
        let seen = pool.live(0, e1).unwrap();
        assert_eq!(seen, slot);
        pool.use_once(0, seen);
        let seen = pool.live(0, e1).unwrap();
        assert_eq!(seen.uses, 1);
        pool.use_once(0, seen);
        assert_eq!(pool.live(0, e1), None, "used up");
        pool.put(1, slot);
        let e2 = pool.next_epoch();
        assert_eq!(pool.live(1, e2), None, "another snapshot's");
        // A stale view of a slot refilled since does not use up the refill.
        pool.put(
            2,
            Slot {
                epoch: e2,
                uses: 1,
                index: 1,
            },
        );
        let stale = pool.live(2, e2).unwrap();
        pool.put(
            2,
            Slot {
                epoch: e2,
                uses: 3,
                index: 4,
            },
        );
        pool.use_once(2, stale);
        assert_eq!(pool.live(2, e2).unwrap().uses, 3);
    }

    #[test]
    fn the_epoch_skips_zero_when_it_wraps() {
        let pool = ProbePool::default();
        pool.epoch.store(u32::from(u16::MAX), Relaxed);
        assert_eq!(pool.next_epoch(), 1);
    }
}
