//! Section 1, balls into bins: n requests into n endpoints, every request held for good (the
//! classic static model). The maximum load shows how unevenly a policy spreads when it cannot
//! wait for calls to finish.

use std::time::Duration;

use tower_lb::{Error, Policy};

use crate::fixture::picker;
use crate::table::{Table, count};

/// The policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    UniformRandom,
    RoundRobin,
    P2cInFlight,
    LeastLoaded,
}

impl Spread {
    pub const ALL: [Spread; 4] = [
        Spread::UniformRandom,
        Spread::RoundRobin,
        Spread::P2cInFlight,
        Spread::LeastLoaded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Spread::UniformRandom => "uniform random",
            Spread::RoundRobin => "round robin",
            Spread::P2cInFlight => "p2c (in-flight)",
            Spread::LeastLoaded => "least loaded",
        }
    }

    fn policy(self) -> Policy {
        match self {
            // Weighted random with equal weights is uniform random.
            Spread::UniformRandom => Policy::weighted_random(),
            Spread::RoundRobin => Policy::round_robin(),
            Spread::P2cInFlight => Policy::p2c_in_flight(),
            Spread::LeastLoaded => Policy::least_loaded(),
        }
    }
}

/// Least loaded scans every endpoint per pick: n² steps, too slow beyond this n.
const LEAST_LOADED_MAX_N: usize = 10_000;

/// The load of each of `n` endpoints after `n` held requests.
pub fn loads(spread: Spread, n: usize, seed: u64) -> Result<Vec<u32>, Error> {
    let mut p = picker(spread.policy(), 0..n, seed)?;
    let mut loads = vec![0u32; n];
    for _ in 0..n {
        // Static model: a call begins and never ends, so the clock never matters.
        let Some(i) = p.pick(None, Duration::ZERO) else {
            break;
        };
        p.begin(i);
        loads[i] += 1;
    }
    Ok(loads)
}

/// The largest load after `n` held requests into `n` endpoints.
pub fn max_load(spread: Spread, n: usize, seed: u64) -> Result<u32, Error> {
    Ok(loads(spread, n, seed)?.into_iter().max().unwrap_or(0))
}

/// Leading term of the maximum load of one random choice, `ln n / ln ln n`.
fn one_choice_bound(n: usize) -> f64 {
    let ln = (n as f64).ln();
    ln / ln.ln()
}

/// Leading term of the maximum load of two random choices, `ln ln n / ln 2`.
fn two_choice_bound(n: usize) -> f64 {
    (n as f64).ln().ln() / std::f64::consts::LN_2
}

/// The section as markdown: for each n, each policy's maximum load over `seeds` (mean, and
/// range across seeds) beside the asymptotic leading terms.
pub fn report(sizes: &[usize], seeds: &[u64]) -> Result<String, Error> {
    let mut header = vec!["n"];
    header.extend(Spread::ALL.map(Spread::name));
    header.extend(["ln n / ln ln n", "ln ln n / ln 2"]);
    let mut table = Table::new(&header);
    for &n in sizes {
        let mut row = vec![count(n)];
        for spread in Spread::ALL {
            if spread == Spread::LeastLoaded && n > LEAST_LOADED_MAX_N {
                row.push("— (O(n²))".into());
                continue;
            }
            let maxima = seeds
                .iter()
                .map(|&seed| max_load(spread, n, seed))
                .collect::<Result<Vec<u32>, Error>>()?;
            row.push(summarize(&maxima));
        }
        row.push(format!("{:.2}", one_choice_bound(n)));
        row.push(format!("{:.2}", two_choice_bound(n)));
        table.row(row);
    }
    Ok(format!(
        "## 1. Balls into bins\n\n\
         n requests into n endpoints of weight 1; every request is held (`begin`, never `end`), \
         so load-aware policies see all earlier picks. Cells: maximum load over seeds {:?}: \
         mean (min–max). The last two columns are the leading terms of the known asymptotics \
         (one random choice; two random choices, Azar et al. / Mitzenmacher) — orders of \
         growth, not exact values.\n\n{table}",
        seeds
    ))
}

/// "mean (min–max)", or the single value for one seed.
fn summarize(values: &[u32]) -> String {
    let (Some(min), Some(max)) = (values.iter().min(), values.iter().max()) else {
        return "—".into();
    };
    if min == max {
        return format!("{min}");
    }
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    format!("{mean:.1} ({min}–{max})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_choices_beat_one_at_ten_thousand() {
        let random = max_load(Spread::UniformRandom, 10_000, 1).expect("valid endpoints");
        let p2c = max_load(Spread::P2cInFlight, 10_000, 1).expect("valid endpoints");
        assert!(p2c < random, "p2c {p2c} vs random {random}");
        // And it is near the two-choice leading term (3.2 at n = 10,000), not the one-choice one.
        assert!(p2c <= 4, "p2c {p2c}");
    }

    #[test]
    fn round_robin_and_least_loaded_are_perfect() {
        for seed in [1, 2] {
            assert_eq!(max_load(Spread::RoundRobin, 10_000, seed).ok(), Some(1));
        }
        assert_eq!(max_load(Spread::LeastLoaded, 1_000, 1).ok(), Some(1));
    }

    #[test]
    fn every_request_is_placed() {
        for spread in Spread::ALL {
            let loads = loads(spread, 500, 3).expect("valid endpoints");
            assert_eq!(loads.iter().sum::<u32>(), 500, "{}", spread.name());
        }
    }
}
