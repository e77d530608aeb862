//! Values as Go's endpoints manager writes them (here with `etcdctl put`), read correctly;
//! hostile ones skipped with a warning while the rest goes on: a key with no address, one
//! address under two keys, an address that does not parse, a 1 MiB value.

use std::time::Duration;

use tower_lb::discover::etcd::{Etcd, EtcdErrorKind};

use crate::common::{Watcher, fast_backoff};
use crate::server::Members;

fn has(s: &crate::common::Seen, addrs: &[&str]) -> bool {
    s.set.len() == addrs.len() && addrs.iter().all(|a| s.set.contains_key(*a))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_convention_values_are_read_and_bad_ones_skipped() {
    let Some(etcd) = Members::single() else {
        return;
    };
    // Before the watcher starts: read by the list.
    etcd.ctl_retry(&[
        "put",
        "svc/127.0.0.1:5001",
        r#"{"Op":0,"Addr":"127.0.0.1:5001","Metadata":null}"#,
    ]);
    etcd.ctl_retry(&[
        "put",
        "svc/127.0.0.1:5002",
        r#"{"Op":0,"Addr":"127.0.0.1:5002","Metadata":{"weight":3,"priority":1,"serverName":"echo.internal"}}"#,
    ]);
    etcd.ctl_retry(&["put", "svc/not-json", "127.0.0.1:5009"]);
    etcd.ctl_retry(&["put", "svc/no-addr", r#"{"Op":0,"Metadata":null}"#]);
    // Outside the prefix: never read.
    etcd.ctl_retry(&[
        "put",
        "svc2/x",
        r#"{"Op":0,"Addr":"127.0.0.1:5099","Metadata":null}"#,
    ]);

    let discovery = Etcd::new(etcd.urls(), "svc")
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let watcher = Watcher::start(discovery);
    watcher
        .wait_for(10, "the two good values", |s| {
            has(s, &["127.0.0.1:5001", "127.0.0.1:5002"]) && !s.errors.is_empty()
        })
        .await;
    watcher.with(|s| {
        let e = &s.set["127.0.0.1:5002"];
        assert_eq!(
            (e.weight(), e.priority(), e.server_name()),
            (3, 1, Some("echo.internal"))
        );
        let bad = s.errors_of(EtcdErrorKind::BadValue);
        assert_eq!(bad.len(), 1, "one warning per batch: {bad:?}");
        assert!(bad[0].message().contains("and 1 more"), "{}", bad[0]);
    });

    // Through the watch: one address under two keys, an address that does not parse, a value
    // of 1 MiB, then a good one (the stream goes on).
    let dup = r#"{"Op":0,"Addr":"127.0.0.1:5003","Metadata":null}"#;
    etcd.ctl_retry(&["put", "svc/dup-a", dup]);
    etcd.ctl_retry(&["put", "svc/dup-b", dup]);
    etcd.ctl_retry(&[
        "put",
        "svc/unparsable",
        r#"{"Op":0,"Addr":"127.0.0.1:port","Metadata":null}"#,
    ]);
    let mut big = br#"{"Op":0,"Addr":"127.0.0.1:5008","Metadata":""#.to_vec();
    big.resize(1024 * 1024 - 2, b'x');
    big.extend_from_slice(b"\"}");
    etcd.ctl_stdin(&["put", "svc/big"], &big)
        .expect("put 1 MiB");
    etcd.ctl_retry(&[
        "put",
        "svc/127.0.0.1:5004",
        r#"{"Op":0,"Addr":"127.0.0.1:5004","Metadata":null}"#,
    ]);
    watcher
        .wait_for(10, "the duplicate once and the last good value", |s| {
            has(
                s,
                &[
                    "127.0.0.1:5001",
                    "127.0.0.1:5002",
                    "127.0.0.1:5003",
                    "127.0.0.1:5004",
                ],
            )
        })
        .await;
    watcher
        .wait_for(10, "warnings for the bad values", |s| {
            let bad = s.errors_of(EtcdErrorKind::BadValue);
            bad.iter().any(|e| e.message().contains("not ip:port"))
                && bad.iter().any(|e| e.message().contains("1048576 bytes"))
        })
        .await;

    // The duplicate stays while either key names it, and goes with the last.
    etcd.ctl_retry(&["del", "svc/dup-a"]);
    etcd.ctl_retry(&[
        "put",
        "svc/127.0.0.1:5005",
        r#"{"Op":0,"Addr":"127.0.0.1:5005","Metadata":null}"#,
    ]);
    watcher
        .wait_for(10, "a later change", |s| {
            s.set.contains_key("127.0.0.1:5005")
        })
        .await;
    assert!(watcher.with(|s| s.set.contains_key("127.0.0.1:5003")));
    etcd.ctl_retry(&["del", "svc/dup-b"]);
    watcher
        .wait_for(10, "the duplicate goes with its last key", |s| {
            !s.set.contains_key("127.0.0.1:5003")
        })
        .await;
    // A key that named an endpoint and now holds garbage names none.
    etcd.ctl_retry(&["put", "svc/127.0.0.1:5001", "garbage"]);
    watcher
        .wait_for(10, "the garbled key leaves", |s| {
            !s.set.contains_key("127.0.0.1:5001")
        })
        .await;
    watcher.with(|s| {
        assert_eq!(s.set.len(), 3);
        assert!(
            s.errors.iter().all(|e| e.kind() == EtcdErrorKind::BadValue),
            "{:?}",
            s.errors
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_writes_what_the_go_manager_writes() {
    let Some(etcd) = Members::single() else {
        return;
    };
    let config = Etcd::new(etcd.urls(), "services/echo");
    let registration = config
        .registration("127.0.0.1:5010".parse().unwrap())
        .ttl(Duration::from_secs(5))
        .metadata(serde_json::json!({ "weight": 2 }))
        .start()
        .await
        .expect("register");
    assert_eq!(registration.key(), "services/echo/127.0.0.1:5010");
    assert_eq!(
        etcd.get_prefix("services/echo/"),
        vec![(
            "services/echo/127.0.0.1:5010".to_owned(),
            r#"{"Op":0,"Addr":"127.0.0.1:5010","Metadata":{"weight":2}}"#.to_owned()
        )]
    );
    let lease = etcd.ctl_retry(&["get", "services/echo/127.0.0.1:5010", "--write-out=json"]);
    let lease: serde_json::Value = serde_json::from_str(&lease).unwrap();
    assert_eq!(
        lease["kvs"][0]["lease"].as_i64(),
        Some(registration.lease())
    );
    registration.deregister().await.expect("deregister");
    assert!(etcd.get_prefix("services/echo/").is_empty());
}
