//! Soak: millions of calls through one balancer under discovery churn and server kills,
//! checking that resident memory, tokio tasks and open sockets stay flat (issue 6, item 2).
//!
//! ```text
//! cargo run --release --example soak                       # 10 million calls
//! SOAK_CALLS=200000 cargo run --all-features --example soak  # the short form CI runs
//! ```
//!
//! The traffic is the chaos scenario (`tower_lb_testkit::chaos`) without the blackout: 5 real
//! tonic servers (one 20 ms slow, one failing 30 % of its calls), `SOAK_CALLERS` callers,
//! discovery churn every 10 ms (weight changes, removes and re-inserts, extra keys), and one
//! server killed and restarted on its address every `SOAK_KILL_EVERY_MS`. Every call's
//! outcome is counted as in the chaos test, and an unexpected or lost call fails the soak too.
//!
//! Measured before anything starts, at the end of the warm-up (5 % of the calls, at least
//! 20 000), when the last call is done with the balancer and the servers still up, and after
//! both are dropped. The checks compare the warm-up end with the last call:
//!
//! * resident memory, from `/proc/self/status` (`VmRSS`; Linux only, "n/a" elsewhere): must
//!   grow less than 10 %;
//! * tokio tasks alive on this runtime, callers left out (the servers run on their own
//!   runtimes; while calls run, hyper adds one task per request in flight, so only the count
//!   at the last call is checked): at most `4 × keys + 8`, where `keys` is the most endpoints discovery can hold
//!   at once (one per server plus two extra keys) — the control task, and per endpoint its
//!   connection task, hyper's connection task, and room for one draining connection's;
//! * open sockets, from `/proc/self/fd` (Linux only), beyond those open before the start: at
//!   most `4 × keys + servers` — per
//!   endpoint one live and one draining connection, each with its client and its server end in
//!   this process, and one listener per server.
//!
//! Neither bound depends on the number of calls, kills or changes: a leak of one task or one
//! socket per kill, per discovery change or per thousand calls crosses it in a long soak.
//! After the run (balancer dropped, servers stopped) both are measured again.
//!
//! Environment: `SOAK_CALLS` (default 10 000 000), `SOAK_CALLERS` (64), `SOAK_SECS` (a time
//! bound, default 3600: the soak stops there even if calls are left), `SOAK_KILL_EVERY_MS`
//! (2000), `SOAK_SEED`.

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tower_lb_testkit::chaos::{Config, Run, env_u64};

/// The most keys discovery holds at once: one per server, plus the churn's two extra keys.
const EXTRA_KEYS: usize = 2;
/// Share of the calls that warm up (allocator arenas, connections, PeakEWMA) before the first
/// measurement; at least [`MIN_WARM_UP`] calls (half the calls at most), so the short form
/// does not measure a cold start.
const WARM_UP: f64 = 0.05;
const MIN_WARM_UP: u64 = 20_000;
/// The largest RSS growth allowed after the warm-up.
const MAX_RSS_GROWTH: f64 = 0.10;
/// How often progress is polled, and printed.
const POLL: Duration = Duration::from_millis(50);
const PRINT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Sample {
    calls: u64,
    at: Duration,
    rss_kib: Option<u64>,
    tasks: usize,
    sockets: Option<usize>,
}

fn sample(calls: u64, at: Duration, callers_alive: usize) -> Sample {
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    Sample {
        calls,
        at,
        rss_kib: rss_kib(),
        tasks: tasks.saturating_sub(callers_alive),
        sockets: sockets(),
    }
}

