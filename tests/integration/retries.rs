//! Configured retries (gRPC A6 `retryPolicy`) against real servers: what is retried, what is
//! not, the header the server sees, and what bounds the attempts. Counts, never timings.

use std::time::Duration;

use tonic::Code;
use tower_lb::Balancer;
use tower_lb::discover::fixed;
use tower_lb::method_config::{MethodConfig, MethodName, RetryPolicy, RetryThrottling};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

use crate::common::{Client, builder, echo, endpoint, servers, wait_ready};

/// Retries of every Echo method on `codes`, up to `attempts`, with short backoffs.
pub fn retrying(attempts: u32, codes: impl IntoIterator<Item = Code>) -> MethodConfig {
    MethodConfig::new([MethodName::service("echo.Echo")]).retry_policy(
        RetryPolicy::new(attempts, codes)
            .initial_backoff(Duration::from_millis(1))
            .max_backoff(Duration::from_millis(5)),
    )
}

async fn client(builder: tower_lb::Builder, servers: &[TestServer]) -> (Balancer, Client) {
    let balancer = builder
        .build(fixed(servers.iter().map(endpoint)))
        .expect("build");
    wait_ready(&balancer, servers.len()).await;
    (balancer.clone(), EchoClient::new(balancer))
}

async fn unary(client: &mut Client) -> Result<tower_lb_testkit::pb::EchoReply, tonic::Status> {
    let request = EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    };
    Ok(client.unary(request).await?.into_inner())
}

#[tokio::test]
async fn succeeds_on_the_third_attempt_and_the_server_sees_the_count() {
    let server = TestServer::start("flaky").unwrap();
    let (_balancer, mut client) = client(
        builder().method_config(retrying(3, [Code::Unavailable])),
        std::slice::from_ref(&server),
    )
    .await;
    server.fail_next(2);
    let reply = unary(&mut client)
        .await
        .expect("the third attempt succeeds");
    assert_eq!(server.calls(), 3);
    assert_eq!(
        reply
            .seen
            .get("grpc-previous-rpc-attempts")
            .map(String::as_str),
        Some("2"),
        "{:?}",
        reply.seen
    );
    // A first attempt carries no such header.
    let reply = unary(&mut client).await.unwrap();
    assert!(!reply.seen.contains_key("grpc-previous-rpc-attempts"));
}

#[tokio::test]
async fn attempts_stop_at_max_attempts_and_the_last_status_is_the_calls() {
    let server = TestServer::start("down").unwrap();
    let (_balancer, mut client) = client(
        builder().method_config(retrying(4, [Code::Unavailable])),
        std::slice::from_ref(&server),
    )
    .await;
    server.set_fail_all(true);
    let status = unary(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), tower_lb_testkit::INJECTED_FAILURE);
    assert_eq!(server.calls(), 4);
}

#[tokio::test]
async fn non_retryable_codes_are_not_retried() {
    let server = TestServer::start("invalid").unwrap();
    let (_balancer, mut client) = client(
        builder().method_config(retrying(5, [Code::Unavailable])),
        std::slice::from_ref(&server),
    )
    .await;
    server.set_failure_code(Code::InvalidArgument);
    server.fail_next(1);
    let status = unary(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn pushback_sets_or_stops_the_next_attempt() {
    let server = TestServer::start("pushback").unwrap();
    let (_balancer, mut client) = client(
        builder().method_config(retrying(5, [Code::Unavailable])),
        std::slice::from_ref(&server),
    )
    .await;
    // A valid pushback: retried (after 1 ms).
    server.set_pushback(Some("1"));
    server.fail_next(1);
    unary(&mut client)
        .await
        .expect("retried after the pushback");
    assert_eq!(server.calls(), 2);
    // Negative or unreadable: not retried.
    for value in ["-1", "soon"] {
        server.set_pushback(Some(value));
        server.fail_next(1);
        let before = server.calls();
        let status = unary(&mut client).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{value}");
        assert_eq!(
            server.calls() - before,
            1,
            "pushback {value:?} stops retries"
        );
    }
}

#[tokio::test]
async fn retries_pass_over_the_endpoint_that_failed() {
    let servers = servers(2, "pass-over");
    let (_balancer, mut client) = client(
        builder().method_config(retrying(2, [Code::Unavailable])),
        &servers,
    )
    .await;
    servers[0].set_fail_all(true);
    for _ in 0..20 {
        let reply = unary(&mut client)
            .await
            .expect("the retry goes to the other server");
        assert_eq!(reply.server, servers[1].name());
    }
}

#[tokio::test]
async fn committed_streams_are_not_retried() {
    use futures::StreamExt;
    let server = TestServer::start("stream").unwrap();
    let (balancer, mut client) = client(
        builder().method_config(retrying(5, [Code::Unavailable, Code::Cancelled])),
        std::slice::from_ref(&server),
    )
    .await;
    // A server stream that fails before its first message is retried...
    server.fail_next(1);
    let request = EchoRequest {
        message: "s".into(),
        stream_count: 3,
    };
    let mut stream = client
        .server_stream(request.clone())
        .await
        .unwrap()
        .into_inner();
    let mut got = 0;
    while let Some(item) = stream.next().await {
        item.expect("retried before any message");
        got += 1;
    }
    assert_eq!((got, server.stream_calls()), (3, 2));
    // ...one that delivered a message is committed: killing the server fails it, unretried.
    server.set_delay(Duration::from_millis(200));
    let mut stream = client.server_stream(request).await.unwrap().into_inner();
    stream.next().await.unwrap().expect("the first message");
    let retries = balancer.snapshot().configured_retries;
    assert_eq!(retries, 1);
    server.kill();
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        let mut errors = 0;
        while let Some(item) = stream.next().await {
            errors += usize::from(item.is_err());
        }
        errors
    })
    .await
    .expect("the stream ends");
    assert!(rest >= 1, "the committed stream fails");
    assert_eq!(
        balancer.snapshot().configured_retries,
        retries,
        "and is not sent again"
    );
}

