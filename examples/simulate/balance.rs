//! Section 3, ring and Maglev balance: how close each endpoint's share of keys is to its
//! weight's share. Measured twice: on an even grid over the hash space (the table's own
//! balance) and on random keys (what a service sees, with the keys' own sampling noise).

use std::time::Duration;

use tower_lb::{Error, HashKey, Policy};

use crate::fixture::{hash_grid, request_hashes, weighted_picker};
use crate::table::{Table, count};

/// How keys are laid out over endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `hash % N`: exact equal shares; shows the sampling noise of the keys alone.
    Modulo,
    /// Ring hash of the default size (at least 1,024 points).
    Ring,
    /// Ring hash of at least 65,536 points.
    LargeRing,
    /// Maglev with the default table (65,537 slots).
    Maglev,
}

impl Layout {
    pub const ALL: [Layout; 4] = [
        Layout::Modulo,
        Layout::Ring,
        Layout::LargeRing,
        Layout::Maglev,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Modulo => "modulo (equal shares)",
            Layout::Ring => "ring (default, ≥ 1,024 points)",
            Layout::LargeRing => "ring (≥ 65,536 points)",
            Layout::Maglev => "Maglev (65,537 slots)",
        }
    }

    fn policy(self) -> Result<Option<Policy>, Error> {
        Ok(match self {
            Layout::Modulo => None,
            Layout::Ring => Some(Policy::ring_hash(HashKey::path())),
            Layout::LargeRing => {
                Some(Policy::ring_hash(HashKey::path()).ring_size(65_536, 8_388_608)?)
            }
            Layout::Maglev => Some(Policy::maglev(HashKey::path()).table_size(65_537)?),
        })
    }
}

/// Keys per endpoint (endpoint `i` has weight `weights[i]`). Modulo ignores weights.
pub fn counts(layout: Layout, weights: &[u32], hashes: &[u64]) -> Result<Vec<u64>, Error> {
    let mut counts = vec![0u64; weights.len()];
    let Some(policy) = layout.policy()? else {
        for h in hashes {
            if let Some(c) = h
                .checked_rem(counts.len() as u64)
                .and_then(|i| counts.get_mut(i as usize))
            {
                *c += 1;
            }
        }
        return Ok(counts);
    };
    let mut p = weighted_picker(policy, weights.iter().copied().enumerate(), 0)?;
    for &h in hashes {
        if let Some(c) = p
            .pick(Some(h), Duration::ZERO)
            .and_then(|i| counts.get_mut(i))
        {
            *c += 1;
        }
    }
    Ok(counts)
}

/// Each endpoint's share of the keys divided by its share of the weight (1 = exact).
pub fn share_ratios(counts: &[u64], weights: &[u32]) -> Vec<f64> {
    let keys = counts.iter().sum::<u64>().max(1) as f64;
    let weight = weights.iter().map(|&w| u64::from(w)).sum::<u64>().max(1) as f64;
    counts
        .iter()
        .zip(weights)
        .map(|(&c, &w)| (c as f64 / keys) / (f64::from(w) / weight))
        .collect()
}

/// Smallest and largest value.
pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Weights of `n` endpoints, first half 1, second half 3.
pub fn mixed_weights(n: usize) -> Vec<u32> {
    (0..n).map(|i| if i < n / 2 { 1 } else { 3 }).collect()
}

/// What the section measured, for the report and the plot.
pub struct Balance {
    pub text: String,
    /// Share ratios per endpoint on the hash-space grid, equal weights, per layout.
    pub grid_ratios: Vec<(Layout, Vec<f64>)>,
}

