//! Subsetting: clients of a fleet connect to their own subsets of it; the subsets of clients
//! that know each other tile the fleet; a server leaving changes at most one member of a
//! window that does not wrap round the end of the ring.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use tower_lb::discover::subset::{Subsetting, subset};
use tower_lb::discover::{Change, Key};
use tower_lb_testkit::TestServer;

use crate::common::*;

fn endpoints_of(balancer: &tower_lb::Balancer) -> BTreeSet<SocketAddr> {
    balancer
        .snapshot()
        .endpoints
        .iter()
        .map(|e| e.addr)
        .collect()
}

#[tokio::test]
async fn clients_tile_the_fleet_and_a_server_leaving_moves_at_most_one_member() {
    let fleet = servers(6, "fleet");
    let mut clients = Vec::new();
    let mut feeds = Vec::new();
    for i in 0..3 {
        let (tx, discovery) = channel_discovery();
        for server in &fleet {
            tx.send(Change::Insert(key(server), endpoint(server)))
                .unwrap();
        }
        let subsetting = Subsetting::aperture(2, i, 3).unwrap();
        let balancer = builder().build(subset(discovery, subsetting)).unwrap();
        wait_ready(&balancer, 2).await;
        clients.push(balancer);
        feeds.push(tx);
    }
    // Each client connects to 2 of the 6; together they cover every server once.
    let subsets: Vec<BTreeSet<SocketAddr>> = clients.iter().map(endpoints_of).collect();
    let all: BTreeSet<SocketAddr> = subsets.iter().flatten().copied().collect();
    assert_eq!(all.len(), 6, "{subsets:?}");
    for (client, subset) in clients.iter().zip(&subsets) {
        assert_eq!(subset.len(), 2);
        // Calls go only to the subset.
        let mut c = Client::new(client.clone());
        for _ in 0..10 {
            let name = echo(&mut c).await.unwrap();
            let server = fleet.iter().find(|s| s.name() == name).unwrap();
            assert!(
                subset.contains(&server.addr()),
                "{name} is not in {subset:?}"
            );
        }
    }
    // A server leaves the fleet: every client's subset changes by at most one member.
    let gone: &TestServer = &fleet[2];
    for tx in &feeds {
        tx.send(Change::Remove(Key::from(gone.addr()))).unwrap();
    }
    for (client, before) in clients.iter().zip(&subsets) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let after = loop {
            let now = endpoints_of(client);
            if !now.contains(&gone.addr()) && client.ready_len() == 2 {
                break now;
            }
            assert!(tokio::time::Instant::now() < deadline, "{now:?}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        assert!(
            before.difference(&after).count() <= 1,
            "{before:?} → {after:?}"
        );
        assert!(
            after.difference(before).count() <= 1,
            "{before:?} → {after:?}"
        );
    }
}

#[tokio::test]
async fn rendezvous_subsets_are_stable_per_seed() {
    let fleet = servers(5, "rv");
    let build = |seed| {
        let endpoints = fleet.iter().map(endpoint);
        let discovery = subset(
            tower_lb::discover::fixed(endpoints),
            Subsetting::rendezvous_with_seed(3, seed),
        );
        builder().build(discovery).unwrap()
    };
    let (a, b) = (build(11), build(11));
    wait_ready(&a, 3).await;
    wait_ready(&b, 3).await;
    // The same seed chooses the same subset.
    assert_eq!(endpoints_of(&a), endpoints_of(&b));
    assert_eq!(endpoints_of(&a).len(), 3);
}
