//! Ring hash (Karger et al.; gRPC A42): each endpoint owns points on a 64-bit ring in
//! proportion to its weight; a key goes to the first point at or after its hash.
//!
//! Adding or removing one of N endpoints moves about 1/N of the keys, because every other
//! endpoint's points stay where they are. Balance depends on the number of points per
//! endpoint, which is why the ring has a minimum size.

use xxhash_rust::xxh64::xxh64;

/// Fewest and most points, as gRPC A42 (the maximum bounds memory: 12 bytes per point).
pub(crate) const MIN_RING_SIZE: u64 = 1024;
pub(crate) const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;

/// The sorted ring, with a bucket index over the top bits of the hash so a lookup is a
/// direct jump plus a search among a few points, however large the ring.
#[derive(Debug)]
pub(crate) struct Ring {
    hashes: Box<[u64]>,
    owners: Box<[u32]>,
    /// `starts[b]`: the first point whose hash's top bits are ≥ `b` (one extra at the end).
    starts: Box<[u32]>,
    shift: u32,
}

impl Ring {
    /// Builds the ring for endpoints given as (stable name, weight), in index order.
    ///
    /// Each endpoint gets `round(u × weight)` points, at least one, where `u` (points per
    /// unit of weight) is the power of two that puts the ring between `min_size` and twice
    /// that (never above `max_size`). A42 instead scales so the lightest endpoint gets exactly
    /// its share of `min_size`; but then every endpoint's point count changes whenever one
    /// joins or leaves, and keys move between endpoints that did not change (about 9 % on top
    /// of the ideal 1/N at N = 10). With `u` a power of two, an endpoint's points depend only
    /// on its own weight until the total weight crosses a power of two.
    pub(crate) fn build<'a>(
        endpoints: impl Iterator<Item = (&'a str, u32)> + Clone,
        min_size: u64,
        max_size: u64,
    ) -> Ring {
        let total: f64 = endpoints.clone().map(|(_, w)| f64::from(w)).sum();
        let per_weight = points_per_weight(total, min_size, max_size);
        let mut points: Vec<(u64, u32)> = Vec::new();
        let mut name = String::new();
        for (index, (key, weight)) in endpoints.enumerate() {
            let count = (per_weight * f64::from(weight)).round().max(1.0) as u64;
            for j in 0..count {
                name.clear();
                use std::fmt::Write;
                let _ = write!(name, "{key}_{j}");
                points.push((xxh64(name.as_bytes(), 0), index as u32));
            }
        }
        points.sort_unstable();
        let (hashes, owners): (Vec<u64>, Vec<u32>) = points.into_iter().unzip();
        // About two to four points per bucket.
        let bits = (usize::BITS - hashes.len().leading_zeros())
            .saturating_sub(2)
            .clamp(1, 22);
        let shift = 64 - bits;
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0usize;
        for bucket in 0..(1u64 << bits) {
            while at < hashes.len() && (hashes[at] >> shift) < bucket {
                at += 1;
            }
            starts.push(at as u32);
        }
        starts.push(hashes.len() as u32);
        Ring {
            hashes: hashes.into(),
            owners: owners.into(),
            starts: starts.into(),
            shift,
        }
    }

    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// The position of the first point at or after `hash`, wrapping past the end.
    #[inline]
    pub(crate) fn position(&self, hash: u64) -> usize {
        let bucket = (hash >> self.shift) as usize;
        let (lo, hi) = (
            self.starts[bucket] as usize,
            self.starts[bucket + 1] as usize,
        );
        let at = lo + self.hashes[lo..hi].partition_point(|&h| h < hash);
        if at == self.hashes.len() { 0 } else { at }
    }

    /// The endpoint index that owns the point at `position`.
    #[inline]
    pub(crate) fn owner(&self, position: usize) -> usize {
        self.owners[position] as usize
    }
}

