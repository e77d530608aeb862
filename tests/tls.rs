//! TLS and mTLS to real tonic servers (rustls on both sides), with certificates made by rcgen
//! for each test: a trusted name or client certificate connects, anything else is refused
//! with an error that says why, and nothing ever falls back to plaintext.

use std::convert::Infallible;
use std::time::Duration;

use futures::Stream;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::sync::mpsc;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tower_lb::discover::{self, Change, Endpoint, Key};
use tower_lb::tls::ClientTls;
use tower_lb::transport::Http2Connector;
use tower_lb::{Backoff, Balancer, Error, Unready};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

/// A test certificate authority.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self, name: &str) -> Leaf {
        self.leaf(name, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client(&self, name: &str) -> Leaf {
        self.leaf(name, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

fn init() {
    // tonic's server asks rustls for the process default provider; ring is the only one
    // linked, but say so explicitly. A second call (another test) is refused harmlessly.
    let _ = tower_lb::tls::rustls::crypto::ring::default_provider().install_default();
}

/// A TLS Echo server named `name` presenting `leaf`; asks for a client certificate signed by
/// `client_ca` when given.
fn tls_server(name: &str, leaf: &Leaf, client_ca: Option<&Ca>) -> TestServer {
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(&leaf.cert, &leaf.key));
    if let Some(ca) = client_ca {
        config = config.client_ca_root(Certificate::from_pem(&ca.pem));
    }
    TestServer::builder(name)
        .tls(config)
        .start()
        .expect("start TLS test server")
}

/// A client TLS setting that trusts the CA in `pem` and checks every server as `name`.
fn trusting(pem: &str, name: &str) -> ClientTls {
    ClientTls::from_root_pem(pem)
        .unwrap()
        .server_name(name)
        .unwrap()
}

fn endpoint(server: &TestServer) -> Endpoint {
    Endpoint::new(server.addr()).unwrap()
}

fn balancer(tls: ClientTls, endpoints: Vec<Endpoint>) -> Balancer {
    builder()
        .build_with(Http2Connector::new().tls(tls), discover::fixed(endpoints))
        .unwrap()
}

fn builder() -> tower_lb::Builder {
    Balancer::builder()
        .ready_timeout(Duration::from_millis(300))
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(200)),
        )
}

async fn echo(balancer: &Balancer) -> Result<String, tonic::Status> {
    let reply = EchoClient::new(balancer.clone())
        .unary(EchoRequest {
            message: "hi".into(),
            stream_count: 0,
        })
        .await?;
    Ok(reply.into_inner().server)
}

/// Waits (bounded) until `n` endpoints are ready.
async fn wait_ready(balancer: &Balancer, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while balancer.ready_len() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {n} ready: {:?}",
            balancer.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) until the balancer reports a connection error, and returns it.
async fn last_connection_error(balancer: &Balancer) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(Unready::AllUnreachable {
            last_error: Some(e),
            ..
        }) = balancer.snapshot().unready
        {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection error reported: {:?}",
            balancer.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The endpoint never becomes ready, its connection error contains `want`, and a call fails
/// `UNAVAILABLE` saying the same.
async fn assert_refused(balancer: &Balancer, server: &TestServer, want: &str) {
    let error = last_connection_error(balancer).await;
    assert!(
        error.contains(want),
        "connection error {error:?} lacks {want:?}"
    );
    let status = echo(balancer).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(want),
        "call error {:?} lacks {want:?}",
        status.message()
    );
    assert_eq!(balancer.ready_len(), 0);
    assert_eq!(server.calls(), 0, "no call may reach the server");
}

#[tokio::test]
async fn configured_name_and_trusted_ca_serve_calls() {
    init();
    let ca = Ca::new("test ca");
    let server = tls_server("a", &ca.server("echo.test"), None);
    let tls = trusting(&ca.pem, "echo.test");
    // The endpoint itself has no name: the configured one is used.
    let balancer = balancer(tls, vec![endpoint(&server)]);
    wait_ready(&balancer, 1).await;
    for _ in 0..20 {
        assert_eq!(echo(&balancer).await.unwrap(), "a");
    }
    assert_eq!(server.calls(), 20);
}

