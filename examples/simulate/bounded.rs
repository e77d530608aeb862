//! Section 4, bounded loads under a skewed key distribution: a few hot keys would pile their
//! calls onto their home endpoints; with bounded loads no endpoint holds more than
//! ⌈(1 + ε) × average⌉ calls, the overflow walking on to the next endpoint with room.

use std::collections::VecDeque;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tower_lb::{Error, HashKey, Picker, Policy};

use crate::fixture::{picker, request_hash};
use crate::table::{Table, count, percent};
use crate::zipf::Zipf;

/// The workload: calls with Zipf-distributed keys, a fixed number kept in flight.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub endpoints: usize,
    pub keys: usize,
    pub zipf_s: f64,
    /// Calls in flight: each arrival ends the oldest call, then picks.
    pub window: usize,
    /// Arrivals after the window first fills (the measured part).
    pub arrivals: usize,
    pub epsilon: f64,
    pub seed: u64,
}

impl Workload {
    /// ⌈(1 + ε) × calls in flight / endpoints⌉: the most any endpoint may hold when bounded.
    pub fn bound(&self) -> u32 {
        let average = self.window as f64 / self.endpoints.max(1) as f64;
        ((1.0 + self.epsilon) * average).ceil() as u32
    }
}

/// The hashing policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    Ring,
    BoundedRing,
    Maglev,
    BoundedMaglev,
}

