//! Discovery in code: a static list, and a stream of changes fed by your own watcher
//! (Kubernetes, etcd, Consul, a config service...).
//!
//! ```text
//! cargo run --example discovery_in_code
//! ```
//!
//! The balancer reads any `Stream<Item = Result<discover::Change, E>>`. Here a channel plays
//! the watcher: it inserts two endpoints, adds a third with weight 3, removes one while calls
//! are in flight on it (they finish), and changes a weight. It prints each step, e.g.
//!
//! ```text
//! insert pod-a, pod-b (weight 1 each)
//!   120 calls answered by {"a": 60, "b": 60}
//!   pod-a 127.0.0.1:41017 weight 1 Ready, 60 calls done
//! ...
//! remove pod-b with 3 calls in flight on it
//!   the 24 calls in flight then (b's and the others') finished: 24 ok
//!   120 calls answered by {"a": 30, "c": 90}
//!   b got 0 new calls
//! ```
//!
//! and exits non-zero if a step's counts do not show what it claims.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use tokio::time::Instant;
use tower_lb::discover::{Change, Endpoint, Key};
use tower_lb::{Balancer, Policy, discover};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

type Client = EchoClient<Balancer>;

fn hi() -> EchoRequest {
    EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    }
}

/// `n` calls one after the other; who answered how many.
async fn calls(client: &mut Client, n: usize) -> Result<BTreeMap<String, usize>, Box<dyn Error>> {
    let mut answered = BTreeMap::new();
    for _ in 0..n {
        *answered
            .entry(client.unary(hi()).await?.into_inner().server)
            .or_default() += 1;
    }
    println!("  {n} calls answered by {answered:?}");
    Ok(answered)
}

/// What the balancer knows, from `balancer.snapshot().endpoints`.
fn show(balancer: &Balancer) {
    for e in balancer.snapshot().endpoints {
        let (key, addr, weight, state, done) = (e.key, e.addr, e.weight, e.state, e.requests);
        println!("  {key} {addr} weight {weight} {state:?}, {done} calls done");
    }
}

/// Waits (at most 5 s) until `done` holds for the balancer: changes are applied by its control
/// task, shortly after they are sent.
async fn until(
    balancer: &Balancer,
    what: &str,
    done: impl Fn(&Balancer) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(balancer) {
        if Instant::now() > deadline {
            return Err(format!("the balancer never got to: {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn ensure(ok: bool, claim: &str) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("claim failed: {claim}").into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let (a, b, c) = (
        TestServer::start("a")?,
        TestServer::start("b")?,
        TestServer::start("c")?,
    );

    // The static list: each endpoint goes in once, under its address as key, and stays.
    let fixed = Balancer::builder().build(discover::fixed([Endpoint::new(a.addr())?]))?;
    let reply = EchoClient::new(fixed).unary(hi()).await?.into_inner();
    println!("static list [a]: answered by {}", reply.server);
    ensure(
        reply.server == "a",
        "the static list's only endpoint answers",
    )?;

    // A stream of changes: the sending half goes to your watcher, which turns each event into
    // a Change keyed by a name of its own (a pod name here). The channel carries no errors, so
    // the stream's error type is Infallible; a watcher that can fail yields Err items instead,
    // which the balancer logs while keeping the last set.
    // (With tokio::sync::mpsc, wrap the receiver in tokio_stream's UnboundedReceiverStream.)
    let (watcher, changes) = mpsc::unbounded::<Change>();
    let discovery = changes.map(Ok::<Change, Infallible>);
    // Smooth weighted round robin makes the shares exactly follow the weights, so the counts
    // below are easy to check; the default p2c policy follows weights too, more loosely.
    let balancer = Balancer::builder()
        .policy(Policy::round_robin())
        .build(discovery)?;
    let mut client = EchoClient::new(balancer.clone());
    let insert = |key: &str, server: &TestServer, weight: u32| -> Result<(), Box<dyn Error>> {
        let endpoint = Endpoint::new(server.addr())?.with_weight(weight)?;
        Ok(watcher.unbounded_send(Change::Insert(Key::from(key), endpoint))?)
    };

    println!("\ninsert pod-a, pod-b (weight 1 each)");
    insert("pod-a", &a, 1)?;
    insert("pod-b", &b, 1)?;
    until(&balancer, "2 ready", |b| b.ready_len() == 2).await?;
    let got = calls(&mut client, 120).await?;
    show(&balancer);
    ensure(
        got.get("a") == Some(&60) && got.get("b") == Some(&60),
        "a and b share evenly",
    )?;

    println!("\ninsert pod-c with weight 3");
    insert("pod-c", &c, 3)?;
    until(&balancer, "3 ready", |b| b.ready_len() == 3).await?;
    let got = calls(&mut client, 150).await?;
    show(&balancer);
    ensure(
        got.get("c") == Some(&90),
        "c, weight 3 of 5, takes 3/5 of the calls",
    )?;

    // Calls in flight on b while it is removed: b answers slowly, three calls are on it.
    b.set_delay(Duration::from_millis(300));
    let mut in_flight = Vec::new();
    while b.in_flight() < 3 {
        let mut client = client.clone();
        in_flight.push(tokio::spawn(async move { client.unary(hi()).await }));
        tokio::time::sleep(Duration::from_millis(5)).await;
        ensure(in_flight.len() < 100, "three calls get onto b")?;
    }
    println!(
        "\nremove pod-b with {} calls in flight on it",
        b.in_flight()
    );
    watcher.unbounded_send(Change::Remove(Key::from("pod-b")))?;
    until(&balancer, "b out of the ready set", |b| b.ready_len() == 2).await?;
    let spawned = in_flight.len();
    let mut ok = 0;
    for call in in_flight {
        ok += usize::from(call.await?.is_ok());
    }
    println!("  the {spawned} calls in flight then (b's and the others') finished: {ok} ok");
    let b_before = b.calls();
    ensure(
        ok == spawned && b.in_flight() == 0,
        "b's in-flight calls drain and succeed",
    )?;
    let got = calls(&mut client, 120).await?;
    println!("  b got {} new calls", b.calls() - b_before);
    ensure(
        b.calls() == b_before && !got.contains_key("b"),
        "a removed endpoint gets no new calls",
    )?;
    until(&balancer, "b gone", |b| b.snapshot().endpoints.len() == 2).await?;
    show(&balancer);

    println!("\nchange pod-a's weight to 5 (same address: the connection stays)");
    insert("pod-a", &a, 5)?;
    until(&balancer, "a at weight 5", |b| {
        b.snapshot().endpoints.iter().any(|e| e.weight == 5)
    })
    .await?;
    let got = calls(&mut client, 160).await?;
    show(&balancer);
    ensure(
        got.get("a") == Some(&100),
        "a, weight 5 of 8, takes 5/8 of the calls",
    )?;

    println!("\nok");
    Ok(())
}
