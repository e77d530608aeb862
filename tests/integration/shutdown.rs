//! Dropping every clone stops the control task: discovery is dropped, connection tasks end
//! and connections close.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tower_lb::discover::{Change, fixed};
use tower_lb::transport::ServiceConnector;

use crate::common::*;

#[tokio::test]
async fn dropping_every_clone_stops_the_control_task() {
    let server = tower_lb_testkit::TestServer::start("drop").unwrap();
    let (tx, discovery) = channel_discovery();
    let balancer = builder().build(discovery).unwrap();
    tx.send(Change::Insert(key(&server), endpoint(&server)))
        .unwrap();
    wait_ready(&balancer, 1).await;
    let mut client = Client::new(balancer.clone());
    echo(&mut client).await.unwrap();
    drop(client);
    drop(balancer);
    // The control task drops the discovery stream (its receiver) when it stops.
    tokio::time::timeout(Duration::from_secs(5), tx.closed())
        .await
        .expect("the control task stopped and dropped discovery");
}

#[tokio::test]
async fn no_connection_outlives_the_balancer() {
    // Each in-process "connection" holds a clone of `token`; when the balancer, its control
    // task and its connection tasks are gone, only ours is left.
    let token = Arc::new(());
    let t = token.clone();
    let connector = ServiceConnector::new(move |_| {
        let t = t.clone();
        tower::service_fn(move |_req: http::Request<String>| {
            let _held = t.clone();
            async move {
                Ok::<_, Infallible>(http::Response::new(
                    http_body_util::Empty::<bytes::Bytes>::new(),
                ))
            }
        })
    });
    let endpoints = (1..=5).map(|p| format!("127.0.0.1:{p}").parse().unwrap());
    let mut balancer = builder().build_with(connector, fixed(endpoints)).unwrap();
    wait_ready(&balancer, 5).await;
    let response = crate::common::call(&mut balancer).await.unwrap();
    assert_eq!(
        balancer
            .snapshot()
            .endpoints
            .iter()
            .map(|e| e.in_flight)
            .sum::<u32>(),
        1,
        "held until the body is dropped"
    );
    drop(response);
    assert_eq!(
        balancer
            .snapshot()
            .endpoints
            .iter()
            .map(|e| e.in_flight)
            .sum::<u32>(),
        0
    );
    assert!(Arc::strong_count(&token) > 1);
    drop(balancer);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&token) > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} handles leaked",
            Arc::strong_count(&token) - 1
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
