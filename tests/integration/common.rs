//! Helpers shared by the integration tests.

use std::time::Duration;

use tower_lb::discover::{Endpoint, Key};
use tower_lb::transport::EndpointChannel;
use tower_lb::{Backoff, Balancer, CallResult, EndpointStatus};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

pub type Client = EchoClient<Balancer>;

pub fn endpoint(server: &TestServer) -> Endpoint {
    Endpoint::new(server.addr()).expect("test server address is valid")
}

pub fn key(server: &TestServer) -> Key {
    Key::from(server.addr())
}

pub fn servers(n: usize, prefix: &str) -> Vec<TestServer> {
    (0..n)
        .map(|i| TestServer::start(&format!("{prefix}-{i}")).expect("start test server"))
        .collect()
}

/// A builder with test-friendly reconnects (fast, capped low).
pub fn builder() -> tower_lb::Builder {
    Balancer::builder().backoff(
        Backoff::default()
            .initial(Duration::from_millis(20))
            .max(Duration::from_millis(200)),
    )
}

/// A discovery stream the test controls.
pub use tower_lb_testkit::discovery::channel as channel_discovery;

/// Waits (bounded) until the balancer has `n` ready endpoints.
pub async fn wait_ready<T: EndpointChannel>(balancer: &Balancer<T>, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while balancer.ready_len() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "balancer never reached {n} ready endpoints: {:?}",
            balancer.snapshot().endpoints
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One unary call; returns the name of the server that answered.
pub async fn echo(client: &mut Client) -> Result<String, tonic::Status> {
    let reply = client
        .unary(EchoRequest {
            message: "hi".into(),
            stream_count: 0,
        })
        .await?;
    Ok(reply.into_inner().server)
}

/// The balancer's view of one server.
pub fn status_of<T: EndpointChannel>(
    balancer: &Balancer<T>,
    server: &TestServer,
) -> EndpointStatus {
    balancer
        .snapshot()
        .endpoints
        .into_iter()
        .find(|s| s.addr == server.addr())
        .expect("the server is discovered")
}

/// Waits (bounded, 10 s) until `check` holds for the balancer's view of `server`.
pub async fn wait_for<T: EndpointChannel>(
    balancer: &Balancer<T>,
    server: &TestServer,
    what: &str,
    check: impl Fn(&EndpointStatus) -> bool,
) {
    let what = format!("{} {what}", server.name());
    let within = Duration::from_secs(10);
    wait_for_addr(balancer, server.addr(), &what, within, check).await
}

/// Waits (bounded by `within`) until `check` holds for the balancer's view of `addr`.
pub async fn wait_for_addr<T: EndpointChannel>(
    balancer: &Balancer<T>,
    addr: std::net::SocketAddr,
    what: &str,
    within: Duration,
    check: impl Fn(&EndpointStatus) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = balancer
            .snapshot()
            .endpoints
            .into_iter()
            .find(|s| s.addr == addr)
            .expect("the address is discovered");
        if check(&status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Makes `n` sequential calls; returns how many failed.
pub async fn calls(client: &mut Client, n: usize) -> usize {
    let mut failed = 0;
    for _ in 0..n {
        failed += usize::from(echo(client).await.is_err());
    }
    failed
}

/// One call with an empty `String` body, through `ready` then `call`.
pub async fn call<T: EndpointChannel<RequestBody = String>>(
    balancer: &mut Balancer<T>,
) -> CallResult<T> {
    use tower::{Service, ServiceExt};
    balancer
        .ready()
        .await?
        .call(http::Request::new(String::new()))
        .await
}

/// The typed error a balancer's `Status` carries as its source, if any.
pub fn typed(status: &tonic::Status) -> Option<&tower_lb::Error> {
    std::error::Error::source(status).and_then(|s| s.downcast_ref::<tower_lb::Error>())
}

/// Calls the balancer counts in flight, over all its endpoints.
pub fn in_flight(balancer: &Balancer) -> u32 {
    balancer
        .snapshot()
        .endpoints
        .iter()
        .map(|e| e.in_flight)
        .sum()
}

/// Waits (bounded, 10 s) until no call is in flight on `servers` or in the balancer: the load
/// was released, and the servers saw the calls end.
pub async fn settled(balancer: &Balancer, servers: &[TestServer]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while servers.iter().any(|s| s.in_flight() > 0) || in_flight(balancer) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls still in flight: servers {:?}, balancer {}",
            servers
                .iter()
                .map(TestServer::in_flight)
                .collect::<Vec<_>>(),
            in_flight(balancer)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls (bounded) until `what` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
