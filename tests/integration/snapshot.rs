//! `Balancer::snapshot`: what a dashboard sees of real servers — tiers, which endpoints take
//! calls, counters and ejections — and that it follows the balancer's own decisions.

use std::time::Duration;

use tower_lb::discover::{Change, fixed};
use tower_lb::health::{Health, OutlierDetection};
use tower_lb::{ConnectionState, Policy};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_shows_tiers_readiness_counters_and_ejections() {
    let servers = servers(3, "snap");
    let discovered = vec![
        endpoint(&servers[0]),
        endpoint(&servers[1]).with_weight(3).unwrap(),
        endpoint(&servers[2]).with_priority(1),
    ];
    let balancer = builder()
        .policy(Policy::round_robin())
        .outlier_detection(
            OutlierDetection::default()
                .base_ejection_time(Duration::from_secs(30))
                .success_rate(None)
                .failure_percentage(None),
        )
        .build(fixed(discovered))
        .unwrap();
    // The standby tier connects too, but takes no calls while tier 0 is healthy.
    wait_ready(&balancer, 2).await;
    wait_for(&balancer, &servers[2], "connected", |s| {
        s.state == ConnectionState::Ready
    })
    .await;

    let snapshot = balancer.snapshot();
    assert_eq!(snapshot.ready, 2);
    assert_eq!(snapshot.tier, Some(0));
    assert!(!snapshot.panic);
    assert_eq!(snapshot.unready, None);
    let by_server = |s: &tower_lb_testkit::TestServer| {
        let snapshot = balancer.snapshot();
        snapshot
            .endpoints
            .into_iter()
            .find(|e| e.addr == s.addr())
            .expect("every discovered endpoint is in the snapshot")
    };
    let (a, b, standby) = (
        by_server(&servers[0]),
        by_server(&servers[1]),
        by_server(&servers[2]),
    );
    assert!(a.ready && b.ready && !standby.ready);
    assert_eq!((a.weight, b.weight, standby.priority), (1, 3, 1));
    assert_eq!(standby.health, Health::Healthy);

    // Counters follow the calls: 40 calls, weights 1:3.
    let mut client = Client::new(balancer.clone());
    assert_eq!(calls(&mut client, 40).await, 0);
    let (a, b) = (by_server(&servers[0]), by_server(&servers[1]));
    assert_eq!((a.requests, b.requests), (10, 30));
    assert_eq!((a.failures, a.in_flight, a.ejections), (0, 0, 0));
    assert!(a.rtt_estimate > Duration::ZERO);

    // A failing endpoint: five failures eject it, and the snapshot says so.
    servers[0].set_fail_all(true);
    let failed = calls(&mut client, 20).await;
    assert_eq!(failed, 5);
    let a = by_server(&servers[0]);
    assert_eq!((a.failures, a.ejections), (5, 1), "{a:?}");
    assert_eq!(a.health, Health::Ejected);
    assert!(!a.ready);
    wait_ready(&balancer, 1).await;
    let snapshot = balancer.snapshot();
    assert_eq!((snapshot.ready, snapshot.tier), (1, Some(0)));
}

/// A failing discovery source keeps the last good set, and the snapshot says so.
#[tokio::test]
async fn a_failing_discovery_source_shows_in_the_snapshot_and_loses_nothing() {
    let servers = servers(2, "kept");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Change, String>>();
    let discovery =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let balancer = builder().build(discovery).unwrap();
    tx.send(Ok(Change::Insert(key(&servers[0]), endpoint(&servers[0]))))
        .unwrap();
    wait_ready(&balancer, 1).await;
    assert_eq!(balancer.snapshot().discovery_error, None);

    tx.send(Err("registry unreachable".to_owned())).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let snapshot = loop {
        let snapshot = balancer.snapshot();
        if snapshot.discovery_error.is_some() {
            break snapshot;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(
        snapshot.discovery_error.as_deref(),
        Some("registry unreachable")
    );
    assert!(snapshot.discovery_error_age.is_some());
    assert_eq!(snapshot.ready, 1, "the last good set is kept");
    assert_eq!(
        echo(&mut Client::new(balancer.clone())).await.unwrap(),
        "kept-0"
    );

    // A change delivered again clears it.
    tx.send(Ok(Change::Insert(key(&servers[1]), endpoint(&servers[1]))))
        .unwrap();
    wait_ready(&balancer, 2).await;
    assert_eq!(balancer.snapshot().discovery_error, None);
}
