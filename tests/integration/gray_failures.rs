//! Gray failures at the connection: a peer that accepts TCP but never speaks HTTP/2 (a
//! stopped process, whose kernel still accepts; a port taken by something else) is never a
//! ready endpoint, and the reason says what it is.

use std::time::Duration;

use tonic::Code;
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::transport::Http2Connector;
use tower_lb_testkit::TestServer;

use crate::common::*;

const BOUND: Duration = Duration::from_secs(10);

/// A listener that accepts every connection and holds it open, silent.
async fn silent_listener() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_listener_that_accepts_and_never_speaks_is_never_ready() {
    let (silent, task) = silent_listener().await;
    let server = TestServer::start("speaks").unwrap();
    let quick = || Http2Connector::new().connect_timeout(Duration::from_millis(200));
    let balancer = builder()
        .build_with(
            quick(),
            fixed([Endpoint::new(silent).unwrap(), endpoint(&server)]),
        )
        .unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    // Every call goes to the server that speaks; the silent one never joins.
    let mut client = Client::new(balancer.clone());
    for _ in 0..20 {
        assert_eq!(echo(&mut client).await.unwrap(), "speaks");
    }
    let silent_status = balancer
        .snapshot()
        .endpoints
        .into_iter()
        .find(|e| e.addr == silent)
        .unwrap();
    assert!(!silent_status.ready, "{silent_status:?}");

    // Alone, it makes calls fail fast with the reason.
    let alone = builder()
        .ready_timeout(Duration::from_millis(600))
        .build_with(quick(), fixed([Endpoint::new(silent).unwrap()]))
        .unwrap();
    let status = tokio::time::timeout(BOUND, echo(&mut Client::new(alone)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("HTTP/2 settings") && status.message().contains("not spoken"),
        "{}",
        status.message()
    );
    task.abort();
}
