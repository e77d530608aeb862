//! A call's deadline is the client's to keep: against backends that accept a call and never
//! answer, a call with a `grpc-timeout` (or the builder's default timeout) ends at its deadline
//! with `DEADLINE_EXCEEDED`, the server sees the cancellation, and the endpoint's load is
//! released. Every test is bounded by an outer timeout far above the deadlines it sets; what
//! is asserted is the outcome, not the time.

use std::time::Duration;

use tonic::Code;
use tower_lb::discover::fixed;
use tower_lb::{Balancer, CallStage, Error, Unready};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;

use crate::common::*;

/// Far above every deadline here: only a hang reaches it.
const BOUND: Duration = Duration::from_secs(10);

fn request(timeout: Option<Duration>) -> tonic::Request<EchoRequest> {
    let mut request = tonic::Request::new(EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    });
    if let Some(t) = timeout {
        request.set_timeout(t);
    }
    request
}

async fn silent_servers(n: usize, prefix: &str) -> (Vec<TestServer>, Balancer) {
    let servers = servers(n, prefix);
    for s in &servers {
        s.set_delay(Duration::from_secs(60));
    }
    let balancer = builder()
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    balancer.wait_ready(n, BOUND).await.unwrap();
    (servers, balancer)
}

#[tokio::test]
async fn a_call_to_a_silent_backend_ends_at_its_deadline() {
    let (servers, balancer) = silent_servers(3, "silent").await;
    let mut client = Client::new(balancer.clone());
    let call = client.unary(request(Some(Duration::from_millis(300))));
    let status = tokio::time::timeout(BOUND, call)
        .await
        .expect("the call outlived its deadline by seconds")
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let typed = typed(&status).expect("a tower_lb::Error as source");
    assert!(
        matches!(
            typed,
            Error::DeadlineExceeded {
                during: CallStage::Headers(_),
                ..
            }
        ),
        "{typed:?}"
    );
    assert!(status.message().contains("/echo.Echo/Unary"), "{status:?}");
    // The stream was reset: the server's handler was dropped; the balancer's load is back to 0.
    settled(&balancer, &servers).await;
    // The endpoint that timed out counts it as a failure (one, not yet an ejection).
    let failed: u64 = balancer
        .snapshot()
        .endpoints
        .iter()
        .map(|e| e.failures)
        .sum();
    assert_eq!(failed, 1);
}

#[tokio::test]
async fn the_default_timeout_applies_and_reaches_the_server() {
    let servers = servers(1, "default-timeout");
    let balancer = builder()
        .timeout(Duration::from_secs(5))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    let mut client = Client::new(balancer.clone());
    let reply = client.unary(request(None)).await.unwrap().into_inner();
    let sent = reply
        .seen
        .get("grpc-timeout")
        .expect("a grpc-timeout header");
    assert!(sent.ends_with('u') || sent.ends_with('m'), "{sent}");
    // A shorter deadline of the call's own wins, and is what the server sees.
    let reply = client
        .unary(request(Some(Duration::from_millis(1500))))
        .await
        .unwrap()
        .into_inner();
    let sent = reply.seen["grpc-timeout"].clone();
    let digits: u64 = sent[..sent.len() - 1].parse().unwrap();
    let unit = &sent[sent.len() - 1..];
    let nanos = match unit {
        "n" => digits,
        "u" => digits * 1_000,
        "m" => digits * 1_000_000,
        "S" => digits * 1_000_000_000,
        other => panic!("unexpected unit {other}"),
    };
    assert!(nanos <= 1_500_000_000, "{sent}");
    // And a silent backend ends the call at the default deadline.
    servers[0].set_delay(Duration::from_secs(60));
    let balancer = builder()
        .timeout(Duration::from_millis(200))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    let mut client = Client::new(balancer.clone());
    let call = client.unary(request(None));
    let status = tokio::time::timeout(BOUND, call)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    settled(&balancer, &servers).await;
}

