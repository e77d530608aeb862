//! What every interop case shares: the fleet and the balancer over it, the generated
//! clients, payload builders, a raw call that shows the wire (message flags, headers apart
//! from trailers), and the macro that makes one test per server kind.

use std::future::Future;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use prost::Message;
use tonic::Status;
use tower::{Service, ServiceExt};
use tower_lb::Balancer;
use tower_lb::discover::{Endpoint, fixed};
use tower_lb_testkit::interop::pb::test_service_client::TestServiceClient;
use tower_lb_testkit::interop::pb::{Payload, ResponseParameters, StreamingOutputCallResponse};
use tower_lb_testkit::interop::{Events, Fleet, ServerKind};

/// How many servers every case balances over.
pub const SERVERS: usize = 3;

/// The bound on any one wait in a case (a call to end, a server to see something).
pub const WAIT: Duration = Duration::from_secs(10);

/// What a case gets: the balancer over the fleet, and what the servers saw.
#[derive(Clone)]
pub struct Interop {
    pub balancer: Balancer,
    pub events: Events,
    pub kind: ServerKind,
}

impl Interop {
    /// A `TestService` client over the balancer.
    pub fn client(&self) -> TestServiceClient<Balancer> {
        TestServiceClient::new(self.balancer.clone())
    }
}

/// Starts [`SERVERS`] servers of `kind`, a balancer over them, and runs `case`; then checks
/// that the balancer let go of every call. Returns at once (the server kind printed its
/// notice) when Python grpcio is missing outside CI.
pub async fn run<F, Fut>(kind: ServerKind, case: F)
where
    F: FnOnce(Interop) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(fleet) = Fleet::start(kind, SERVERS).expect("start the interop servers") else {
        return;
    };
    let endpoints = fleet
        .addrs()
        .iter()
        .map(|addr| Endpoint::new(*addr).expect("a server address is a valid endpoint"));
    let balancer = Balancer::builder()
        .build(fixed(endpoints))
        .expect("build the balancer");
    let deadline = tokio::time::Instant::now() + WAIT;
    while balancer.ready_len() != SERVERS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the balancer never had all {SERVERS} {kind:?} servers ready: {:?}",
            balancer.snapshot().endpoints
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    case(Interop {
        balancer: balancer.clone(),
        events: fleet.events().clone(),
        kind,
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while balancer
        .snapshot()
        .endpoints
        .iter()
        .any(|e| e.in_flight > 0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the balancer still holds calls after the case: {:?}",
            balancer.snapshot().endpoints
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(fleet);
}

/// Makes `<case>::tonic` and `<case>::python`, each running the async fn `case` through
/// [`run`]; `tonic: #[ignore = "why"]` (or `python:`) ignores one of them.
macro_rules! against_both {
    ($case:ident $(, tonic: #[$tonic:meta])? $(, python: #[$python:meta])? $(,)?) => {
        mod $case {
            use tower_lb_testkit::interop::ServerKind;

            #[tokio::test]
            $(#[$tonic])?
            async fn tonic() {
                crate::common::run(ServerKind::Tonic, super::$case).await;
            }

            #[tokio::test]
            $(#[$python])?
            async fn python() {
                crate::common::run(ServerKind::Python, super::$case).await;
            }
        }
    };
}
pub(crate) use against_both;

/// A payload of `len` zero bytes.
pub fn zeros(len: usize) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: vec![0; len],
    })
}

/// Asks for one response of `size` bytes.
pub fn respond(size: i32) -> Vec<ResponseParameters> {
    vec![ResponseParameters {
        size,
        ..Default::default()
    }]
}

/// The size of a response's payload body, after checking it is all zeros.
pub fn zero_body_len(payload: Option<&Payload>) -> usize {
    let body = payload.map_or(&[][..], |p| &p.body[..]);
    assert!(body.iter().all(|b| *b == 0), "a payload body is not zeros");
    body.len()
}

/// Reads a response stream to its end: the sizes of the payloads, or the status it ended
/// with (bounded by [`WAIT`]).
pub async fn drain(
    stream: &mut tonic::Streaming<StreamingOutputCallResponse>,
) -> Result<Vec<usize>, Status> {
    let mut sizes = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, stream.message()).await {
            Err(_) => panic!("a response stream neither sent nor ended within {WAIT:?}"),
            Ok(Ok(Some(m))) => sizes.push(zero_body_len(m.payload.as_ref())),
            Ok(Ok(None)) => return Ok(sizes),
            Ok(Err(status)) => return Err(status),
        }
    }
}

/// One gRPC message on the wire: whether its compressed flag was set, and its bytes as sent.
pub struct Frame {
    pub compressed: bool,
    pub bytes: Bytes,
}

/// A response as it came over the wire.
pub struct RawResponse {
    pub headers: http::HeaderMap,
    pub frames: Vec<Frame>,
    pub trailers: http::HeaderMap,
}

impl RawResponse {
    /// The `grpc-status` of the call: from the trailers, or from the headers of a
    /// trailers-only response.
    pub fn grpc_status(&self) -> Option<&str> {
        self.trailers
            .get("grpc-status")
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
    }
}

/// A unary call of `method` (e.g. `/grpc.testing.TestService/UnaryCall`) built by hand and
/// sent through the balancer, so that the test sees what a tonic client hides: each
/// message's compressed flag, and headers apart from trailers. The request is sent
/// uncompressed, declaring it accepts gzip.
pub async fn raw_unary(
    balancer: &Balancer,
    method: &str,
    request: &impl Message,
    metadata: &[(&'static str, &str)],
) -> RawResponse {
    let message = request.encode_to_vec();
    let mut body = Vec::with_capacity(5 + message.len());
    body.push(0);
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message);
    let mut builder = http::Request::post(method)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-accept-encoding", "gzip");
    for (key, value) in metadata {
        builder = builder.header(*key, *value);
    }
    let request = builder
        .body(tonic::body::Body::new(http_body_util::Full::new(
            Bytes::from(body),
        )))
        .unwrap();
    let mut balancer = balancer.clone();
    let exchange = async {
        let response = balancer.ready().await?.call(request).await?;
        let (parts, body) = response.into_parts();
        let collected = body.collect().await?;
        Ok::<_, tower_lb::BoxError>((parts.headers, collected))
    };
    let (headers, collected) = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("the raw call ended in time")
        .expect("the raw call got a response");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let mut data = collected.to_bytes();
    let mut frames = Vec::new();
    while data.has_remaining() {
        assert!(data.len() >= 5, "a truncated gRPC message header");
        let compressed = data.get_u8() == 1;
        let len = data.get_u32() as usize;
        assert!(data.len() >= len, "a truncated gRPC message");
        frames.push(Frame {
            compressed,
            bytes: data.split_to(len),
        });
    }
    RawResponse {
        headers,
        frames,
        trailers,
    }
}