/// The PING after a timed-out call goes inside TLS: the server answers it, and the connection
/// keeps serving calls (a PING written to the raw socket would break the TLS stream).
#[tokio::test]
async fn a_probe_over_tls_is_answered_and_the_connection_kept() {
    use tower_lb::transport::{Connector, EndpointChannel};
    init();
    let ca = Ca::new("test ca");
    let server = tls_server("a", &ca.server("echo.test"), None);
    let tls = trusting(&ca.pem, "echo.test");
    let connection = Http2Connector::new()
        .tls(tls)
        .connect(&endpoint(&server))
        .await
        .unwrap();
    let mut closed = connection.closed;
    for _ in 0..3 {
        let probe = connection.channel.probe(Duration::from_secs(1)).unwrap();
        tokio::time::timeout(Duration::from_secs(10), probe)
            .await
            .unwrap();
        let still_open = tokio::time::timeout(Duration::from_millis(50), &mut closed).await;
        assert!(
            still_open.is_err(),
            "closed: {:?}",
            still_open.map(|e| e.map(|e| e.to_string()))
        );
    }
    let mut channel = connection.channel.clone();
    let request = http::Request::post("/echo.Echo/Unary")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        // An empty EchoRequest: a gRPC frame of length 0.
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from_static(&[0, 0, 0, 0, 0]),
        )))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), channel.send(request))
        .await
        .unwrap()
        .unwrap_or_else(|_| panic!("the call after the probes failed"));
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc");
}

#[tokio::test]
async fn each_endpoint_is_checked_against_its_own_name() {
    init();
    let ca = Ca::new("test ca");
    let a = tls_server("a", &ca.server("a.echo.test"), None);
    let b = tls_server("b", &ca.server("b.echo.test"), None);
    let tls = ClientTls::from_root_pem(&ca.pem).unwrap();
    let endpoints = vec![
        endpoint(&a).with_server_name("a.echo.test").unwrap(),
        endpoint(&b).with_server_name("B.Echo.Test.").unwrap(),
    ];
    let balancer = balancer(tls, endpoints);
    wait_ready(&balancer, 2).await;
    for _ in 0..40 {
        echo(&balancer).await.unwrap();
    }
    assert!(
        a.calls() > 0 && b.calls() > 0,
        "a {} b {}",
        a.calls(),
        b.calls()
    );
}

#[tokio::test]
async fn wrong_configured_name_is_refused() {
    init();
    let ca = Ca::new("test ca");
    let server = tls_server("a", &ca.server("echo.test"), None);
    let tls = trusting(&ca.pem, "other.test");
    // The configured name wins over the endpoint's (right) one.
    let endpoints = vec![endpoint(&server).with_server_name("echo.test").unwrap()];
    let balancer = balancer(tls, endpoints);
    assert_refused(&balancer, &server, "not valid for name \"other.test\"").await;
}

#[tokio::test]
async fn a_new_server_name_for_the_same_address_reconnects() {
    init();
    let ca = Ca::new("test ca");
    let server = tls_server("a", &ca.server("echo.test"), None);
    let tls = ClientTls::from_root_pem(&ca.pem).unwrap();
    let (tx, discovery) = channel_discovery();
    let balancer = builder()
        .build_with(Http2Connector::new().tls(tls), discovery)
        .unwrap();
    let key = Key::from("echo");
    let named = |name: &str| endpoint(&server).with_server_name(name).unwrap();
    tx.send(Change::Insert(key.clone(), named("wrong.test")))
        .unwrap();
    assert_refused(&balancer, &server, "not valid for name \"wrong.test\"").await;
    // Same key, same address, another name: a new TLS identity, so a new connection.
    tx.send(Change::Insert(key.clone(), named("echo.test")))
        .unwrap();
    wait_ready(&balancer, 1).await;
    assert_eq!(echo(&balancer).await.unwrap(), "a");
    // And back to a wrong name: the good connection is dropped, not kept.
    tx.send(Change::Insert(key, named("wrong.test"))).unwrap();
    wait_ready(&balancer, 0).await;
    let status = echo(&balancer).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    init();
    let trusted = Ca::new("trusted ca");
    let other = Ca::new("other ca");
    let server = tls_server("a", &other.server("echo.test"), None);
    let tls = trusting(&trusted.pem, "echo.test");
    let balancer = balancer(tls, vec![endpoint(&server)]);
    assert_refused(&balancer, &server, "UnknownIssuer").await;
}