#[tokio::test]
async fn waiting_for_an_endpoint_ends_at_the_calls_deadline() {
    // The ready timeout would wait 30 s; the call's own 100 ms deadline ends it first.
    let balancer = builder()
        .ready_timeout(Duration::from_secs(30))
        .build(fixed([]))
        .unwrap();
    let mut client = Client::new(balancer);
    let call = client.unary(request(Some(Duration::from_millis(100))));
    let status = tokio::time::timeout(BOUND, call)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        matches!(
            typed(&status),
            Some(Error::DeadlineExceeded {
                during: CallStage::Endpoint(Unready::NoEndpointsDiscovered),
                ..
            })
        ),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_stream_ends_at_its_deadline() {
    let servers = servers(1, "slow-stream");
    servers[0].set_delay(Duration::from_millis(150));
    let balancer = builder()
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    let mut client = Client::new(balancer.clone());
    let mut call = tonic::Request::new(EchoRequest {
        message: "tick".into(),
        stream_count: 1_000,
    });
    call.set_timeout(Duration::from_millis(500));
    let mut stream = client.server_stream(call).await.unwrap().into_inner();
    let ended = tokio::time::timeout(BOUND, async {
        let mut received = 0;
        loop {
            match stream.message().await {
                Ok(Some(_)) => received += 1,
                Ok(None) => panic!("the stream ended normally after {received} messages"),
                Err(status) => return (received, status),
            }
        }
    })
    .await
    .expect("the stream outlived its deadline by seconds");
    let (received, status) = ended;
    assert!(received < 1_000);
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // The load is released at once, before the stream is dropped.
    assert_eq!(in_flight(&balancer), 0);
    drop(stream);
    settled(&balancer, &servers).await;
}

#[tokio::test]
async fn timeouts_that_do_not_parse_are_ignored_far_ones_kept_and_zero_fails_at_once() {
    let servers = servers(1, "odd-timeouts");
    let balancer = builder()
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    let mut client = Client::new(balancer.clone());
    for value in ["garbage", "1.5S", "123456789m", "99999999H"] {
        let mut call = request(None);
        call.metadata_mut()
            .insert("grpc-timeout", value.parse().unwrap());
        let reply = tokio::time::timeout(BOUND, client.unary(call))
            .await
            .unwrap();
        assert!(reply.is_ok(), "{value}: {reply:?}");
    }
    let mut call = request(None);
    call.metadata_mut()
        .insert("grpc-timeout", "0n".parse().unwrap());
    let status = tokio::time::timeout(BOUND, client.unary(call))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

/// A backend that keeps the deadline it is sent as tonic's server does: when its
/// `grpc-timeout` (milliseconds, here) has passed, it answers a trailers-only `CANCELLED`,
/// "Timeout expired".
#[derive(Clone)]
struct CancelsAtItsDeadline;

impl tower::Service<http::Request<String>> for CancelsAtItsDeadline {
    type Response = http::Response<String>;
    type Error = tower_lb::BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<String>) -> Self::Future {
        let millis = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok()?.strip_suffix('m')?.parse().ok())
            .unwrap_or(0);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            let mut response = http::Response::new(String::new());
            let headers = response.headers_mut();
            headers.insert("content-type", "application/grpc".parse()?);
            headers.insert("grpc-status", "1".parse()?);
            headers.insert("grpc-message", "Timeout expired".parse()?);
            Ok(response)
        })
    }
}

/// The server's timer and the client's fire at the same instant (a paused clock), and the
/// server's answer is read first: the call still ends with the client's `DEADLINE_EXCEEDED`,
/// the endpoint charged with a timeout — not the server's `CANCELLED`, which a caller would
/// take for a cancellation of its own.
#[tokio::test(start_paused = true)]
async fn a_server_cancelling_at_the_deadline_reads_as_the_deadline() {
    use tower::ServiceExt;
    let connector =
        tower_lb::transport::ServiceConnector::new(|_: &tower_lb::discover::Endpoint| {
            CancelsAtItsDeadline
        });
    let endpoint = tower_lb::discover::Endpoint::new(([127, 0, 0, 1], 50_001).into()).unwrap();
    let balancer = builder().build_with(connector, fixed([endpoint])).unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    for _ in 0..3 {
        let mut request = http::Request::new(String::new());
        *request.uri_mut() = "/echo.Echo/Unary".parse().unwrap();
        request
            .headers_mut()
            .insert("grpc-timeout", "200m".parse().unwrap());
        let error = balancer
            .clone()
            .oneshot(request)
            .await
            .expect_err("the deadline, not an answer");
        let typed = error
            .downcast_ref::<tonic::Status>()
            .map_or_else(|| error.downcast_ref::<Error>(), |status| typed(status));
        assert!(
            matches!(typed, Some(Error::DeadlineExceeded { .. })),
            "{error:?}"
        );
    }
    let timeouts: u64 = balancer
        .snapshot()
        .endpoints
        .iter()
        .map(|e| e.failures)
        .sum();
    assert_eq!(timeouts, 3, "each call counts as a timeout of the endpoint");
}
