//! What configured retries and hedging (gRPC A6) buy, against real Echo servers on 127.0.0.1.
//!
//! 1. **Kill 1 of 3 under 64 calls in flight**: failed calls without a policy and with a
//!    retry policy on `UNAVAILABLE` (4 attempts). Each server holds a call 5 ms.
//! 2. **One of 3 backends 10 ms slower, 64 in flight**: p50 / p99 and calls sent per call,
//!    for all-fast servers, for one slow server without hedging, and with hedging (2 attempts)
//!    after a delay equal to the all-fast p95. Both with round robin (which sends the slow
//!    server its third) and with the default p2c over PeakEWMA (which mostly avoids it).
//!
//! ```text
//! cargo run --release --example retries
//! RETRIES_CALLS=2000 cargo run --example retries   # the short form CI runs
//! ```
//!
//! Bounded: `RETRIES_CALLS` calls per row (default 20 000); every wait has a timeout.

use std::time::{Duration, Instant};

use tonic::Code;
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::method_config::{HedgingPolicy, MethodConfig, MethodName, RetryPolicy};
use tower_lb::{Balancer, Builder, Policy};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

const IN_FLIGHT: usize = 64;

fn calls() -> usize {
    std::env::var("RETRIES_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn start(n: usize, delay: Duration) -> Vec<TestServer> {
    (0..n)
        .map(|i| {
            let s = TestServer::start(&format!("s{i}")).expect("start a server");
            s.set_delay(delay);
            s
        })
        .collect()
}

async fn balancer(builder: Builder, servers: &[TestServer]) -> Balancer {
    let endpoints = servers.iter().map(|s| Endpoint::new(s.addr()).unwrap());
    let balancer = builder.build(fixed(endpoints)).expect("build");
    balancer
        .wait_ready(servers.len(), Duration::from_secs(10))
        .await
        .expect("servers ready");
    balancer
}

/// `total` calls from `IN_FLIGHT` callers; each call's latency, and how many failed.
/// With a `victim`, it is killed once it has taken a sixth of the calls (half its share).
async fn run(
    balancer: &Balancer,
    total: usize,
    victim: Option<TestServer>,
) -> (Vec<Duration>, usize) {
    let per_caller = total / IN_FLIGHT;
    let callers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let mut client = EchoClient::new(balancer.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_caller);
                let mut failed = 0;
                for _ in 0..per_caller {
                    let began = Instant::now();
                    let request = EchoRequest {
                        message: "hi".into(),
                        stream_count: 0,
                    };
                    match client.unary(request).await {
                        Ok(_) => latencies.push(began.elapsed()),
                        Err(_) => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    if let Some(victim) = victim {
        let until = Instant::now() + Duration::from_secs(60);
        while victim.calls() < (total / 6) as u64 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        victim.kill();
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    for caller in callers {
        let (l, f) = tokio::time::timeout(Duration::from_secs(300), caller)
            .await
            .expect("callers finish")
            .expect("caller task");
        latencies.extend(l);
        failed += f;
    }
    latencies.sort();
    (latencies, failed)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn every_method() -> MethodName {
    MethodName::service("echo.Echo")
}

#[tokio::main]
async fn main() {
    let total = calls();
    println!("## Kill 1 of 3 under {IN_FLIGHT} calls in flight ({total} calls, 5 ms each)\n");
    println!("| policy | failed calls | configured retries |");
    println!("|---|---:|---:|");
    for with_policy in [false, true] {
        let mut servers = start(3, Duration::from_millis(5));
        let mut builder = Balancer::builder();
        if with_policy {
            builder = builder.method_config(
                MethodConfig::new([every_method()]).retry_policy(
                    RetryPolicy::new(4, [Code::Unavailable])
                        .initial_backoff(Duration::from_millis(5))
                        .max_backoff(Duration::from_millis(50)),
                ),
            );
        }
        let balancer = balancer(builder, &servers).await;
        let victim = servers.remove(1);
        let (_, failed) = run(&balancer, total, Some(victim)).await;
        let name = if with_policy {
            "retry on UNAVAILABLE, 4 attempts"
        } else {
            "none"
        };
        println!(
            "| {name} | {failed} | {} |",
            balancer.snapshot().configured_retries
        );
    }

    println!("\n## One of 3 backends 10 ms slower, {IN_FLIGHT} in flight ({total} calls a row)\n");
    println!(
        "| policy | servers | hedging | p50 ms | p99 ms | p99 / all-fast p99 | calls sent per call |"
    );
    println!("|---|---|---|---:|---:|---:|---:|");
    for (policy_name, policy) in [
        ("round robin", Policy::round_robin()),
        ("p2c PeakEWMA", Policy::default()),
    ] {
        let builder = || Balancer::builder().policy(policy.clone());
        // All fast: the reference, and the hedging delay (its p95).
        let servers = start(3, Duration::ZERO);
        let b = balancer(builder(), &servers).await;
        let (fast, _) = run(&b, total, None).await;
        let (fast_p95, fast_p99) = (pct(&fast, 0.95), pct(&fast, 0.99));
        let row = |servers: &str, hedging: &str, l: &[Duration], sent: f64| {
            println!(
                "| {policy_name} | {servers} | {hedging} | {} | {} | {:.2} | {sent:.3} |",
                ms(pct(l, 0.5)),
                ms(pct(l, 0.99)),
                pct(l, 0.99).as_secs_f64() / fast_p99.as_secs_f64()
            );
        };
        row("all fast", "none", &fast, 1.0);
        drop((b, servers));
        for hedge in [false, true] {
            let servers = start(3, Duration::ZERO);
            servers[0].set_delay(Duration::from_millis(10));
            let mut builder = builder();
            if hedge {
                builder = builder.method_config(
                    MethodConfig::new([every_method()])
                        .hedging_policy(HedgingPolicy::new(2, fast_p95)),
                );
            }
            let b = balancer(builder, &servers).await;
            let (l, failed) = run(&b, total, None).await;
            assert_eq!(failed, 0, "no call fails here");
            let sent = servers.iter().map(TestServer::calls).sum::<u64>() as f64 / l.len() as f64;
            let hedging = if hedge {
                format!("2 attempts after {} ms (all-fast p95)", ms(fast_p95))
            } else {
                "none".into()
            };
            row("one 10 ms slower", &hedging, &l, sent);
        }
    }
}
