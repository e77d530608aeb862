//! Every policy respects weights and only picks ready endpoints.

use std::collections::HashMap;

use tower_lb::Policy;
use tower_lb::discover::fixed;

use crate::common::*;

async fn shares(policy: Policy, weights: &[u32], calls: usize) -> Vec<usize> {
    let servers = servers(weights.len(), "w");
    let endpoints = servers
        .iter()
        .zip(weights)
        .map(|(s, &w)| endpoint(s).with_weight(w).unwrap());
    let balancer = builder().policy(policy).build(fixed(endpoints)).unwrap();
    wait_ready(&balancer, weights.len()).await;
    let mut client = Client::new(balancer);
    let mut counts = HashMap::new();
    for _ in 0..calls {
        *counts.entry(echo(&mut client).await.unwrap()).or_insert(0) += 1;
    }
    servers
        .iter()
        .map(|s| counts.get(s.name()).copied().unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn round_robin_follows_weights_exactly_over_whole_periods() {
    // One client walks the period in order: 600 calls = 100 periods of 1 + 2 + 3.
    assert_eq!(
        shares(Policy::round_robin(), &[1, 2, 3], 600).await,
        vec![100, 200, 300]
    );
}

#[tokio::test]
async fn weighted_random_follows_weights() {
    let counts = shares(Policy::weighted_random(), &[1, 3], 2000).await;
    let heavy = counts[1] as f64 / 2000.0;
    assert!((0.70..=0.80).contains(&heavy), "{counts:?}");
}

#[tokio::test]
async fn least_loaded_and_p2c_use_every_endpoint() {
    // (PeakEWMA is left out: with calls one at a time it rightly prefers whichever endpoint
    // answered fastest so far; `balancing.rs` checks it under concurrency.)
    for policy in [Policy::least_loaded(), Policy::p2c_in_flight()] {
        let counts = shares(policy.clone(), &[1, 1, 1], 300).await;
        // Sequential calls leave every endpoint at 0 in flight: ties spread at random.
        assert!(counts.iter().all(|&c| c >= 50), "{policy:?}: {counts:?}");
    }
}