/// The section: `n` endpoints, `keys` random keys and as many grid points.
pub fn report(n: usize, keys: usize) -> Result<Balance, Error> {
    let grid = hash_grid(keys);
    let random = request_hashes(keys);
    let equal = vec![1u32; n];
    let mut table = Table::new(&[
        "layout",
        "hash space max/mean",
        "hash space min/mean",
        "random keys max/mean",
        "random keys min/mean",
    ]);
    let mut grid_ratios = Vec::new();
    for layout in Layout::ALL {
        let on_grid = share_ratios(&counts(layout, &equal, &grid)?, &equal);
        let on_keys = share_ratios(&counts(layout, &equal, &random)?, &equal);
        let ((glo, ghi), (klo, khi)) = (min_max(&on_grid), min_max(&on_keys));
        table.row(vec![
            layout.name().into(),
            format!("{ghi:.3}"),
            format!("{glo:.3}"),
            format!("{khi:.3}"),
            format!("{klo:.3}"),
        ]);
        grid_ratios.push((layout, on_grid));
    }
    let weights = mixed_weights(n);
    let mut weighted = Table::new(&[
        "layout",
        "weight 1: min–max share/expected",
        "weight 3: min–max share/expected",
    ]);
    for layout in [Layout::Ring, Layout::LargeRing, Layout::Maglev] {
        let ratios = share_ratios(&counts(layout, &weights, &grid)?, &weights);
        let (light, heavy) = ratios.split_at(n / 2);
        let ((llo, lhi), (hlo, hhi)) = (min_max(light), min_max(heavy));
        weighted.row(vec![
            layout.name().into(),
            format!("{llo:.3} – {lhi:.3}"),
            format!("{hlo:.3} – {hhi:.3}"),
        ]);
    }
    let text = format!(
        "## 3. Ring and Maglev balance\n\n\
         N = {n} endpoints. *Hash space*: {keys} hashes spread evenly over the 64-bit space, \
         so an endpoint's count is its share of the hash space (the table's own balance). \
         *Random keys*: {keys} keys `key-<k>`; even exact shares show sampling noise here \
         (see the modulo row: about ±3 standard deviations of √(keys/N)).\n\n\
         Equal weights, keys per endpoint relative to the mean:\n\n{table}\n\
         Weights: half the endpoints weight 1, half weight 3 (hash space; expected share \
         w / {}):\n\n{weighted}\n\
         Reading: the default ring gives the lightest endpoint 128 points (more below 8 \
         endpoints, so the ring has at least 1,024) — an endpoint's share varies by about \
         1/√(its points), 9 % here, so the busiest is about 1.2 × the mean. A ring of at least \
         65,536 points (655 per endpoint here) is within about 3 %. Maglev's table is within one slot of \
         each endpoint's share, so on random keys it is as good as exact shares (the modulo \
         row).\n",
        weights.iter().sum::<u32>(),
        keys = count(keys),
    );
    Ok(Balance { text, grid_ratios })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maglev_balances_within_five_percent_at_one_hundred() {
        let equal = vec![1u32; 100];
        let grid = hash_grid(262_144);
        let ratios = share_ratios(
            &counts(Layout::Maglev, &equal, &grid).expect("valid"),
            &equal,
        );
        let (lo, hi) = min_max(&ratios);
        assert!(
            hi <= 1.05 && lo >= 0.95,
            "Maglev max/mean {hi}, min/mean {lo}"
        );
    }

    #[test]
    fn maglev_follows_weights() {
        let weights = mixed_weights(100);
        let grid = hash_grid(262_144);
        let ratios = share_ratios(
            &counts(Layout::Maglev, &weights, &grid).expect("valid"),
            &weights,
        );
        let (lo, hi) = min_max(&ratios);
        assert!(
            hi <= 1.05 && lo >= 0.95,
            "weighted Maglev share/expected {lo}..{hi}"
        );
    }

    #[test]
    fn share_ratio_of_exact_shares_is_one() {
        assert_eq!(share_ratios(&[10, 30], &[1, 3]), [1.0, 1.0]);
        assert_eq!(min_max(&[0.5, 2.0, 1.0]), (0.5, 2.0));
    }
}
