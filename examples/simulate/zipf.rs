//! Zipf-distributed key ranks, sampled by inverse transform over a precomputed CDF.
//!
//! Written here rather than taken from `rand_distr`: for a finite key set the exact CDF is a
//! few lines and one binary search per sample, and the example needs no extra dependency.

use rand::Rng;

/// P(rank k) ∝ 1 / (k + 1)^s over ranks `0..keys`; rank 0 is the hottest key.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A distribution over `keys` ranks (at least one) with exponent `s`.
    pub fn new(keys: usize, s: f64) -> Self {
        let weights: Vec<f64> = (1..=keys.max(1)).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        let mut sum = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                sum += w / total;
                sum
            })
            .collect();
        Zipf { cdf }
    }

    /// Probability of rank `k`.
    pub fn probability(&self, k: usize) -> f64 {
        let below = if k == 0 { 0.0 } else { self.cdf[k - 1] };
        self.cdf.get(k).map_or(0.0, |c| c - below)
    }

    /// A random rank.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        // The last CDF entry may round to just below 1; clamp into range.
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    #[test]
    fn frequencies_follow_the_law() {
        let zipf = Zipf::new(10_000, 1.1);
        let mut rng = SmallRng::seed_from_u64(5);
        let mut hits = [0u32; 3];
        let draws = 200_000;
        for _ in 0..draws {
            if let Some(h) = hits.get_mut(zipf.sample(&mut rng)) {
                *h += 1;
            }
        }
        for (k, &h) in hits.iter().enumerate() {
            let expected = zipf.probability(k);
            let seen = f64::from(h) / f64::from(draws);
            assert!(
                (seen - expected).abs() < 0.05 * expected,
                "rank {k}: {seen} vs {expected}"
            );
        }
        // Rank 1 is 2^1.1 times rarer than rank 0.
        let ratio = zipf.probability(0) / zipf.probability(1);
        assert!((ratio - 2f64.powf(1.1)).abs() < 1e-9);
    }
}
