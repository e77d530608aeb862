//! Smooth weighted round robin, precomputed.
//!
//! nginx's smooth WRR interleaves endpoints so that shares follow weights with no bursts
//! (weights 5:1:1 give `a a b a c a a`, not `a a a a a b c`). We compute one period of such a
//! sequence when the snapshot is built — nginx's exact sequence while that is cheap, and for
//! very large sets an earliest-deadline-first order with the same shares — and each balancer
//! clone walks it with its own cursor: a pick is an array read and a cursor bump, O(1), with no shared counter to contend on.
//!
//! Weights are divided by their greatest common divisor; if one period would still be longer
//! than [`MAX_PERIOD`] entries they are scaled down proportionally (every endpoint keeps at
//! least one slot), so shares follow weights to within one slot in `MAX_PERIOD`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The longest precomputed period (or the number of endpoints, if larger).
pub(crate) const MAX_PERIOD: u64 = 1 << 16;

/// One period of the smooth weighted order, as indices into the ready set.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// The order; empty when it is the endpoints themselves in order (equal weights), which
    /// needs no table: with 100,000 endpoints writing one out cost about a millisecond on
    /// every publish.
    order: Box<[u32]>,
    period: usize,
}

impl Schedule {
    /// Endpoints `0..n` in turn: nginx's sequence for equal weights, in O(1).
    pub(crate) fn in_order(n: usize) -> Self {
        Schedule {
            order: Box::new([]),
            period: n,
        }
    }

    pub(crate) fn build(weights: &[u32]) -> Self {
        let n = weights.len();
        if n == 0 || weights.iter().all(|&w| w == weights[0]) {
            return Schedule::in_order(n);
        }
        let g = weights.iter().copied().fold(0u32, gcd).max(1);
        let mut w: Vec<u64> = weights.iter().map(|&x| u64::from((x / g).max(1))).collect();
        let total: u64 = w.iter().sum();
        let limit = MAX_PERIOD.max(n as u64);
        if total > limit {
            for x in &mut w {
                *x = ((*x as u128 * limit as u128) / total as u128).max(1) as u64;
            }
        }
        let period: u64 = w.iter().sum();
        let order = if period == n as u64 {
            // Every weight scaled down to one slot.
            return Schedule::in_order(n);
        } else if period.saturating_mul(n as u64) <= NGINX_BUDGET {
            nginx_order(&w, period)
        } else {
            deadline_order(&w, period)
        };
        Schedule {
            period: order.len(),
            order: order.into_boxed_slice(),
        }
    }

    /// The endpoint at `cursor` (taken modulo the period), or `None` for an empty schedule.
    #[inline]
    pub(crate) fn at(&self, cursor: usize) -> Option<usize> {
        if self.period == 0 {
            return None;
        }
        let i = cursor % self.period;
        Some(match self.order.get(i) {
            Some(&at) => at as usize,
            None => i,
        })
    }

    #[cfg(test)]
    pub(crate) fn period(&self) -> usize {
        self.period
    }
}

/// Up to this many steps (period × endpoints) the exact nginx sequence is computed: about
/// 0.1 ms, since the schedule is rebuilt with every published change.
const NGINX_BUDGET: u64 = 1 << 16;

/// nginx's smooth weighted round robin: every step each endpoint gains its weight, the richest
/// is picked and pays the total. O(period × n).
fn nginx_order(w: &[u64], period: u64) -> Vec<u32> {
    let total = period as i128;
    let mut current = vec![0i128; w.len()];
    let mut order = Vec::with_capacity(period as usize);
    for _ in 0..period {
        let mut best = 0;
        for (i, c) in current.iter_mut().enumerate() {
            *c += i128::from(w[i]);
        }
        for i in 1..w.len() {
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(best as u32);
    }
    order
}

/// For large sets, earliest deadline first over virtual finish times `(k - ½) / weight`:
/// the same shares, nearly as smooth, in O(period × log n).
fn deadline_order(w: &[u64], period: u64) -> Vec<u32> {
    let mut heap: BinaryHeap<Reverse<Slot>> = (0..w.len())
        .map(|i| {
            Reverse(Slot {
                k: 1,
                w: w[i],
                i: i as u32,
            })
        })
        .collect();
    let mut order = Vec::with_capacity(period as usize);
    for _ in 0..period {
        let Some(Reverse(slot)) = heap.pop() else {
            break;
        };
        order.push(slot.i);
        heap.push(Reverse(Slot {
            k: slot.k + 1,
            ..slot
        }));
    }
    order
}

/// The k-th slot of endpoint i, due at (2k - 1) / 2w.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    k: u64,
    w: u64,
    i: u32,
}

impl Ord for Slot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // (2k1 - 1) / w1 vs (2k2 - 1) / w2, exactly.
        ((2 * self.k - 1) as u128 * other.w as u128)
            .cmp(&((2 * other.k - 1) as u128 * self.w as u128))
            .then(self.i.cmp(&other.i))
    }
}

impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(weights: &[u32]) -> Vec<usize> {
        let s = Schedule::build(weights);
        (0..s.period()).filter_map(|c| s.at(c)).collect()
    }

    #[test]
    fn shares_follow_weights_without_bursts() {
        let s = seq(&[5, 1, 1]);
        assert_eq!(s, vec![0, 0, 1, 0, 2, 0, 0], "nginx's sequence");
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 5);
        // Never more than two of the heavy endpoint in a row within the period.
        assert!(!s.windows(3).any(|w| w.iter().all(|&i| i == 0)), "{s:?}");
        assert_eq!(seq(&[2, 2, 2]), vec![0, 1, 2]);
    }

    #[test]
    fn huge_and_extreme_weights_stay_bounded() {
        let s = Schedule::build(&[u32::MAX, 1, u32::MAX - 1]);
        assert!(s.period() as u64 <= MAX_PERIOD + 3);
        let counts = (0..s.period()).fold([0usize; 3], |mut c, i| {
            c[s.at(i).unwrap()] += 1;
            c
        });
        assert!(counts[1] >= 1, "every endpoint keeps a slot: {counts:?}");
        assert!(Schedule::build(&[]).at(0).is_none());
        let many = Schedule::build(&vec![1; 100_000]);
        assert_eq!(many.period(), 100_000);
        // The large-set order keeps the shares.
        let w = [5u64, 1, 1];
        let d = deadline_order(&w, 7);
        assert_eq!(d.iter().filter(|&&i| i == 0).count(), 5);
    }
}
