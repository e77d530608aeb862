//! Hedged calls (gRPC A6 `hedgingPolicy`) against real servers: a slow server's attempts
//! lose to a fast one's and are cancelled, which the slow server sees. Counts, not timings.

use std::time::Duration;

use tonic::Code;
use tower_lb::discover::fixed;
use tower_lb::method_config::{HedgingPolicy, MethodConfig, MethodName};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::echo_client::EchoClient;

use crate::common::{builder, echo, endpoint, eventually, servers, wait_ready};

fn hedging(attempts: u32, delay: Duration) -> MethodConfig {
    MethodConfig::new([MethodName::method("echo.Echo", "Unary")]).hedging_policy(
        HedgingPolicy::new(attempts, delay).non_fatal_status_codes([Code::Unavailable]),
    )
}

#[tokio::test]
async fn the_slow_servers_attempts_are_cancelled() {
    let servers = servers(3, "hedge");
    // One server answers 50 ms later than the others; hedges go out after 5 ms.
    servers[0].set_delay(Duration::from_millis(50));
    let balancer = builder()
        .method_config(hedging(2, Duration::from_millis(5)))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let mut client = EchoClient::new(balancer.clone());
    let mut answered_by_slow = 0;
    for _ in 0..60 {
        let server = echo(&mut client).await.expect("a hedged call succeeds");
        answered_by_slow += usize::from(server == servers[0].name());
    }
    let slow = &servers[0];
    // Every attempt the slow server took lost the race (its answer comes 45 ms after the
    // hedge's), was dropped, and the server saw the cancellation.
    assert!(slow.calls() > 0, "the slow server took first attempts");
    assert_eq!(answered_by_slow, 0);
    eventually("the slow server sees every attempt cancelled", || {
        slow.cancelled() == slow.calls()
    })
    .await;
    assert!(balancer.snapshot().hedged_attempts >= slow.calls());
    // No attempt stays counted as load.
    eventually("nothing in flight", || {
        crate::common::in_flight(&balancer) == 0
    })
    .await;
}

#[tokio::test]
async fn a_non_fatal_failure_sends_the_next_attempt_at_once() {
    let servers = servers(2, "hedge-fail");
    servers[0].set_fail_all(true);
    servers[1].set_fail_all(true);
    let balancer = builder()
        // A delay no test waits for: only a failure can send the second attempt.
        .method_config(hedging(2, Duration::from_secs(3600)))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 2).await;
    let mut client = EchoClient::new(balancer);
    let status = echo(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        servers[0].calls() + servers[1].calls(),
        2,
        "both attempts made"
    );
    // A fatal code ends the call at once.
    servers[0].set_failure_code(Code::InvalidArgument);
    servers[1].set_failure_code(Code::InvalidArgument);
    let status = echo(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(servers[0].calls() + servers[1].calls(), 3);
}

#[tokio::test]
async fn a_hedged_call_needs_no_second_server() {
    let server = TestServer::start("alone").unwrap();
    let balancer = builder()
        .method_config(hedging(3, Duration::ZERO))
        .build(fixed([endpoint(&server)]))
        .unwrap();
    wait_ready(&balancer, 1).await;
    let mut client = EchoClient::new(balancer);
    assert_eq!(echo(&mut client).await.unwrap(), "alone");
}
