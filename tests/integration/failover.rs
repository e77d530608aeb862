//! Kill one of three servers under concurrent load: only calls in flight on it may fail,
//! calls issued after the balancer saw the refusal all succeed, and the server gets traffic
//! again when it comes back on the same port.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tower_lb::discover::fixed;
use tower_lb_testkit::TestServer;

use crate::common::*;

const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_costs_only_its_in_flight_calls_and_comes_back() {
    let mut servers = servers(3, "kill");
    for s in &servers {
        s.set_delay(Duration::from_millis(2));
    }
    let victim_addr = servers[0].addr();
    let balancer = builder()
        .ready_timeout(Duration::from_secs(2))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;

    // (issued at, failed) for every call, and the moment the balancer dropped the victim.
    let outcomes = Arc::new(Mutex::new(Vec::<(Instant, bool)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let mut client = Client::new(balancer.clone());
        let (outcomes, stop, calls) = (outcomes.clone(), stop.clone(), calls.clone());
        workers.push(tokio::spawn(async move {
            // Bounded in count as well as by the stop flag.
            for _ in 0..20_000 {
                if stop.load(SeqCst) {
                    break;
                }
                let issued = Instant::now();
                let result = echo(&mut client).await;
                if let Err(status) = &result {
                    // A call cut off by the kill is a transport failure: UNAVAILABLE.
                    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                }
                let failed = result.is_err();
                calls.fetch_add(1, SeqCst);
                outcomes.lock().await.push((issued, failed));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = servers.remove(0);
    let in_flight_at_kill = victim.in_flight();
    victim.kill();
    // The moment the refusal is seen: the victim leaves the ready set.
    let deadline = Instant::now() + Duration::from_secs(5);
    while balancer.ready_len() == 3 {
        assert!(
            Instant::now() < deadline,
            "the killed server never left the ready set"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let removed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Bring it back on the same port; it must get traffic again.
    let revived = TestServer::start_on("kill-0", victim_addr).unwrap();
    revived.set_delay(Duration::from_millis(2));
    wait_ready(&balancer, 3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while revived.calls() < 20 {
        assert!(
            Instant::now() < deadline,
            "the revived server gets no traffic"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    let outcomes = outcomes.lock().await;
    let failed: Vec<_> = outcomes.iter().filter(|(_, f)| *f).collect();
    let failed_after_removal = failed.iter().filter(|(t, _)| *t > removed_at).count();
    assert_eq!(
        failed_after_removal, 0,
        "calls issued after the balancer dropped the dead server must succeed"
    );
    assert!(
        failed.len() <= CONCURRENCY,
        "{} calls failed; at most the {CONCURRENCY} in flight may (server saw {in_flight_at_kill} in flight)",
        failed.len()
    );
    assert!(
        outcomes.len() > 100,
        "the load ran: {} calls",
        outcomes.len()
    );
}
