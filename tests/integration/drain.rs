//! An endpoint removed by discovery takes no new calls, and its calls in flight finish.

use std::time::Duration;

use tower_lb::discover::Change;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_endpoint_drains_its_in_flight_calls() {
    let servers = servers(2, "drain");
    for s in &servers {
        s.set_delay(Duration::from_millis(400));
    }
    let (tx, discovery) = channel_discovery();
    let balancer = builder().build(discovery).unwrap();
    for s in &servers {
        tx.send(Change::Insert(key(s), endpoint(s))).unwrap();
    }
    wait_ready(&balancer, 2).await;

    let mut calls = Vec::new();
    for _ in 0..20 {
        let mut client = Client::new(balancer.clone());
        calls.push(tokio::spawn(async move { echo(&mut client).await }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while servers[0].in_flight() == 0 || servers[0].in_flight() + servers[1].in_flight() < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls never reached the servers"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let on_removed = servers[0].in_flight();
    tx.send(Change::Remove(key(&servers[0]))).unwrap();
    wait_ready(&balancer, 1).await;

    // New calls go to the remaining endpoint only.
    let mut client = Client::new(balancer.clone());
    assert_eq!(echo(&mut client).await.unwrap(), "drain-1");

    let mut served_by_removed = 0;
    for call in calls {
        let server = call
            .await
            .unwrap()
            .expect("every in-flight call finishes successfully");
        served_by_removed += usize::from(server == "drain-0");
    }
    assert_eq!(served_by_removed, on_removed);
    assert!(on_removed > 0);
}