#[tokio::test]
async fn oversized_bodies_are_sent_once() {
    let server = TestServer::start("big").unwrap();
    let (_balancer, mut client) = client(
        builder()
            .retry_buffer_limit(1024)
            .method_config(retrying(5, [Code::Unavailable])),
        std::slice::from_ref(&server),
    )
    .await;
    server.fail_next(1);
    let request = EchoRequest {
        message: "x".repeat(4096),
        stream_count: 0,
    };
    let status = client.unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.calls(), 1, "a body over the limit is not retried");
    // A small one is.
    server.fail_next(1);
    unary(&mut client).await.expect("retried");
    assert_eq!(server.calls(), 3);
}

#[tokio::test]
async fn throttling_drops_attempts_to_one_per_call_once_the_bucket_drains() {
    let servers = servers(3, "throttled");
    let (balancer, mut client) = client(
        builder()
            .retry_throttling(RetryThrottling::new(10, 0.1))
            .method_config(retrying(5, [Code::Unavailable])),
        &servers,
    )
    .await;
    for s in &servers {
        s.set_fail_all(true);
    }
    let total = || servers.iter().map(TestServer::calls).sum::<u64>();
    // 10 tokens, retries stop at 5 or less: the first call makes 5 attempts, the second 1
    // (5 tokens left), and every call after that 1.
    for _ in 0..20 {
        unary(&mut client).await.unwrap_err();
    }
    let first_twenty = total();
    for _ in 0..20 {
        unary(&mut client).await.unwrap_err();
    }
    assert_eq!(
        total() - first_twenty,
        20,
        "one attempt per call once drained"
    );
    assert!(first_twenty <= 20 + 5, "{first_twenty}");
    assert!(balancer.snapshot().retries_throttled >= 20);
}

#[tokio::test]
async fn kill_one_of_three_under_load_fails_no_call_with_retries() {
    let failed = kill_one_of_three(Some(retrying(4, [Code::Unavailable]))).await;
    assert_eq!(failed, 0, "with a retry policy no call fails");
}

#[tokio::test]
async fn kill_one_of_three_under_load_fails_calls_without_a_policy() {
    let failed = kill_one_of_three(None).await;
    assert!(
        failed > 0,
        "the calls in flight on the killed server fail, as before"
    );
}

/// 24 callers make 40 calls each over 3 servers (each call held 20 ms); one server is killed
/// once it has taken 40 calls. Returns the failed calls.
async fn kill_one_of_three(method: Option<MethodConfig>) -> usize {
    let mut servers = servers(3, "kill");
    for s in &servers {
        s.set_delay(Duration::from_millis(20));
    }
    let builder = match method {
        Some(m) => builder().method_config(m),
        None => builder(),
    };
    let (_balancer, client) = client(builder, &servers).await;
    let callers: Vec<_> = (0..24)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..40 {
                    failed += usize::from(echo(&mut client).await.is_err());
                }
                failed
            })
        })
        .collect();
    let victim = servers.remove(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while victim.calls() < 40 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    victim.kill();
    let mut failed = 0;
    for caller in callers {
        failed += tokio::time::timeout(Duration::from_secs(60), caller)
            .await
            .expect("callers finish")
            .unwrap();
    }
    failed
}
