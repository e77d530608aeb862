//! Prequal over real tonic servers that answer load probes with tower-lb's ORCA layer:
//! calls go where the servers say they will be served soonest, probes never reach the
//! service, and servers that do not answer probes are still balanced (p2c over calls in
//! flight). Shares are asserted by call counts with generous bounds, never by time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tower_lb::{Balancer, Policy, Prequal, discover};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::capacity::CapacityServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

use crate::common::builder;

fn request() -> EchoRequest {
    EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    }
}

fn balancer(addrs: &[std::net::SocketAddr]) -> Balancer {
    balancer_with(addrs, Prequal::default())
}

fn balancer_with(addrs: &[std::net::SocketAddr], prequal: Prequal) -> Balancer {
    let endpoints = addrs
        .iter()
        .map(|a| discover::Endpoint::new(*a).unwrap())
        .collect::<Vec<_>>();
    builder()
        .policy(Policy::prequal(prequal))
        .build(discover::fixed(endpoints))
        .unwrap()
}

/// `calls` calls from `callers` concurrent callers, each bounded by 30 s; how many failed.
async fn run(balancer: &Balancer, callers: usize, calls: usize) -> usize {
    let left = Arc::new(AtomicUsize::new(calls));
    let failed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let mut client = EchoClient::new(balancer.clone());
            let (left, failed) = (left.clone(), failed.clone());
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                while left
                    .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                    && tokio::time::Instant::now() < deadline
                {
                    if client.unary(request()).await.is_err() {
                        failed.fetch_add(1, Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    failed.load(Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_where_the_servers_say_they_are_served_soonest() {
    // Two fast servers and one ten times slower, all with 4 slots.
    let owned: Vec<CapacityServer> = [2, 2, 20]
        .iter()
        .enumerate()
        .map(|(i, &ms)| {
            CapacityServer::start(&format!("p{i}"), 4, Duration::from_millis(ms)).unwrap()
        })
        .collect();
    let addrs: Vec<_> = owned.iter().map(|s| s.addr()).collect();
    let balancer = balancer(&addrs);
    crate::common::wait_ready(&balancer, 3).await;
    // Warm up until the servers have latency estimates and probes have been answered.
    assert_eq!(run(&balancer, 6, 300).await, 0);
    let before: Vec<u64> = owned.iter().map(|s| s.calls()).collect();
    assert_eq!(run(&balancer, 6, 1_200).await, 0);
    let counts: Vec<u64> = owned
        .iter()
        .zip(before)
        .map(|(s, b)| s.calls() - b)
        .collect();
    // Probes are answered by the layer and never reach the service: the servers served
    // exactly the calls made.
    assert_eq!(counts.iter().sum::<u64>(), 1_200, "{counts:?}");
    // Uniform would give the slow one a third; by latency it should get far less.
    assert!(
        (counts[2] as f64) < 0.12 * 1_200.0,
        "the slow server gets few calls: {counts:?}"
    );
    for e in &balancer.snapshot().endpoints {
        let load = e
            .server_load
            .as_ref()
            .expect("reports are kept under prequal");
        assert!(load.reports > 0 && load.rejected == 0, "{load:?}");
        assert!(load.report.in_flight.is_some(), "{load:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_do_not_answer_probes_are_still_balanced() {
    // Plain servers: the probe path is UNIMPLEMENTED there.
    let servers: Vec<TestServer> = (0..3)
        .map(|i| TestServer::start(&format!("plain{i}")).unwrap())
        .collect();
    let addrs: Vec<_> = servers.iter().map(|s| s.addr()).collect();
    let balancer = balancer(&addrs);
    crate::common::wait_ready(&balancer, 3).await;
    assert_eq!(run(&balancer, 4, 600).await, 0);
    let counts: Vec<u64> = servers.iter().map(|s| s.calls()).collect();
    // p2c over calls in flight spreads them.
    assert!(counts.iter().all(|&c| c > 100), "{counts:?}");
    for e in &balancer.snapshot().endpoints {
        let load = e
            .server_load
            .as_ref()
            .expect("reports are kept under prequal");
        assert_eq!(load.reports, 0, "{load:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_fails_fast_does_not_draw_the_calls() {
    // A server failing every call answers at once with nothing in flight: it must not look
    // like the best server. Outlier detection (on by default) ejects it; until then its
    // failures make it hot.
    let good: Vec<CapacityServer> = (0..2)
        .map(|i| CapacityServer::start(&format!("g{i}"), 4, Duration::from_millis(3)).unwrap())
        .collect();
    let bad = TestServer::start("failing").unwrap();
    bad.set_fail_all(true);
    let mut addrs: Vec<_> = good.iter().map(|s| s.addr()).collect();
    addrs.push(bad.addr());
    let balancer = balancer(&addrs);
    crate::common::wait_ready(&balancer, 3).await;
    let failed = run(&balancer, 6, 1_000).await;
    assert!(failed < 30, "{failed} of 1,000 calls failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_sent_in_proportion_to_calls_and_answered() {
    let server = CapacityServer::start("probed", 4, Duration::from_millis(2)).unwrap();
    // Every owed probe is sent, however fresh the trailers' reports.
    let balancer = balancer_with(
        &[server.addr()],
        Prequal::default().fresh_report(Duration::ZERO),
    );
    crate::common::wait_ready(&balancer, 1).await;
    assert_eq!(run(&balancer, 2, 200).await, 0);
    // Let the last probes come back: bounded.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let load = balancer.snapshot().endpoints[0]
        .server_load
        .clone()
        .unwrap();
    // Each call's trailer is one report; three probes per call add about three more.
    assert!(load.reports > 400, "{load:?}");
    assert_eq!(load.rejected, 0, "{load:?}");
    assert_eq!(server.calls(), 200, "probes never reach the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_trailers_make_probes_unneeded() {
    let server = CapacityServer::start("fresh", 4, Duration::from_millis(1)).unwrap();
    // Reports younger than a minute are taken as they are: after the first answers, the
    // trailers keep the one endpoint's report fresh and no probe goes out.
    let prequal = Prequal::default().fresh_report(Duration::from_secs(60));
    let balancer = balancer_with(&[server.addr()], prequal);
    crate::common::wait_ready(&balancer, 1).await;
    assert_eq!(run(&balancer, 2, 200).await, 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let load = balancer.snapshot().endpoints[0]
        .server_load
        .clone()
        .unwrap();
    // 200 trailers, and at most the few probes sent before the first trailer came.
    assert!(load.reports >= 200 && load.reports < 260, "{load:?}");
}
