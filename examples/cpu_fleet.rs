//! Where server-assisted balancing cannot help: a homogeneous, CPU-bound fleet. Four Echo
//! servers on one two-worker runtime, every call `CPU_WORK_US` of busy CPU (default 300 µs),
//! each server reporting through tower-lb's ORCA layer (which answers Prequal's probes); 32
//! closed-loop callers through one balancer on a second two-worker runtime. All of it shares
//! this machine's cores, so whatever a policy spends beside the calls (Prequal's probes, 3 per
//! call by default) is taken from the servers. Printed: calls per second for each policy,
//! interleaved over `CPU_ROUNDS` rounds (default 3) of `CPU_SECS` seconds (default 4), and
//! each policy's total over p2c PeakEWMA's.
//!
//! ```text
//! cargo run --release --example cpu_fleet
//! CPU_ROUNDS=1 CPU_SECS=1 cargo run --release --example cpu_fleet   # short form
//! ```
//!
//! Bounded: rounds × policies × seconds, plus at most 2 s per run for the last calls (each has
//! a 2 s deadline).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::server::OrcaLayer;
use tower_lb::{Balancer, PeakEwma, Policy, Prequal};
use tower_lb_testkit::pb::echo_client::EchoClient;
use tower_lb_testkit::pb::echo_server::{Echo, EchoServer};
use tower_lb_testkit::pb::{EchoReply, EchoRequest};

const SERVERS: usize = 4;
const CALLERS: usize = 32;
const DEADLINE: Duration = Duration::from_secs(2);

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Echo whose unary call burns `work` of CPU on the server's worker.
struct Busy {
    work: Duration,
}

#[tonic::async_trait]
impl Echo for Busy {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let end = Instant::now() + self.work;
        while Instant::now() < end {
            std::hint::spin_loop();
        }
        Ok(Response::new(EchoReply {
            message: request.into_inner().message,
            server: String::new(),
            seen: Default::default(),
        }))
    }

    async fn client_stream(
        &self,
        _: Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        Err(Status::unimplemented("unary only"))
    }

    type BidiStreamStream = Pin<Box<dyn futures::Stream<Item = Result<EchoReply, Status>> + Send>>;

    async fn bidi_stream(
        &self,
        _: Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStreamStream>, Status> {
        Err(Status::unimplemented("unary only"))
    }

    type ServerStreamStream = Self::BidiStreamStream;

    async fn server_stream(
        &self,
        _: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        Err(Status::unimplemented("unary only"))
    }
}

/// A policy's name, and how to make it.
type Arm = (&'static str, fn() -> Policy);

/// Calls per second one policy gets in `secs`, and calls that failed.
async fn run(policy: Policy, endpoints: &[Endpoint], secs: Duration) -> (f64, u64) {
    let balancer = Balancer::builder()
        .policy(policy)
        .timeout(DEADLINE)
        .build(fixed(endpoints.to_vec()))
        .expect("build");
    balancer
        .wait_ready(endpoints.len(), Duration::from_secs(10))
        .await
        .expect("ready");
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let mut client = EchoClient::new(balancer.clone());
            let (done, failed, stop, measuring) = (
                done.clone(),
                failed.clone(),
                stop.clone(),
                measuring.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    let request = EchoRequest {
                        message: String::new(),
                        stream_count: 0,
                    };
                    let ok = client.unary(request).await.is_ok();
                    if measuring.load(Relaxed) {
                        match ok {
                            true => done.fetch_add(1, Relaxed),
                            false => failed.fetch_add(1, Relaxed),
                        };
                    }
                }
            })
        })
        .collect();
    // A short warm-up: connections, latency estimates, the first probe answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    measuring.store(true, Relaxed);
    let start = Instant::now();
    tokio::time::sleep(secs).await;
    measuring.store(false, Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    for c in callers {
        let _ = tokio::time::timeout(DEADLINE, c).await;
    }
    (done.load(Relaxed) as f64 / elapsed, failed.load(Relaxed))
}

fn main() {
    let work = Duration::from_micros(env("CPU_WORK_US", 300));
    let rounds: usize = env("CPU_ROUNDS", 3);
    let secs = Duration::from_secs(env("CPU_SECS", 4));
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let mut endpoints = Vec::new();
    for _ in 0..SERVERS {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        endpoints.push(Endpoint::new(listener.local_addr().expect("addr")).expect("endpoint"));
        servers.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = tonic::transport::Server::builder()
                .layer(OrcaLayer::new())
                .add_service(EchoServer::new(Busy { work }))
                .serve_with_incoming(incoming)
                .await;
        });
    }
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let arms: [Arm; 3] = [
        ("p2c PeakEWMA (default)", || {
            Policy::p2c_peak_ewma(PeakEwma::default())
        }),
        ("p2c in-flight", Policy::p2c_in_flight),
        ("prequal", || Policy::prequal(Prequal::default())),
    ];
    let mut totals = vec![(0.0f64, 0u64); arms.len()];
    println!(
        "{SERVERS} CPU-bound servers ({} µs per call), {CALLERS} closed-loop callers, one machine",
        work.as_micros()
    );
    println!();
    println!("| round | {} |", arms.map(|a| a.0).join(" | "));
    println!("|---|{}", "---:|".repeat(arms.len()));
    for round in 1..=rounds {
        let mut row = Vec::new();
        for (i, (_, policy)) in arms.iter().enumerate() {
            let (rate, failed) = client.block_on(run(policy(), &endpoints, secs));
            totals[i].0 += rate;
            totals[i].1 += failed;
            row.push(format!("{rate:.0}/s"));
        }
        println!("| {round} | {} |", row.join(" | "));
    }
    let base = totals[0].0.max(1e-9);
    let ratios: Vec<String> = totals
        .iter()
        .map(|(t, f)| format!("{:.3}× ({f} failed)", t / base))
        .collect();
    println!("| vs p2c PeakEWMA | {} |", ratios.join(" | "));
}
