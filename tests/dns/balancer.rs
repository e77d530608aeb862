//! End to end: a balancer over SRV discovery from Knot drives real tonic servers. A record
//! removed from DNS drains its server with no failed call; a DNS server that dies, or answers
//! SERVFAIL, for the rest of the test loses no endpoint and no call.

use std::time::Duration;

use tokio::time::Instant;
use tower_lb::discover::dns::Dns;
use tower_lb::{Backoff, Balancer};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

use crate::common::fast;
use crate::knot::{Knot, Zone};
use crate::load::{load, wait_ready};

const NAME: &str = "_grpc._tcp.echo.lb.test.";

/// One SRV record per server, all on the target `host.echo` = 127.0.0.1.
fn zone(servers: &[&TestServer]) -> Zone {
    let mut zone = Zone::new().addr("host.echo", 1, "127.0.0.1");
    for s in servers {
        zone = zone.srv("_grpc._tcp.echo", 1, 0, 1, s.addr().port(), "host.echo");
    }
    zone
}

fn servers(n: usize) -> Vec<TestServer> {
    (0..n)
        .map(|i| TestServer::start(&format!("dns-{i}")).expect("start a test server"))
        .collect()
}

fn balancer(knot: &Knot) -> Balancer {
    Balancer::builder()
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(200)),
        )
        .build(fast(Dns::srv(NAME), knot.addr()).build().unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_removed_from_dns_drains_its_server_without_failed_calls() {
    let servers = servers(3);
    for s in &servers {
        s.set_delay(Duration::from_millis(150));
    }
    let all: Vec<&TestServer> = servers.iter().collect();
    let Some(mut knot) = Knot::start(&zone(&all)) else {
        return;
    };
    let balancer = balancer(&knot);
    wait_ready(&balancer, 3).await;
    let load = load(&balancer, 6);

    // Let every server take calls, then take the third out of DNS while calls are on it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while servers.iter().any(|s| s.calls() == 0) || servers[2].in_flight() == 0 {
        assert!(
            Instant::now() < deadline,
            "calls never reached every server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    knot.set_zone(&zone(&all[..2]));
    wait_ready(&balancer, 2).await;

    // Its in-flight calls finish; then it gets nothing more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while servers[2].in_flight() > 0 {
        assert!(
            Instant::now() < deadline,
            "the removed server never drained"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained_at = servers[2].calls();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (ok, errors) = load.finish().await;
    assert!(errors.is_empty(), "failed calls: {errors:?}");
    assert_eq!(
        servers[2].calls(),
        drained_at,
        "the removed server got calls after it drained"
    );
    assert!(servers[0].calls() + servers[1].calls() > 0 && ok > 0);
    assert_eq!(balancer.snapshot().endpoints.len(), 2);
}

/// Samples the balancer for `time`: every endpoint stays discovered and ready.
async fn hold_steady(balancer: &Balancer, n: usize, time: Duration) {
    let end = Instant::now() + time;
    while Instant::now() < end {
        assert_eq!(
            balancer.snapshot().endpoints.len(),
            n,
            "an endpoint was lost"
        );
        assert_eq!(balancer.ready_len(), n, "an endpoint stopped being ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_outage_loses_no_endpoint_and_no_call() {
    let servers = servers(3);
    let all: Vec<&TestServer> = servers.iter().collect();
    let Some(mut knot) = Knot::start(&zone(&all)) else {
        return;
    };
    let balancer = balancer(&knot);
    wait_ready(&balancer, 3).await;
    let load = load(&balancer, 4);

    // The DNS server dies: several TTLs (1 s) and failed resolutions go by.
    knot.kill();
    hold_steady(&balancer, 3, Duration::from_secs(4)).await;
    // It comes back answering SERVFAIL for the rest of the test.
    knot.restart_servfail();
    hold_steady(&balancer, 3, Duration::from_secs(3)).await;

    let (ok, errors) = load.finish().await;
    assert!(errors.is_empty(), "failed calls: {errors:?}");
    assert!(ok > 0);
    for s in &servers {
        assert!(s.calls() > 0, "{} got no calls", s.name());
    }
    assert!(
        knot.log().contains("failed"),
        "knot did not fail to load the zone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_endpoint_fails_dns_is_asked_again_before_the_ttl() {
    // The record points at a port nobody listens on, with a 30 s TTL.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let with_ttl = |port: u16| {
        Zone::new().addr("host.echo", 30, "127.0.0.1").srv(
            "_grpc._tcp.echo",
            30,
            0,
            1,
            port,
            "host.echo",
        )
    };
    let Some(mut knot) = Knot::start(&with_ttl(dead.port())) else {
        return;
    };
    let discovery = fast(Dns::srv(NAME), knot.addr()).build().unwrap();
    let refresher = discovery.refresher();
    let balancer = Balancer::builder()
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(200)),
        )
        .on_all_unreachable(move || refresher.refresh())
        .build(discovery)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while balancer.snapshot().endpoints.is_empty() {
        assert!(Instant::now() < deadline, "the dead record never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The service moves to a live server; its TTL says "ask again in 30 s", but every endpoint
    // failing makes the balancer ask at once (rate-limited to once per second).
    let server = TestServer::start("moved").unwrap();
    knot.set_zone(&with_ttl(server.addr().port()));
    let asked = Instant::now();
    wait_ready(&balancer, 1).await;
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "the move was only seen after {:?}, as if by TTL",
        asked.elapsed()
    );
    let mut client = EchoClient::new(balancer);
    let reply = client
        .unary(EchoRequest {
            message: "hi".into(),
            stream_count: 0,
        })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().server, "moved");
}
