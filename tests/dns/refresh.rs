//! The refresh handle: a resolution now instead of at the end of the TTL, at most once per
//! lower TTL bound however often it is asked for.

use std::time::Duration;

use tower_lb::discover::dns::Dns;

use crate::common::*;
use crate::fault_server::{FaultServer, addr, srv};

const NAME: &str = "_grpc._tcp.echo.lb.test.";

#[tokio::test]
async fn refresh_resolves_now_and_is_rate_limited() {
    let server = FaultServer::start().await;
    // A long TTL: without a refresh, nothing is asked again for 30 s.
    server.set_records(vec![
        srv(NAME, 30, 0, 1, 50051, "a.lb.test."),
        addr("a.lb.test.", 30, "127.0.0.2"),
    ]);
    let min = Duration::from_secs(2);
    let discovery = fast(Dns::srv(NAME), server.addr())
        .ttl_bounds(min, Duration::from_secs(30))
        .build()
        .unwrap();
    let refresher = discovery.refresher();
    let w = watch(discovery);
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;
    let first = tokio::time::Instant::now();
    assert_eq!(server.srv_queries(), 1);

    // A record joins; a refresh makes it visible long before the TTL.
    server.set_records(vec![
        srv(NAME, 30, 0, 1, 50051, "a.lb.test."),
        srv(NAME, 30, 0, 1, 50052, "a.lb.test."),
        addr("a.lb.test.", 30, "127.0.0.2"),
    ]);
    refresher.refresh();
    w.until_within("the refresh", Duration::from_secs(10), |s| s.set.len() == 2)
        .await;
    assert!(first.elapsed() < Duration::from_secs(10));
    assert_eq!(server.srv_queries(), 2);

    // A storm of refreshes for 3 s: at most one resolution per lower bound (2 s), so at most
    // two more.
    let storm = tokio::time::Instant::now();
    while storm.elapsed() < Duration::from_secs(3) {
        for _ in 0..100 {
            refresher.refresh();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let during = server.srv_queries() - 2;
    assert!(
        (1..=2).contains(&during),
        "{during} resolutions during a 3 s refresh storm with a 2 s lower bound"
    );
    // Clones ask the same stream; a refresh after the stream is gone does nothing.
    let clone = refresher.clone();
    drop(w);
    clone.refresh();
}
