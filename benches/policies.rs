//! Per-pick cost of every policy at N = 10 and 10,000 endpoints, through [`Picker`] — the
//! code a `Balancer` runs per call to choose an endpoint, without dispatch.
//!
//! Each iteration picks once (with a fresh key hash for hashing policies), counts the call on
//! the chosen endpoint and ends it, so load-aware policies see the same load as in a balancer
//! with one call in flight. Weights are 1 to 4 (cycling), so weighted paths are exercised.
//!
//! Run: `cargo bench --bench policies`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tower_lb::discover::Key;
use tower_lb::{HashKey, PeakEwma, Picker, Policy};

const SIZES: [usize; 2] = [10, 10_000];

fn policies() -> Vec<(&'static str, Policy)> {
    let key = HashKey::path;
    vec![
        ("p2c-peak-ewma", Policy::p2c_peak_ewma(PeakEwma::default())),
        ("p2c-in-flight", Policy::p2c_in_flight()),
        ("least-loaded", Policy::least_loaded()),
        ("round-robin", Policy::round_robin()),
        ("weighted-random", Policy::weighted_random()),
        ("ring-hash", Policy::ring_hash(key())),
        ("maglev", Policy::maglev(key())),
        (
            "ring-hash-bounded",
            Policy::ring_hash(key()).bounded_load(0.25).unwrap(),
        ),
        (
            "maglev-bounded",
            Policy::maglev(key()).bounded_load(0.25).unwrap(),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy-pick");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30);
    for n in SIZES {
        for (name, policy) in policies() {
            let endpoints = (0..n).map(|i| {
                (
                    Key::from(format!("10.0.{}.{}:80", i / 250, i % 250)),
                    1 + (i % 4) as u32,
                )
            });
            let mut picker = Picker::new(policy, endpoints, 42).expect("valid endpoints");
            let mut hash = 0x9E37_79B9_7F4A_7C15u64;
            let mut now = Duration::from_secs(1);
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    hash = hash.wrapping_mul(6364136223846793005).wrapping_add(1);
                    now += Duration::from_micros(10);
                    let i = picker.pick(black_box(Some(hash)), now).expect("endpoints");
                    picker.begin(i);
                    picker.end(i, Duration::from_millis(1), now);
                    black_box(i)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
