//! The fleet as discovery lists it, and the subset chosen from it: each change of the fleet
//! in, the changes of the subset out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::config::{Rule, Subsetting};
use crate::discover::{Change, Endpoint, Key};

/// The whole fleet and this client's subset of it.
#[derive(Debug)]
pub(crate) struct Selection {
    subsetting: Subsetting,
    /// Every endpoint discovery lists, in key order (the aperture's ring).
    all: BTreeMap<Key, Endpoint>,
    /// Rendezvous: every key by its score, best first.
    scores: BTreeSet<(u64, Key)>,
    /// The subset, as last passed on.
    chosen: BTreeSet<Key>,
    /// Whether the fleet changed since the subset was last chosen.
    moved: bool,
}

impl Selection {
    pub(crate) fn new(subsetting: Subsetting) -> Self {
        Selection {
            subsetting,
            all: BTreeMap::new(),
            scores: BTreeSet::new(),
            chosen: BTreeSet::new(),
            moved: false,
        }
    }

    /// Applies one change of the fleet. An update of an endpoint in the subset goes to `out`
    /// at once; what a change of membership does to the subset is worked out by
    /// [`reselect`](Self::reselect), once for a batch of changes (an initial list of 10,000
    /// costs one choice, not 10,000).
    pub(crate) fn apply(&mut self, change: Change, out: &mut VecDeque<Change>) {
        match change {
            Change::Insert(key, endpoint) => {
                if self.all.insert(key.clone(), endpoint.clone()).is_some() {
                    // An update: passed on if the endpoint is in the subset; its place in the
                    // ring and its score depend on its key alone, so nothing moves.
                    if self.chosen.contains(&key) {
                        out.push_back(Change::Insert(key, endpoint));
                    }
                    return;
                }
                if let Rule::Rendezvous { seed } = self.subsetting.rule {
                    self.scores.insert((score(seed, &key), key));
                }
            }
            Change::Remove(key) => {
                if self.all.remove(&key).is_none() {
                    return;
                }
                if let Rule::Rendezvous { seed } = self.subsetting.rule {
                    self.scores.remove(&(score(seed, &key), key));
                }
            }
        }
        self.moved = true;
    }

    /// Chooses the subset again if the fleet changed, and appends the difference to `out`:
    /// removals first, so a balancer with an endpoint limit makes room before it is asked to
    /// fill it.
    pub(crate) fn reselect(&mut self, out: &mut VecDeque<Change>) {
        if !std::mem::take(&mut self.moved) {
            return;
        }
        let size = self.subsetting.size;
        let wanted: BTreeSet<Key> = match self.subsetting.rule {
            Rule::Rendezvous { .. } => self
                .scores
                .iter()
                .take(size)
                .map(|(_, k)| k.clone())
                .collect(),
            Rule::Aperture { client, clients } => {
                let n = self.all.len();
                // Client i of m starts at rank ⌊i·n/m⌋ and takes `size` keys, round the ring.
                let start = (u128::from(client) * n as u128 / u128::from(clients)) as usize;
                self.all
                    .keys()
                    .skip(start)
                    .chain(self.all.keys())
                    .take(size.min(n))
                    .cloned()
                    .collect()
            }
        };
        for gone in self.chosen.difference(&wanted) {
            out.push_back(Change::Remove(gone.clone()));
        }
        for new in wanted.difference(&self.chosen) {
            if let Some(endpoint) = self.all.get(new) {
                out.push_back(Change::Insert(new.clone(), endpoint.clone()));
            }
        }
        self.chosen = wanted;
    }
}

