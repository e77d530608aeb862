//! Layer 4: balanced TCP connections to plain TCP servers on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::{BalancedStream, Policy, TcpBalancer};

/// A TCP server that writes its name to every connection and keeps it open.
async fn name_server(name: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut conn, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = conn.write_all(name.as_bytes()).await;
            open.push(conn);
        }
    });
    (addr, task)
}

async fn read_name(stream: &mut BalancedStream) -> String {
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("server writes its name")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn wait_ready(balancer: &TcpBalancer, n: usize) {
    for _ in 0..2000 {
        if balancer.ready_len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never {n} ready: {:?}", balancer.snapshot().endpoints);
}

fn uri() -> http::Uri {
    http::Uri::from_static("tcp://pool")
}

#[tokio::test]
async fn least_connections_spread_open_connections_evenly() {
    let a = name_server("a").await;
    let b = name_server("b").await;
    let c = name_server("c").await;
    let endpoints = [a.0, b.0, c.0].map(|addr| Endpoint::new(addr).unwrap());
    let mut balancer = crate::common::builder()
        .policy(Policy::least_loaded())
        .build_tcp(fixed(endpoints))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let mut open = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..9 {
        let mut stream = balancer.ready().await.unwrap().call(uri()).await.unwrap();
        *counts.entry(read_name(&mut stream).await).or_default() += 1;
        open.push(stream);
    }
    // Each open connection is load: 9 connections, 3 per endpoint exactly.
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![3, 3, 3],
        "{counts:?}"
    );
    assert!(
        balancer
            .snapshot()
            .endpoints
            .iter()
            .all(|e| e.in_flight == 3)
    );
    drop(open);
    assert!(
        balancer
            .snapshot()
            .endpoints
            .iter()
            .all(|e| e.in_flight == 0)
    );
}

#[tokio::test]
async fn a_dead_endpoint_is_dialled_around_and_then_left_out() {
    let live = name_server("live").await;
    // A port that was just bound and released: connections are refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (tx, discovery) = crate::common::channel_discovery();
    tx.send(tower_lb::discover::Change::Insert(
        live.0.into(),
        Endpoint::new(live.0).unwrap(),
    ))
    .unwrap();
    let mut balancer = crate::common::builder()
        .policy(Policy::round_robin())
        .build_tcp(discovery)
        .unwrap();
    wait_ready(&balancer, 1).await;
    // The dead one is never ready: its probe fails. Every call reaches the live one.
    tx.send(tower_lb::discover::Change::Insert(
        dead.into(),
        Endpoint::new(dead).unwrap(),
    ))
    .unwrap();
    for _ in 0..10 {
        let mut s = balancer.ready().await.unwrap().call(uri()).await.unwrap();
        assert_eq!(read_name(&mut s).await, "live");
    }
    assert_eq!(balancer.ready_len(), 1);

    // The live server goes away: a dial fails, the endpoint leaves, the call fails clearly.
    live.1.abort();
    let _ = live.1.await;
    let error = balancer
        .ready()
        .await
        .unwrap()
        .call(uri())
        .await
        .expect_err("nothing is reachable");
    let status = error
        .downcast_ref::<tonic::Status>()
        .expect("a gRPC status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
}
