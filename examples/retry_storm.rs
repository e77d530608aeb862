//! How much the retry budget holds back transparent retries in an outage.
//!
//! Eight in-process endpoints stand in for connections; a share of them hands every request
//! back unsent (a connection going away). The same calls run with the default budget (20 % of
//! calls + 10/s over 10 s) and with the budget opened wide (what the balancer did before it
//! had one: up to `unsent_retries` = 3 re-picks per call). The table shows the attempts each
//! call cost the endpoints, and how many calls failed.
//!
//! ```text
//! cargo run --release --example retry_storm
//! ```
//!
//! Bounded: `STORM_CALLS` calls per row (default 20 000), from 16 callers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{Service, ServiceExt};
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::transport::ServiceConnector;
use tower_lb::{Balancer, BoxError, Policy, RetryBudget};

const ENDPOINTS: u16 = 8;
const CALLERS: usize = 16;

/// An in-process endpoint: refuses every request unsent when `refuse`, counting attempts.
#[derive(Clone)]
struct Endpointish {
    refuse: bool,
    attempts: Arc<AtomicU64>,
}

impl Service<http::Request<String>> for Endpointish {
    type Response = http::Response<String>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.attempts.fetch_add(1, Relaxed);
        if self.refuse {
            Poll::Ready(Err("connection closing".into()))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, _: http::Request<String>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(String::new())))
    }
}

struct Row {
    attempts: u64,
    failed: u64,
    retries: u64,
    refused: u64,
    elapsed: Duration,
}

async fn run(refusing: u16, budget: RetryBudget, calls: u64) -> Result<Row, BoxError> {
    let attempts = Arc::new(AtomicU64::new(0));
    let counter = attempts.clone();
    let connector = ServiceConnector::new(move |e: &Endpoint| Endpointish {
        refuse: e.addr().port() <= refusing,
        attempts: counter.clone(),
    });
    let endpoints = (1..=ENDPOINTS)
        .map(|p| Endpoint::new(([127, 0, 0, 1], p).into()))
        .collect::<Result<Vec<_>, _>>()?;
    let balancer: Balancer<_> = Balancer::builder()
        .policy(Policy::p2c_in_flight())
        .unsent_retries(3)
        .retry_budget(budget)
        .build_with(connector, fixed(endpoints))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while balancer.ready_len() < usize::from(ENDPOINTS) {
        if Instant::now() > deadline {
            return Err("in-process endpoints never became ready".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    attempts.store(0, Relaxed);
    let failed = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let callers: Vec<_> = (0..CALLERS as u64)
        .map(|c| {
            let mut balancer = balancer.clone();
            let failed = failed.clone();
            let share = calls / CALLERS as u64 + u64::from(c < calls % CALLERS as u64);
            tokio::spawn(async move {
                for _ in 0..share {
                    let call = balancer
                        .ready()
                        .await
                        .map_err(|e| e.to_string())?
                        .call(http::Request::new(String::new()));
                    if call.await.is_err() {
                        failed.fetch_add(1, Relaxed);
                    }
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for caller in callers {
        caller.await??;
    }
    let elapsed = began.elapsed();
    let snapshot = balancer.snapshot();
    Ok(Row {
        attempts: attempts.load(Relaxed),
        failed: failed.load(Relaxed),
        retries: snapshot.retries,
        refused: snapshot.retries_refused,
        elapsed,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let calls: u64 = std::env::var("STORM_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
        .clamp(100, 10_000_000);
    let wide_open = RetryBudget::default().ratio(10.0).min_per_second(u32::MAX);
    println!(
        "{calls} calls per row, {CALLERS} callers, {ENDPOINTS} in-process endpoints, unsent_retries 3\n"
    );
    println!(
        "| refusing | budget | attempts/call | retries | refused by budget | calls failed | time |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut worst = 0.0f64;
    for refusing in [ENDPOINTS, ENDPOINTS / 2, 1] {
        for (name, budget) in [("default", RetryBudget::default()), ("none", wide_open)] {
            let row = run(refusing, budget, calls).await?;
            let per_call = row.attempts as f64 / calls as f64;
            println!(
                "| {refusing} of {ENDPOINTS} | {name} | {per_call:.2} | {} | {} | {} | {:.0?} |",
                row.retries, row.refused, row.failed, row.elapsed
            );
            if name == "default" && refusing == ENDPOINTS {
                worst = per_call;
            }
        }
    }
    // The budget's promise in a full outage: at most 1 + 20 % of calls + the floor.
    let bound = 1.0 + 0.2 + 100.0 / calls as f64;
    println!(
        "\nfull outage with the default budget: {worst:.2} attempts per call (bound {bound:.2})"
    );
    if worst > bound + 0.01 {
        return Err(format!("the budget let {worst:.2} attempts per call through").into());
    }
    Ok(())
}
