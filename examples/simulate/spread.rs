//! Section 8, spread at large N: identical endpoints (every call 1 ms × U[0.5, 1.5)), 64
//! callers each keeping one call outstanding, `calls_per_endpoint × N` calls; how many calls
//! the busiest endpoint served relative to the mean. With 64 calls in flight over thousands
//! of endpoints almost every endpoint has none, so a load-aware policy has little to go on:
//! this is where a balancer's sampling noise, or a bias, shows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tower_lb::Error;

use crate::fixture::picker;
use crate::latency::Balancing;
use crate::table::{Table, count};

const CALLERS: usize = 64;

/// Calls served per endpoint.
pub fn served(balancing: Balancing, n: usize, calls: usize, seed: u64) -> Result<Vec<u64>, Error> {
    let mut p = picker(balancing.policy(), 0..n, seed)?;
    let mut noise = SmallRng::seed_from_u64(seed ^ 0x5b4e_ad00);
    let mut heap: BinaryHeap<Reverse<(u64, u64, usize, u64)>> = BinaryHeap::new();
    let mut served = vec![0u64; n];
    let (mut started, mut seq) = (0usize, 0u64);
    let mut start = |p: &mut tower_lb::Picker, heap: &mut BinaryHeap<_>, now: u64| {
        let i = p.pick(None, Duration::from_nanos(now))?;
        p.begin(i);
        let latency = (1e6 * noise.random_range(0.5..1.5)) as u64;
        seq += 1;
        heap.push(Reverse((now + latency, seq, i, now)));
        Some(())
    };
    for _ in 0..CALLERS.min(calls) {
        start(&mut p, &mut heap, 0);
        started += 1;
    }
    while let Some(Reverse((done, _, i, began))) = heap.pop() {
        p.end(
            i,
            Duration::from_nanos(done - began),
            Duration::from_nanos(done),
        );
        served[i] += 1;
        if started < calls && start(&mut p, &mut heap, done).is_some() {
            started += 1;
        }
    }
    Ok(served)
}

fn max_over_mean(served: &[u64]) -> f64 {
    let mean = served.iter().sum::<u64>() as f64 / served.len().max(1) as f64;
    *served.iter().max().unwrap_or(&0) as f64 / mean.max(f64::MIN_POSITIVE)
}

pub fn report(sizes: &[usize], calls_per_endpoint: usize) -> Result<String, Error> {
    let policies = [
        Balancing::P2cPeakEwma,
        Balancing::P2cInFlight,
        Balancing::RoundRobin,
        Balancing::Random,
    ];
    let mut header = vec!["endpoints".to_string(), "calls".to_string()];
    header.extend(policies.iter().map(|b| b.name().to_string()));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header);
    for &n in sizes {
        let calls = n * calls_per_endpoint;
        let mut row = vec![count(n), count(calls)];
        for b in policies {
            row.push(format!("{:.2}", max_over_mean(&served(b, n, calls, 5)?)));
        }
        table.row(row);
    }
    Ok(format!(
        "## 8. Spread at large N\n\nIdentical endpoints (each call 1 ms × U[0.5, 1.5)), \
         {CALLERS} callers with one call outstanding each, {calls_per_endpoint} calls per \
         endpoint on average; cells: calls served by the busiest endpoint ÷ the mean (seed \
         5).\n\n{table}\nReading: with 64 calls in flight over thousands of endpoints, \
         almost every candidate has none, so p2c in flight picks at random between two idle \
         endpoints and spreads like one random choice. p2c over PeakEWMA takes two \
         candidates whose costs are within 10 % of each other as alike and sends the call to \
         the one that answered least recently, which evens the counts out like a round robin \
         would; before that rule it spread wider than random (1.62 at 10,000): with few \
         samples an estimate is mostly its endpoint's last answers, noise included, and the \
         endpoint whose answers happened to be lucky won every comparison until it answered \
         slower. Costs further apart than the band (a slower endpoint, calls in flight, a \
         stall) decide as before (section 6). Round robin is \
         exact by construction.\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_is_even_and_the_load_aware_policies_stay_near_or_below_random() {
        let (n, calls) = (1_000, 50_000);
        let rr = max_over_mean(&served(Balancing::RoundRobin, n, calls, 5).unwrap());
        let random = max_over_mean(&served(Balancing::Random, n, calls, 5).unwrap());
        let in_flight = max_over_mean(&served(Balancing::P2cInFlight, n, calls, 5).unwrap());
        let ewma = max_over_mean(&served(Balancing::P2cPeakEwma, n, calls, 5).unwrap());
        assert!(rr <= 1.05, "{rr}");
        assert!(in_flight <= random * 1.15, "{in_flight} vs {random}");
        // Alike costs go to the endpoint that answered least recently: more even than random.
        assert!(ewma <= random, "{ewma} vs {random}");
    }
}
