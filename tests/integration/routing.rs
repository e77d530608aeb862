//! Layer 7 routing: gRPC methods go to different pools.

use std::collections::HashSet;

use tower_lb::Router;
use tower_lb::discover::fixed;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

use crate::common::*;

fn request() -> EchoRequest {
    EchoRequest {
        message: "hi".into(),
        stream_count: 1,
    }
}

#[tokio::test]
async fn methods_go_to_their_own_pools() {
    let unary_pool = servers(2, "unary-pool");
    let stream_pool = servers(1, "stream-pool");
    let unary = builder()
        .build(fixed(unary_pool.iter().map(endpoint)))
        .unwrap();
    let stream = builder()
        .build(fixed(stream_pool.iter().map(endpoint)))
        .unwrap();
    wait_ready(&unary, 2).await;
    wait_ready(&stream, 1).await;
    let router = Router::new()
        .route("/echo.Echo/Unary", unary)
        .unwrap()
        .route("/echo.Echo/ServerStream", stream)
        .unwrap();
    let mut client = EchoClient::new(router);

    let mut answered = HashSet::new();
    for _ in 0..20 {
        answered.insert(client.unary(request()).await.unwrap().into_inner().server);
    }
    assert_eq!(
        answered,
        HashSet::from(["unary-pool-0".to_string(), "unary-pool-1".to_string()])
    );
    for _ in 0..5 {
        let mut replies = client.server_stream(request()).await.unwrap().into_inner();
        let reply = replies.message().await.unwrap().expect("one reply");
        assert_eq!(reply.server, "stream-pool-0");
    }
    assert_eq!(stream_pool[0].stream_calls(), 5);
    assert_eq!(unary_pool.iter().map(|s| s.stream_calls()).sum::<u64>(), 0);
}

#[tokio::test]
async fn unmatched_paths_fail_as_unimplemented_or_go_to_the_fallback() {
    let pool = servers(1, "fallback-pool");
    let balancer = builder().build(fixed(pool.iter().map(endpoint))).unwrap();
    wait_ready(&balancer, 1).await;

    // `/echo.Ech` is not a whole-segment prefix of `/echo.Echo/Unary`.
    let router = Router::new().route("/echo.Ech", balancer.clone()).unwrap();
    let status = EchoClient::new(router).unary(request()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status}");
    assert!(status.message().contains("/echo.Echo/Unary"), "{status}");

    let router = Router::new()
        .route("/other.Service", balancer.clone())
        .unwrap()
        .fallback(balancer);
    let reply = EchoClient::new(router).unary(request()).await.unwrap();
    assert_eq!(reply.into_inner().server, "fallback-pool-0");
}

#[test]
fn bad_prefixes_are_refused() {
    let r = Router::<()>::new();
    assert!(r.clone().route("echo.Echo", ()).is_err());
    assert!(r.route("/a", ()).unwrap().route("/a/", ()).is_err());
}