/// An endpoint's rendezvous score for a client's seed: FNV-1a over the key, then a 64-bit
/// finaliser (splitmix64), so that scores are spread evenly and the same on every build.
fn score(seed: u64, key: &Key) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in key.as_str().as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
impl Selection {
    fn chosen(&self) -> impl Iterator<Item = &Key> {
        self.chosen.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn endpoint(i: u32) -> (Key, Endpoint) {
        let addr = std::net::SocketAddr::from(([127, 0, (i >> 8) as u8, i as u8], 50_000));
        (Key::from(addr), Endpoint::new(addr).unwrap())
    }

    fn fleet(selection: &mut Selection, n: u32) -> VecDeque<Change> {
        let mut out = VecDeque::new();
        for i in 0..n {
            let (k, e) = endpoint(i);
            selection.apply(Change::Insert(k, e), &mut out);
            // One at a time, as a slow stream would deliver them.
            selection.reselect(&mut out);
        }
        out
    }

    /// What a subscriber to the subset's changes would hold after `changes`.
    fn held(changes: &VecDeque<Change>) -> BTreeSet<Key> {
        let mut set = BTreeSet::new();
        for c in changes {
            match c {
                Change::Insert(k, _) => set.insert(k.clone()),
                Change::Remove(k) => set.remove(k),
            };
        }
        set
    }

    #[test]
    fn the_changes_passed_on_add_up_to_the_subset() {
        for subsetting in [
            Subsetting::rendezvous_with_seed(5, 7),
            Subsetting::aperture(5, 2, 3).unwrap(),
        ] {
            let mut s = Selection::new(subsetting);
            let mut out = fleet(&mut s, 40);
            assert_eq!(held(&out), s.chosen().cloned().collect());
            assert_eq!(s.chosen().count(), 5);
            // An update of a chosen endpoint passes through; of another, nothing.
            let first = s.chosen().next().unwrap().clone();
            let before = out.len();
            let e = Endpoint::new(first.as_str().parse().unwrap())
                .unwrap()
                .with_weight(3)
                .unwrap();
            s.apply(Change::Insert(first.clone(), e), &mut out);
            assert_eq!(out.len(), before + 1);
            // Fewer endpoints than the size: all of them.
            let mut small = Selection::new(subsetting);
            fleet(&mut small, 3);
            assert_eq!(small.chosen().count(), 3);
        }
    }

    proptest! {
        /// One endpoint more or less changes at most one member of the subset: with
        /// rendezvous always; with the aperture unless the client's window wraps round the end
        /// of the ring, where the two pieces of the window shift unlike each other and up to
        /// two members change (for example n = 21, size 16, client 3 of 4, a key in the
        /// wrapped piece removed).
        #[test]
        fn one_change_moves_at_most_one_member(
            n in 1u32..200, size in 1usize..20, seed: u64, client in 0u64..10, clients in 1u64..10,
            victim: u32, insert: bool,
        ) {
            let client = client % clients;
            let wraps = |n: u64| client * n / clients + (size as u64).min(n) > n;
            let after_n = if insert { u64::from(n) + 1 } else { u64::from(n) - 1 };
            let aperture_bound = match wraps(u64::from(n)) || wraps(after_n) {
                true => 2,
                false => 1,
            };
            for (subsetting, bound) in [
                (Subsetting::rendezvous_with_seed(size, seed), 1),
                (Subsetting::aperture(size, client, clients).unwrap(), aperture_bound),
            ] {
                let mut s = Selection::new(subsetting);
                fleet(&mut s, n);
                let before: BTreeSet<Key> = s.chosen().cloned().collect();
                let mut out = VecDeque::new();
                if insert {
                    let (k, e) = endpoint(n + victim % 50);
                    s.apply(Change::Insert(k, e), &mut out);
                } else {
                    let (k, _) = endpoint(victim % n);
                    s.apply(Change::Remove(k), &mut out);
                }
                s.reselect(&mut out);
                let after: BTreeSet<Key> = s.chosen().cloned().collect();
                let left = before.difference(&after).count();
                let joined = after.difference(&before).count();
                prop_assert!(
                    left <= bound && joined <= bound,
                    "{:?}: left {} joined {}", subsetting, left, joined
                );
            }
        }

        /// The wrapped case above, as found: two members change, no more.
        #[test]
        fn a_wrapped_aperture_window_changes_at_most_two(victim in 0u32..21) {
            let mut s = Selection::new(Subsetting::aperture(16, 3, 4).unwrap());
            fleet(&mut s, 21);
            let before: BTreeSet<Key> = s.chosen().cloned().collect();
            let mut out = VecDeque::new();
            s.apply(Change::Remove(endpoint(victim).0), &mut out);
            s.reselect(&mut out);
            let after: BTreeSet<Key> = s.chosen().cloned().collect();
            prop_assert!(before.difference(&after).count() <= 2);
            prop_assert!(after.difference(&before).count() <= 2);
        }
    }
}
