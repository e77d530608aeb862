//! Least request over `k` random choices (gRPC A48's `least_request_experimental` with
//! `choiceCount` above 2): `k` distinct random endpoints, the one with the fewest requests in
//! flight per unit of weight wins. Two choices are p2c over in-flight (`p2c.rs`), which keeps
//! its own hot path; this one serves 3 ..= 10.
//!
//! The `k` distinct indices are drawn with Floyd's algorithm into an array on the stack: `k`
//! random numbers and at most `k²/2` comparisons, no allocation. With `n <= k` every endpoint
//! is a candidate. The comparison starts at a random candidate, so ties spread evenly.

use rand::RngCore;

use super::candidate::{fallback, index};
use super::least_loaded;
use crate::endpoint::{EndpointState, ReadyEndpoint};
use crate::transport::EndpointChannel;

/// The most choices (A48 clamps `choiceCount` to 10).
pub(crate) const MAX_CHOICES: u8 = 10;

/// Picks the least loaded usable endpoint of `choices` distinct random ones; if none of them is
/// usable, goes on from the last one. `None` only when no endpoint is ready.
#[inline]
pub(crate) fn pick<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    choices: u8,
    now: Option<u64>,
    avoid: Option<&EndpointState>,
    rng: &mut impl RngCore,
) -> Option<usize> {
    let n = endpoints.len();
    if n == 0 {
        return None;
    }
    let mut chosen = [0usize; MAX_CHOICES as usize];
    let picked = draw(n, usize::from(choices), rng, &mut chosen);
    let candidates = &chosen[..picked];
    // Floyd's set is uniform but its order is not (the first is always below n - k + 1): start
    // the comparison at a random candidate so ties spread evenly.
    let start = index(rng, picked);
    let rotated = (0..picked).map(|step| candidates[(start + step) % picked]);
    least_loaded::least(endpoints, rotated, now, avoid)
        .or_else(|| fallback(endpoints, avoid, candidates[picked - 1]))
}

/// Draws `min(k, n)` distinct indices below `n` into `chosen` (`k` clamped to 1 ..=
/// `MAX_CHOICES`); returns how many.
#[inline]
fn draw(
    n: usize,
    k: usize,
    rng: &mut impl RngCore,
    chosen: &mut [usize; MAX_CHOICES as usize],
) -> usize {
    let k = k.clamp(1, usize::from(MAX_CHOICES));
    if n <= k {
        for (i, slot) in chosen.iter_mut().take(n).enumerate() {
            *slot = i;
        }
        return n;
    }
    // Floyd: for j in n-k .. n, draw t in 0..=j; take t unless taken, else j.
    for (filled, j) in (n - k..n).enumerate() {
        let t = index(rng, j + 1);
        chosen[filled] = if chosen[..filled].contains(&t) { j } else { t };
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn drawn(n: usize, k: usize, rng: &mut SmallRng) -> Vec<usize> {
        let mut chosen = [0usize; MAX_CHOICES as usize];
        let m = draw(n, k, rng, &mut chosen);
        chosen[..m].to_vec()
    }

    #[test]
    fn floyd_draws_distinct_uniform_indices() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut counts = [0u32; 12];
        for _ in 0..60_000 {
            let mut d = drawn(12, 5, &mut rng);
            for &i in &d {
                counts[i] += 1;
            }
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), 5, "distinct");
        }
        // Each index is chosen with probability 5/12: 25,000 times, ± a few %.
        for c in counts {
            assert!((23_500..26_500).contains(&c), "{counts:?}");
        }
        // Fewer endpoints than choices: every one, once.
        let mut all = drawn(3, 10, &mut rng);
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2]);
        assert_eq!(drawn(1, 3, &mut rng), vec![0]);
    }

    #[test]
    fn picks_the_least_loaded_candidate() {
        use crate::{Picker, Policy, discover::Key};
        use std::time::Duration;
        let keys = (0..10).map(|i| (Key::from(format!("k{i}")), 1));
        // Ten choices of ten endpoints: every pick sees them all.
        let mut picker = Picker::new(Policy::least_request(10).unwrap(), keys.clone(), 5).unwrap();
        for i in 0..10 {
            if i != 7 {
                picker.begin(i);
            }
        }
        for _ in 0..50 {
            assert_eq!(picker.pick(None, Duration::ZERO), Some(7));
        }
        // Three choices: never the busiest, unless all three are busiest-equal (they are not).
        let mut picker = Picker::new(Policy::least_request(3).unwrap(), keys, 5).unwrap();
        for _ in 0..5 {
            picker.begin(0);
        }
        let mut seen = [0u32; 10];
        for _ in 0..3000 {
            seen[picker.pick(None, Duration::ZERO).unwrap()] += 1;
        }
        assert_eq!(
            seen[0], 0,
            "the loaded endpoint is never the least of three: {seen:?}"
        );
        assert!(seen[1..].iter().all(|&c| c > 200), "ties spread: {seen:?}");
    }
}
