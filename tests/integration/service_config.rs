//! gRPC service configs on real servers: pick first stays on one backend and moves when it
//! dies (and stays moved when it returns), least request with three choices, and an A50
//! outlier detection config ejecting a failing backend.

use std::time::Duration;

use tower_lb::discover::fixed;
use tower_lb::health::Health;
use tower_lb::service_config::ServiceConfig;
use tower_lb_testkit::TestServer;

use crate::common::*;

fn config(json: &str) -> ServiceConfig {
    ServiceConfig::from_json(json).expect("valid service config")
}

/// The only server with calls beyond `before` (its index), if exactly one has them.
fn only_busy(servers: &[TestServer], before: &[u64]) -> Option<usize> {
    let busy: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].calls() > before[i])
        .collect();
    match busy[..] {
        [i] => Some(i),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_first_sends_every_call_to_one_backend_and_moves_when_it_dies() {
    let mut servers = servers(3, "first");
    let balancer = builder()
        .service_config(&config(
            r#"{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}]}"#,
        ))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let mut client = Client::new(balancer.clone());
    assert_eq!(calls(&mut client, 30).await, 0);
    let zero = vec![0; 3];
    let first = only_busy(&servers, &zero).expect("every call on one backend");
    assert_eq!(servers[first].calls(), 30);

    // Kill it: calls move to one other backend (a call racing the close may fail).
    let addr = servers[first].addr();
    let name = servers[first].name().to_owned();
    servers.remove(first).kill();
    wait_ready(&balancer, 2).await;
    let before: Vec<u64> = servers.iter().map(|s| s.calls()).collect();
    assert!(calls(&mut client, 30).await <= 1);
    let second = only_busy(&servers, &before).expect("every call on one other backend");
    assert!(servers[second].calls() - before[second] >= 29);

    // The first one returns: calls stay where they are.
    servers.push(TestServer::start_on(&name, addr).expect("restart on the same port"));
    wait_ready(&balancer, 3).await;
    let before: Vec<u64> = servers.iter().map(|s| s.calls()).collect();
    assert_eq!(calls(&mut client, 30).await, 0);
    assert_eq!(
        only_busy(&servers, &before),
        Some(second),
        "pick first is sticky"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_with_three_choices_avoids_a_slow_backend() {
    let servers = servers(5, "least");
    servers[0].set_delay(Duration::from_millis(200));
    let balancer = builder()
        .service_config(&config(
            r#"{"loadBalancingConfig": [{"least_request_experimental": {"choiceCount": 3}}]}"#,
        ))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 5).await;
    let callers = (0..16).map(|_| {
        let mut client = Client::new(balancer.clone());
        tokio::spawn(async move { calls(&mut client, 15).await })
    });
    for failed in futures::future::join_all(callers).await {
        assert_eq!(failed.unwrap(), 0);
    }
    let counts: Vec<u64> = servers.iter().map(|s| s.calls()).collect();
    assert_eq!(counts.iter().sum::<u64>(), 16 * 15);
    let fastest_least = counts[1..].iter().min().copied().unwrap();
    assert!(
        fastest_least > 0,
        "every fast backend gets calls: {counts:?}"
    );
    assert!(
        counts[0] < fastest_least,
        "the slow backend, with calls piling up, is picked less: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_detection_config_ejects_a_failing_backend() {
    let servers = servers(3, "od");
    let balancer = builder()
        .service_config(&config(
            r#"{
                "loadBalancingConfig": [{"round_robin": {}}],
                "outlierDetection": {
                    "interval": "0.2s",
                    "baseEjectionTime": "30s",
                    "maxEjectionPercent": 50,
                    "failurePercentageEjection": {
                        "threshold": 50, "minimumHosts": 3, "requestVolume": 10
                    }
                }
            }"#,
        ))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let bad = &servers[1];
    bad.set_fail_all(true);

    let mut client = Client::new(balancer.clone());
    let mut failed = 0;
    for _ in 0..200 {
        failed += calls(&mut client, 15).await;
        if status_of(&balancer, bad).health == Health::Ejected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status_of(&balancer, bad).health, Health::Ejected);
    // A50 has no consecutive-failures detector: the interval's statistics ejected it, after
    // more than the 5 failures in a row our default would have stopped at.
    assert!(failed >= 10, "{failed} failed calls before the ejection");
    let before = bad.calls();
    assert_eq!(calls(&mut client, 30).await, 0);
    assert_eq!(bad.calls(), before, "an ejected backend gets no calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_durations_a_config_allows_do_not_break_the_balancer() {
    let servers = servers(2, "long");
    let balancer = builder()
        .service_config(&config(
            r#"{"outlierDetection": {
                "interval": "315576000000.999999999s",
                "baseEjectionTime": "315576000000s",
                "maxEjectionTime": "315576000000s",
                "successRateEjection": {}, "failurePercentageEjection": {}
            }}"#,
        ))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 2).await;
    let mut client = Client::new(balancer.clone());
    assert_eq!(calls(&mut client, 10).await, 0);
}
