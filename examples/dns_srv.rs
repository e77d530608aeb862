//! DNS SRV discovery, live: a real DNS server (Knot DNS) on 127.0.0.1 serves SRV records for
//! three embedded gRPC backends; a balancer follows the records; the example changes them and
//! shows the balancer following.
//!
//! ```text
//! cargo run --example dns_srv
//! ```
//!
//! It needs `knotd` and `knotc` (Debian: `apt-get install knot`); without them it says so and
//! exits. It ends by itself within about half a minute.
//!
//! With your own DNS server instead: point `Dns::name_servers` at it and serve records like
//!
//! ```text
//! _grpc._tcp.echo.lb.test. 1 IN SRV 0 2 50051 host.echo.lb.test.
//! _grpc._tcp.echo.lb.test. 1 IN SRV 0 1 50052 host.echo.lb.test.
//! _grpc._tcp.echo.lb.test. 1 IN SRV 1 1 50053 host.echo.lb.test.
//! host.echo.lb.test.       1 IN A   127.0.0.1
//! ```

#[allow(dead_code)]
#[path = "../tests/dns/knot.rs"]
mod knot;

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;

use tokio::time::Instant;
use tower_lb::discover::dns::Dns;
use tower_lb::{Balancer, Policy};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

use knot::{Knot, Zone};

const NAME: &str = "_grpc._tcp.echo.lb.test.";
const CALLS: usize = 300;

/// SRV records `(server, priority, weight)`, all on the target `host.echo` = 127.0.0.1.
fn zone(records: &[(&TestServer, u16, u16)]) -> Zone {
    let mut zone = Zone::new().addr("host.echo", 1, "127.0.0.1");
    for (server, priority, weight) in records {
        zone = zone.srv(
            "_grpc._tcp.echo",
            1,
            *priority,
            *weight,
            server.addr().port(),
            "host.echo",
        );
    }
    zone
}

/// Makes `CALLS` calls and prints who answered them.
async fn calls(balancer: &Balancer) -> Result<(), Box<dyn Error>> {
    let mut client = EchoClient::new(balancer.clone());
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..CALLS {
        let reply = client
            .unary(EchoRequest {
                message: "hi".into(),
                stream_count: 0,
            })
            .await?;
        *answered.entry(reply.into_inner().server).or_default() += 1;
    }
    println!("  {CALLS} calls answered by: {answered:?}");
    Ok(())
}

/// Prints the balancer's endpoints, named after the backend at each address.
fn show(balancer: &Balancer, servers: &[&TestServer]) {
    let mut endpoints = balancer.snapshot().endpoints;
    endpoints.sort_by_key(|e| e.addr);
    for e in endpoints {
        let name = servers
            .iter()
            .find(|s| s.addr() == e.addr)
            .map_or("?", |s| s.name());
        println!(
            "  {name} {}  priority {}  weight {:>3}  {:?}",
            e.addr, e.priority, e.weight, e.state
        );
    }
}

/// Waits (at most 15 s) until the balancer knows `known` endpoints and `ready` of them, in
/// the best tier, take calls.
async fn until_ready(
    balancer: &Balancer,
    known: usize,
    ready: usize,
) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while balancer.ready_len() != ready || balancer.snapshot().endpoints.len() != known {
        if Instant::now() > deadline {
            return Err(
                format!("the balancer never had {ready} of {known} endpoints ready").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let a = TestServer::start("a")?;
    let b = TestServer::start("b")?;
    let c = TestServer::start("c")?;

    // a and b share the first tier 2:1; c is a backup.
    let Some(mut dns) = Knot::start(&zone(&[(&a, 0, 2), (&b, 0, 1), (&c, 1, 1)])) else {
        println!("This example runs Knot DNS (knotd, knotc): apt-get install knot");
        return Ok(());
    };
    println!("DNS server (Knot) on {}, serving SRV {NAME}", dns.addr());

    let discovery = Dns::srv(NAME)
        .name_servers([dns.addr()])
        .timeout(Duration::from_millis(500))
        .ttl_bounds(Duration::from_secs(1), Duration::from_secs(5))
        .build()?;
    // Weighted round robin, so that one caller's sequential calls show the SRV weights.
    let balancer = Balancer::builder()
        .policy(Policy::round_robin())
        .build(discovery)?;
    until_ready(&balancer, 3, 2).await?;
    println!(
        "\nSRV: a (priority 0, weight 2), b (priority 0, weight 1), c (priority 1): c is a backup"
    );
    show(&balancer, &[&a, &b, &c]);
    calls(&balancer).await?;

    println!("\nDNS change: a leaves, c joins the first tier with weight 3 (TTL 1 s)");
    dns.set_zone(&zone(&[(&b, 0, 1), (&c, 0, 3)]));
    let changed = Instant::now();
    until_ready(&balancer, 2, 2).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !balancer
        .snapshot()
        .endpoints
        .iter()
        .any(|e| e.priority == 0 && e.weight == 300)
    {
        if Instant::now() > deadline {
            return Err("the weight change never arrived".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("  seen after {:.1?}", changed.elapsed());
    show(&balancer, &[&a, &b, &c]);
    calls(&balancer).await?;

    println!("\nDNS server killed: the balancer keeps its endpoints");
    dns.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    show(&balancer, &[&a, &b, &c]);
    calls(&balancer).await?;
    Ok(())
}
