//! ORCA load reports: the server layer's trailer read by an independently generated type, and
//! weighted round robin (gRPC A58) over servers of capacity 1:2:4 reporting through it.
//! Shares are asserted by call counts with generous bounds, never by time.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tower_lb::{Balancer, Policy, WeightedRoundRobin, discover};
use tower_lb_testkit::capacity::CapacityServer;
use tower_lb_testkit::orca_pb::OrcaLoadReport;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

use crate::common::builder;

fn request() -> EchoRequest {
    EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    }
}

fn wrr() -> Policy {
    Policy::weighted_round_robin(
        WeightedRoundRobin::default()
            .blackout_period(Duration::from_millis(300))
            .weight_update_period(Duration::from_millis(100)),
    )
}

fn balancer(servers: &[&CapacityServer], policy: Policy) -> Balancer {
    let endpoints = servers
        .iter()
        .map(|s| discover::Endpoint::new(s.addr()).unwrap())
        .collect::<Vec<_>>();
    builder()
        .policy(policy)
        .build(discover::fixed(endpoints))
        .unwrap()
}

#[tokio::test]
async fn the_trailer_decodes_as_an_orca_load_report() {
    let server = CapacityServer::start("orca", 2, Duration::from_millis(2)).unwrap();
    let mut client = EchoClient::connect(format!("http://{}", server.addr()))
        .await
        .unwrap();
    // The first window (1 s) must close before rates and utilisation are reported: bounded
    // by both a call count and a time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = None;
    for _ in 0..5_000 {
        let response = client.unary(request()).await.unwrap();
        // tonic merges a unary call's trailers into its metadata, decoding `-bin` itself.
        let bytes = response
            .metadata()
            .get_bin("endpoint-load-metrics-bin")
            .expect("every response carries a report")
            .to_bytes()
            .unwrap();
        let report = OrcaLoadReport::decode(bytes).expect("prost decodes it");
        assert!(report.named_metrics.contains_key("in_flight"), "{report:?}");
        let done = report.rps_fractional > 0.0;
        last = Some(report);
        if done || tokio::time::Instant::now() > deadline {
            break;
        }
    }
    let report = last.unwrap();
    assert!(report.rps_fractional > 0.0, "{report:?}");
    assert!(report.application_utilization > 0.0, "{report:?}");
    assert!(report.named_metrics["latency_seconds"] > 0.0, "{report:?}");
    assert_eq!(report.cpu_utilization, 0.0, "no CPU source configured");
}

