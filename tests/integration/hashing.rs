//! Consistent hashing on real servers: a key sticks to one endpoint, keys spread, a removed
//! endpoint moves only its own keys, requests without a key use the fallback, and bounded
//! loads spill a hot key.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tower_lb::discover::{Change, fixed};
use tower_lb::{HashKey, Policy};
use tower_lb_testkit::pb::EchoRequest;

use crate::common::*;

async fn echo_as(client: &mut Client, user: Option<&str>) -> String {
    let mut request = tonic::Request::new(EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    });
    if let Some(user) = user {
        request
            .metadata_mut()
            .insert("x-user-id", user.parse().unwrap());
    }
    client
        .unary(request)
        .await
        .expect("call")
        .into_inner()
        .server
}

fn by_user() -> HashKey {
    HashKey::header("x-user-id").unwrap()
}

#[tokio::test]
async fn a_key_sticks_to_one_endpoint_and_keys_spread() {
    let servers = servers(4, "sticky");
    for policy in [Policy::ring_hash(by_user()), Policy::maglev(by_user())] {
        let balancer = builder()
            .policy(policy.clone())
            .build(fixed(servers.iter().map(endpoint)))
            .unwrap();
        wait_ready(&balancer, 4).await;
        let mut client = Client::new(balancer);
        let mut home = HashMap::new();
        for round in 0..3 {
            for u in 0..100 {
                let user = format!("user-{u}");
                let server = echo_as(&mut client, Some(&user)).await;
                let first = home.entry(user).or_insert_with(|| server.clone());
                assert_eq!(*first, server, "{policy:?}: round {round}");
            }
        }
        let used: HashSet<_> = home.values().collect();
        assert_eq!(
            used.len(),
            4,
            "{policy:?}: 100 keys should reach all 4: {home:?}"
        );
    }
}

#[tokio::test]
async fn removing_an_endpoint_moves_only_its_keys() {
    let servers = servers(5, "moves");
    let (tx, discovery) = channel_discovery();
    for s in &servers {
        tx.send(Change::Insert(key(s), endpoint(s))).unwrap();
    }
    let balancer = builder()
        .policy(Policy::ring_hash(by_user()))
        .build(discovery)
        .unwrap();
    wait_ready(&balancer, 5).await;
    let mut client = Client::new(balancer.clone());
    let users: Vec<String> = (0..200).map(|u| format!("u{u}")).collect();
    let mut before = Vec::new();
    for u in &users {
        before.push(echo_as(&mut client, Some(u)).await);
    }
    tx.send(Change::Remove(key(&servers[2]))).unwrap();
    wait_ready(&balancer, 4).await;
    for (u, was) in users.iter().zip(&before) {
        let now = echo_as(&mut client, Some(u)).await;
        if was != servers[2].name() {
            assert_eq!(&now, was, "{u} moved although its endpoint stayed");
        } else {
            assert_ne!(now, servers[2].name());
        }
    }
}

#[tokio::test]
async fn requests_without_the_key_use_the_fallback() {
    let servers = servers(3, "keyless");
    let balancer = builder()
        .policy(Policy::maglev(by_user()).fallback(Policy::round_robin()))
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let mut client = Client::new(balancer);
    let mut counts = HashMap::new();
    for _ in 0..30 {
        *counts.entry(echo_as(&mut client, None).await).or_insert(0) += 1;
    }
    // Round robin over 3 endpoints: exactly 10 each.
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![10; 3],
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_loads_spill_a_hot_key() {
    let servers = servers(4, "hot");
    for s in &servers {
        s.set_delay(Duration::from_millis(20));
    }
    let run = |policy: Policy| {
        let servers = &servers;
        async move {
            let balancer = builder()
                .policy(policy)
                .build(fixed(servers.iter().map(endpoint)))
                .unwrap();
            wait_ready(&balancer, 4).await;
            let client = Client::new(balancer);
            // 16 concurrent callers, all with the same key.
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let mut client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for _ in 0..5 {
                        seen.push(echo_as(&mut client, Some("celebrity")).await);
                    }
                    seen
                }));
            }
            let mut counts: HashMap<String, usize> = HashMap::new();
            for t in tasks {
                for s in t.await.unwrap() {
                    *counts.entry(s).or_default() += 1;
                }
            }
            counts
        }
    };
    let plain = run(Policy::ring_hash(by_user())).await;
    assert_eq!(
        plain.len(),
        1,
        "without a bound one endpoint takes the hot key: {plain:?}"
    );
    let bounded = run(Policy::ring_hash(by_user()).bounded_load(0.25).unwrap()).await;
    // 16 in flight over 4 endpoints: a cap of ceil(1.25 × 16 / 4) = 5 each, so the key
    // spreads over at least 4 × ... endpoints; at least 3 take part.
    assert!(
        bounded.len() >= 3,
        "bounded loads must spill the hot key: {bounded:?}"
    );
    let max = bounded.values().max().copied().unwrap_or(0);
    assert!(max < 80, "{bounded:?}");
}
