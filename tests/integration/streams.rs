//! A call counts as load on its endpoint exactly while it runs: for all four kinds of RPC, the
//! load is released when the response's trailers arrive (before the caller drops anything),
//! when the caller drops a stream early, and when the call fails.

use std::time::Duration;

use tower_lb::Balancer;
use tower_lb::discover::fixed;
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::{EchoReply, EchoRequest};

use crate::common::*;

const BOUND: Duration = Duration::from_secs(10);

fn message(text: &str, stream_count: u32) -> EchoRequest {
    EchoRequest {
        message: text.into(),
        stream_count,
    }
}

async fn one_server(name: &str) -> (TestServer, Balancer, Client) {
    let server = TestServer::start(name).unwrap();
    let balancer = builder().build(fixed([endpoint(&server)])).unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    let client = Client::new(balancer.clone());
    (server, balancer, client)
}

#[tokio::test]
async fn unary_and_client_streaming_release_when_answered() {
    let (_server, balancer, mut client) = one_server("unary").await;
    client.unary(message("a", 0)).await.unwrap();
    assert_eq!(in_flight(&balancer), 0);
    let requests = futures::stream::iter(["a", "b", "c"].map(|m| message(m, 0)));
    let reply = client.client_stream(requests).await.unwrap().into_inner();
    assert_eq!(reply.message, "a,b,c");
    assert_eq!(in_flight(&balancer), 0);
    let requests = futures::stream::iter(["x"].map(|m| message(m, 0)));
    let response = client.client_stream(requests).await.unwrap();
    assert_eq!(in_flight(&balancer), 0);
    drop(response);
}

#[tokio::test]
async fn a_server_stream_read_to_its_end_releases_before_it_is_dropped() {
    let (_server, balancer, mut client) = one_server("server-stream").await;
    let mut stream = client
        .server_stream(message("tick", 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(in_flight(&balancer), 1);
    let mut received = 0;
    while stream.message().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, 3);
    // The trailers came with the end of the stream: nothing counts any more, though the
    // caller still holds the stream.
    assert_eq!(in_flight(&balancer), 0);
    let requests = balancer.snapshot().endpoints[0].requests;
    drop(stream);
    assert_eq!(balancer.snapshot().endpoints[0].requests, requests);
}

#[tokio::test]
async fn a_bidi_stream_read_to_its_end_releases_before_it_is_dropped() {
    let (_server, balancer, mut client) = one_server("bidi").await;
    let requests = futures::stream::iter(["a", "b", "c", "d"].map(|m| message(m, 0)));
    let mut replies = client.bidi_stream(requests).await.unwrap().into_inner();
    let mut received = Vec::new();
    while let Some(reply) = replies.message().await.unwrap() {
        received.push(reply.message);
    }
    assert_eq!(received, ["a", "b", "c", "d"]);
    assert_eq!(in_flight(&balancer), 0);
    drop(replies);
}

/// A server stream that would run for minutes, with its first message read.
async fn long_stream(server: &TestServer, client: &mut Client) -> tonic::Streaming<EchoReply> {
    server.set_delay(Duration::from_millis(20));
    let mut stream = client
        .server_stream(message("tick", 10_000))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    stream
}

#[tokio::test]
async fn a_stream_dropped_early_releases_and_the_server_sees_it() {
    let (server, balancer, mut client) = one_server("early-drop").await;
    let stream = long_stream(&server, &mut client).await;
    assert_eq!(in_flight(&balancer), 1);
    drop(stream);
    settled(&balancer, std::slice::from_ref(&server)).await;
}

#[tokio::test]
async fn a_failed_stream_releases() {
    let (server, balancer, mut client) = one_server("failing-stream").await;
    server.set_fail_all(true);
    let status = client.server_stream(message("tick", 3)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(in_flight(&balancer), 0);
    // A stream cut off by the server's death mid-way releases too.
    server.set_fail_all(false);
    let mut stream = long_stream(&server, &mut client).await;
    server.kill();
    let end = tokio::time::timeout(BOUND, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream never ended after the server was killed");
    assert!(end.is_err(), "{end:?}");
    settled(&balancer, &[]).await;
}
