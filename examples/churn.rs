//! Churn at scale, with in-process endpoints: N endpoints (default 10,000), 64 closed-loop
//! callers on a two-worker runtime, each call 1 ms of (sleeping) work. First a quiet phase,
//! then a churn phase in which 1 % of the endpoints per second are removed from discovery and
//! inserted again (one remove + insert pair every 1 / (0.01 N) s). Printed:
//!
//! * how long a removal takes to leave the ready set, and a re-insert to be ready in it
//!   (p50, p99, max; polled every 50 µs, so that is the resolution);
//! * calls and failed calls in each phase, and each phase's call latency p50 / p99 (the churn
//!   phase's p99 over the quiet one's is the cost of churn to callers).
//!
//! ```text
//! cargo run --release --example churn
//! CHURN_N=2000 CHURN_QUIET_S=1 CHURN_SECS=2 cargo run --release --example churn   # short form
//! ```
//!
//! Bounded: `CHURN_QUIET_S` (default 3) + `CHURN_SECS` (default 5) seconds; each wait for a
//! change gives up after 2 s (counted as "gave up").

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use tower::{Service, ServiceExt};
use tower_lb::discover::{Change, Endpoint};
use tower_lb::transport::ServiceConnector;
use tower_lb::{Balancer, Limits};
use tower_lb_testkit::discovery;
use tower_lb_testkit::settings;

type Body = Empty<Bytes>;
type Req = http::Request<Body>;
type Resp = http::Response<Body>;

const CALLERS: usize = 64;
const WORK: Duration = Duration::from_millis(1);
const GIVE_UP: Duration = Duration::from_secs(2);

/// Latencies of one phase's calls, and its failures.
#[derive(Default)]
struct Phase {
    latencies: Mutex<Vec<Duration>>,
    failed: AtomicU64,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Polls until `ready(len)` holds; how long that took, `None` after 2 s. The 50 µs sleep is
/// rounded up to tokio's 1 ms timer tick, so the times are upper bounds, to about 1 ms.
async fn until<T: tower_lb::transport::EndpointChannel>(
    balancer: &Balancer<T>,
    ready: impl Fn(usize) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if ready(balancer.ready_len()) {
            return Some(start.elapsed());
        }
        if start.elapsed() > GIVE_UP {
            return None;
        }
        tokio::time::sleep(Duration::from_micros(50)).await;
    }
}

fn summary(name: &str, mut waits: Vec<Duration>, gave_up: usize) {
    waits.sort_unstable();
    println!(
        "| {name} | {} | {} | {} | {} | {gave_up} |",
        waits.len(),
        ms(quantile(&waits, 0.5)),
        ms(quantile(&waits, 0.99)),
        ms(waits.last().copied().unwrap_or_default()),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = settings::or("CHURN_N", 10_000);
    let quiet = Duration::from_secs(settings::or("CHURN_QUIET_S", 3));
    let churn = Duration::from_secs(settings::or("CHURN_SECS", 5));
    let (tx, changes) = discovery::channel();
    for i in 0..n {
        let (key, endpoint) = discovery::numbered(i);
        tx.send(Change::Insert(key, endpoint)).expect("open");
    }
    let service = tower::service_fn(|_: Req| async {
        tokio::time::sleep(WORK).await;
        Ok::<_, Infallible>(Resp::new(Empty::new()))
    });
    let balancer: Balancer<_> = Balancer::builder()
        .limits(Limits::default().max_endpoints(n + 1))
        .build_with(ServiceConnector::new(move |_: &Endpoint| service), changes)
        .expect("balancer");
    if until(&balancer, |len| len >= n).await.is_none() {
        // Large sets take longer than one wait: keep waiting, bounded.
        let deadline = Instant::now() + Duration::from_secs(60);
        while balancer.ready_len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "{n} in-process endpoints, {CALLERS} callers, {} ms per call, 2 workers",
        WORK.as_millis()
    );

    let phases = [Arc::new(Phase::default()), Arc::new(Phase::default())];
    let current = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let mut balancer = balancer.clone();
            let (phases, current, stop) = (phases.clone(), current.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    let phase = &phases[current.load(Relaxed) as usize];
                    let t = Instant::now();
                    let ok = match balancer.ready().await {
                        Ok(svc) => svc.call(Req::new(Empty::new())).await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        phase.latencies.lock().unwrap().push(t.elapsed());
                    } else {
                        phase.failed.fetch_add(1, Relaxed);
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(quiet).await;
    current.store(1, Relaxed);
    // 1 % of n per second: one remove + insert pair every `every`.
    let every = Duration::from_secs_f64(1.0 / (0.01 * n as f64));
    let (mut removals, mut inserts, mut gave_up) = (Vec::new(), Vec::new(), [0usize; 2]);
    let start = Instant::now();
    let mut next = start;
    let mut k = 0usize;
    while start.elapsed() < churn {
        tokio::time::sleep_until(next.into()).await;
        next += every;
        // Spread over the set: a stride coprime with most n.
        let i = (k * 7_919) % n;
        k += 1;
        let (key, endpoint) = discovery::numbered(i);
        tx.send(Change::Remove(key.clone())).expect("open");
        match until(&balancer, |len| len < n).await {
            Some(d) => removals.push(d),
            None => gave_up[0] += 1,
        }
        tx.send(Change::Insert(key, endpoint)).expect("open");
        match until(&balancer, |len| len >= n).await {
            Some(d) => inserts.push(d),
            None => gave_up[1] += 1,
        }
    }
    stop.store(true, Relaxed);
    for c in callers {
        let _ = c.await;
    }

    println!();
    println!("| change | count | p50 | p99 | max | gave up (2 s) |");
    println!("|---|---:|---:|---:|---:|---:|");
    summary("removal out of the ready set", removals, gave_up[0]);
    summary("re-insert ready", inserts, gave_up[1]);
    println!();
    println!("| phase | calls | failed | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|");
    let mut p99s = Vec::new();
    for (name, phase) in ["quiet", "1 %/s churn"].iter().zip(&phases) {
        let mut l = phase.latencies.lock().unwrap().clone();
        l.sort_unstable();
        p99s.push(quantile(&l, 0.99));
        println!(
            "| {name} | {} | {} | {} | {} |",
            l.len(),
            phase.failed.load(Relaxed),
            ms(quantile(&l, 0.5)),
            ms(quantile(&l, 0.99)),
        );
    }
    println!();
    println!(
        "p99 churn / quiet: {:.2}",
        p99s[1].as_secs_f64() / p99s[0].as_secs_f64().max(1e-9)
    );
}
