//! Three members on loopback ports: the leader is killed under load while the watch runs on it.
//! No call fails, and changes written during the election reach the balancer after it.

use std::collections::BTreeSet;
use std::time::Duration;

use tower_lb::discover::etcd::Etcd;
use tower_lb_testkit::TestServer;

use crate::common::{balancer, fast_backoff, wait_until};
use crate::load::{load, wait_ready};
use crate::server::Members;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_load_fails_no_call_and_misses_no_change() {
    let Some(mut etcd) = Members::cluster(3) else {
        return;
    };
    let leader = etcd.leader();
    // The leader first: the watch and the leases start on the member that will die.
    let mut urls = etcd.urls();
    urls.rotate_left(leader);
    let servers: Vec<TestServer> = (0..4)
        .map(|i| TestServer::start(&format!("cluster-{i}")).expect("test server"))
        .collect();
    for s in &servers {
        s.set_delay(Duration::from_millis(5));
    }
    let config = Etcd::new(urls, "services/echo").backoff(fast_backoff());
    let mut registrations = Vec::new();
    for s in &servers[..3] {
        let registration = config
            .registration(s.addr())
            .ttl(Duration::from_secs(5))
            .start()
            .await
            .expect("register");
        registrations.push(registration);
    }
    let discovery = config.build().unwrap();
    let status = discovery.status();
    let balancer = balancer(discovery);
    wait_ready(&balancer, 3).await;
    wait_until(10, "watching", || status.watching()).await;
    let leader_url = etcd.urls()[leader].clone();
    assert_eq!(status.member().as_deref(), Some(leader_url.as_str()));

    let load = load(&balancer, 8);
    wait_until(10, "calls on every server", || {
        servers[..3].iter().all(|s| s.calls() >= 20)
    })
    .await;

    etcd.kill(leader);
    // Written while the cluster elects a new leader (etcdctl retries until a member takes it):
    // a fourth server appears as Go's endpoints manager writes it, and the first one's key is
    // deleted by hand.
    let fourth = servers[3].addr();
    etcd.ctl_retry(&[
        "put",
        &format!("services/echo/{fourth}"),
        &format!(r#"{{"Op":0,"Addr":"{fourth}","Metadata":null}}"#),
    ]);
    etcd.ctl_retry(&["del", registrations[0].key()]);

    let want: BTreeSet<String> = [servers[1].addr(), servers[2].addr(), fourth]
        .iter()
        .map(|a| a.to_string())
        .collect();
    wait_until(20, "the changes made during the election arrive", || {
        let have: BTreeSet<String> = balancer
            .snapshot()
            .endpoints
            .iter()
            .map(|e| e.key.to_string())
            .collect();
        have == want
    })
    .await;
    wait_ready(&balancer, 3).await;
    wait_until(10, "calls on the fourth server", || {
        servers[3].calls() >= 20
    })
    .await;
    let (ok, errors) = load.finish().await;
    assert!(errors.is_empty(), "failed calls: {errors:?}");
    assert!(ok > 0);
    assert!(status.watching());
    assert_ne!(status.member().as_deref(), Some(leader_url.as_str()));
    // The registry agrees: the keys still there are exactly the set.
    let registry: BTreeSet<String> = etcd
        .get_prefix("services/echo/")
        .into_iter()
        .map(|(k, _)| k.trim_start_matches("services/echo/").to_owned())
        .collect();
    assert_eq!(registry, want);
}
