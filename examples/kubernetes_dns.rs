//! Balancing over a Kubernetes headless Service's DNS, with no service mesh: pods that join
//! (scale up) get calls after the next re-resolution, pods that leave stop getting them.
//!
//! ```text
//! cargo run --example kubernetes_dns
//! ```
//!
//! A real DNS server (Knot) on 127.0.0.1 serves `cluster.local.` as CoreDNS would for
//!
//! ```yaml
//! apiVersion: v1
//! kind: Service
//! metadata: { name: echo, namespace: default }
//! spec:
//!   clusterIP: None          # headless
//!   selector: { app: echo }
//!   ports: [{ name: grpc, port: 50051, protocol: TCP }]
//! ```
//!
//! with pods `echo-0`, `echo-1`, ... as 127.0.0.2, 127.0.0.3, ... on one port (the whole of
//! 127.0.0.0/8 is loopback on Linux). It prints each step and who answered, e.g.
//!
//! ```text
//! scale up: echo-2 added; SRV balancer sees it after 961.3ms, A balancer after 915.0ms
//!   SRV: 90 calls answered by {"echo-0": 33, "echo-1": 30, "echo-2": 27}
//!   A  : 90 calls answered by {"echo-0": 35, "echo-1": 27, "echo-2": 28}
//! ```
//!
//! and exits non-zero if a balancer does not follow. Without `knotd` it prints how to install
//! it (`apt-get install knot`) and exits 0.
//!
//! **In production** drop `name_servers`: the pod's `/etc/resolv.conf` points at the cluster
//! DNS. Write the final dot (pods have `ndots: 5`; without it every search domain is tried
//! first). CoreDNS's `kubernetes` plugin answers with a TTL of 5 s (its `ttl` option), so a
//! scaled pod joins or leaves within about 5 s; the records hold ready pods only.
//!
//! ```text
//! let srv = Dns::srv("_grpc._tcp.echo.default.svc.cluster.local.").build()?;
//! let a = Dns::host("echo.default.svc.cluster.local.:50051")?.build()?;
//! ```
//!
//! * **Why headless:** a ClusterIP Service's name resolves to one virtual IP, so a client-side
//!   balancer sees one endpoint, and kube-proxy balances connections, not calls — one HTTP/2
//!   connection pins all of a client's calls to one pod. Headless DNS lists every ready pod.
//! * **SRV or A:** SRV (`_<port name>._<protocol>.<service>.<namespace>.svc.<domain>`) needs a
//!   named port and gives each pod's port from the Service; A/AAAA (`Dns::host`) works for any
//!   headless Service but you give the port, the same for every pod.

#[allow(dead_code)]
#[path = "../tests/dns/knot.rs"]
mod knot;

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tower_lb::Balancer;
use tower_lb::discover::dns::Dns;
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

use knot::{Knot, Zone};

const SRV_NAME: &str = "_grpc._tcp.echo.default.svc.cluster.local.";
const HOST_NAME: &str = "echo.default.svc.cluster.local.";
/// Short, to keep the example short; CoreDNS's default is 5 s.
const TTL: u32 = 1;

/// The records CoreDNS serves for the ready pods `(name, ip)` on `port`, relative to
/// `cluster.local.`: an SRV record per pod pointing at the pod's own name, the pod's A record,
/// and the Service name's A records (one per pod).
fn zone(pods: &[(&str, SocketAddr)]) -> Zone {
    let mut zone = Zone::new().origin("cluster.local.");
    for (pod, addr) in pods {
        let pod_name = format!("{pod}.echo.default.svc");
        let ip = addr.ip().to_string();
        zone = zone
            .srv(
                "_grpc._tcp.echo.default.svc",
                TTL,
                0,
                1,
                addr.port(),
                &pod_name,
            )
            .addr(&pod_name, TTL, &ip)
            .addr("echo.default.svc", TTL, &ip);
    }
    zone
}

