//! Where server-assisted balancing cannot help: a homogeneous, CPU-bound fleet. Four Echo
//! servers on one two-worker runtime, every call a fixed amount of arithmetic that takes
//! `CPU_WORK_US` (default 300 µs) when calibrated at start,
//! each server reporting through tower-lb's ORCA layer (which answers Prequal's probes); 32
//! closed-loop callers through one balancer on a second two-worker runtime. All of it shares
//! this machine's cores, so whatever a policy spends beside the calls (Prequal's probes, 3 per
//! call by default) is taken from the servers. Printed: calls per second for each policy,
//! interleaved over `CPU_ROUNDS` rounds (default 3) of `CPU_SECS` seconds (default 4), and
//! each policy's total over p2c PeakEWMA's.
//!
//! `CPU_ARMS` (comma-separated substrings of arm names) runs some arms only; `CPU_DEBUG` prints
//! the cores this process used in each run; `CPU_PQ_Q` and `CPU_PQ_FRESH_MS` set Prequal's
//! hot quantile and fresh-report age (for tuning).
//!
//! The servers set `TCP_NODELAY`, as every RPC server should: without it a probe's small
//! answer waits for the previous segment's ACK (Nagle's algorithm against delayed ACKs), and
//! with Prequal's probes on every connection this machine sat 60 % idle (0.76 of 2 cores
//! used, 0.40× the calls).
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
use tower_lb_testkit::settings;

const SERVERS: usize = 4;
const CALLERS: usize = 32;
const DEADLINE: Duration = Duration::from_secs(2);

/// Echo whose unary call does a fixed amount of arithmetic on the server's worker: `rounds`
/// steps calibrated at start to take `CPU_WORK_US`. Fixed work, not a wall-clock spin, so a
/// server thread the OS preempts does not count the time it waited as work done.
struct Busy {
    rounds: u64,
}

/// `rounds` steps of a xorshift generator; the result is returned so none is optimised away.
fn burn(rounds: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// How many `burn` steps take `work` on this machine (best of five timings).
fn calibrate(work: Duration) -> u64 {
    let probe = 1_000_000u64;
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(burn(std::hint::black_box(probe)));
            t.elapsed()
        })
        .min()
        .unwrap_or(Duration::from_millis(1));
    (probe as f64 * work.as_secs_f64() / best.as_secs_f64().max(1e-9)) as u64
}

#[tonic::async_trait]
impl Echo for Busy {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let x = burn(self.rounds);
        Ok(Response::new(EchoReply {
            message: format!("{}{x:x}", request.into_inner().message),
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

/// This process's user + system CPU time so far (Linux /proc; zero elsewhere).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
        .and_then(|f| Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
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
    let cpu_before = cpu_time();
    tokio::time::sleep(secs).await;
    measuring.store(false, Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    if std::env::var("CPU_DEBUG").is_ok() {
        let used = cpu_time().saturating_sub(cpu_before).as_secs_f64();
        eprintln!("cores used {:.2}", used / elapsed);
    }
    stop.store(true, Relaxed);
    for c in callers {
        let _ = tokio::time::timeout(DEADLINE, c).await;
    }
    (done.load(Relaxed) as f64 / elapsed, failed.load(Relaxed))
}

fn main() {
    let work = Duration::from_micros(settings::or("CPU_WORK_US", 300));
    let steps = calibrate(work);
    let rounds: usize = settings::or("CPU_ROUNDS", 3);
    let secs = Duration::from_secs(settings::or("CPU_SECS", 4));
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
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let _ = tonic::transport::Server::builder()
                .layer(OrcaLayer::new())
                .add_service(EchoServer::new(Busy { rounds: steps }))
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
        ("prequal", || {
            Policy::prequal(
                Prequal::default()
                    .hot_quantile(settings::or("CPU_PQ_Q", 0.84))
                    .unwrap()
                    .fresh_report(Duration::from_millis(settings::or("CPU_PQ_FRESH_MS", 5))),
            )
        }),
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
        for (i, (name, policy)) in arms.iter().enumerate() {
            // An empty list runs every arm, as an unset one does.
            if let Some(only) = settings::list("CPU_ARMS").filter(|l| !l.is_empty())
                && !only.iter().any(|w| name.contains(w.as_str()))
            {
                row.push("–".to_owned());
                continue;
            }
            let (rate, failed) = client.block_on(run(policy(), &endpoints, secs));
            totals[i].0 += rate;
            totals[i].1 += failed;
            row.push(format!("{rate:.0}/s"));
        }
        println!("| {round} | {} |", row.join(" | "));
    }
    // No ratio where an arm, or the baseline, did not run (`CPU_ARMS`).
    let base = totals[0].0;
    let ratios: Vec<String> = totals
        .iter()
        .map(|&(t, f)| match base > 0.0 && t > 0.0 {
            true => format!("{:.3}× ({f} failed)", t / base),
            false => "–".to_owned(),
        })
        .collect();
    println!("| vs p2c PeakEWMA | {} |", ratios.join(" | "));
}
