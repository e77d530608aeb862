//! Balancing by what the servers report (ORCA, gRPC A51/A58), against real Echo servers on
//! 127.0.0.1 of capacity 1:2:4 — 1, 2 and 4 calls at once, each call `ORCA_WORK_MS` of work
//! (a sleep), the rest queueing inside the server — under open-loop load at `ORCA_LOAD` (default 0.4) of the
//! total capacity. Each server reports `OrcaLayer::utilization_from_in_flight(slots)`.
//!
//! Arms: Prequal (probes answered by the same layer), weighted round robin by the reports
//! (A58; blackout 2 s instead of 10 s so the run stays short), plain round robin, p2c over
//! PeakEWMA. For each: every server's utilisation
//! (slot-time used / slot-time available over the measured window), max/min of those, the
//! calls' p50 / p99 (client side, queueing included) and calls that missed their 2 s deadline.
//!
//! ```text
//! cargo run --release --example orca
//! ORCA_WARMUP_S=3 ORCA_MEASURE_S=3 cargo run --example orca   # the short form CI runs
//! ```
//!
//! Bounded: `ORCA_WARMUP_S` (default 5) + `ORCA_MEASURE_S` (default 15) seconds per arm, then
//! at most 2 s for the last calls; every call has a 2 s deadline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tower_lb::discover::{Endpoint, fixed};
use tower_lb::{Balancer, PeakEwma, Policy, Prequal, WeightedRoundRobin};
use tower_lb_testkit::capacity::CapacityServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;
use tower_lb_testkit::settings;

const SLOTS: [u32; 3] = [1, 2, 4];
const DEADLINE: Duration = Duration::from_secs(2);

struct Row {
    name: &'static str,
    utilization: Vec<f64>,
    p50: Duration,
    p99: Duration,
    missed: usize,
    calls: usize,
}

async fn arm(name: &'static str, policy: Policy, work: Duration, load: f64) -> Row {
    let servers: Vec<CapacityServer> = SLOTS
        .iter()
        .enumerate()
        .map(|(i, &slots)| CapacityServer::start(&format!("s{i}"), slots, work).expect("start"))
        .collect();
    let endpoints = servers.iter().map(|s| Endpoint::new(s.addr()).unwrap());
    let balancer = Balancer::builder()
        .policy(policy)
        .timeout(DEADLINE)
        .build(fixed(endpoints))
        .expect("build");
    balancer
        .wait_ready(servers.len(), Duration::from_secs(10))
        .await
        .expect("servers ready");
    let capacity: f64 = SLOTS.iter().map(|&s| f64::from(s)).sum::<f64>() / work.as_secs_f64();
    let rate = capacity * load;
    let warmup = Duration::from_secs(settings::or("ORCA_WARMUP_S", 5));
    let measure = Duration::from_secs(settings::or("ORCA_MEASURE_S", 15));
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let missed = Arc::new(Mutex::new(0usize));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let mut busy_at_start = None;
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    loop {
        // Open loop: call k is due at k / rate, whatever the previous calls are doing.
        let due = start + Duration::from_secs_f64(sent as f64 / rate);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        if busy_at_start.is_none() && Instant::now() >= measure_from {
            busy_at_start = Some(servers.iter().map(|s| s.busy()).collect::<Vec<_>>());
        }
        sent += 1;
        let mut client = EchoClient::new(balancer.clone());
        let (latencies, missed) = (latencies.clone(), missed.clone());
        let measured = due >= measure_from;
        tasks.spawn(async move {
            let t = Instant::now();
            let request = EchoRequest {
                message: String::new(),
                stream_count: 0,
            };
            let ok = client.unary(request).await.is_ok();
            if measured {
                if ok {
                    latencies.lock().unwrap().push(t.elapsed());
                } else {
                    *missed.lock().unwrap() += 1;
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let busy_at_end: Vec<Duration> = servers.iter().map(|s| s.busy()).collect();
    if std::env::var("ORCA_DEBUG").is_ok() {
        for e in balancer.snapshot().endpoints {
            eprintln!("{name} {}: {:?}", e.addr, e.server_load);
        }
    }
    let elapsed = Instant::now().duration_since(measure_from).as_secs_f64();
    // The last calls end by their deadline.
    let _ = tokio::time::timeout(DEADLINE + Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let busy_at_start = busy_at_start.unwrap_or_else(|| vec![Duration::ZERO; servers.len()]);
    let utilization = busy_at_end
        .iter()
        .zip(&busy_at_start)
        .zip(SLOTS)
        .map(|((e, s), slots)| (*e - *s).as_secs_f64() / elapsed / f64::from(slots))
        .collect();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let missed = *missed.lock().unwrap();
    Row {
        name,
        utilization,
        p50: at(0.50),
        p99: at(0.99),
        missed,
        calls: latencies.len() + missed,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let work = Duration::from_millis(settings::or("ORCA_WORK_MS", 10));
    let load: f64 = settings::or("ORCA_LOAD", 0.4);
    let wrr = WeightedRoundRobin::default().blackout_period(Duration::from_secs(2));
    let arms: [(&'static str, Policy); 4] = [
        ("prequal", Policy::prequal(Prequal::default())),
        (
            "weighted_round_robin (ORCA)",
            Policy::weighted_round_robin(wrr),
        ),
        ("round_robin", Policy::round_robin()),
        ("p2c PeakEWMA", Policy::p2c_peak_ewma(PeakEwma::default())),
    ];
    println!(
        "servers of 1, 2, 4 slots, {} ms per call, open-loop load {load} of capacity",
        work.as_millis()
    );
    println!();
    println!(
        "| policy | util 1-slot | util 2-slot | util 4-slot | max/min | p50 | p99 | missed / calls |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, policy) in arms {
        let r = arm(name, policy, work, load).await;
        let max = r.utilization.iter().copied().fold(0.0, f64::max);
        let min = r.utilization.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} ms | {:.1} ms | {} / {} |",
            r.name,
            r.utilization[0],
            r.utilization[1],
            r.utilization[2],
            max / min.max(1e-9),
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.missed,
            r.calls,
        );
    }
}