#[tokio::test]
async fn plaintext_server_is_refused_never_used_in_plaintext() {
    init();
    let ca = Ca::new("test ca");
    let server = TestServer::start("plain").unwrap();
    let tls = trusting(&ca.pem, "echo.test");
    let balancer = balancer(tls, vec![endpoint(&server)]);
    assert_refused(&balancer, &server, "TLS handshake with").await;
}

#[tokio::test]
async fn endpoint_without_a_name_is_refused_before_dialling() {
    init();
    let ca = Ca::new("test ca");
    let server = tls_server("a", &ca.server("echo.test"), None);
    let tls = ClientTls::from_root_pem(&ca.pem).unwrap();
    let balancer = balancer(tls, vec![endpoint(&server)]);
    assert_refused(&balancer, &server, "needs a server name").await;
    let error = last_connection_error(&balancer).await;
    assert!(error.contains("never used as the name"), "{error}");
}

#[tokio::test]
async fn mtls_needs_the_client_certificate() {
    init();
    let ca = Ca::new("test ca");
    let client_ca = Ca::new("client ca");
    let server = tls_server("a", &ca.server("echo.test"), Some(&client_ca));
    let plain_tls = trusting(&ca.pem, "echo.test");

    // Without a client certificate: the server refuses (after the client's side of the TLS
    // 1.3 handshake), so the endpoint never counts as connected and no call gets through.
    let without = balancer(plain_tls.clone(), vec![endpoint(&server)]);
    assert_refused(&without, &server, "requires a client certificate").await;
    let error = last_connection_error(&without).await;
    assert!(
        error.contains("closed before the server sent anything"),
        "{error}"
    );

    // A client certificate from another CA: refused too.
    let stranger = Ca::new("stranger ca").client("client.test");
    let wrong = balancer(
        plain_tls
            .clone()
            .identity_pem(&stranger.cert, &stranger.key)
            .unwrap(),
        vec![endpoint(&server)],
    );
    assert_refused(&wrong, &server, "closed before the server sent anything").await;

    // With the right one: served.
    let leaf = client_ca.client("client.test");
    let with = balancer(
        plain_tls.identity_pem(&leaf.cert, &leaf.key).unwrap(),
        vec![endpoint(&server)],
    );
    wait_ready(&with, 1).await;
    for _ in 0..10 {
        assert_eq!(echo(&with).await.unwrap(), "a");
    }
    assert_eq!(server.calls(), 10);
}

#[tokio::test]
async fn bad_configuration_is_refused_with_a_reason() {
    init();
    let ca = Ca::new("test ca");
    let leaf = ca.client("client.test");
    let other = ca.client("other.test");
    let tls = ClientTls::from_root_pem(&ca.pem).unwrap();
    let cases: [(Result<ClientTls, Error>, &str); 7] = [
        (ClientTls::from_root_pem(""), "no PEM CERTIFICATE block"),
        (
            ClientTls::from_root_pem(&leaf.key),
            "no PEM CERTIFICATE block",
        ),
        (
            ClientTls::from_root_pem(
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            ),
            "malformed PEM",
        ),
        (
            tls.clone().identity_pem(&leaf.cert, ""),
            "client private key",
        ),
        (
            tls.clone().identity_pem("", &leaf.key),
            "client certificate chain",
        ),
        (
            tls.clone().identity_pem(&leaf.cert, &other.key),
            "client certificate and key",
        ),
        (tls.clone().server_name("127.0.0.1"), "IP address"),
    ];
    for (result, want) in cases {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
        assert!(err.to_string().contains(want), "{err:?} lacks {want:?}");
    }
}

/// A discovery stream the test controls.
fn channel_discovery() -> (
    mpsc::UnboundedSender<Change>,
    impl Stream<Item = Result<Change, Infallible>> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|c| (Ok(c), rx)) },
        );
    (tx, stream)
}