/// Points per unit of weight: the power of two that makes `total` weight between `min_size`
/// and `2 × min_size` points, lowered if that passes `max_size`. A pure function of the set,
/// so every client with the same endpoints builds the same ring.
fn points_per_weight(total: f64, min_size: u64, max_size: u64) -> f64 {
    let total = total.max(1.0);
    let per_weight = (min_size as f64 / total).log2().ceil().exp2();
    if per_weight * total > max_size as f64 {
        (max_size as f64 / total).log2().floor().exp2()
    } else {
        per_weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:80")).collect()
    }

    fn ring(names: &[String], weights: &[u32]) -> Ring {
        Ring::build(
            names
                .iter()
                .map(String::as_str)
                .zip(weights.iter().copied()),
            MIN_RING_SIZE,
            MAX_RING_SIZE,
        )
    }

    #[test]
    fn lookup_matches_a_plain_binary_search() {
        let names = names(37);
        let r = ring(&names, &[1; 37]);
        assert!(r.len() >= 1024);
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let expect = r.hashes.partition_point(|&h| h < x) % r.len();
            assert_eq!(r.position(x), expect);
        }
        assert_eq!(
            r.position(u64::MAX),
            r.hashes.partition_point(|&h| h < u64::MAX) % r.len()
        );
        assert_eq!(r.position(0), 0);
    }

    #[test]
    fn points_follow_weights_and_the_size_bounds() {
        let names = names(3);
        let r = ring(&names, &[1, 2, 5]);
        let mut per = [0usize; 3];
        for p in 0..r.len() {
            per[r.owner(p)] += 1;
        }
        // 128 points per unit of weight make a ring of 1,024.
        assert_eq!(per, [128, 256, 640]);
        // Extreme weights stop at the maximum size; everyone keeps at least one point.
        let r = ring(&names, &[1, u32::MAX, 7]);
        assert!(r.len() as u64 <= MAX_RING_SIZE + 3, "{}", r.len());
        let owners: std::collections::HashSet<_> = (0..r.len()).map(|p| r.owner(p)).collect();
        assert_eq!(owners.len(), 3);
    }

    #[test]
    fn empty_and_single() {
        let r = Ring::build(std::iter::empty(), MIN_RING_SIZE, MAX_RING_SIZE);
        assert_eq!(r.len(), 0);
        let names = names(1);
        let r = ring(&names, &[u32::MAX]);
        assert!((1024..=2048).contains(&r.len()), "{}", r.len());
        assert_eq!(r.owner(r.position(42)), 0);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        fn build(set: &BTreeMap<u16, u32>) -> (Ring, Vec<u16>) {
            let names: Vec<String> = set.keys().map(|k| format!("ep-{k}")).collect();
            let ring = Ring::build(
                names.iter().map(String::as_str).zip(set.values().copied()),
                MIN_RING_SIZE,
                MAX_RING_SIZE,
            );
            (ring, set.keys().copied().collect())
        }

        fn total(set: &BTreeMap<u16, u32>) -> f64 {
            set.values().map(|&w| f64::from(w)).sum()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            /// After any insert, remove or weight change, a key changes endpoint only if the
            /// endpoint it left or the one it went to is the one that changed — as long as the
            /// ring's points per weight stayed the same (they change only when the total weight
            /// crosses a power of two).
            #[test]
            fn keys_move_only_to_or_from_the_changed_endpoint(
                initial in proptest::collection::btree_map(0u16..64, 1u32..=8, 1..24),
                changes in proptest::collection::vec((0u16..64, 0u32..=8), 1..12),
                keys in proptest::collection::vec(any::<u64>(), 200),
            ) {
                let mut set = initial;
                for (id, weight) in changes {
                    let before = set.clone();
                    // Weight 0 stands for a removal (never removing the last endpoint).
                    if weight == 0 && set.len() > 1 { set.remove(&id); } else if weight > 0 { set.insert(id, weight); }
                    let same_scale = points_per_weight(total(&before), MIN_RING_SIZE, MAX_RING_SIZE)
                        == points_per_weight(total(&set), MIN_RING_SIZE, MAX_RING_SIZE);
                    let (old, old_ids) = build(&before);
                    let (new, new_ids) = build(&set);
                    for &k in &keys {
                        let was = old_ids[old.owner(old.position(k))];
                        let now = new_ids[new.owner(new.position(k))];
                        prop_assert!(set.contains_key(&now));
                        if same_scale && was != now {
                            prop_assert!(was == id || now == id, "key {k:x} moved {was} -> {now}, change on {id}");
                        }
                    }
                }
            }

            /// No panic and a valid owner for any weights, including extremes, and any hash.
            #[test]
            fn any_weights_give_a_valid_ring(
                weights in proptest::collection::vec(prop_oneof![Just(1u32), Just(u32::MAX), 1u32..1000], 1..40),
                hash in any::<u64>(),
            ) {
                let set: BTreeMap<u16, u32> = weights.iter().enumerate().map(|(i, &w)| (i as u16, w)).collect();
                let (ring, ids) = build(&set);
                prop_assert!(ring.len() >= ids.len());
                prop_assert!(ring.len() as u64 <= MAX_RING_SIZE + ids.len() as u64);
                prop_assert!(ring.owner(ring.position(hash)) < ids.len());
            }
        }
    }
}
