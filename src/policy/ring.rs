//! Ring hash (Karger et al.; gRPC A42): each endpoint owns points on a 64-bit ring in
//! proportion to its weight; a key goes to the first point at or after its hash.
//!
//! Adding or removing one of N endpoints moves about 1/N of the keys, because every other
//! endpoint's points stay where they are. Balance depends on the number of points per
//! endpoint, which is why the ring has a minimum size.

use xxhash_rust::xxh64::xxh64;

/// Fewest points by default, as gRPC A42.
pub(crate) const MIN_RING_SIZE: u64 = 1024;
/// Most points by default: 1,048,576 (12 MiB), room for 8,192 endpoints at 128 points. A42's
/// 8,388,608 stays the largest accepted; as a default it let one extreme weight ratio from
/// discovery (1 beside 6,553,500 is a valid SRV answer) cost 96 MiB and seconds per snapshot.
pub(crate) const DEFAULT_MAX_RING_SIZE: u64 = 1 << 20;
/// The largest maximum accepted, as A42.
pub(crate) const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;

/// The sorted ring, with a bucket index over the top bits of the hash so a lookup is a
/// direct jump plus a search among a few points, however large the ring.
#[derive(Debug)]
pub(crate) struct Ring {
    /// (hash, owning endpoint), sorted: a lookup reads both from one cache line.
    points: Box<[(u64, u32)]>,
    /// `starts[b]`: the first point whose hash's top bits are ≥ `b` (one extra at the end).
    starts: Box<[u32]>,
    shift: u32,
}

impl Ring {
    /// Builds the ring for endpoints given as (stable name, weight), in index order.
    ///
    /// The lightest endpoint gets `P` points and every other endpoint `P × its weight / the
    /// lightest weight`, at least one. `P` is `min_size / 8` (128 by default) once there are 8
    /// or more lightest-weight equivalents, and the power of two that keeps the ring at
    /// `min_size` or more below that; the whole ring is scaled down to fit `max_size`.
    ///
    /// So with equal weights an endpoint's points never depend on how many others there are
    /// (from 8 endpoints on): adding or removing one moves only the keys it takes or gives
    /// back. A42 instead scales the ring so the lightest endpoint gets exactly its share of
    /// `min_size`, which moves keys between unchanged endpoints on every change (about 9 % on
    /// top of the ideal 1/N at N = 10), and leaves 1,000 endpoints with one point each.
    pub(crate) fn build<'a>(
        endpoints: impl Iterator<Item = (&'a str, u32)> + Clone,
        min_size: u64,
        max_size: u64,
    ) -> Ring {
        let total: f64 = endpoints.clone().map(|(_, w)| f64::from(w)).sum();
        let lightest = endpoints.clone().map(|(_, w)| w).min().unwrap_or(1);
        let per_weight = points_per_weight(total, f64::from(lightest), min_size, max_size);
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
        // About two to four points per bucket.
        let bits = (usize::BITS - points.len().leading_zeros())
            .saturating_sub(2)
            .clamp(1, 22);
        let shift = 64 - bits;
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0usize;
        for bucket in 0..(1u64 << bits) {
            while at < points.len() && (points[at].0 >> shift) < bucket {
                at += 1;
            }
            starts.push(at as u32);
        }
        starts.push(points.len() as u32);
        Ring {
            points: points.into(),
            starts: starts.into(),
            shift,
        }
    }

    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    /// The position of the first point at or after `hash`, wrapping past the end.
    #[inline]
    pub(crate) fn position(&self, hash: u64) -> usize {
        let bucket = (hash >> self.shift) as usize;
        let (lo, hi) = (
            self.starts[bucket] as usize,
            self.starts[bucket + 1] as usize,
        );
        let at = lo + self.points[lo..hi].partition_point(|&(h, _)| h < hash);
        if at == self.points.len() { 0 } else { at }
    }

    /// The endpoint index that owns the point at `position`.
    #[inline]
    pub(crate) fn owner(&self, position: usize) -> usize {
        self.points[position].1 as usize
    }
}

/// Points per unit of weight (see [`Ring::build`]): a function of the set alone, so every
/// client with the same endpoints builds the same ring.
fn points_per_weight(total: f64, lightest: f64, min_size: u64, max_size: u64) -> f64 {
    let lightest = lightest.max(1.0);
    let equivalents = (total / lightest).max(1.0);
    let floor = (min_size as f64 / 8.0).max(1.0);
    let for_min_size = (min_size as f64 / equivalents).log2().ceil().exp2();
    let per_lightest = floor.max(for_min_size);
    let points = per_lightest * equivalents;
    let scale = if points > max_size as f64 {
        max_size as f64 / points
    } else {
        1.0
    };
    per_lightest * scale / lightest
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
            let expect = r.points.partition_point(|&(h, _)| h < x) % r.len();
            assert_eq!(r.position(x), expect);
        }
        assert_eq!(
            r.position(u64::MAX),
            r.points.partition_point(|&(h, _)| h < u64::MAX) % r.len()
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
        let r = Ring::build(
            names.iter().map(String::as_str).zip([1, u32::MAX, 7]),
            MIN_RING_SIZE,
            1 << 16,
        );
        assert!(r.len() as u64 <= (1 << 16) + 3, "{}", r.len());
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

        /// A smaller maximum than the default keeps extreme weights fast in a debug build.
        const MAX: u64 = 1 << 16;

        fn build(set: &BTreeMap<u16, u32>) -> (Ring, Vec<u16>) {
            let names: Vec<String> = set.keys().map(|k| format!("ep-{k}")).collect();
            let ring = Ring::build(
                names.iter().map(String::as_str).zip(set.values().copied()),
                MIN_RING_SIZE,
                MAX,
            );
            (ring, set.keys().copied().collect())
        }

        fn scale(set: &BTreeMap<u16, u32>) -> f64 {
            let total = set.values().map(|&w| f64::from(w)).sum();
            let lightest = set.values().copied().min().unwrap_or(1);
            points_per_weight(total, f64::from(lightest), MIN_RING_SIZE, MAX)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            /// After any insert, remove or weight change, a key changes endpoint only if the
            /// endpoint it left or the one it went to is the one that changed — as long as the
            /// ring's points per weight stayed the same (with equal weights, always from 8
            /// endpoints on; see the next property).
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
                    let same_scale = scale(&before) == scale(&set);
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

            /// With equal weights and 8 or more endpoints, an endpoint's points never change (until
            /// the ring reaches its maximum size: 512 endpoints here, 65,536 by default).
            #[test]
            fn equal_weights_keep_their_points_from_8_endpoints_on(a in 8usize..=512, b in 8usize..=512) {
                let set = |n: usize| (0..n as u16).map(|i| (i, 1u32)).collect::<BTreeMap<_, _>>();
                prop_assert_eq!(scale(&set(a)), scale(&set(b)));
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
                prop_assert!(ring.len() as u64 <= MAX + ids.len() as u64);
                prop_assert!(ring.owner(ring.position(hash)) < ids.len());
            }
        }
    }
}
