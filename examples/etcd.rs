//! etcd discovery end to end, with figures: servers register themselves in etcd with leases,
//! a balancer watches the prefix, and the example measures
//!
//! * the time from `register` (lease grant + put) to the endpoint being ready in the balancer,
//! * the time from `deregister` (lease revoke) to the endpoint leaving the set,
//! * the time from a lease's end (granted + TTL, never renewed) to the endpoint leaving the set,
//!
//! each p50 / p99 over 100 changes on a single etcd member, then kills the leader of a 3-member
//! cluster under load and counts failed calls.
//!
//! ```text
//! cargo run --release --features etcd --example etcd
//! ```
//!
//! It starts its own etcd members on 127.0.0.1 (the `etcd` and `etcdctl` binaries: Debian
//! `apt-get install etcd-server etcd-client`); without them it says so and exits. Repository
//! only: it uses the tests' etcd launcher and the testkit's Echo servers.

#[allow(dead_code)] // the launcher has more than the example needs
#[path = "../tests/etcd/server.rs"]
mod server;

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tower_lb::discover::etcd::Etcd;
use tower_lb::{Backoff, Balancer};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

const CHANGES: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn row(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "| {what:<54} | {:>4} | {:>8.1} | {:>8.1} | {:>8.1} |",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
}

/// Polls `done` every 200 µs for up to 10 s; the time it took.
async fn until(mut done: impl FnMut() -> bool) -> Result<Duration, Box<dyn Error>> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("a change did not arrive within 10 s".into());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(start.elapsed())
}

fn known(balancer: &Balancer, key: &str) -> bool {
    balancer
        .snapshot()
        .endpoints
        .iter()
        .any(|e| e.key.as_str() == key)
}

fn balancer_over(etcd: &Etcd) -> Result<Balancer, Box<dyn Error>> {
    let backoff = Backoff::default()
        .initial(Duration::from_millis(20))
        .max(Duration::from_millis(200));
    Ok(Balancer::builder().backoff(backoff).build(etcd.build()?)?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    // SAFETY of the figures: one etcd member at a time; the machine's other load shows in p99.
    let Some(single) = server::Members::single() else {
        println!(
            "This example starts its own etcd on 127.0.0.1 and needs the `etcd` and `etcdctl` \
             binaries.\nOn Debian or Ubuntu: sudo apt-get install etcd-server etcd-client\n\
             (the package's own etcd service is not needed; stop it if it holds port 2379)."
        );
        return Ok(());
    };
    let servers: Vec<TestServer> = (0..10)
        .map(|i| TestServer::start(&format!("echo-{i}")))
        .collect::<Result<_, _>>()?;
    let etcd = Etcd::new(single.urls(), "services/echo");
    let balancer = balancer_over(&etcd)?;

    // Register → ready, and deregister → gone, 100 times (10 servers, 10 rounds).
    let mut to_ready = Vec::new();
    let mut to_gone = Vec::new();
    for i in 0..CHANGES {
        let server = &servers[i % servers.len()];
        let key = server.addr().to_string();
        let start = Instant::now();
        let registration = etcd.registration(server.addr()).start().await?;
        until(|| {
            balancer
                .snapshot()
                .endpoints
                .iter()
                .any(|e| e.key.as_str() == key && e.state == tower_lb::ConnectionState::Ready)
        })
        .await?;
        to_ready.push(start.elapsed());
        let start = Instant::now();
        registration.deregister().await?;
        until(|| !known(&balancer, &key)).await?;
        to_gone.push(start.elapsed());
    }

    // Lease end → gone: 10 rounds of 10 keys whose 1 s leases are never renewed.
    let mut to_expired = Vec::new();
    for round in 0..CHANGES / 10 {
        let mut ends = Vec::new();
        for j in 0..10 {
            let addr = format!("127.0.0.1:{}", 20_000 + round * 10 + j);
            let lease = single.ctl_retry(&["lease", "grant", "1"]);
            let granted = Instant::now();
            let id = lease
                .split_whitespace()
                .nth(1)
                .ok_or("etcdctl lease grant")?;
            single.ctl_retry(&[
                "put",
                &format!("--lease={id}"),
                &format!("services/echo/{addr}"),
                &format!(r#"{{"Op":0,"Addr":"{addr}","Metadata":null}}"#),
            ]);
            ends.push((addr, granted + Duration::from_secs(1)));
        }
        let mut left = vec![None; ends.len()];
        let deadline = Instant::now() + Duration::from_secs(15);
        while left.iter().any(Option::is_none) {
            if Instant::now() > deadline {
                return Err("an expired key never left the set".into());
            }
            let now = Instant::now();
            for (slot, (addr, end)) in left.iter_mut().zip(&ends) {
                if slot.is_none() && now >= *end && !known(&balancer, addr) {
                    *slot = Some(now - *end);
                }
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        to_expired.extend(left.into_iter().flatten());
    }
    drop(balancer);
    drop(single);

    // A 3-member cluster: kill the leader under load, the watch on it.
    let Some(mut cluster) = server::Members::cluster(3) else {
        return Ok(());
    };
    let leader = cluster.leader();
    let mut urls = cluster.urls();
    urls.rotate_left(leader);
    let etcd = Etcd::new(urls, "services/echo");
    let mut registrations = Vec::new();
    for s in &servers[..3] {
        registrations.push(
            etcd.registration(s.addr())
                .ttl(Duration::from_secs(5))
                .start()
                .await?,
        );
    }
    let balancer = balancer_over(&etcd)?;
    until(|| balancer.ready_len() == 3).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let callers: Vec<_> = (0..32)
        .map(|_| {
            let mut client = EchoClient::new(balancer.clone());
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let request = EchoRequest {
                        message: "hi".into(),
                        stream_count: 0,
                    };
                    let counter = if client.unary(request).await.is_ok() {
                        &ok
                    } else {
                        &failed
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = Instant::now();
    cluster.kill(leader);
    let fourth = servers[3].addr();
    cluster.ctl_retry(&[
        "put",
        &format!("services/echo/{fourth}"),
        &format!(r#"{{"Op":0,"Addr":"{fourth}","Metadata":null}}"#),
    ]);
    until(|| balancer.ready_len() == 4).await?;
    let arrived = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await?;
    }

    println!();
    println!("etcd discovery, {CHANGES} changes each (single member on 127.0.0.1; times in ms)");
    println!();
    println!(
        "| {:<54} | {:>4} | {:>8} | {:>8} | {:>8} |",
        "from → to", "n", "p50", "p99", "max"
    );
    println!(
        "|{:-<56}|{:->6}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", ""
    );
    row("register (grant + put) → endpoint ready", to_ready);
    row("deregister (revoke) → endpoint out of the set", to_gone);
    row(
        "lease end (grant + 1 s TTL) → endpoint out of the set",
        to_expired,
    );
    println!();
    println!(
        "Leader killed under 32 callers (3 members, the watch on the leader): {} calls failed of {}; \
         a key written during the election was ready {:.0} ms after the kill.",
        failed.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed) + ok.load(Ordering::Relaxed),
        arrived.as_secs_f64() * 1e3
    );
    for r in registrations {
        let _ = r.deregister().await;
    }
    if failed.load(Ordering::Relaxed) != 0 {
        return Err("calls failed during the leader kill".into());
    }
    Ok(())
}
