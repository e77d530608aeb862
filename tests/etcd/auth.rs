//! User and password: with etcd's auth on, the right credentials watch, wrong ones get an
//! authentication error (and the set stays empty, never wrong).

use tower_lb::discover::etcd::{Etcd, EtcdErrorKind};

use crate::common::{Watcher, fast_backoff};
use crate::server::Members;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password() {
    let Some(etcd) = Members::single() else {
        return;
    };
    etcd.ctl_retry(&[
        "put",
        "svc/a",
        r#"{"Op":0,"Addr":"127.0.0.1:5001","Metadata":null}"#,
    ]);
    etcd.ctl_retry(&["user", "add", "root:root-pw"]);
    etcd.ctl_retry(&["auth", "enable"]);

    let good = Etcd::new(etcd.urls(), "svc")
        .user("root", "root-pw")
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let good = Watcher::start(good);
    good.wait_for(10, "the endpoint, logged in", |s| s.set.len() == 1)
        .await;

    let bad = Etcd::new(etcd.urls(), "svc")
        .user("root", "wrong")
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let bad = Watcher::start(bad);
    bad.wait_for(10, "an authentication error", |s| {
        !s.errors_of(EtcdErrorKind::Auth).is_empty()
    })
    .await;
    assert!(bad.with(|s| s.set.is_empty()));

    let anonymous = Etcd::new(etcd.urls(), "svc")
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let anonymous = Watcher::start(anonymous);
    anonymous
        .wait_for(10, "a refusal", |s| !s.errors.is_empty())
        .await;
    assert!(anonymous.with(|s| s.set.is_empty()));
}
