//! Outlier detection on real servers that fail on command: consecutive failures eject at the
//! failing call, success rate singles out a flaky endpoint, and the ejection cap holds.

use std::time::Duration;

use tower_lb::Policy;
use tower_lb::discover::fixed;
use tower_lb::health::{Health, OutlierDetection, SuccessRate};

use crate::common::*;

/// Short ejections and intervals for tests; only consecutive failures act unless a test says.
fn quick() -> OutlierDetection {
    OutlierDetection::default()
        .base_ejection_time(Duration::from_secs(5))
        .success_rate(None)
        .failure_percentage(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_endpoint_is_ejected_at_its_fifth_failure_then_returns() {
    let servers = servers(3, "eject");
    let balancer = builder()
        .policy(Policy::round_robin())
        .outlier_detection(quick().base_ejection_time(Duration::from_secs(2)))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let bad = &servers[0];
    bad.set_fail_all(true);

    // Sequential calls: the fifth failure ejects, so exactly five calls fail.
    let mut client = Client::new(balancer.clone());
    let failed = calls(&mut client, 60).await;
    assert_eq!(failed, 5, "{:?}", status_of(&balancer, bad));
    assert_eq!(status_of(&balancer, bad).health, Health::Ejected);
    assert_eq!(bad.calls(), 5);
    assert_eq!(balancer.ready_len(), 2);

    // While ejected it gets nothing.
    let failed = calls(&mut client, 30).await;
    if status_of(&balancer, bad).health == Health::Ejected {
        assert_eq!(failed, 0);
        assert_eq!(bad.calls(), 5, "an ejected endpoint got calls");
    }

    // Healthy again: once the ejection ends it takes calls again.
    bad.set_fail_all(false);
    wait_for(&balancer, bad, "healthy", |s| s.health == Health::Healthy).await;
    wait_ready(&balancer, 3).await;
    assert_eq!(calls(&mut client, 30).await, 0);
    assert!(bad.calls() > 5, "the returned endpoint gets traffic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_rate_ejects_the_flaky_one_among_healthy_peers() {
    let servers = servers(6, "rate");
    let detector = SuccessRate::default().request_volume(20);
    let balancer = builder()
        .policy(Policy::round_robin())
        .outlier_detection(
            quick()
                .consecutive_failures(None)
                .interval(Duration::from_millis(300))
                .success_rate(Some(detector)),
        )
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 6).await;
    let flaky = &servers[2];
    flaky.set_failure_rate(0.5);

    // Load until the interval's statistics run with enough calls (bounded in count).
    let mut client = Client::new(balancer.clone());
    for _ in 0..200 {
        calls(&mut client, 30).await;
        if status_of(&balancer, flaky).health == Health::Ejected {
            break;
        }
    }
    assert_eq!(status_of(&balancer, flaky).health, Health::Ejected);
    for s in servers.iter().filter(|s| s.addr() != flaky.addr()) {
        assert_eq!(
            status_of(&balancer, s).health,
            Health::Healthy,
            "{}",
            s.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ejection_cap_holds_and_never_takes_out_every_endpoint() {
    // Half of 6 fail; the default 10 % cap lets one out.
    let six = servers(6, "cap");
    let balancer = builder()
        .policy(Policy::round_robin())
        .outlier_detection(quick().base_ejection_time(Duration::from_secs(60)))
        .build(fixed(six.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 6).await;
    for s in &six[..3] {
        s.set_fail_all(true);
    }
    let mut client = Client::new(balancer.clone());
    calls(&mut client, 120).await;
    let ejected = |b: &tower_lb::Balancer| {
        b.snapshot()
            .endpoints
            .iter()
            .filter(|s| s.health == Health::Ejected)
            .count()
    };
    assert_eq!(ejected(&balancer), 1);

    // Every endpoint failing, with a cap of 100 %: all but one go out, never all.
    let all = servers(3, "all");
    let balancer = builder()
        .policy(Policy::round_robin())
        .outlier_detection(
            quick()
                .base_ejection_time(Duration::from_secs(60))
                .max_ejection_percent(100),
        )
        .build(fixed(all.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    for s in &all {
        s.set_fail_all(true);
    }
    let mut client = Client::new(balancer.clone());
    let failed = calls(&mut client, 60).await;
    assert_eq!(failed, 60);
    assert_eq!(ejected(&balancer), 2);
    assert_eq!(balancer.ready_len(), 1, "one endpoint always stays in");
}
