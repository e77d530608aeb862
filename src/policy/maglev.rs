//! Maglev hashing (Eisenbud et al., NSDI 2016), weighted as Envoy does: a lookup table of a
//! prime size M where endpoints take turns claiming slots along their own permutation.
//!
//! A pick is one multiplication and one table read. Balance is near perfect (each endpoint's
//! slot count is within one of its share of M); on a change, slightly more keys move than on
//! a ring (the paper measures a few percent above the ideal 1/N).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use xxhash_rust::xxh64::xxh64;

/// The default table size (prime), as Envoy.
pub(crate) const DEFAULT_TABLE_SIZE: u64 = 65_537;
/// The largest table accepted (a prime near 2^24; 4 bytes per slot).
pub(crate) const MAX_TABLE_SIZE: u64 = 16_777_259;

#[derive(Debug)]
pub(crate) struct Maglev {
    table: Box<[u32]>,
}

impl Maglev {
    /// Builds the table for endpoints given as (stable name, weight), in index order. A table
    /// of `size` slots is used while it has at least 100 slots per endpoint; beyond that the
    /// first prime at or above `size × 2^k` that has (a ladder, so that the size changes only
    /// when N crosses a step: a new size remaps every key). 100 slots per endpoint keep balance
    /// within about 1 % and movement near the ideal (the simulation measured 6.7 × the ideal
    /// 1/N with 65 slots per endpoint).
    pub(crate) fn build<'a>(
        endpoints: impl Iterator<Item = (&'a str, u32)> + Clone,
        size: u64,
    ) -> Maglev {
        let n = endpoints.clone().count() as u64;
        if n == 0 {
            return Maglev {
                table: Box::new([]),
            };
        }
        let m = table_size(size, n);
        let max_weight = u64::from(endpoints.clone().map(|(_, w)| w).max().unwrap_or(1));
        struct Turn {
            offset: u64,
            skip: u64,
            next: u64,
            weight: u64,
            claimed: u64,
        }
        let mut turns: Vec<Turn> = endpoints
            .map(|(key, weight)| Turn {
                offset: xxh64(key.as_bytes(), 0) % m,
                skip: xxh64(key.as_bytes(), 1) % (m - 1).max(1) + 1,
                next: 0,
                weight: u64::from(weight.max(1)),
                claimed: 0,
            })
            .collect();
        // Envoy's weighted rounds: in round r an endpoint claims a slot if r × weight has
        // reached claimed × max weight, so the heaviest claims every round and one of a third
        // of its weight every third. A heap of (next round, index) visits only endpoints whose
        // turn it is, so the build is O(M log N) whatever the weights.
        let mut rounds: BinaryHeap<Reverse<(u64, u32)>> =
            (0..n as u32).map(|i| Reverse((1, i))).collect();
        let mut table = vec![u32::MAX; m as usize];
        let mut filled = 0u64;
        while filled < m {
            let Some(Reverse((round, i))) = rounds.pop() else {
                break;
            };
            let t = &mut turns[i as usize];
            // Each permutation visits every slot within M steps (skip is coprime with M).
            loop {
                let slot = ((t.offset + t.next % m * t.skip) % m) as usize;
                t.next += 1;
                if table[slot] == u32::MAX {
                    table[slot] = i;
                    break;
                }
            }
            filled += 1;
            t.claimed += 1;
            let due = (t.claimed * max_weight).div_ceil(t.weight);
            rounds.push(Reverse((due.max(round + 1), i)));
        }
        Maglev {
            table: table.into(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The slot a hash falls in (multiply-shift rather than a division).
    #[inline]
    pub(crate) fn position(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.table.len() as u128) >> 64) as usize
    }

    #[inline]
    pub(crate) fn owner(&self, position: usize) -> usize {
        self.table[position] as usize
    }
}

/// The configured size while it has 100 slots per endpoint, else the first step of the ladder
/// `next_prime(size × 2^k)` that has, up to the maximum.
fn table_size(size: u64, endpoints: u64) -> u64 {
    let want = endpoints.saturating_mul(100);
    if want <= size {
        return size;
    }
    let mut step = size;
    while step < want && step < MAX_TABLE_SIZE {
        step = step.saturating_mul(2);
    }
    next_prime(step.min(MAX_TABLE_SIZE))
}

pub(crate) fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

fn next_prime(mut n: u64) -> u64 {
    while !is_prime(n) {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(weights: &[u32], size: u64) -> Vec<usize> {
        let names: Vec<String> = (0..weights.len()).map(|i| format!("e{i}")).collect();
        let m = Maglev::build(
            names
                .iter()
                .map(String::as_str)
                .zip(weights.iter().copied()),
            size,
        );
        let mut per = vec![0; weights.len()];
        for p in 0..m.len() {
            per[m.owner(p)] += 1;
        }
        per
    }

    #[test]
    fn slots_follow_weights() {
        assert_eq!(counts(&[1, 1, 1, 1], 65_537).iter().sum::<usize>(), 65_537);
        for c in counts(&[1, 1, 1, 1], 65_537) {
            assert!((16_383..=16_385).contains(&c), "{c}");
        }
        let per = counts(&[1, 3], 65_537);
        let share = per[1] as f64 / 65_537.0;
        assert!((share - 0.75).abs() < 0.001, "{per:?}");
        // Extreme weights: the light endpoint still claims its first-round slot.
        let per = counts(&[1, u32::MAX], 65_537);
        assert_eq!(per, vec![1, 65_536]);
    }

    #[test]
    fn many_endpoints_grow_the_table() {
        let per = counts(&[1; 10_000], 65_537);
        assert!(per.iter().sum::<usize>() >= 1_000_000);
        assert!(per.iter().all(|&c| c >= 99), "{:?}", per.iter().min());
    }

    #[test]
    fn the_table_grows_in_steps() {
        assert_eq!(table_size(65_537, 100), 65_537);
        let step = table_size(65_537, 1_000);
        assert!(step >= 100_000 && is_prime(step));
        // N = 999 to 1,310 share one size: no remap when one endpoint joins or leaves.
        assert_eq!(table_size(65_537, 999), step);
        assert_eq!(table_size(65_537, 1_310), step);
        assert!(table_size(65_537, 1_000_000) <= MAX_TABLE_SIZE);
    }

    #[test]
    fn primes() {
        assert!(is_prime(65_537) && is_prime(MAX_TABLE_SIZE) && is_prime(2));
        assert!(!is_prime(65_535) && !is_prime(1) && !is_prime(0));
        assert_eq!(next_prime(100_000), 100_003);
    }
}
