//! Behaviour of `TestServer`, checked through real tonic clients.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower_lb_testkit::pb::echo_client::EchoClient;
use tower_lb_testkit::pb::{EchoReply, EchoRequest};
use tower_lb_testkit::{ECHO_SERVICE_NAME, INJECTED_FAILURE, TestServer};

async fn channel(server: &TestServer) -> Channel {
    Endpoint::from_shared(server.url())
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap()
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.to_owned(),
        stream_count: 0,
    }
}

async fn unary(
    client: &mut EchoClient<Channel>,
    message: &str,
) -> Result<EchoReply, tonic::Status> {
    client
        .unary(request(message))
        .await
        .map(tonic::Response::into_inner)
}

fn port_closed(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn unary_echoes_message_and_server_name() {
    let server = TestServer::start("alpha").unwrap();
    assert_eq!(server.name(), "alpha");
    assert!(server.addr().ip().is_loopback());
    let mut client = EchoClient::new(channel(&server).await);

    let reply = unary(&mut client, "hello").await.unwrap();
    assert_eq!(reply.message, "hello");
    assert_eq!(reply.server, "alpha");
    assert_eq!(server.calls(), 1);
    assert_eq!(server.in_flight(), 0);
}

#[test]
fn start_and_kill_from_sync_code() {
    let server = TestServer::start("sync").unwrap();
    let addr = server.addr();
    assert!(!port_closed(addr));
    server.kill();
    assert!(port_closed(addr));
}

#[tokio::test]
async fn server_stream_sends_stream_count_replies() {
    let server = TestServer::start("streamer").unwrap();
    server.set_delay(Duration::from_millis(10));
    let mut client = EchoClient::new(channel(&server).await);

    let started = Instant::now();
    let mut stream = client
        .server_stream(EchoRequest {
            message: "s".into(),
            stream_count: 3,
        })
        .await
        .unwrap()
        .into_inner();
    let mut replies = Vec::new();
    while let Some(reply) = stream.next().await {
        replies.push(reply.unwrap());
    }
    assert_eq!(replies.len(), 3);
    assert!(
        replies
            .iter()
            .all(|r| r.message == "s" && r.server == "streamer")
    );
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(server.stream_calls(), 1);
    assert_eq!(server.calls(), 0);
    wait_for("stream to leave in_flight", || server.in_flight() == 0).await;
}

#[tokio::test]
async fn delay_and_in_flight() {
    let server = TestServer::start("slow").unwrap();
    server.set_delay(Duration::from_millis(200));
    let mut client = EchoClient::new(channel(&server).await);

    let call = tokio::spawn(async move { unary(&mut client, "x").await });
    wait_for("call in flight", || server.in_flight() == 1).await;
    let started = Instant::now();
    call.await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(server.in_flight(), 0);
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn kill_closes_port_and_fails_in_flight_calls_then_restart_on_same_port() {
    let server = TestServer::start("phoenix").unwrap();
    let addr = server.addr();
    let mut client = EchoClient::new(channel(&server).await);
    assert_eq!(
        unary(&mut client, "before").await.unwrap().server,
        "phoenix"
    );

    server.set_delay(Duration::from_secs(30));
    let mut in_flight_client = client.clone();
    let call = tokio::spawn(async move { unary(&mut in_flight_client, "doomed").await });
    wait_for("call in flight", || server.in_flight() == 1).await;

    let killed_at = Instant::now();
    server.kill();
    assert!(port_closed(addr), "port still open after kill");
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("in-flight call did not fail promptly after kill")
        .unwrap();
    assert!(result.is_err(), "in-flight call succeeded: {result:?}");
    assert!(killed_at.elapsed() < Duration::from_secs(5));
    assert!(unary(&mut client, "after kill").await.is_err());

    let server = TestServer::start_on("phoenix2", addr).unwrap();
    assert_eq!(server.addr(), addr);
    let mut fresh = EchoClient::new(channel(&server).await);
    let reply = unary(&mut fresh, "again").await.unwrap();
    assert_eq!(reply.message, "again");
    assert_eq!(reply.server, "phoenix2");
    assert_eq!(server.calls(), 1);

    // The channel opened before the kill reconnects to the new server.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match unary(&mut client, "old channel").await {
            Ok(reply) => {
                assert_eq!(reply.server, "phoenix2");
                break;
            }
            Err(status) => assert!(Instant::now() < deadline, "no reconnect: {status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn drop_kills() {
    let server = TestServer::start("dropped").unwrap();
    let addr = server.addr();
    drop(server);
    assert!(port_closed(addr));
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_calls() {
    let server = TestServer::start("graceful").unwrap();
    let addr = server.addr();
    server.set_delay(Duration::from_millis(300));
    let mut client = EchoClient::new(channel(&server).await);

    let call = tokio::spawn(async move { unary(&mut client, "finish me").await });
    wait_for("call in flight", || server.in_flight() == 1).await;
    tokio::task::spawn_blocking(move || server.shutdown_gracefully())
        .await
        .unwrap();
    assert!(port_closed(addr));
    let reply = call.await.unwrap().unwrap();
    assert_eq!(reply.message, "finish me");
}

#[tokio::test]
async fn failure_rate_half_fails_exactly_every_second_call() {
    let server = TestServer::start("flaky").unwrap();
    server.set_failure_rate(0.5);
    let mut client = EchoClient::new(channel(&server).await);

    let mut failures = 0;
    for i in 1..=100 {
        match unary(&mut client, "f").await {
            Ok(reply) => {
                assert_eq!(i % 2, 1, "call {i} should have failed");
                assert_eq!(reply.server, "flaky");
            }
            Err(status) => {
                assert_eq!(i % 2, 0, "call {i} should have succeeded");
                assert_eq!(status.code(), Code::Unavailable);
                assert_eq!(status.message(), INJECTED_FAILURE);
                failures += 1;
            }
        }
    }
    assert_eq!(failures, 50);
    assert_eq!(server.calls(), 100);

    server.set_failure_rate(0.0);
    for _ in 0..10 {
        unary(&mut client, "ok").await.unwrap();
    }
    server.set_failure_rate(0.1);
    let mut failures = 0;
    for _ in 0..100 {
        failures += usize::from(unary(&mut client, "f").await.is_err());
    }
    assert_eq!(failures, 10);
}

#[tokio::test]
async fn fail_all_toggles() {
    let server = TestServer::start("broken").unwrap();
    let mut client = EchoClient::new(channel(&server).await);
    server.set_fail_all(true);
    for _ in 0..5 {
        let status = unary(&mut client, "x").await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
    }
    let stream_status = client
        .server_stream(EchoRequest {
            message: "x".into(),
            stream_count: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(stream_status.code(), Code::Unavailable);
    server.set_fail_all(false);
    unary(&mut client, "x").await.unwrap();
}

async fn health_status(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let status = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    match status {
        1 => ServingStatus::Serving,
        2 => ServingStatus::NotServing,
        other => panic!("unexpected health status {other}"),
    }
}

#[tokio::test]
async fn health_status_can_be_flipped() {
    let server = TestServer::start_with_health("healthy").unwrap();
    assert!(server.has_health());
    let channel = channel(&server).await;
    let mut health = HealthClient::new(channel.clone());
    assert_eq!(health_status(&mut health, "").await, ServingStatus::Serving);
    assert_eq!(
        health_status(&mut health, ECHO_SERVICE_NAME).await,
        ServingStatus::Serving
    );

    let mut watch = health
        .watch(HealthCheckRequest {
            service: ECHO_SERVICE_NAME.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status, 1);

    server.set_serving(false);
    assert_eq!(
        health_status(&mut health, "").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        health_status(&mut health, ECHO_SERVICE_NAME).await,
        ServingStatus::NotServing
    );
    assert_eq!(watch.next().await.unwrap().unwrap().status, 2);
    // Echo itself keeps answering: health is only advisory.
    let mut echo = EchoClient::new(channel);
    assert_eq!(unary(&mut echo, "still").await.unwrap().server, "healthy");

    server.set_serving(true);
    assert_eq!(health_status(&mut health, "").await, ServingStatus::Serving);
    assert_eq!(watch.next().await.unwrap().unwrap().status, 1);

    // Graceful shutdown is bounded even with a watch stream open.
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        server.shutdown_gracefully_within(Duration::from_millis(200))
    })
    .await
    .unwrap();
    assert!(port_closed(addr));
}

#[tokio::test]
async fn health_is_absent_by_default() {
    let server = TestServer::start("plain").unwrap();
    assert!(!server.has_health());
    server.set_serving(false); // no-op
    let mut health = HealthClient::new(channel(&server).await);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

#[tokio::test]
async fn set_serving_from_inside_a_current_thread_runtime_does_not_hang() {
    let server = TestServer::start_with_health("ct").unwrap();
    for i in 0..1000 {
        server.set_serving(i % 2 == 0);
    }
    let mut health = HealthClient::new(channel(&server).await);
    assert_eq!(
        health_status(&mut health, "").await,
        ServingStatus::NotServing
    );
}
