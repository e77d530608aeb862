//! Slow start: a joining endpoint's share of calls grows over the window instead of jumping
//! to its full weight.

use std::time::Duration;

use tower_lb::Policy;
use tower_lb::discover::Change;
use tower_lb::health::SlowStart;

use crate::common::*;

/// Share of `n` sequential calls that went to `name`.
async fn share(client: &mut Client, name: &str, n: usize) -> f64 {
    let mut hits = 0;
    for _ in 0..n {
        hits += usize::from(echo(client).await.unwrap() == name);
    }
    hits as f64 / n as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_endpoint_ramps_up_over_the_window() {
    let servers = servers(2, "ramp");
    let (tx, discovery) = channel_discovery();
    let window = Duration::from_secs(3);
    let balancer = builder()
        .policy(Policy::round_robin())
        .slow_start(SlowStart::new(window))
        .build(discovery)
        .unwrap();
    tx.send(Change::Insert(key(&servers[0]), endpoint(&servers[0])))
        .unwrap();
    wait_ready(&balancer, 1).await;
    tokio::time::sleep(window).await;

    tx.send(Change::Insert(key(&servers[1]), endpoint(&servers[1])))
        .unwrap();
    wait_ready(&balancer, 2).await;
    let joined = tokio::time::Instant::now();
    let mut client = Client::new(balancer.clone());
    let early = share(&mut client, "ramp-1", 100).await;
    let early_at = joined.elapsed();
    tokio::time::sleep_until(joined + window + Duration::from_millis(200)).await;
    let late = share(&mut client, "ramp-1", 100).await;

    // Equal weights: 50 % once ramped. Early on, at ramp factor f, round robin gives it
    // f / (1 + f): 9 % at the start, growing linearly. A slow machine may be well into the
    // window by the end of the first 100 calls, so the bound follows the time they took.
    let f = (early_at.as_secs_f64() / window.as_secs_f64()).clamp(0.1, 1.0);
    assert!(
        early <= f / (1.0 + f) + 0.05 && early < 0.45,
        "early share {early} after {early_at:?}"
    );
    assert!((0.45..=0.55).contains(&late), "late share {late}");
    assert!(late > early);
}
