//! Figures for endpoint health: what outlier detection saves when one backend fails every call,
//! and what killing a backend costs. Three embedded backends on 127.0.0.1 answering after 1 ms,
//! 64 concurrent callers (64 calls in flight), a fresh balancer and fresh servers per run.
//!
//! ```text
//! cargo run --release --example health_figures
//! FIGURES_STRICT=1 cargo run --release --example health_figures   # exit 1 if a target is missed
//! ```
//!
//! 1. **One backend fails every call.** After a 1 s warm-up, one backend is flipped to fail
//!    every call (`set_fail_all(true)`) and the load goes on for 5 s. With outlier detection
//!    (the default) the failed calls are split at the moment `Balancer::endpoints()` shows the
//!    backend `Ejected` (polled every 1 ms): failures of calls *issued* before it, and failed
//!    calls per second issued after it (target: 0). The same run with
//!    `OutlierDetection::disabled()` is the baseline: about a third of the calls fail.
//! 2. **One backend killed.** After the warm-up one backend is killed hard (`kill()`) and the
//!    load goes on for 2 s. Every failed call, against the calls in flight on that backend just
//!    before the kill (target: at most those, plus one call per caller that could be dispatched
//!    to it while the kill happens, 64 / 3 = 21).
//!
//! Each load run stops at its deadline or after `MAX_CALLS` calls, and each call after 2 s.
//! `RUST_LOG=tower_lb=info` shows the balancer's own account of the ejection on stderr.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;
use tower_lb::health::{Health, OutlierDetection};
use tower_lb::{Balancer, discover};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;
use tracing_subscriber::EnvFilter;

const BACKENDS: usize = 3;
const CALLERS: usize = 64;
const DELAY: Duration = Duration::from_millis(1);
const WARM_UP: Duration = Duration::from_secs(1);
/// Scenario 1: load after the flip.
const AFTER_FLIP: Duration = Duration::from_secs(5);
/// Scenario 2: load after the kill.
const AFTER_KILL: Duration = Duration::from_secs(2);
/// Calls per load run at most, whatever the time left.
const MAX_CALLS: u64 = 2_000_000;
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Scenario 2's allowance over the calls in flight on the victim: one call per caller that
/// the balancer may dispatch to it while the kill happens (its share of the callers).
const KILL_ALLOWANCE: usize = CALLERS / BACKENDS;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One call of a load run.
struct Call {
    issued: Instant,
    failed: bool,
}

/// What a load run did.
struct Load {
    calls: Vec<Call>,
    start: Instant,
    end: Instant,
}

impl Load {
    fn rate(&self) -> f64 {
        self.calls.len() as f64 / (self.end - self.start).as_secs_f64()
    }
    /// Failed calls issued in `from..to`.
    fn failed_between(&self, from: Instant, to: Instant) -> usize {
        let issued = |c: &&Call| c.issued >= from && c.issued < to;
        self.calls
            .iter()
            .filter(|c| c.failed)
            .filter(issued)
            .count()
    }
    fn failed(&self) -> usize {
        self.calls.iter().filter(|c| c.failed).count()
    }
}

/// Runs `callers` concurrent callers, each making one unary call after another, for `run_for`
/// or until `MAX_CALLS` calls in total; records when each call was issued and whether it failed.
async fn load(balancer: &Balancer, callers: usize, run_for: Duration) -> Res<Load> {
    let start = Instant::now();
    let end = start + run_for;
    let issued = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let mut client = EchoClient::new(balancer.clone());
            let issued = issued.clone();
            tokio::spawn(async move {
                let mut calls = Vec::new();
                while Instant::now() < end && issued.fetch_add(1, Relaxed) < MAX_CALLS {
                    let call = Call {
                        issued: Instant::now(),
                        failed: true,
                    };
                    let request = EchoRequest {
                        message: "ping".into(),
                        stream_count: 0,
                    };
                    let result = tokio::time::timeout(CALL_TIMEOUT, client.unary(request)).await;
                    let failed = !matches!(result, Ok(Ok(_)));
                    calls.push(Call { failed, ..call });
                }
                calls
            })
        })
        .collect();
    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(task.await?);
    }
    Ok(Load {
        calls,
        start,
        end: Instant::now(),
    })
}

