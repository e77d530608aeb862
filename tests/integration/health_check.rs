//! Active grpc.health.v1 checks against real tonic-health servers: NOT_SERVING drains an
//! endpoint after one Watch update, SERVING restores it, a server without a health service
//! counts as healthy, and panic mode spreads calls when too few are healthy.

use tower_lb::Policy;
use tower_lb::discover::fixed;
use tower_lb::health::{Health, HealthCheck};
use tower_lb_testkit::TestServer;

use crate::common::*;

fn with_health(n: usize, prefix: &str) -> Vec<TestServer> {
    (0..n)
        .map(|i| TestServer::start_with_health(&format!("{prefix}-{i}")).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_serving_drains_the_endpoint_and_serving_restores_it() {
    let servers = with_health(3, "watch");
    let balancer = builder()
        .policy(Policy::round_robin())
        .health_check(HealthCheck::grpc().service(tower_lb_testkit::ECHO_SERVICE_NAME))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let mut client = Client::new(balancer.clone());

    let draining = &servers[1];
    draining.set_serving(false);
    wait_for(&balancer, draining, "not serving", |s| {
        s.health == Health::NotServing
    })
    .await;
    assert_eq!(balancer.ready_len(), 2);
    let before = draining.calls();
    assert_eq!(calls(&mut client, 30).await, 0);
    assert_eq!(draining.calls(), before, "a NOT_SERVING endpoint got calls");

    draining.set_serving(true);
    wait_ready(&balancer, 3).await;
    assert_eq!(status_of(&balancer, draining).health, Health::Healthy);
    assert_eq!(calls(&mut client, 30).await, 0);
    assert!(draining.calls() > before, "SERVING brings it back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_health_service_counts_as_healthy() {
    let plain = servers(2, "nohealth");
    let balancer = builder()
        .health_check(HealthCheck::grpc())
        .build(fixed(plain.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 2).await;
    let mut client = Client::new(balancer.clone());
    assert_eq!(calls(&mut client, 10).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_mode_spreads_calls_when_too_few_are_healthy() {
    let servers = with_health(4, "panic");
    let balancer = builder()
        .policy(Policy::round_robin())
        .health_check(HealthCheck::grpc())
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    let strict = builder()
        .policy(Policy::round_robin())
        .health_check(HealthCheck::grpc())
        .panic_threshold(None)
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 4).await;
    wait_ready(&strict, 4).await;

    // Three of four say NOT_SERVING: 25 % healthy, below the 50 % threshold.
    for s in &servers[1..] {
        s.set_serving(false);
    }
    for s in &servers[1..] {
        wait_for(&strict, s, "not serving", |st| {
            st.health == Health::NotServing
        })
        .await;
    }
    wait_ready(&strict, 1).await;
    let mut client = Client::new(strict.clone());
    let before: Vec<u64> = servers.iter().map(|s| s.calls()).collect();
    assert_eq!(calls(&mut client, 20).await, 0);
    assert_eq!(
        servers[0].calls(),
        before[0] + 20,
        "without panic mode one endpoint takes all"
    );

    // The panicking balancer keeps all four, and its snapshot says why.
    wait_ready(&balancer, 4).await;
    let snapshot = balancer.snapshot();
    assert!(snapshot.panic, "{snapshot:?}");
    assert!(!strict.snapshot().panic);
    assert!(snapshot.endpoints.iter().all(|e| e.ready));
    let mut client = Client::new(balancer.clone());
    let before: Vec<u64> = servers.iter().map(|s| s.calls()).collect();
    assert_eq!(calls(&mut client, 40).await, 0);
    for (s, b) in servers.iter().zip(before) {
        assert_eq!(s.calls(), b + 10, "{} in panic mode", s.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_endpoint_not_serving_and_no_panic_mode_calls_fail_saying_why() {
    let servers = with_health(2, "allbad");
    let balancer = builder()
        .health_check(HealthCheck::grpc())
        .panic_threshold(None)
        .ready_timeout(std::time::Duration::from_millis(100))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 2).await;
    for s in &servers {
        s.set_serving(false);
    }
    wait_ready(&balancer, 0).await;
    let snapshot = balancer.snapshot();
    assert_eq!(snapshot.tier, None);
    assert!(
        matches!(
            snapshot.unready,
            Some(tower_lb::Unready::AllUnhealthy { not_serving: 2, .. })
        ),
        "{snapshot:?}"
    );
    let mut client = Client::new(balancer.clone());
    let status = echo(&mut client).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("none of 2 endpoints is healthy")
            && status.message().contains("2 not serving"),
        "{}",
        status.message()
    );
}

/// A health check for a service the servers do not know is a configuration error: each
/// endpoint shows `ServiceUnknown`; without panic mode calls fail with a message that says so;
/// with panic mode calls still go out, and the snapshot says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_health_service_is_reported_as_a_configuration_error() {
    let servers = with_health(2, "unknown");
    let check = HealthCheck::grpc().service("no.Such");
    let strict = builder()
        .health_check(check.clone())
        .panic_threshold(None)
        .ready_timeout(std::time::Duration::from_millis(100))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    let panicking = builder()
        .health_check(check)
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while strict.snapshot().endpoints.len() < 2 || panicking.snapshot().endpoints.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "never discovered");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for s in &servers {
        wait_for(&strict, s, "service unknown", |st| {
            st.health == Health::ServiceUnknown
        })
        .await;
        wait_for(&panicking, s, "service unknown", |st| {
            st.health == Health::ServiceUnknown
        })
        .await;
    }

    let snapshot = strict.snapshot();
    assert_eq!(snapshot.ready, 0);
    assert_eq!(snapshot.service_unknown, 2);
    assert!(
        matches!(
            &snapshot.unready,
            Some(tower_lb::Unready::HealthServiceUnknown { service, unknown: 2, .. }) if service == "no.Such"
        ),
        "{snapshot:?}"
    );
    let status = echo(&mut Client::new(strict.clone())).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("health check misconfigured")
            && status.message().contains("\"no.Such\"")
            && status.message().contains("SERVICE_UNKNOWN"),
        "{}",
        status.message()
    );

    // Panic mode keeps serving over every endpoint, and the snapshot says why.
    wait_ready(&panicking, 2).await;
    let snapshot = panicking.snapshot();
    assert!(snapshot.panic, "{snapshot:?}");
    assert_eq!(snapshot.service_unknown, 2);
    assert_eq!(calls(&mut Client::new(panicking.clone()), 10).await, 0);
}
