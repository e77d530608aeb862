//! Traffic spreads over all ready endpoints, and PeakEWMA steers it away from a slow one.

use std::collections::HashMap;
use std::time::Duration;

use tower_lb::discover::fixed;
use tower_lb::{PeakEwma, Policy};

use crate::common::*;

/// Runs `total` calls from `concurrency` workers; returns calls per server name.
async fn drive(client: &Client, concurrency: usize, total: usize) -> HashMap<String, usize> {
    let per_worker = total / concurrency;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let mut client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                seen.push(echo(&mut client).await.expect("call succeeds"));
            }
            seen
        }));
    }
    let mut counts = HashMap::new();
    for w in workers {
        for name in w.await.expect("worker") {
            *counts.entry(name).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_spreads_over_every_ready_endpoint() {
    let servers = servers(3, "spread");
    for s in &servers {
        s.set_delay(Duration::from_millis(1));
    }
    for policy in [Policy::p2c_in_flight(), Policy::default()] {
        let balancer = builder()
            .policy(policy.clone())
            .build(fixed(servers.iter().map(endpoint)))
            .unwrap();
        wait_ready(&balancer, 3).await;
        let counts = drive(&Client::new(balancer), 8, 600).await;
        for s in &servers {
            let n = counts.get(s.name()).copied().unwrap_or(0);
            // A fair share is 200; p2c keeps every endpoint well above a third of that.
            assert!(
                n >= 60,
                "{policy:?}: {} got {n} of 600: {counts:?}",
                s.name()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_ewma_gives_a_slow_endpoint_a_clearly_smaller_share() {
    let servers = servers(3, "ewma");
    servers[0].set_delay(Duration::from_millis(20));
    servers[1].set_delay(Duration::from_millis(2));
    servers[2].set_delay(Duration::from_millis(2));
    let balancer = builder()
        .policy(Policy::p2c_peak_ewma(
            PeakEwma::default().default_rtt(Duration::from_millis(1)),
        ))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let counts = drive(&Client::new(balancer), 6, 900).await;
    let slow = counts.get("ewma-0").copied().unwrap_or(0) as f64;
    let fast = (counts.get("ewma-1").copied().unwrap_or(0)
        + counts.get("ewma-2").copied().unwrap_or(0)) as f64
        / 2.0;
    // 10x slower: an even spread would give it a third; PeakEWMA should give it well under
    // half of what a fast endpoint gets.
    assert!(
        slow < 0.5 * fast,
        "slow {slow} vs fast average {fast}: {counts:?}"
    );
    assert!(slow > 0.0, "the slow endpoint is still probed: {counts:?}");
}