/// Waits (at most 10 s) until `balancer` has exactly `want` endpoints, all ready.
async fn until_ready(balancer: &Balancer, want: usize) -> Result<Duration, Box<dyn Error>> {
    let started = Instant::now();
    while balancer.snapshot().endpoints.len() != want || balancer.ready_len() != want {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("the balancer never had {want} endpoints ready").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(started.elapsed())
}

/// 90 calls, 8 at a time; checks that exactly the pods `expected` answered.
async fn check_calls(
    form: &str,
    balancer: &Balancer,
    expected: &[&str],
) -> Result<(), Box<dyn Error>> {
    let client = EchoClient::new(balancer.clone());
    let replies: Vec<_> = futures::stream::iter(0..90)
        .map(|_| {
            let mut client = client.clone();
            let request = EchoRequest {
                message: "hi".into(),
                stream_count: 0,
            };
            async move { client.unary(request).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for reply in replies {
        *answered.entry(reply?.into_inner().server).or_default() += 1;
    }
    println!("  {form}: 90 calls answered by {answered:?}");
    let who: BTreeSet<&str> = answered.keys().map(String::as_str).collect();
    if who != expected.iter().copied().collect() {
        return Err(format!("{form}: expected answers from exactly {expected:?}").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Three "pods" on 127.0.0.2..4, all on the port the first one got (A records carry no port).
    let echo0 = TestServer::start_on("echo-0", "127.0.0.2:0".parse()?)?;
    let port = echo0.addr().port();
    let echo1 = TestServer::start_on("echo-1", SocketAddr::from(([127, 0, 0, 3], port)))?;
    let echo2 = TestServer::start_on("echo-2", SocketAddr::from(([127, 0, 0, 4], port)))?;
    let (p0, p1, p2) = (
        ("echo-0", echo0.addr()),
        ("echo-1", echo1.addr()),
        ("echo-2", echo2.addr()),
    );

    let Some(mut dns) = Knot::start(&zone(&[p0, p1])) else {
        println!("This example runs Knot DNS (knotd, knotc): apt-get install knot");
        return Ok(());
    };
    println!(
        "cluster DNS (Knot) on {}: echo has pods echo-0, echo-1",
        dns.addr()
    );

    // The two forms; `name_servers` only because our DNS server is not the system's.
    let srv = Dns::srv(SRV_NAME).name_servers([dns.addr()]).build()?;
    let a = Dns::host(&format!("{HOST_NAME}:{port}"))?
        .name_servers([dns.addr()])
        .build()?;
    let by_srv = Balancer::builder().build(srv)?;
    let by_a = Balancer::builder().build(a)?;
    tokio::try_join!(until_ready(&by_srv, 2), until_ready(&by_a, 2))?;
    check_calls("SRV", &by_srv, &["echo-0", "echo-1"]).await?;
    check_calls("A  ", &by_a, &["echo-0", "echo-1"]).await?;

    // Scale up: the new pod is in the records; each balancer picks it up when its answer's
    // TTL runs out and it asks again.
    dns.set_zone(&zone(&[p0, p1, p2]));
    let (s, h) = tokio::try_join!(until_ready(&by_srv, 3), until_ready(&by_a, 3))?;
    println!(
        "scale up: echo-2 added; SRV balancer sees it after {s:.1?}, A balancer after {h:.1?}"
    );
    check_calls("SRV", &by_srv, &["echo-0", "echo-1", "echo-2"]).await?;
    check_calls("A  ", &by_a, &["echo-0", "echo-1", "echo-2"]).await?;

    // Scale down: echo-0 goes unready and leaves the records (it still runs, as a terminating
    // pod does during its grace period); the balancers stop sending it calls.
    dns.set_zone(&zone(&[p1, p2]));
    let (s, h) = tokio::try_join!(until_ready(&by_srv, 2), until_ready(&by_a, 2))?;
    println!(
        "scale down: echo-0 removed; SRV balancer drops it after {s:.1?}, A balancer after {h:.1?}"
    );
    let before = echo0.calls();
    check_calls("SRV", &by_srv, &["echo-1", "echo-2"]).await?;
    check_calls("A  ", &by_a, &["echo-1", "echo-2"]).await?;
    if echo0.calls() != before {
        return Err("echo-0 got calls after it left the records".into());
    }
    println!("ok: echo-0 got no calls after it left");
    Ok(())
}
