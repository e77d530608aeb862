//! Section 6, gray failures: a frozen endpoint and a cold start with one slow endpoint, on a
//! virtual clock. Like section 5, callers keep one call outstanding each and start the next
//! when it ends; here a call also ends at its deadline, given up without an answer
//! (`Picker::cancel`), as a caller's client-side deadline ends it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tower_lb::{Error, PeakEwma, Picker, Policy};

use crate::fixture::picker;
use crate::table::Table;

/// A policy's name and constructor.
type Compared = (&'static str, fn() -> Policy);

/// The policies compared.
const POLICIES: [Compared; 3] = [
    (
        "p2c PeakEWMA",
        || Policy::p2c_peak_ewma(PeakEwma::default()),
    ),
    ("p2c in-flight", Policy::p2c_in_flight),
    ("least loaded", Policy::least_loaded),
];

/// One scenario: endpoints' typical latencies, callers, an optional freeze, a deadline.
#[derive(Debug, Clone, Copy)]
pub struct World {
    /// Typical latency per endpoint in µs; each call's is that × U[0.8, 1.2).
    pub latency_us: [u64; 3],
    pub callers: usize,
    /// Endpoint 0 answers nothing in `[start, end)` (ms); calls it holds are answered after.
    pub freeze_ms: Option<(u64, u64)>,
    pub deadline_ms: u64,
    pub run_ms: u64,
    pub seed: u64,
}

/// What one run counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Calls started per endpoint, in each window of the report.
    pub started: Vec<[u64; 3]>,
    /// Latencies (ns) of calls started in each window (a given-up call counts its deadline).
    pub latencies: Vec<Vec<u64>>,
    /// Calls given up at their deadline.
    pub deadline_missed: u64,
}

/// An event: (time, sequence, endpoint, start time, given up).
type Event = Reverse<(u64, u64, usize, u64, bool)>;

/// Runs `world` under `policy`, counting per window (window edges in ms, ascending).
pub fn run(policy: Policy, world: &World, windows_ms: &[u64]) -> Result<Counts, Error> {
    let mut p = picker(policy, 0..3, world.seed)?;
    let mut noise = SmallRng::seed_from_u64(world.seed ^ 0x6a7e);
    let ms = 1_000_000u64;
    let deadline = world.deadline_ms * ms;
    let window = |t: u64| windows_ms.iter().rposition(|&w| t >= w * ms);
    let mut counts = Counts {
        started: vec![[0; 3]; windows_ms.len()],
        latencies: vec![Vec::new(); windows_ms.len()],
        deadline_missed: 0,
    };
    let mut heap: BinaryHeap<Event> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut start = |p: &mut Picker, heap: &mut BinaryHeap<Event>, counts: &mut Counts, now| {
        let Some(i) = p.pick(None, Duration::from_nanos(now)) else {
            return;
        };
        p.begin(i);
        if let Some(w) = window(now) {
            counts.started[w][i] += 1;
        }
        let base = world.latency_us.get(i).copied().unwrap_or(1) as f64 * 1e3;
        let latency = (base * noise.random_range(0.8..1.2)) as u64;
        let mut answer = now + latency;
        if let Some((from, to)) = world.freeze_ms
            && i == 0
            && answer >= from * ms
            && now < to * ms
        {
            answer = to * ms + latency;
        }
        seq += 1;
        let given_up = answer > now + deadline;
        let at = if given_up { now + deadline } else { answer };
        heap.push(Reverse((at, seq, i, now, given_up)));
    };
    for _ in 0..world.callers {
        start(&mut p, &mut heap, &mut counts, 0);
    }
    while let Some(Reverse((now, _, i, began, given_up))) = heap.pop() {
        if now >= world.run_ms * ms {
            break;
        }
        let age = Duration::from_nanos(now - began);
        if given_up {
            p.cancel(i, age, Duration::from_nanos(now));
            counts.deadline_missed += 1;
        } else {
            p.end(i, age, Duration::from_nanos(now));
        }
        if let Some(w) = window(began) {
            counts.latencies[w].push(now - began);
        }
        start(&mut p, &mut heap, &mut counts, now);
    }
    for l in &mut counts.latencies {
        l.sort_unstable();
    }
    Ok(counts)
}

fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1] as f64 / 1e6
}

fn pct(part: u64, whole: u64) -> String {
    format!("{:.2} %", part as f64 * 100.0 / whole.max(1) as f64)
}

