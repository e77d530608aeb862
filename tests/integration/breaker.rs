//! Circuit breaking on real servers: the concurrency cap sends calls elsewhere and fails fast
//! when every endpoint is full; an open circuit lets exactly one trial call through.

use std::time::Duration;

use tower_lb::discover::fixed;
use tower_lb::health::{BreakerState, CircuitBreaker, OutlierDetection};
use tower_lb::{Backoff, Policy};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_calls_go_elsewhere_and_fail_fast_when_all_are_full() {
    let servers = servers(2, "cap");
    for s in &servers {
        s.set_delay(Duration::from_millis(500));
    }
    let balancer = builder()
        .policy(Policy::round_robin())
        .ready_timeout(Duration::from_secs(5))
        .circuit_breaker(CircuitBreaker::default().max_in_flight(2))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 2).await;

    // Round robin alone would not split 4 calls 2/2 under a race; the cap does.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut client = Client::new(balancer.clone());
        slow.push(tokio::spawn(async move { echo(&mut client).await }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while servers.iter().map(|s| s.in_flight()).sum::<usize>() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls never arrived"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(servers[0].in_flight(), 2);
    assert_eq!(servers[1].in_flight(), 2);

    // Everything is full: the next call fails at once, although the ready timeout is 5 s.
    let mut client = Client::new(balancer.clone());
    let started = tokio::time::Instant::now();
    let status = echo(&mut client).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("concurrency cap"),
        "{}",
        status.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed fast, not after the wait"
    );
    for call in slow {
        call.await.unwrap().expect("calls under the cap succeed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_circuit_lets_one_trial_through_then_closes_or_reopens() {
    let servers = servers(2, "trial");
    let backoff = Backoff::default()
        .initial(Duration::from_millis(300))
        .multiplier(2.0)
        .jitter(0.0);
    let balancer = builder()
        .policy(Policy::round_robin())
        .outlier_detection(OutlierDetection::disabled())
        .circuit_breaker(CircuitBreaker::default().open_after(3).backoff(backoff))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 2).await;
    let bad = &servers[0];
    bad.set_fail_all(true);

    let mut client = Client::new(balancer.clone());
    assert_eq!(calls(&mut client, 20).await, 3);
    assert_eq!(status_of(&balancer, bad).breaker, BreakerState::Open);
    assert_eq!(bad.calls(), 3);

    // Four callers hammer the balancer until the trial has happened: exactly one call reaches
    // the open endpoint, it fails, and the circuit opens again.
    let mut load = Vec::new();
    for _ in 0..4 {
        let mut client = Client::new(balancer.clone());
        load.push(tokio::spawn(async move {
            for _ in 0..5_000 {
                let _ = echo(&mut client).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bad.calls() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "no trial call came");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(bad.calls(), 4, "a half-open circuit lets one call through");
    assert_eq!(status_of(&balancer, bad).breaker, BreakerState::Open);

    // The endpoint recovers: the next trial succeeds and closes the circuit.
    bad.set_fail_all(false);
    wait_for(&balancer, bad, "closed", |s| {
        s.breaker == BreakerState::Closed
    })
    .await;
    let before = bad.calls();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        bad.calls() > before + 1,
        "a closed circuit takes calls again"
    );
    for l in load {
        l.abort();
    }
}
