//! Priority tiers: backups get calls only while no first-choice endpoint is ready.

use std::collections::HashSet;
use std::time::Duration;

use tower_lb::discover::Change;

use crate::common::*;

async fn answered_by(client: &mut Client, calls: usize) -> HashSet<String> {
    let mut names = HashSet::new();
    for _ in 0..calls {
        names.insert(echo(client).await.expect("a tier is ready"));
    }
    names
}

#[tokio::test]
async fn backup_tier_takes_over_and_hands_back() {
    let primary = servers(2, "primary");
    let backup = servers(1, "backup");
    let (tx, discovery) = channel_discovery();
    for s in &primary {
        tx.send(Change::Insert(key(s), endpoint(s))).unwrap();
    }
    tx.send(Change::Insert(
        key(&backup[0]),
        endpoint(&backup[0]).with_priority(1),
    ))
    .unwrap();
    let balancer = builder()
        .ready_timeout(Duration::from_secs(2))
        .build(discovery)
        .unwrap();
    wait_ready(&balancer, 2).await;
    let mut client = Client::new(balancer.clone());

    let names = answered_by(&mut client, 50).await;
    assert_eq!(
        names,
        HashSet::from(["primary-0".into(), "primary-1".into()])
    );
    assert_eq!(backup[0].calls(), 0, "the backup must stay idle");

    // The whole first tier leaves: the backup takes every call.
    for s in &primary {
        tx.send(Change::Remove(key(s))).unwrap();
    }
    wait_ready(&balancer, 1).await;
    let names = answered_by(&mut client, 20).await;
    assert_eq!(names, HashSet::from(["backup-0".into()]));

    // One first-tier endpoint returns: traffic goes back to it alone.
    tx.send(Change::Insert(key(&primary[1]), endpoint(&primary[1])))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while balancer
        .snapshot()
        .endpoints
        .iter()
        .any(|e| e.priority == 0 && e.state != tower_lb::ConnectionState::Ready)
        || balancer.snapshot().endpoints.len() != 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            balancer.snapshot().endpoints
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The snapshot follows the connection event; give it a moment, then every call is primary.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = backup[0].calls();
    let names = answered_by(&mut client, 20).await;
    assert_eq!(names, HashSet::from(["primary-1".into()]));
    assert_eq!(backup[0].calls(), before);
}

#[tokio::test]
async fn an_unreachable_first_tier_falls_through_to_the_backup() {
    let backup = servers(1, "fallthrough");
    // Port 1 on loopback refuses connections: the first tier never becomes ready.
    let dead = tower_lb::discover::Endpoint::new("127.0.0.1:1".parse().unwrap()).unwrap();
    let (tx, discovery) = channel_discovery();
    tx.send(Change::Insert("dead".into(), dead)).unwrap();
    tx.send(Change::Insert(
        key(&backup[0]),
        endpoint(&backup[0]).with_priority(7),
    ))
    .unwrap();
    let balancer = builder().build(discovery).unwrap();
    wait_ready(&balancer, 1).await;
    let mut client = Client::new(balancer);
    assert_eq!(
        answered_by(&mut client, 5).await,
        HashSet::from(["fallthrough-0".into()])
    );
}
