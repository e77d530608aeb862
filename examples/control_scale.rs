//! The control path at scale, with in-process endpoints (no sockets, so the balancer's own
//! work is what is measured): how long N endpoints take from `build()` to all ready on a
//! one-worker and a two-worker runtime, the CPU that costs, how late a 1 ms timer on the same
//! runtime runs meanwhile, and how long one more endpoint then takes to be published.
//!
//! Then the same with real endpoints: `SCALE_REAL` tonic Echo listeners on 127.0.0.1, served by
//! two child processes (this program run again), each endpoint its own TCP + HTTP/2
//! connection; the CPU column is the client process's alone.
//!
//! `cargo run --release --example control_scale` (sizes: `SCALE_N=1000,10000,100000`, real
//! endpoints `SCALE_REAL=10000`, 0 for none; give up on a size after `SCALE_LIMIT_SECS`,
//! default 60; `SCALE_SHOW=1` prints each of the twelve single inserts' times). Real endpoints
//! need twice their number in file descriptors (`ulimit -n`).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use tower_lb::discover::{Change, Endpoint};
use tower_lb::transport::ServiceConnector;
use tower_lb::{Balancer, Policy};
use tower_lb_testkit::discovery;

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

struct Row {
    n: usize,
    workers: usize,
    ready: Option<Duration>,
    cpu: Option<Duration>,
    worst_timer_lag: Duration,
    /// Median and most, over [`ONE_MORE_TIMES`] single inserts.
    one_more: Option<(Duration, Duration)>,
}

/// How many single inserts after a quiet spell are timed at each size.
const ONE_MORE_TIMES: usize = 12;

fn measure(n: usize, workers: usize, policy: &Policy, limit: Duration) -> Row {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime");
    let cpu_before = cpu_time();
    runtime.block_on(async {
        let (ticker, lag) = lag_ticker();
        let (tx, changes) = discovery::channel();
        for i in 0..n {
            let (key, endpoint) = discovery::numbered(i);
            tx.send(Change::Insert(key, endpoint)).expect("open");
        }
        let start = Instant::now();
        let balancer: Balancer<_> = Balancer::builder()
            .policy(policy.clone())
            .limits(tower_lb::Limits::default().max_endpoints(n + ONE_MORE_TIMES))
            .build_with(
                ServiceConnector::new(|_: &Endpoint| tower::service_fn(answer)),
                changes,
            )
            .expect("balancer");
        let ready = wait_for(&balancer, n, start + limit).await;
        let cpu = cpu_time().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        let worst_timer_lag = Duration::from_micros(lag.load(Ordering::Relaxed));
        let one_more = match ready {
            Some(_) => {
                // After a quiet spell, as a change in a running service would come; several
                // times, since one sample says little about a shared machine.
                let mut took = Vec::with_capacity(ONE_MORE_TIMES);
                for k in 0..ONE_MORE_TIMES {
                    tokio::time::sleep(Duration::from_millis(if k == 0 {
                        500
                    } else {
                        100 + 37 * k as u64 % 150
                    }))
                    .await;
                    let (key, endpoint) = discovery::numbered(n + k);
                    let at = Instant::now();
                    tx.send(Change::Insert(key, endpoint)).expect("open");
                    // Woken by the publish itself: a timer's 1 ms tick would be the
                    // measurement's floor.
                    match balancer.wait_ready(n + k + 1, limit).await {
                        Ok(_) => took.push(at.elapsed()),
                        Err(_) => break,
                    }
                }
                if std::env::var_os("SCALE_SHOW").is_some() {
                    eprintln!("{n} endpoints, {workers} workers, one more, each: {took:?}");
                }
                took.sort();
                (took.len() == ONE_MORE_TIMES).then(|| (took[took.len() / 2], took[took.len() - 1]))
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

/// A 1 ms ticker on the current runtime: the most it ran late (µs) is how long something held
/// the worker it needed.
fn lag_ticker() -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
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
    (ticker, lag)
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
        tokio::time::sleep(Duration::from_micros(50)).await;
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

/// The environment variable that makes this program a child serving that many listeners.
const CHILD: &str = "CONTROL_SCALE_CHILD";

/// Child mode: serves Echo on `n` listeners on 127.0.0.1, prints `addr=` for each, and runs
/// until its standard input closes (the parent exits or drops it).
fn serve_child(n: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut out = String::new();
        for i in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            out.push_str(&format!("addr={}\n", listener.local_addr().expect("addr")));
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(tower_lb_testkit::echo_service(&format!("s{i}")))
                    .serve_with_incoming(incoming),
            );
        }
        print!("{out}");
        println!("ready");
        // Until the parent goes away.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await;
    });
}

/// Starts the child processes serving `n` listeners in all; returns them and the addresses.
fn start_children(n: usize) -> (Vec<std::process::Child>, Vec<std::net::SocketAddr>) {
    use std::io::BufRead;
    let (mut children, mut addrs) = (Vec::new(), Vec::new());
    for share in [n / 2, n - n / 2] {
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env(CHILD, share.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("child");
        let stdout = child.stdout.take().expect("stdout");
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line == "ready" {
                break;
            }
            if let Some(addr) = line.strip_prefix("addr=") {
                addrs.push(addr.parse().expect("address"));
            }
        }
        children.push(child);
    }
    (children, addrs)
}

/// Real endpoints: from `build()` to all connected.
fn measure_real(addrs: &[std::net::SocketAddr], workers: usize, limit: Duration) -> Row {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime");
    let cpu_before = cpu_time();
    let n = addrs.len();
    runtime.block_on(async {
        let (ticker, lag) = lag_ticker();
        let start = Instant::now();
        let endpoints = addrs.iter().map(|a| Endpoint::new(*a).expect("valid"));
        let balancer: Balancer = Balancer::builder()
            .limits(tower_lb::Limits::default().max_endpoints(n + 1))
            .build(tower_lb::discover::fixed(endpoints))
            .expect("balancer");
        let ready = wait_for(&balancer, n, start + limit).await;
        let cpu = cpu_time().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        ticker.abort();
        Row {
            n,
            workers,
            ready,
            cpu,
            worst_timer_lag: Duration::from_micros(lag.load(Ordering::Relaxed)),
            one_more: None,
        }
    })
}

fn main() {
    if let Some(n) = std::env::var(CHILD).ok().and_then(|n| n.parse().ok()) {
        return serve_child(n);
    }
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
        "| policy | endpoints | workers | build → all ready | CPU | worst 1 ms timer lag | one more after a quiet spell, published: median / most of 12 |"
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
                    row.one_more.map_or("gave up".into(), |(m, x)| format!(
                        "{} / {}",
                        show(Some(m)),
                        show(Some(x))
                    )),
                );
            }
        }
    }
    let real: usize = std::env::var("SCALE_REAL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    if real > 0 {
        let (mut children, addrs) = start_children(real);
        println!();
        println!(
            "real endpoints: {} tonic Echo listeners on 127.0.0.1 in 2 child processes; the balancer's defaults (p2c PeakEWMA, 32 connections at a time)",
            addrs.len()
        );
        println!();
        println!(
            "| endpoints | workers | build → all connected | client CPU | worst 1 ms timer lag |"
        );
        println!("|---:|---:|---:|---:|---:|");
        for workers in [1, 2] {
            let row = measure_real(&addrs, workers, limit);
            println!(
                "| {} | {} | {} | {} | {} |",
                row.n,
                row.workers,
                show(row.ready),
                show(row.cpu),
                show(Some(row.worst_timer_lag)),
            );
        }
        for child in &mut children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