/// Resident memory in KiB (`VmRSS` of `/proc/self/status`).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Open sockets of this process (client and server ends, listeners).
fn sockets() -> Option<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count(),
    )
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn count(n: Option<usize>) -> String {
    n.map_or_else(|| "n/a".into(), |n| n.to_string())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<ExitCode, Box<dyn Error>> {
    let calls = env_u64("SOAK_CALLS", 10_000_000)?.max(100);
    let callers = env_u64("SOAK_CALLERS", 64)?.max(1) as usize;
    let secs = env_u64("SOAK_SECS", 3600)?.max(1);
    let kill_every = env_u64("SOAK_KILL_EVERY_MS", 2000)?.max(10);
    let defaults = Config::default();
    let seed = env_u64("SOAK_SEED", defaults.seed)?;
    let config = Config {
        label: "soak".into(),
        callers,
        duration: Duration::from_secs(secs),
        max_calls: calls,
        kill_every: Some(Duration::from_millis(kill_every)),
        down_for: Duration::from_millis(200),
        blackout: None,
        seed,
        ..defaults
    };
    let servers = config.servers;
    let keys = servers + EXTRA_KEYS;
    let max_tasks = 4 * keys + 8;
    let max_sockets = 4 * keys + servers;
    println!(
        "soak: {calls} calls from {callers} callers (at most {secs} s), {servers} servers, churn every \
         10 ms, a kill every {kill_every} ms; seed {seed:#x}"
    );

    let started = Instant::now();
    // What the process holds before anything starts (stdio may be sockets too).
    let before = sample(0, Duration::ZERO, 0);
    let run = Run::start(config).await?;
    let warm_at = ((calls as f64 * WARM_UP) as u64)
        .max(MIN_WARM_UP)
        .min(calls / 2);
    let mut warm = None;
    let mut last_print = Instant::now();
    let mut last_calls = 0;
    // Bounded by the callers' own end (call budget or SOAK_SECS) plus their last call's bound.
    let limit = Duration::from_secs(secs) + Duration::from_secs(30);
    while !run.callers_done() && started.elapsed() < limit {
        tokio::time::sleep(POLL).await;
        let done = run.finished_calls();
        if warm.is_none() && done >= warm_at {
            let s = sample(done, started.elapsed(), callers);
            println!(
                "warm-up done at {done} calls: RSS {}, tasks {}, sockets {}",
                mib(s.rss_kib),
                s.tasks,
                count(s.sockets)
            );
            warm = Some(s);
        }
        if last_print.elapsed() >= PRINT_EVERY {
            let rate = (done - last_calls) as f64 / last_print.elapsed().as_secs_f64();
            println!(
                "{:>6.0} s  {done:>10} calls  {rate:>7.0} calls/s  RSS {}  sockets {}",
                started.elapsed().as_secs_f64(),
                mib(rss_kib()),
                count(sockets())
            );
            last_print = Instant::now();
            last_calls = done;
        }
    }
    let end = sample(run.finished_calls(), started.elapsed(), 0);
    let report = run.finish().await;
    // Give the runtime a moment to reap the dropped balancer's tasks and sockets.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = sample(report.calls, started.elapsed(), 0);

    println!();
    println!("{report}");
    let warm = warm.unwrap_or(end);
    let growth = match (warm.rss_kib, end.rss_kib) {
        (Some(w), Some(e)) if w > 0 => Some((e as f64 - w as f64) / w as f64),
        _ => None,
    };
    let call_rate = |s: &Sample| s.calls as f64 / s.at.as_secs_f64().max(1e-9);
    println!("| point | calls | time | calls/s | RSS | tasks (callers left out) | sockets |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, s) in [
        ("before start", &before),
        ("warm-up end", &warm),
        ("last call", &end),
        ("after drop", &after),
    ] {
        println!(
            "| {name} | {} | {:.1} s | {:.0} | {} | {} | {} |",
            s.calls,
            s.at.as_secs_f64(),
            call_rate(s),
            mib(s.rss_kib),
            s.tasks,
            count(s.sockets)
        );
    }
    let between = (end.calls - warm.calls) as f64 / (end.at - warm.at).as_secs_f64().max(1e-9);
    println!(
        "RSS growth after the warm-up: {} (limit {:.0} %); {between:.0} calls/s between the two",
        growth.map_or_else(|| "n/a".into(), |g| format!("{:+.2} %", g * 100.0)),
        MAX_RSS_GROWTH * 100.0
    );

    let mut failures = report.violations();
    if let Some(g) = growth
        && g > MAX_RSS_GROWTH
    {
        failures.push(format!(
            "RSS grew {:.2} % after the warm-up (limit {:.0} %)",
            g * 100.0,
            MAX_RSS_GROWTH * 100.0
        ));
    }
    if end.tasks > max_tasks {
        failures.push(format!(
            "{} tasks alive at the last call (limit {max_tasks})",
            end.tasks
        ));
    }
    // Sockets the process held before the soak (stdio may be sockets) are not the soak's.
    if let Some(n) = end
        .sockets
        .map(|n| n.saturating_sub(before.sockets.unwrap_or(0)))
        && n > max_sockets
    {
        failures.push(format!(
            "{n} sockets opened by the soak still open at the last call (limit {max_sockets})"
        ));
    }
    if report.calls < calls {
        println!(
            "note: the time bound ended the soak after {} of {calls} calls",
            report.calls
        );
    }
    if failures.is_empty() {
        println!("soak: ok");
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &failures {
            println!("soak: FAIL: {f}");
        }
        Ok(ExitCode::FAILURE)
    }
}
