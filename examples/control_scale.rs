//! The control path at scale, with in-process endpoints (no sockets, so the balancer's own
//! work is what is measured): how long N endpoints take from `build()` to all ready on a
//! one-worker and a two-worker runtime, the CPU that costs, how late a 1 ms timer on the same
//! runtime runs meanwhile, and how long one more endpoint then takes to be published.
//!
//! `cargo run --release --example control_scale` (sizes: `SCALE_N=1000,10000,100000`;
//! give up on a size after `SCALE_LIMIT_SECS`, default 60).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use tokio::sync::mpsc;
use tower_lb::discover::{Change, Endpoint, Key};
use tower_lb::transport::ServiceConnector;
use tower_lb::{Balancer, Policy};

type Body = Empty<Bytes>;
type Req = http::Request<Body>;
type Resp = http::Response<Body>;

fn answer(_req: Req) -> Ready<Result<Resp, Infallible>> {
    ready(Ok(http::Response::new(Empty::new())))
}

/// This process's user + system CPU time so far (Linux: /proc/self/stat, in clock ticks).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn endpoint(i: usize) -> (Key, Endpoint) {
    // Distinct addresses over 127.0.0.0/8; nothing is dialled.
    let addr =
        std::net::SocketAddr::from(([127, (i >> 16) as u8, (i >> 8) as u8, i as u8], 50_000));
    (Key::from(addr), Endpoint::new(addr).expect("valid"))
}

struct Row {
    n: usize,
    workers: usize,
    ready: Option<Duration>,
    cpu: Option<Duration>,
    worst_timer_lag: Duration,
    one_more: Option<Duration>,
}

fn measure(n: usize, workers: usize, policy: &Policy, limit: Duration) -> Row {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime");
    let cpu_before = cpu_time();
    runtime.block_on(async {
        // A 1 ms ticker on the same runtime: how late it runs is how long the control task
        // holds a worker.
        let lag = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let lag = lag.clone();
            async move {
                let mut at = tokio::time::Instant::now();
                loop {
                    at += Duration::from_millis(1);
                    tokio::time::sleep_until(at).await;
                    let late = tokio::time::Instant::now().duration_since(at);
                    lag.fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                    at = tokio::time::Instant::now();
                }
            }
        });
        let (tx, rx) = mpsc::unbounded_channel::<Change>();
        for i in 0..n {
            let (key, endpoint) = endpoint(i);
            tx.send(Change::Insert(key, endpoint)).expect("open");
        }
        let discovery = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|c| (Ok::<_, Infallible>(c), rx))
        });
        let start = Instant::now();
        let balancer: Balancer<_> = Balancer::builder()
            .policy(policy.clone())
            .limits(tower_lb::Limits::default().max_endpoints(n + 1))
            .build_with(
                ServiceConnector::new(|_: &Endpoint| tower::service_fn(answer)),
                discovery,
            )
            .expect("balancer");
        let ready = wait_for(&balancer, n, start + limit).await;
        let cpu = cpu_time().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        let worst_timer_lag = Duration::from_micros(lag.load(Ordering::Relaxed));
        let one_more = match ready {
            Some(_) => {
                // After a quiet spell, as a change in a running service would come.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (key, endpoint) = endpoint(n);
                let at = Instant::now();
                tx.send(Change::Insert(key, endpoint)).expect("open");
                wait_for(&balancer, n + 1, at + limit)
                    .await
                    .map(|_| at.elapsed())
            }
            None => None,
        };
        ticker.abort();
        Row {
            n,
            workers,
            ready,
            cpu,
            worst_timer_lag,
            one_more,
        }
    })
}

/// Polls until `n` endpoints are ready; `None` past `until`.
async fn wait_for<T: tower_lb::transport::EndpointChannel>(
    balancer: &Balancer<T>,
    n: usize,
    until: Instant,
) -> Option<Duration> {
    let start = Instant::now();
    while balancer.ready_len() < n {
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Some(start.elapsed())
}

fn show(d: Option<Duration>) -> String {
    match d {
        Some(d) if d < Duration::from_millis(10) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.0} ms", d.as_secs_f64() * 1e3),
        None => "gave up".into(),
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SCALE_N")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let limit = Duration::from_secs(
        std::env::var("SCALE_LIMIT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "control path at scale, in-process endpoints; {cores} cores; `cargo run --release --example control_scale`"
    );
    println!();
    println!(
        "| policy | endpoints | workers | build → all ready | CPU | worst 1 ms timer lag | one more, after 0.5 s quiet, published |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, policy) in [
        ("p2c PeakEWMA", Policy::default()),
        ("round robin", Policy::round_robin()),
    ] {
        for &n in &sizes {
            for workers in [1, 2] {
                let row = measure(n, workers, &policy, limit);
                println!(
                    "| {name} | {} | {} | {} | {} | {} | {} |",
                    row.n,
                    row.workers,
                    show(row.ready),
                    show(row.cpu),
                    show(Some(row.worst_timer_lag)),
                    show(row.one_more),
                );
            }
        }
    }
}
