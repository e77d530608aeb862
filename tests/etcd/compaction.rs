//! The watcher is cut off from etcd (a proxy in between drops its connections) while keys
//! change and the history is compacted past its revision: the set is kept meanwhile, and after
//! reconnection it is exactly the registry's, with no endpoint removed and added back.

use std::collections::BTreeSet;

use tower_lb::discover::etcd::{Etcd, EtcdErrorKind};

use crate::common::{Watcher, fast_backoff, wait_until};
use crate::proxy::Proxy;
use crate::server::Members;

fn go(addr: &str, weight: u32) -> String {
    format!(r#"{{"Op":0,"Addr":"{addr}","Metadata":{{"weight":{weight}}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_cut_off_ends_with_exactly_the_registrys_set() {
    let Some(etcd) = Members::single() else {
        return;
    };
    for i in 1..=5 {
        etcd.ctl_retry(&[
            "put",
            &format!("svc/{i}"),
            &go(&format!("10.0.0.{i}:80"), 1),
        ]);
    }
    let proxy = Proxy::start(etcd.addr(0)).await;
    let discovery = Etcd::new([proxy.url()], "svc")
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let status = discovery.status();
    let watcher = Watcher::start(discovery);
    watcher
        .wait_for(10, "5 endpoints", |s| s.set.len() == 5)
        .await;
    wait_until(10, "watching", || status.watching()).await;
    assert_eq!(status.lists(), 1);

    proxy.cut().await;
    wait_until(10, "the watcher sees the fault", || !status.watching()).await;
    // While it is cut off: two keys go, one changes weight, two are added, one is added and
    // removed again; then the history is compacted up to now.
    etcd.ctl_retry(&["del", "svc/1"]);
    etcd.ctl_retry(&["del", "svc/2"]);
    etcd.ctl_retry(&["put", "svc/3", &go("10.0.0.3:80", 7)]);
    etcd.ctl_retry(&["put", "svc/6", &go("10.0.0.6:80", 1)]);
    etcd.ctl_retry(&["put", "svc/7", &go("10.0.0.7:80", 1)]);
    etcd.ctl_retry(&["put", "svc/8", &go("10.0.0.8:80", 1)]);
    etcd.ctl_retry(&["del", "svc/8"]);
    let revision = etcd.revision();
    etcd.ctl_retry(&["compact", &revision.to_string()]);
    // Nothing reached the watcher: the set is the last good one.
    let (inserts, removes) = watcher.with(|s| (s.inserts, s.removes));
    assert_eq!(watcher.with(|s| s.set.len()), 5);
    assert!(watcher.with(|s| !s.errors_of(EtcdErrorKind::Unreachable).is_empty()));

    proxy.reopen();
    let want: BTreeSet<String> = [
        "10.0.0.3:80",
        "10.0.0.4:80",
        "10.0.0.5:80",
        "10.0.0.6:80",
        "10.0.0.7:80",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    watcher
        .wait_for(20, "the registry's set after reconnection", |s| {
            s.set.keys().cloned().collect::<BTreeSet<_>>() == want
                && s.set["10.0.0.3:80"].weight() == 7
        })
        .await;
    wait_until(10, "listed again", || status.lists() == 2).await;
    // The diff, nothing more: 2 removed; 2 added and 1 weight changed; the untouched two never
    // left, and the key added and removed while cut off never appeared.
    watcher.with(|s| {
        assert_eq!(s.removes - removes, 2);
        assert_eq!(s.inserts - inserts, 3);
        assert_eq!(s.errors_of(EtcdErrorKind::Compacted).len(), 1);
    });
    assert!(status.revision() >= revision);
    assert_eq!(status.endpoints(), 5);
}
