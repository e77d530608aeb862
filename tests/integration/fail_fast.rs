//! With no ready endpoint, a call fails with UNAVAILABLE after the configured wait, saying
//! why; a call that is waiting when an endpoint arrives succeeds.

use std::time::Duration;

use tonic::Code;
use tower_lb::discover::{Change, fixed};
use tower_lb::{Error, Unready};
use tower_lb_testkit::TestServer;

use crate::common::*;

#[tokio::test]
async fn empty_set_fails_with_unavailable_after_the_wait() {
    let balancer = builder()
        .ready_timeout(Duration::from_millis(100))
        .build(fixed([]))
        .unwrap();
    let status = echo(&mut Client::new(balancer)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("no endpoints discovered")
            && status.message().contains("/echo.Echo/Unary"),
        "{}",
        status.message()
    );
    // The typed error travels as the status' source.
    let typed = crate::common::typed(&status).expect("a tower_lb::Error as source");
    assert!(matches!(
        typed,
        Error::NoReadyEndpoint {
            why: Unready::NoEndpointsDiscovered,
            ..
        }
    ));
}

#[tokio::test]
async fn zero_wait_fails_at_once() {
    let balancer = builder()
        .ready_timeout(Duration::ZERO)
        .build(fixed([]))
        .unwrap();
    let status = echo(&mut Client::new(balancer)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn all_endpoints_removed_fails_with_unavailable() {
    let server = TestServer::start("removed").unwrap();
    let (tx, discovery) = channel_discovery();
    let balancer = builder()
        .ready_timeout(Duration::from_millis(100))
        .build(discovery)
        .unwrap();
    tx.send(Change::Insert(key(&server), endpoint(&server)))
        .unwrap();
    wait_ready(&balancer, 1).await;
    let mut client = Client::new(balancer.clone());
    assert_eq!(echo(&mut client).await.unwrap(), "removed");

    tx.send(Change::Remove(key(&server))).unwrap();
    wait_ready(&balancer, 0).await;
    let status = echo(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("no endpoints discovered"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn unreachable_endpoints_are_named_in_the_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let balancer = builder()
        .ready_timeout(Duration::from_millis(300))
        .build(fixed([tower_lb::discover::Endpoint::new(addr).unwrap()]))
        .unwrap();
    let status = echo(&mut Client::new(balancer)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status
            .message()
            .contains("all 1 endpoints unreachable or connecting"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains(&addr.to_string()),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn grpc_timeout_shortens_the_wait() {
    let balancer = builder()
        .ready_timeout(Duration::from_secs(3600))
        .build(fixed([]))
        .unwrap();
    let mut client = Client::new(balancer);
    let mut request = tonic::Request::new(tower_lb_testkit::pb::EchoRequest::default());
    request.set_timeout(Duration::from_millis(50));
    // Bounded by the test runner, not by the 1 h ready timeout.
    let status = tokio::time::timeout(Duration::from_secs(30), client.unary(request))
        .await
        .expect("the call's own deadline bounds the wait")
        .unwrap_err();
    // The call's own deadline ended it, so gRPC's code for that: DEADLINE_EXCEEDED (the ready
    // timeout ending the wait is UNAVAILABLE), still saying why nothing was ready.
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        status.message().contains("no endpoints discovered"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_waiting_call_succeeds_when_an_endpoint_arrives() {
    let server = TestServer::start("late").unwrap();
    let (tx, discovery) = channel_discovery();
    let balancer = builder()
        .ready_timeout(Duration::from_secs(20))
        .build(discovery)
        .unwrap();
    let mut client = Client::new(balancer.clone());
    let call = tokio::spawn(async move { echo(&mut client).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!call.is_finished(), "the call waits for an endpoint");
    tx.send(Change::Insert(key(&server), endpoint(&server)))
        .unwrap();
    assert_eq!(call.await.unwrap().unwrap(), "late");
}

#[tokio::test]
async fn the_all_unreachable_hook_runs_while_nothing_connects() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    // Port 1 on loopback refuses connections.
    let dead = tower_lb::discover::Endpoint::new("127.0.0.1:1".parse().unwrap()).unwrap();
    let balancer = builder()
        .on_all_unreachable(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build(tower_lb::discover::fixed([dead]))
        .unwrap();
    // Reconnects every 20..200 ms: the hook runs again after each failed attempt.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while asked.load(Ordering::Relaxed) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "hook ran {} times",
            asked.load(Ordering::Relaxed)
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(balancer);

    // With one endpoint up, the hook never runs.
    let server = tower_lb_testkit::TestServer::start("hook-up").unwrap();
    let quiet = Arc::new(AtomicUsize::new(0));
    let counter = quiet.clone();
    let balancer = builder()
        .on_all_unreachable(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build(tower_lb::discover::fixed([
            endpoint(&server),
            tower_lb::discover::Endpoint::new("127.0.0.1:1".parse().unwrap()).unwrap(),
        ]))
        .unwrap();
    wait_ready(&balancer, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(quiet.load(Ordering::Relaxed), 0);
}

/// Before discovery has answered, and while every discovered endpoint is still connecting, a
/// failing call says so — not "no endpoints discovered".
#[tokio::test]
async fn the_reason_says_discovery_has_not_answered_or_endpoints_are_connecting() {
    // Discovery that never answers.
    let silent = futures::stream::pending::<Result<Change, std::convert::Infallible>>();
    let balancer = builder()
        .ready_timeout(Duration::from_millis(100))
        .build(silent)
        .unwrap();
    let status = echo(&mut Client::new(balancer)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        matches!(
            crate::common::typed(&status),
            Some(Error::NoReadyEndpoint {
                why: Unready::Discovering,
                ..
            })
        ),
        "{status:?}"
    );
    assert!(
        status.message().contains("discovery has not answered"),
        "{}",
        status.message()
    );

    // Endpoints that accept TCP and never speak: discovered, all still connecting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let balancer = builder()
        .ready_timeout(Duration::from_millis(100))
        .build(fixed([tower_lb::discover::Endpoint::new(addr).unwrap()]))
        .unwrap();
    let status = echo(&mut Client::new(balancer)).await.unwrap_err();
    assert!(
        status
            .message()
            .contains("1 endpoints discovered, all still connecting"),
        "{}",
        status.message()
    );
    accept.abort();
}