/// Runs `calls` calls from `callers` concurrent callers; each server's calls in that time.
async fn run(
    balancer: &Balancer,
    servers: &[&CapacityServer],
    callers: usize,
    calls: usize,
) -> Vec<u64> {
    let before: Vec<u64> = servers.iter().map(|s| s.calls()).collect();
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(calls));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let mut client = EchoClient::new(balancer.clone());
            let left = left.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                while left
                    .fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
                    && tokio::time::Instant::now() < deadline
                {
                    client.unary(request()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    servers
        .iter()
        .zip(before)
        .map(|(s, b)| s.calls() - b)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_follows_reported_capacity() {
    let work = Duration::from_millis(4);
    let owned: Vec<CapacityServer> = [1, 2, 4]
        .iter()
        .enumerate()
        .map(|(i, &slots)| CapacityServer::start(&format!("c{i}"), slots, work).unwrap())
        .collect();
    let servers: Vec<&CapacityServer> = owned.iter().collect();
    let balancer = balancer(&servers, wrr());
    crate::common::wait_ready(&balancer, 3).await;
    // Until every endpoint has a weight (first window closed, blackout over): bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        run(&balancer, &servers, 8, 200).await;
        let weights: Vec<f64> = balancer
            .snapshot()
            .endpoints
            .iter()
            .map(|e| e.server_load.as_ref().map_or(0.0, |l| l.weight))
            .collect();
        if weights.iter().all(|w| *w > 0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no weights: {:?}",
            balancer.snapshot().endpoints
        );
    }
    // Let one or two recomputations settle, then count.
    run(&balancer, &servers, 8, 600).await;
    let counts = run(&balancer, &servers, 8, 2_000).await;
    let total: u64 = counts.iter().sum();
    let share = |i: usize| counts[i] as f64 / total as f64;
    // Capacity shares are 1/7, 2/7, 4/7; round robin would give 1/3 each.
    assert!(
        share(2) > 0.40,
        "the 4-slot server takes the most: {counts:?}"
    );
    assert!(
        share(0) < 0.25,
        "the 1-slot server takes the least: {counts:?}"
    );
    assert!(counts[2] > counts[1] && counts[1] > counts[0], "{counts:?}");
    let status = balancer.snapshot();
    for e in &status.endpoints {
        let load = e.server_load.as_ref().expect("reports are kept under WRR");
        assert!(load.reports > 0 && load.rejected == 0, "{load:?}");
    }
}

#[tokio::test]
async fn bad_reports_are_ignored_and_counted() {
    let a = CapacityServer::start("bad-a", 2, Duration::from_millis(1)).unwrap();
    let b = CapacityServer::start("bad-b", 2, Duration::from_millis(1)).unwrap();
    let servers = [&a, &b];
    let balancer = balancer(&servers, wrr());
    crate::common::wait_ready(&balancer, 2).await;
    // Not base64, a NaN utilisation, a negative one, truncated protobuf.
    let bad = ["%%% not base64", "CQAAAAAAAPh/", "CQAAAAAAAOC/", "CQAAAA"];
    for value in bad {
        a.set_bad_trailer(Some(value));
        b.set_bad_trailer(Some(value));
        let counts = run(&balancer, &servers, 2, 20).await;
        assert_eq!(counts.iter().sum::<u64>(), 20, "every call still succeeds");
    }
    let snapshot = balancer.snapshot();
    for e in &snapshot.endpoints {
        let load = e.server_load.as_ref().unwrap();
        assert_eq!(load.reports, 0, "{load:?}");
        assert!(load.rejected > 0, "{load:?}");
        assert_eq!(load.weight, 0.0);
    }
    // Both fall back to plain round robin: both serve.
    let counts = run(&balancer, &servers, 2, 40).await;
    assert!(counts.iter().all(|&c| c >= 10), "{counts:?}");
    a.set_bad_trailer(None);
    run(&balancer, &servers, 2, 20).await;
    let reports: u64 = balancer
        .snapshot()
        .endpoints
        .iter()
        .filter_map(|e| e.server_load.as_ref())
        .map(|l| l.reports)
        .sum();
    assert!(reports > 0, "good reports are read again");
}

#[tokio::test]
async fn other_policies_do_not_read_reports() {
    let a = CapacityServer::start("plain", 2, Duration::from_millis(1)).unwrap();
    let balancer = balancer(&[&a], Policy::default());
    crate::common::wait_ready(&balancer, 1).await;
    run(&balancer, &[&a], 1, 5).await;
    assert!(balancer.snapshot().endpoints[0].server_load.is_none());
}

#[tokio::test]
async fn the_out_of_band_stream_is_served_to_an_independent_client() {
    use tower_lb_testkit::orca_service_pb::OrcaLoadReportRequest;
    use tower_lb_testkit::orca_service_pb::open_rca_service_client::OpenRcaServiceClient;
    let server = CapacityServer::start("oob", 2, Duration::from_millis(1)).unwrap();
    let mut client = OpenRcaServiceClient::connect(format!("http://{}", server.addr()))
        .await
        .unwrap();
    // A 10 ms interval is raised to the layer's minimum (1 s): the first report comes at
    // once, the next about a second later. Bounded by a timeout.
    let request = OrcaLoadReportRequest {
        report_interval: Some(tower_lb_testkit::orca_service_pb::Duration {
            seconds: 0,
            nanos: 10_000_000,
        }),
        request_cost_names: vec![],
    };
    let mut stream = client
        .stream_core_metrics(request)
        .await
        .unwrap()
        .into_inner();
    let started = tokio::time::Instant::now();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.named_metrics.contains_key("in_flight"), "{first:?}");
    let second = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(second.named_metrics.contains_key("in_flight"), "{second:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the minimum interval holds: {:?}",
        started.elapsed()
    );
    assert_eq!(server.calls(), 0, "the stream never reaches the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_reads_the_out_of_band_stream_not_the_trailers() {
    let server = CapacityServer::start("oob-wrr", 2, Duration::from_millis(1)).unwrap();
    let policy = Policy::weighted_round_robin(
        WeightedRoundRobin::default().out_of_band(true, Duration::from_millis(100)),
    );
    let balancer = balancer(&[&server], policy);
    crate::common::wait_ready(&balancer, 1).await;
    // Reports come with no call made: bounded wait.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reports = balancer.snapshot().endpoints[0]
            .server_load
            .as_ref()
            .map_or(0, |l| l.reports);
        if reports > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no out-of-band report"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 100 calls' trailers are not read: far fewer reports than calls in the next moments.
    let before = balancer.snapshot().endpoints[0]
        .server_load
        .clone()
        .unwrap()
        .reports;
    run(&balancer, &[&server], 2, 100).await;
    let after = balancer.snapshot().endpoints[0]
        .server_load
        .clone()
        .unwrap()
        .reports;
    assert!(after - before < 10, "{before} → {after}");
}

/// An `OpenRcaService` whose stream fails at once (`fail`), or opens and never sends.
struct BadStream {
    fail: bool,
}

#[tonic::async_trait]
impl tower_lb_testkit::orca_service_pb::open_rca_service_server::OpenRcaService for BadStream {
    type StreamCoreMetricsStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<OrcaLoadReport, tonic::Status>> + Send>,
    >;

    async fn stream_core_metrics(
        &self,
        _: tonic::Request<tower_lb_testkit::orca_service_pb::OrcaLoadReportRequest>,
    ) -> Result<tonic::Response<Self::StreamCoreMetricsStream>, tonic::Status> {
        if self.fail {
            return Err(tonic::Status::unavailable("no reports here"));
        }
        Ok(tonic::Response::new(Box::pin(futures::stream::pending())))
    }
}

/// An Echo server named `name` on 127.0.0.1, with `reports` as its out-of-band service (none:
/// the stream is `UNIMPLEMENTED`); stops with the returned task.
async fn echo_with_reports(
    name: &str,
    reports: Option<BadStream>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let router = tonic::transport::Server::builder()
        .add_service(tower_lb_testkit::echo_service(name))
        .add_optional_service(reports.map(
            tower_lb_testkit::orca_service_pb::open_rca_service_server::OpenRcaServiceServer::new,
        ));
    let task = tokio::spawn(async move {
        let _ = router.serve_with_incoming(incoming).await;
    });
    (addr, task)
}

/// Out-of-band streams that fail, never send, or are not served: no report is read, every
/// call succeeds, and weighted round robin falls back to equal weights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_streams_that_fail_or_stay_silent_fall_back_to_equal_weights() {
    let servers = [
        echo_with_reports("failing", Some(BadStream { fail: true })).await,
        echo_with_reports("silent", Some(BadStream { fail: false })).await,
        echo_with_reports("unserved", None).await,
    ];
    let endpoints = servers
        .iter()
        .map(|(addr, _)| discover::Endpoint::new(*addr).unwrap())
        .collect::<Vec<_>>();
    let policy = Policy::weighted_round_robin(
        WeightedRoundRobin::default()
            .blackout_period(Duration::from_millis(100))
            .weight_update_period(Duration::from_millis(100))
            .out_of_band(true, Duration::from_millis(100)),
    );
    let balancer = builder()
        .policy(policy)
        .build(discover::fixed(endpoints))
        .unwrap();
    crate::common::wait_ready(&balancer, 3).await;
    // The streams have been opened (and failed, or gone quiet) by now: several periods.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut client = EchoClient::new(balancer.clone());
    let mut served = std::collections::HashMap::<String, u32>::new();
    for _ in 0..60 {
        let reply = tokio::time::timeout(Duration::from_secs(10), client.unary(request()))
            .await
            .expect("a call outlived its bound")
            .expect("every call succeeds")
            .into_inner();
        *served.entry(reply.server).or_default() += 1;
    }
    for name in ["failing", "silent", "unserved"] {
        assert!(served.get(name).copied().unwrap_or(0) >= 10, "{served:?}");
    }
    for e in &balancer.snapshot().endpoints {
        let load = e.server_load.as_ref().unwrap();
        assert_eq!(load.reports, 0, "{load:?}");
        assert_eq!(load.weight, 0.0, "{load:?}");
    }
    for (_, task) in servers {
        task.abort();
    }
}
