//! Sticky sessions by consistent hashing: every call of one user goes to the same backend (its
//! cache, its session), and when a backend goes away only that backend's users move.
//!
//! ```text
//! cargo run --example sticky_sessions
//! ```
//!
//! Five embedded backends; 200 users make 3 calls each with an `x-user-id` header; one backend
//! is killed; then a hot key is spread with bounded loads. It prints, e.g.
//!
//! ```text
//! 200 users x 3 calls: every user stayed on one backend; users per backend {"backend-1": 42, "backend-2": 40, "backend-3": 52, "backend-4": 33, "backend-5": 33}
//! backend-3 killed: 52 of 200 users moved (26.0%), 0 of them not backend-3's
//! hot key, 40 calls at once: ring hash sends them to {"backend-2": 40}
//!   with bounded_load(0.25): {"backend-1": 13, "backend-2": 13, "backend-4": 2, "backend-5": 12}
//! ```
//!
//! and exits non-zero if a user was split over backends, a user not on the killed backend
//! moved, or the hot key was not spread.
//!
//! `Policy::maglev(key)` is the other consistent hash: better balance, a few more keys moved on
//! a change. `.bounded_load(0.25)` applies to either: no backend takes more than 1.25 × its
//! share of the calls in flight; a key whose backend is full goes to the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tower_lb::{Balancer, HashKey, Policy, discover};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

const USERS: usize = 200;
const CALLS_PER_USER: usize = 3;

/// One call as `user`: the hash key travels as request metadata (an HTTP/2 header).
async fn call_as(mut client: EchoClient<Balancer>, user: String) -> Result<String, Box<dyn Error>> {
    let mut request = tonic::Request::new(EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    });
    request.metadata_mut().insert("x-user-id", user.parse()?);
    Ok(client.unary(request).await?.into_inner().server)
}

/// Every user's calls; returns the backend(s) each user reached.
async fn users(
    client: &EchoClient<Balancer>,
    calls: usize,
) -> Result<Vec<BTreeSet<String>>, Box<dyn Error>> {
    let mut seen = vec![BTreeSet::new(); USERS];
    for (user, backends) in seen.iter_mut().enumerate() {
        for _ in 0..calls {
            backends.insert(call_as(client.clone(), format!("user-{user}")).await?);
        }
    }
    Ok(seen)
}

/// 40 calls at once, all with the same key, on backends that each take 50 ms: who took them.
async fn hot_key(balancer: &Balancer) -> Result<BTreeMap<String, usize>, Box<dyn Error>> {
    let client = EchoClient::new(balancer.clone());
    let replies: Vec<_> = futures::stream::iter(0..40)
        .map(|_| call_as(client.clone(), "user-hot".into()))
        .buffer_unordered(40)
        .collect()
        .await;
    let mut answered = BTreeMap::new();
    for server in replies {
        *answered.entry(server?).or_default() += 1;
    }
    Ok(answered)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let servers: Vec<TestServer> = (1..=5)
        .map(|i| TestServer::start(&format!("backend-{i}")))
        .collect::<Result<_, _>>()?;
    let endpoints = |servers: &[TestServer]| {
        discover::fixed(
            servers
                .iter()
                .map(|s| discover::Endpoint::new(s.addr()).expect("an ip:port")),
        )
    };

    // Requests without the header would be balanced by p2c (see `Policy::fallback`).
    let sticky = Policy::ring_hash(HashKey::header("x-user-id")?);
    let balancer = Balancer::builder()
        .policy(sticky.clone())
        .build(endpoints(&servers))?;
    until_ready(&balancer, 5).await?;
    let client = EchoClient::new(balancer.clone());

    let before = users(&client, CALLS_PER_USER).await?;
    if let Some(user) = before.iter().position(|b| b.len() != 1) {
        return Err(format!("user-{user} was split over {:?}", before[user]).into());
    }
    let home: Vec<&String> = before
        .iter()
        .map(|b| b.first().expect("one backend"))
        .collect();
    let mut per_backend: BTreeMap<&str, usize> = BTreeMap::new();
    for backend in &home {
        *per_backend.entry(backend.as_str()).or_default() += 1;
    }
    println!(
        "{USERS} users x {CALLS_PER_USER} calls: every user stayed on one backend; users per backend {per_backend:?}"
    );

    // A backend dies: its connection drops and it leaves the ready set (a discovery Remove
    // does the same). Its keys go to their next backend on the ring; no other key moves.
    let mut servers = servers;
    let dead = servers.remove(2);
    let dead_name = dead.name().to_owned();
    dead.kill();
    until_ready(&balancer, 4).await?;
    let after = users(&client, 1).await?;
    let (mut moved, mut wrongly_moved) = (0, 0);
    for (user, backends) in after.iter().enumerate() {
        if backends.first() != Some(home[user]) {
            moved += 1;
            wrongly_moved += usize::from(*home[user] != dead_name);
        }
    }
    println!(
        "{dead_name} killed: {moved} of {USERS} users moved ({:.1}%), {} of them not {dead_name}'s",
        100.0 * moved as f64 / USERS as f64,
        wrongly_moved
    );
    if wrongly_moved > 0 || moved != per_backend.get(dead_name.as_str()).copied().unwrap_or(0) {
        return Err(format!("only {dead_name}'s users should have moved").into());
    }

    // A hot key: with plain consistent hashing all its concurrent calls pile onto one backend;
    // bounded loads cap each backend near its share and send the overflow along the ring.
    servers
        .iter()
        .for_each(|s| s.set_delay(Duration::from_millis(50)));
    let piled = hot_key(&balancer).await?;
    println!("hot key, 40 calls at once: ring hash sends them to {piled:?}");
    let bounded = Balancer::builder()
        .policy(sticky.bounded_load(0.25)?)
        .build(endpoints(&servers))?;
    until_ready(&bounded, 4).await?;
    let spread = hot_key(&bounded).await?;
    println!("  with bounded_load(0.25): {spread:?}");
    if piled.len() != 1 || spread.len() < 2 {
        return Err("expected one backend without bounds, several with them".into());
    }
    println!("ok");
    Ok(())
}

/// Waits (at most 5 s) until exactly `n` endpoints are ready.
async fn until_ready(balancer: &Balancer, n: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while balancer.ready_len() != n {
        if Instant::now() > deadline {
            return Err(format!("the balancer never had {n} endpoints ready"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
