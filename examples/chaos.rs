//! The chaos scenario, long form: an all-healthy run, then the same callers under faults —
//! servers killed and restarted, discovery churn every 10 ms, one slow server, one answering
//! errors, one blackout — and a table of every call's outcome and the latency of both.
//!
//! ```text
//! cargo run --release --example chaos                          # 30 s each, 256 callers
//! CHAOS_SECS=60 CHAOS_CALLERS=256 cargo run --release --example chaos
//! ```
//!
//! `tests/chaos.rs` is the short form CI runs (5 s, 64 callers). What counts as an allowed
//! failure, and the balancer's settings, are documented in `tower_lb_testkit::chaos`.
//!
//! Environment: `CHAOS_SECS` (each run's length, default 30), `CHAOS_CALLERS` (256),
//! `CHAOS_MAX_CALLS` (a call budget per run, default 5 000 000), `CHAOS_KILL_EVERY_MS`
//! (400), `CHAOS_SEED`. Exits non-zero if the chaos run broke one of the scenario's promises
//! (a panic, a lost or unexpected call, a kill never noticed, a blackout without fail-fast or
//! recovery, calls left in flight). Latency is printed, never checked.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use tower_lb_testkit::chaos::{self, Config, env_u64};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<ExitCode, Box<dyn Error>> {
    let defaults = Config::default();
    let config = Config {
        duration: Duration::from_secs(env_u64("CHAOS_SECS", 30)?.max(1)),
        callers: env_u64("CHAOS_CALLERS", 256)?.max(1) as usize,
        max_calls: env_u64("CHAOS_MAX_CALLS", 5_000_000)?.max(1),
        kill_every: Some(Duration::from_millis(
            env_u64("CHAOS_KILL_EVERY_MS", 400)?.max(10),
        )),
        seed: env_u64("CHAOS_SEED", defaults.seed)?,
        ..defaults
    };
    println!(
        "chaos: {} servers, {} callers, {:?} per run, a kill every {:?} (down {:?}), churn every \
         {:?}, blackout {:?}, seed {:#x}",
        config.servers,
        config.callers,
        config.duration,
        config.kill_every.unwrap_or_default(),
        config.down_for,
        config.churn_every.unwrap_or_default(),
        config.blackout,
        config.seed
    );
    let healthy = chaos::run(config.healthy()).await?;
    println!("{healthy}");
    let faulty = chaos::run(config).await?;
    println!("{faulty}");
    println!("{}", chaos::compare(&healthy, &faulty));
    let violations: Vec<_> = healthy
        .violations()
        .into_iter()
        .chain(faulty.violations())
        .collect();
    if violations.is_empty() {
        println!("chaos: ok");
        Ok(ExitCode::SUCCESS)
    } else {
        for v in &violations {
            println!("chaos: FAIL: {v}");
        }
        Ok(ExitCode::FAILURE)
    }
}
