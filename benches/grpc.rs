//! Unary gRPC throughput on loopback: three Echo servers, 64 calls in flight.
//!
//! * `tower-lb`: `Balancer::builder().build(discover::fixed(..))` under `EchoClient`.
//! * `tonic-balance-list`: tonic's `Channel::balance_list` over the same three servers
//!   (tower p2c over PeakEwma behind a `Buffer`).
//! * `tonic-direct`: one tonic `Channel` to one of the servers (no balancing).
//!
//! Each measurement runs 64 worker tasks on a 2-worker multi-thread runtime, each with its own
//! client clone, issuing unary calls until the iteration count is done; criterion reports the
//! wall time per call and calls/s. Each server runs on its own thread and current-thread
//! runtime (`tower_lb_testkit::TestServer`).
//!
//! Run: `cargo bench --bench grpc`; `GRPC_SERVERS=100 cargo bench --bench grpc` for 100
//! servers (each its own thread; every client connects to all of them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint};
use tower_lb::{Balancer, discover};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

/// Servers, unless `GRPC_SERVERS` says otherwise.
const SERVERS: usize = 3;
const IN_FLIGHT: usize = 64;

fn ping() -> EchoRequest {
    EchoRequest {
        message: "ping".into(),
        stream_count: 0,
    }
}

/// `iters` unary calls by `IN_FLIGHT` concurrent workers, each on its own client clone.
fn run<T>(rt: &Runtime, client: &EchoClient<T>, iters: u64) -> Duration
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    rt.block_on(async {
        let issued = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let workers: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let mut client = client.clone();
                let issued = issued.clone();
                tokio::spawn(async move {
                    while issued.fetch_add(1, Ordering::Relaxed) < iters {
                        client.unary(ping()).await.expect("unary call");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("worker");
        }
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("GRPC_SERVERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(SERVERS);
    let servers: Vec<TestServer> = (0..n)
        .map(|i| TestServer::start(&format!("s{i}")).expect("test server"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group(format!("grpc-unary-{n}-servers-{IN_FLIGHT}-in-flight"));
    group
        .throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));

    {
        let endpoints: Vec<discover::Endpoint> = servers
            .iter()
            .map(|s| discover::Endpoint::new(s.addr()).expect("endpoint"))
            .collect();
        let client = rt.block_on(async {
            let balancer = Balancer::builder()
                .build(discover::fixed(endpoints))
                .expect("balancer");
            let deadline = Instant::now() + Duration::from_secs(10);
            while balancer.ready_len() < n {
                assert!(Instant::now() < deadline, "servers never became ready");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            EchoClient::new(balancer)
        });
        group.bench_function("tower-lb", |b| {
            b.iter_custom(|iters| run(&rt, &client, iters))
        });
    }

    {
        let endpoints: Vec<Endpoint> = servers
            .iter()
            .map(|s| Endpoint::from_shared(s.url()).expect("endpoint"))
            .collect();
        let client = rt.block_on(async {
            let channel = Channel::balance_list(endpoints.into_iter());
            let client = EchoClient::new(channel);
            // balance_list dials in the background: make a few calls so the measurement does
            // not start with the connects.
            for _ in 0..4 * n {
                client.clone().unary(ping()).await.expect("unary call");
            }
            client
        });
        group.bench_function("tonic-balance-list", |b| {
            b.iter_custom(|iters| run(&rt, &client, iters))
        });
    }

    {
        let client = rt.block_on(async {
            let channel = Endpoint::from_shared(servers[0].url())
                .expect("endpoint")
                .connect()
                .await
                .expect("connect");
            EchoClient::new(channel)
        });
        group.bench_function("tonic-direct", |b| {
            b.iter_custom(|iters| run(&rt, &client, iters))
        });
    }

    group.finish();
    drop(servers);
}

criterion_group!(benches, bench);
criterion_main!(benches);