impl Hashing {
    pub const ALL: [Hashing; 4] = [
        Hashing::Ring,
        Hashing::BoundedRing,
        Hashing::Maglev,
        Hashing::BoundedMaglev,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hashing::Ring => "ring",
            Hashing::BoundedRing => "ring + bounded",
            Hashing::Maglev => "Maglev",
            Hashing::BoundedMaglev => "Maglev + bounded",
        }
    }

    /// The plain table under the policy: where a key goes with nothing in the way.
    fn plain(self) -> Hashing {
        match self {
            Hashing::Ring | Hashing::BoundedRing => Hashing::Ring,
            Hashing::Maglev | Hashing::BoundedMaglev => Hashing::Maglev,
        }
    }

    fn policy(self, epsilon: f64) -> Result<Policy, Error> {
        let ring = || Policy::ring_hash(HashKey::path());
        let maglev = || Policy::maglev(HashKey::path());
        match self {
            Hashing::Ring => Ok(ring()),
            Hashing::BoundedRing => ring().bounded_load(epsilon),
            Hashing::Maglev => Ok(maglev()),
            Hashing::BoundedMaglev => maglev().bounded_load(epsilon),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per endpoint, the most calls it held at once during the measured arrivals.
    pub peak_in_flight: Vec<u32>,
    /// Share of measured calls that did not go to their key's home in the plain table.
    pub spilled: f64,
    /// Share of measured calls on the busiest endpoint.
    pub busiest_share: f64,
}

/// Runs the sliding window: each arrival ends the oldest call in flight, picks by its key's
/// hash and begins; peaks are read after each begin.
pub fn run(hashing: Hashing, w: &Workload) -> Result<Outcome, Error> {
    let ids = 0..w.endpoints;
    let mut p = picker(hashing.policy(w.epsilon)?, ids.clone(), w.seed)?;
    let home = homes(
        &mut picker(hashing.plain().policy(w.epsilon)?, ids, w.seed)?,
        w.keys,
    );
    let zipf = Zipf::new(w.keys, w.zipf_s);
    let mut rng = SmallRng::seed_from_u64(w.seed);
    let mut window: VecDeque<usize> = VecDeque::with_capacity(w.window);
    let mut peak = vec![0u32; w.endpoints];
    let mut calls = vec![0u64; w.endpoints];
    let mut spilled = 0u64;
    for arrival in 0..w.window + w.arrivals {
        if window.len() >= w.window
            && let Some(oldest) = window.pop_front()
        {
            p.end(oldest, Duration::ZERO, Duration::ZERO);
        }
        let key = zipf.sample(&mut rng);
        let Some(i) = p.pick(home.hash(key), Duration::ZERO) else {
            break;
        };
        p.begin(i);
        window.push_back(i);
        if arrival < w.window {
            continue; // filling the window
        }
        peak[i] = peak[i].max(p.in_flight(i));
        calls[i] += 1;
        spilled += u64::from(home.endpoint(key) != Some(i));
    }
    let measured = calls.iter().sum::<u64>().max(1) as f64;
    Ok(Outcome {
        peak_in_flight: peak,
        spilled: spilled as f64 / measured,
        busiest_share: calls.iter().copied().max().unwrap_or(0) as f64 / measured,
    })
}

/// Each key's hash and its endpoint in the plain table.
struct Homes {
    hashes: Vec<u64>,
    endpoints: Vec<Option<usize>>,
}

impl Homes {
    fn hash(&self, key: usize) -> Option<u64> {
        self.hashes.get(key).copied()
    }

    fn endpoint(&self, key: usize) -> Option<usize> {
        self.endpoints.get(key).copied().flatten()
    }
}

fn homes(plain: &mut Picker, keys: usize) -> Homes {
    let hashes: Vec<u64> = (0..keys).map(request_hash).collect();
    let endpoints = hashes
        .iter()
        .map(|&h| plain.pick(Some(h), Duration::ZERO))
        .collect();
    Homes { hashes, endpoints }
}

/// What the section measured, for the report and the plot.
pub struct Bounded {
    pub text: String,
    pub outcomes: Vec<(Hashing, Outcome)>,
    pub bound: u32,
}

/// The section as markdown.
pub fn report(w: &Workload) -> Result<Bounded, Error> {
    let zipf = Zipf::new(w.keys, w.zipf_s);
    let mut table = Table::new(&[
        "policy",
        "max in flight (any endpoint)",
        "bound ⌈(1+ε)·avg⌉",
        "within bound",
        "busiest endpoint's share of calls",
        "calls off their home endpoint",
    ]);
    let mut outcomes = Vec::new();
    for hashing in Hashing::ALL {
        let o = run(hashing, w)?;
        let max = o.peak_in_flight.iter().copied().max().unwrap_or(0);
        table.row(vec![
            hashing.name().into(),
            format!("{max}"),
            format!("{}", w.bound()),
            if max <= w.bound() { "yes" } else { "no" }.into(),
            percent(o.busiest_share),
            percent(o.spilled),
        ]);
        outcomes.push((hashing, o));
    }
    let text = format!(
        "## 4. Bounded loads under Zipf keys\n\n\
         {} endpoints (weight 1), {} keys with Zipf popularity (s = {}; the hottest key draws \
         {} of calls, the top 10 {}). A sliding window keeps {} calls in flight: each arrival \
         ends the oldest call, then picks by its key and begins. {} arrivals measured after \
         the window fills; seed {}. Bounded: ε = {}, so the bound is ⌈{} × {}⌉ = {}. \
         *Off their home*: calls not sent where the plain table would send their key (the \
         price of the bound in cache locality).\n\n{table}\n\
         Reading: the hottest key alone would keep about {} calls in flight on its home \
         endpoint; plain tables send all of them there. Bounded loads hold every endpoint at \
         the bound and send the overflow on along the table.\n",
        w.endpoints,
        count(w.keys),
        w.zipf_s,
        percent(zipf.probability(0)),
        percent((0..10).map(|k| zipf.probability(k)).sum()),
        count(w.window),
        count(w.arrivals),
        w.seed,
        w.epsilon,
        1.0 + w.epsilon,
        w.window as f64 / w.endpoints as f64,
        w.bound(),
        (zipf.probability(0) * w.window as f64).round(),
    );
    Ok(Bounded {
        text,
        outcomes,
        bound: w.bound(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            endpoints: 20,
            keys: 10_000,
            zipf_s: 1.1,
            window: 1_000,
            arrivals: 20_000,
            epsilon: 0.25,
            seed: 7,
        }
    }

    fn max_in_flight(hashing: Hashing) -> u32 {
        let o = run(hashing, &workload()).expect("valid policy");
        o.peak_in_flight.into_iter().max().unwrap_or(0)
    }

    #[test]
    fn bounded_loads_stay_within_the_bound_and_plain_tables_do_not() {
        let bound = workload().bound();
        assert_eq!(bound, 63);
        for hashing in [Hashing::BoundedRing, Hashing::BoundedMaglev] {
            let max = max_in_flight(hashing);
            assert!(max <= bound, "{}: {max} > {bound}", hashing.name());
        }
        for hashing in [Hashing::Ring, Hashing::Maglev] {
            let max = max_in_flight(hashing);
            assert!(max > bound, "{}: {max} <= {bound}", hashing.name());
        }
    }

    #[test]
    fn plain_tables_never_spill() {
        let o = run(Hashing::Ring, &workload()).expect("valid policy");
        assert_eq!(o.spilled, 0.0);
    }
}
