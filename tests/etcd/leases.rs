//! A single member: three tonic servers register with leases; calls spread over them; one stops
//! renewing its lease, its key expires, and it leaves the set with no failed call.

use std::time::Duration;

use tower_lb::discover::etcd::Etcd;
use tower_lb_testkit::TestServer;

use crate::common::{balancer, fast_backoff, wait_until};
use crate::load::{load, wait_ready};
use crate::server::Members;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_lease_expires_leaves_the_set_without_failed_calls() {
    let Some(etcd) = Members::single() else {
        return;
    };
    let servers: Vec<TestServer> = (0..3)
        .map(|i| TestServer::start(&format!("etcd-{i}")).expect("test server"))
        .collect();
    for s in &servers {
        s.set_delay(Duration::from_millis(5));
    }
    let config = Etcd::new(etcd.urls(), "services/echo").backoff(fast_backoff());
    let mut registrations = Vec::new();
    for s in &servers {
        let registration = config
            .registration(s.addr())
            .ttl(Duration::from_secs(2))
            .start()
            .await
            .expect("register");
        registrations.push(registration);
    }
    assert_eq!(etcd.get_prefix("services/echo/").len(), 3);

    let discovery = config.build().unwrap();
    let status = discovery.status();
    let balancer = balancer(discovery);
    wait_ready(&balancer, 3).await;
    let load = load(&balancer, 6);
    wait_until(10, "calls on every server", || {
        servers.iter().all(|s| s.calls() >= 20)
    })
    .await;

    // The third server stops renewing (as if its process hung): the key outlives it by the TTL
    // at most, then leaves; the server itself keeps running, so calls in flight finish.
    let gone = registrations.pop().unwrap();
    let key = gone.key().to_owned();
    gone.stop_keep_alive();
    wait_until(15, "the key expires in etcd", || {
        etcd.get_prefix(&key).is_empty()
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while balancer.snapshot().endpoints.len() != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired key never left the set: {:?}; discovery {} endpoints at revision {}, {:?}",
            balancer.snapshot().endpoints,
            status.endpoints(),
            status.revision(),
            status.last_error()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_until(5, "its calls in flight finish", || {
        servers[2].in_flight() == 0
    })
    .await;
    let calls_on_gone = servers[2].calls();
    let ok_then = load.ok();
    wait_until(10, "more calls after it left", || load.ok() > ok_then + 200).await;
    let (ok, errors) = load.finish().await;
    assert!(errors.is_empty(), "failed calls: {errors:?}");
    assert!(ok > 200);
    assert_eq!(servers[2].calls(), calls_on_gone, "no call after it left");
    assert_eq!(status.endpoints(), 2);
    assert!(status.watching());

    // Deregistering removes the keys at once (no TTL to wait out).
    for registration in registrations {
        registration.deregister().await.expect("deregister");
    }
    wait_until(10, "deregistered servers leave", || {
        balancer.snapshot().endpoints.is_empty()
    })
    .await;
    assert!(etcd.get_prefix("services/echo/").is_empty());
}
