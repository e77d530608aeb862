//! Weighted random: each endpoint with probability weight / total; O(log n) per pick by binary
//! search over cumulative weights computed with the snapshot.

use rand::RngCore;

/// Cumulative weights of the ready set: `ends[i]` is the sum of weights `0..=i`.
#[derive(Debug)]
pub(crate) struct Cumulative {
    ends: Box<[u64]>,
}

impl Cumulative {
    pub(crate) fn build(weights: &[u32]) -> Self {
        let mut sum = 0u64;
        let ends = weights
            .iter()
            .map(|&w| {
                sum += u64::from(w.max(1));
                sum
            })
            .collect();
        Cumulative { ends }
    }

    #[inline]
    pub(crate) fn pick(&self, rng: &mut impl RngCore) -> Option<usize> {
        let total = *self.ends.last()?;
        let r = ((u128::from(rng.next_u64()) * u128::from(total)) >> 64) as u64;
        Some(self.ends.partition_point(|&end| end <= r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    #[test]
    fn picks_follow_weights() {
        let c = Cumulative::build(&[1, 3, 6]);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = [0u32; 3];
        for _ in 0..100_000 {
            counts[c.pick(&mut rng).unwrap()] += 1;
        }
        for (i, w) in [1.0, 3.0, 6.0].iter().enumerate() {
            let share = f64::from(counts[i]) / 100_000.0;
            assert!((share - w / 10.0).abs() < 0.01, "{counts:?}");
        }
        assert_eq!(Cumulative::build(&[]).pick(&mut rng), None);
        let big = Cumulative::build(&[u32::MAX; 3]);
        assert!(big.pick(&mut rng).unwrap() < 3);
    }
}