/// Fresh backends and a fresh balancer over them, all endpoints connected.
async fn setup(outlier: OutlierDetection) -> Res<(Vec<TestServer>, Balancer)> {
    let mut servers = Vec::new();
    for i in 0..BACKENDS {
        let server = TestServer::start(&format!("backend-{}", i + 1))?;
        server.set_delay(DELAY);
        servers.push(server);
    }
    let endpoints = servers
        .iter()
        .map(|s| discover::Endpoint::new(s.addr()))
        .collect::<Result<Vec<_>, _>>()?;
    let balancer = Balancer::builder()
        .outlier_detection(outlier)
        .build(discover::fixed(endpoints))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while balancer.ready_len() < BACKENDS {
        if Instant::now() > deadline {
            return Err("the backends did not connect within 5 s".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok((servers, balancer))
}

/// Stops the servers off the runtime's workers (each kill joins the server's thread).
async fn teardown(servers: Vec<TestServer>) -> Res<()> {
    tokio::task::spawn_blocking(move || drop(servers)).await?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Scenario 1: one table row; `true` if its target is met (the baseline has none).
async fn failing_backend(outlier: OutlierDetection, label: &str) -> Res<bool> {
    let detecting = outlier != OutlierDetection::disabled();
    let (servers, balancer) = setup(outlier).await?;
    let victim = &servers[0];
    let event = async {
        tokio::time::sleep(WARM_UP).await;
        victim.set_fail_all(true);
        let flipped = Instant::now();
        let give_up = flipped + AFTER_FLIP;
        let mut ejected = None;
        while detecting && Instant::now() < give_up {
            let health = balancer
                .snapshot()
                .endpoints
                .into_iter()
                .find(|s| s.addr == victim.addr());
            if health.is_some_and(|s| s.health == Health::Ejected) {
                ejected = Some(Instant::now());
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (flipped, ejected)
    };
    let (load, (flipped, ejected)) =
        tokio::join!(load(&balancer, CALLERS, WARM_UP + AFTER_FLIP), event);
    let load = load?;
    // Calls issued after the ejection was seen (with it) or after the flip (baseline), until
    // the load's deadline.
    let after_from = ejected.unwrap_or(flipped);
    let window = (load.start + WARM_UP + AFTER_FLIP).saturating_duration_since(after_from);
    let failed_after = load.failed_between(after_from, load.end);
    let calls_after = load.calls.iter().filter(|c| c.issued >= after_from).count();
    let per_sec = failed_after as f64 / window.as_secs_f64().max(1e-3);
    let (seen, before, met) = match ejected {
        Some(at) => (
            ms(at - flipped),
            load.failed_between(load.start, at).to_string(),
            failed_after == 0,
        ),
        None if detecting => ("never".into(), "–".into(), false),
        None => ("never (off)".into(), "–".into(), true),
    };
    let target = match (detecting, met) {
        (false, _) => "none (baseline)",
        (true, true) => "0/s: met",
        (true, false) => "0/s: MISSED",
    };
    println!(
        "| {label} | {} | {:.0} | {} | {seen} | {before} | {per_sec:.1}/s: {failed_after} of {calls_after} in {:.2} s ({:.1} %) | {target} |",
        load.calls.len(),
        load.rate(),
        load.failed(),
        window.as_secs_f64(),
        failed_after as f64 * 100.0 / calls_after.max(1) as f64,
    );
    drop(balancer);
    teardown(servers).await?;
    Ok(met)
}

/// Scenario 2: one table row; `true` if its target is met.
async fn killed_backend() -> Res<bool> {
    let (mut servers, balancer) = setup(OutlierDetection::default()).await?;
    let victim = servers.remove(0);
    let addr = victim.addr();
    let event = async {
        tokio::time::sleep(WARM_UP).await;
        let on_client = balancer
            .snapshot()
            .endpoints
            .into_iter()
            .find(|s| s.addr == addr);
        let on_server = victim.in_flight();
        let started = Instant::now();
        // `kill` joins the server's thread: keep it off the runtime's workers.
        tokio::task::spawn_blocking(move || victim.kill()).await?;
        Res::Ok((
            on_server,
            on_client.map_or(0, |s| s.in_flight),
            started,
            Instant::now(),
        ))
    };
    let (load, kill) = tokio::join!(load(&balancer, CALLERS, WARM_UP + AFTER_KILL), event);
    let (load, (on_server, on_client, started, killed)) = (load?, kill?);
    let health = balancer
        .snapshot()
        .endpoints
        .into_iter()
        .find(|s| s.addr == addr);
    let health = health.map_or("gone".into(), |s| format!("{:?}, {:?}", s.state, s.health));
    let failed = load.failed();
    let budget = on_server + KILL_ALLOWANCE;
    let met = failed <= budget;
    println!(
        "| {} | {:.0} | {on_server} / {on_client} | {} | {failed} | {} / {} / {} | {health} | ≤ {on_server} + {KILL_ALLOWANCE} = {budget}: {} |",
        load.calls.len(),
        load.rate(),
        ms(killed - started),
        load.failed_between(load.start, started),
        load.failed_between(started, killed),
        load.failed_between(killed, load.end),
        if met { "met" } else { "MISSED" },
    );
    drop(balancer);
    teardown(servers).await?;
    Ok(met)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) if std::env::var_os("FIGURES_STRICT").is_some_and(|v| v == "1") => {
            eprintln!("health_figures: a target was missed (FIGURES_STRICT=1)");
            ExitCode::FAILURE
        }
        Ok(false) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("health_figures: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Res<bool> {
    println!("Reproduce: `cargo run --release --example health_figures`");
    println!(
        "{BACKENDS} backends on 127.0.0.1 answering after {DELAY:?}, {CALLERS} concurrent callers, \
         fresh servers and balancer per row.\n"
    );
    println!(
        "**1. One backend fails every call** (flipped after a {WARM_UP:?} warm-up, then {AFTER_FLIP:?} of load)\n"
    );
    println!(
        "| outlier detection | calls | calls/s | failed | flip → `Ejected` seen | failed, issued before seen | failed, issued after seen (baseline: after the flip) | target |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let ejecting = failing_backend(OutlierDetection::default(), "on (default)").await?;
    failing_backend(OutlierDetection::disabled(), "off (baseline)").await?;
    println!(
        "\n**2. One backend killed** (after a {WARM_UP:?} warm-up, then {AFTER_KILL:?} of load; failed calls by when they were issued)\n"
    );
    println!(
        "| calls | calls/s | in flight on it before the kill (server / balancer) | kill took | failed | before / during / after the kill | its state after | target |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|---|");
    let killing = killed_backend().await?;
    Ok(ejecting && killing)
}
