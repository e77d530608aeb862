//! Hostile answers: port 0, target ".", duplicates, targets that do not resolve, and more
//! records than the cap. Bad records are skipped, the rest is used, nothing panics.

use tower_lb::discover::dns::Dns;

use crate::common::*;
use crate::fault_server::{FaultServer, addr, srv};
use crate::knot::{Knot, Zone};

const NAME: &str = "_grpc._tcp.echo.lb.test.";

#[tokio::test]
async fn bad_records_are_skipped_and_duplicates_collapse() {
    let zone = Zone::new()
        .srv("_grpc._tcp.echo", 1, 0, 1, 0, "a.echo") // port 0
        .srv("_grpc._tcp.echo", 1, 0, 1, 50051, ".") // "not available"
        .srv("_grpc._tcp.echo", 1, 0, 1, 50051, "nowhere.echo") // does not resolve
        .srv("_grpc._tcp.echo", 1, 0, 1, 50051, "zero.echo") // resolves to 0.0.0.0
        .srv("_grpc._tcp.echo", 1, 20, 9, 50052, "a.echo") // duplicate, worse priority
        .srv("_grpc._tcp.echo", 1, 10, 5, 50052, "a.echo") // duplicate, kept
        .srv("_grpc._tcp.echo", 1, 10, 3, 50052, "alias.echo") // same ip:port, lower weight
        .addr("a.echo", 1, "127.0.0.2")
        .addr("alias.echo", 1, "127.0.0.2")
        .addr("zero.echo", 1, "0.0.0.0");
    let Some(knot) = Knot::start(&zone) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until_endpoints(&[("127.0.0.2:50052", 10, 500)]).await;
    assert!(w.seen().errors.is_empty(), "{:?}", w.seen().errors);
}

/// Only records that cannot be used: that is an empty answer (the set stays empty, an error
/// says why), not a panic.
#[tokio::test]
async fn an_answer_of_only_bad_records_is_empty() {
    let zone = Zone::new()
        .srv("_grpc._tcp.echo", 1, 0, 1, 0, "a.echo")
        .srv("_grpc._tcp.echo", 1, 0, 1, 50051, ".")
        .addr("a.echo", 1, "127.0.0.2");
    let Some(knot) = Knot::start(&zone) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until("an error saying nothing is usable", |s| {
        s.errors.iter().any(|e| e.detail().contains("none usable"))
    })
    .await;
    assert!(w.seen().set.is_empty());
}

/// 1,200 endpoints answered (about all a 64 KiB TCP answer holds), 1,000 kept: the best
/// priorities first.
#[tokio::test]
async fn more_records_than_the_cap_keep_the_best_ranked() {
    let server = FaultServer::start().await;
    let mut records = vec![addr("a.lb.test.", 1, "127.0.0.2")];
    for i in 0..1200u16 {
        // Priorities 0 and 1 in turn: the cap keeps all 600 of priority 0 and 400 of 1.
        records.push(srv(NAME, 1, i % 2, 1, 10000 + i, "a.lb.test."));
    }
    server.set_records(records);
    let w = watch(fast(Dns::srv(NAME), server.addr()).build().unwrap());
    w.until("1,000 endpoints", |s| s.set.len() == 1000).await;
    {
        let seen = w.seen();
        let first_tier = seen.set.values().filter(|e| e.priority() == 0).count();
        assert_eq!(first_tier, 600);
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    }

    // A smaller cap, configured.
    let small = watch(
        fast(Dns::srv(NAME), server.addr())
            .max_endpoints(10)
            .build()
            .unwrap(),
    );
    small.until("10 endpoints", |s| s.set.len() == 10).await;
}