/// The frozen-endpoint world: 3 endpoints at 1 ms, 32 callers, 500 ms deadlines, endpoint 0
/// frozen from 1 s to 4 s, run to 6 s.
pub const FROZEN: World = World {
    latency_us: [1_000, 1_000, 1_000],
    callers: 32,
    freeze_ms: Some((1_000, 4_000)),
    deadline_ms: 500,
    run_ms: 6_000,
    seed: 11,
};

/// The cold-start world: a fresh picker, endpoint 0 10 ms slower than the others (0.6 ms).
pub fn cold(callers: usize) -> World {
    World {
        latency_us: [10_600, 600, 600],
        callers,
        freeze_ms: None,
        deadline_ms: 10_000,
        run_ms: 5_000,
        seed: 13,
    }
}

/// The section as markdown.
pub fn report() -> Result<String, Error> {
    // Windows: before the freeze, its first deadline, the rest of it, the second after.
    let edges = [0, 1_000, 1_500, 4_000, 5_000];
    let mut frozen = Table::new(&[
        "policy",
        "calls/s before",
        "calls/s frozen",
        "ratio",
        "to the frozen one, first 500 ms",
        "to it after, share of calls",
        "calls given up",
        "its share, 1 s after",
    ]);
    for (name, policy) in POLICIES {
        let c = run(policy(), &FROZEN, &edges)?;
        let sum = |w: usize| c.started[w].iter().sum::<u64>();
        let before = sum(0) as f64;
        let during = (sum(1) + sum(2)) as f64 / 3.0;
        frozen.row(vec![
            name.into(),
            format!("{before:.0}"),
            format!("{during:.0}"),
            format!("{:.2}", during / before.max(1.0)),
            c.started[1][0].to_string(),
            pct(c.started[2][0], sum(2)),
            c.deadline_missed.to_string(),
            pct(c.started[3][0], sum(3)),
        ]);
    }
    let mut cold_table = Table::new(&[
        "policy",
        "callers",
        "slow share, first 2 s",
        "slow share, first 100 ms",
        "p99 ms, first 5 s",
        "fast p99 ms",
        "p99 / fast p99",
    ]);
    for callers in [8, 64] {
        for (name, policy) in POLICIES {
            let world = cold(callers);
            let c = run(policy(), &world, &[0, 100, 2_000])?;
            let first2s: u64 = c.started[..2].iter().flatten().sum();
            let slow2s: u64 = c.started[..2].iter().map(|s| s[0]).sum();
            let mut lat: Vec<u64> = c.latencies.iter().flatten().copied().collect();
            lat.sort_unstable();
            let p99 = quantile_ms(&lat, 0.99);
            let fast_p99 = 0.6 * 1.2;
            cold_table.row(vec![
                name.into(),
                callers.to_string(),
                pct(slow2s, first2s),
                pct(c.started[0][0], c.started[0].iter().sum()),
                format!("{p99:.2}"),
                format!("{fast_p99:.2}"),
                format!("{:.1}", p99 / fast_p99),
            ]);
        }
    }
    Ok(format!(
        "## 6. Gray failures: a frozen endpoint, a cold start\n\n\
         Callers keep one call outstanding each; a call ends when answered or at its \
         deadline, given up without an answer (`Picker::cancel`). Each call's latency is its \
         endpoint's typical latency × U[0.8, 1.2).\n\n\
         **Frozen endpoint.** 3 endpoints at 1 ms, 32 callers, 500 ms deadlines; endpoint 0 \
         stops answering from 1 s to 4 s (calls it holds are answered after, as a stopped \
         process does), run to 6 s; seed {}. *Calls/s*: calls started per second before the \
         freeze and during it. *First 500 ms*: calls sent to the frozen endpoint before the \
         first deadline expired; *after*: its share of the calls started in the rest of the \
         freeze (target ≤ 1 %). *1 s after*: its share once it answers again.\n\n{frozen}\n\
         **Cold start.** A fresh picker over 3 endpoints, endpoint 0 at 10.6 ms and two at \
         0.6 ms (one backend 10 ms slower), run 5 s; seed {}. Targets: the slow endpoint's \
         share ≤ 1 % within the first 2 s; p99 ≤ 2 × the fast endpoints' p99 (taken as \
         their latency's upper bound, 0.72 ms).\n\n{cold_table}",
        FROZEN.seed,
        cold(8).seed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_deterministic() {
        let world = World {
            run_ms: 2_000,
            ..FROZEN
        };
        let a = run(Policy::p2c_in_flight(), &world, &[0, 1_000]).expect("valid policy");
        let b = run(Policy::p2c_in_flight(), &world, &[0, 1_000]).expect("valid policy");
        assert_eq!(a, b);
        assert!(a.deadline_missed > 0, "the freeze costs deadlines");
    }
}
