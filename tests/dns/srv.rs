//! SRV discovery against Knot: records changed while the stream runs arrive as diffs, on the
//! records' TTL.

use std::time::Duration;

use tower_lb::discover::dns::Dns;

use crate::common::*;
use crate::knot::{Knot, Zone};

const NAME: &str = "_grpc._tcp.echo.lb.test.";

fn two_backends(ttl: u32) -> Zone {
    Zone::new()
        .srv("_grpc._tcp.echo", ttl, 10, 5, 50051, "a.echo")
        .srv("_grpc._tcp.echo", ttl, 10, 1, 50052, "b.echo")
        .addr("a.echo", ttl, "127.0.0.2")
        .addr("b.echo", ttl, "127.0.0.3")
        .addr("c.echo", ttl, "127.0.0.4")
}

/// Each endpoint carries its SRV target (without the trailing dot) as its TLS server name,
/// whether the target's address came in the additional section or from its own lookup; a
/// target that moves to a new name at the same address is a new name for that endpoint.
#[tokio::test]
async fn endpoints_are_named_by_their_srv_target() {
    let Some(mut knot) = Knot::start(&two_backends(1)) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until_endpoints(&[("127.0.0.2:50051", 10, 500), ("127.0.0.3:50052", 10, 100)])
        .await;
    assert_eq!(
        w.seen().names(),
        [
            (
                "127.0.0.2:50051".to_owned(),
                Some("a.echo.lb.test".to_owned())
            ),
            (
                "127.0.0.3:50052".to_owned(),
                Some("b.echo.lb.test".to_owned())
            ),
        ]
    );
    // b's record now names target c, which has b's address: same endpoint, new name.
    let zone = Zone::new()
        .srv("_grpc._tcp.echo", 1, 10, 5, 50051, "a.echo")
        .srv("_grpc._tcp.echo", 1, 10, 1, 50052, "c.echo")
        .addr("a.echo", 1, "127.0.0.2")
        .addr("c.echo", 1, "127.0.0.3");
    knot.set_zone(&zone);
    w.until("b's endpoint to be named c", |s| {
        s.names().contains(&(
            "127.0.0.3:50052".to_owned(),
            Some("c.echo.lb.test".to_owned()),
        ))
    })
    .await;
}

/// An endpoint joins, changes weight, changes priority and leaves: each step is exactly the
/// one change it should be, and nothing is sent for endpoints that did not change.
#[tokio::test]
async fn join_weight_priority_and_leave_arrive_as_diffs() {
    let Some(mut knot) = Knot::start(&two_backends(1)) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until_endpoints(&[("127.0.0.2:50051", 10, 500), ("127.0.0.3:50052", 10, 100)])
        .await;

    // Joins.
    let mark = w.mark();
    let zone = two_backends(1).srv("_grpc._tcp.echo", 1, 10, 2, 50053, "c.echo");
    knot.set_zone(&zone);
    w.until("c to join", |s| s.set.len() == 3).await;
    assert_eq!(w.changes_since(mark), [insert("127.0.0.4:50053", 10, 200)]);

    // Weight change (0: RFC 2782's "very small share").
    let mark = w.mark();
    let zone = Zone::new()
        .srv("_grpc._tcp.echo", 1, 10, 0, 50051, "a.echo")
        .srv("_grpc._tcp.echo", 1, 10, 1, 50052, "b.echo")
        .srv("_grpc._tcp.echo", 1, 10, 2, 50053, "c.echo")
        .addr("a.echo", 1, "127.0.0.2")
        .addr("b.echo", 1, "127.0.0.3")
        .addr("c.echo", 1, "127.0.0.4");
    knot.set_zone(&zone);
    w.until("a's weight to change", |s| {
        s.endpoints().contains(&("127.0.0.2:50051".into(), 10, 1))
    })
    .await;
    assert_eq!(w.changes_since(mark), [insert("127.0.0.2:50051", 10, 1)]);

    // Priority change: b becomes a backup.
    let mark = w.mark();
    let zone = Zone::new()
        .srv("_grpc._tcp.echo", 1, 10, 0, 50051, "a.echo")
        .srv("_grpc._tcp.echo", 1, 20, 1, 50052, "b.echo")
        .srv("_grpc._tcp.echo", 1, 10, 2, 50053, "c.echo")
        .addr("a.echo", 1, "127.0.0.2")
        .addr("b.echo", 1, "127.0.0.3")
        .addr("c.echo", 1, "127.0.0.4");
    knot.set_zone(&zone);
    w.until("b's priority to change", |s| {
        s.endpoints().contains(&("127.0.0.3:50052".into(), 20, 100))
    })
    .await;
    assert_eq!(w.changes_since(mark), [insert("127.0.0.3:50052", 20, 100)]);

    // Leaves.
    let mark = w.mark();
    let zone = Zone::new()
        .srv("_grpc._tcp.echo", 1, 10, 0, 50051, "a.echo")
        .srv("_grpc._tcp.echo", 1, 10, 2, 50053, "c.echo")
        .addr("a.echo", 1, "127.0.0.2")
        .addr("c.echo", 1, "127.0.0.4");
    knot.set_zone(&zone);
    w.until("b to leave", |s| s.set.len() == 2).await;
    assert_eq!(w.changes_since(mark), [remove("127.0.0.3:50052")]);

    // Several resolutions of an unchanged zone send nothing.
    let mark = w.mark();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(w.changes_since(mark).is_empty());
    let seen = w.seen();
    assert_eq!(seen.redundant, 0, "every change changed something");
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

/// A change is seen on the answer's TTL: not before (the answer is still valid), and soon
/// after.
#[tokio::test]
async fn changes_are_seen_when_the_ttl_runs_out() {
    let ttl = 4;
    let Some(mut knot) = Knot::start(&two_backends(ttl)) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until("the first answer", |s| s.set.len() == 2).await;
    let first_seen = tokio::time::Instant::now();
    knot.set_zone(&two_backends(ttl).srv("_grpc._tcp.echo", ttl, 10, 2, 50053, "c.echo"));

    // The next resolution is due 3.6 to 4 s after the first one started.
    tokio::time::sleep_until(first_seen + Duration::from_millis(2500)).await;
    assert_eq!(w.seen().set.len(), 2, "re-resolved before the TTL ran out");
    w.until("the change after the TTL", |s| s.set.len() == 3)
        .await;
    assert!(
        first_seen.elapsed() < Duration::from_secs(15),
        "took {:?}",
        first_seen.elapsed()
    );
}

/// Targets outside the SRV record's zone come without additional records: the stream looks
/// up their A and AAAA records, and each address is an endpoint.
#[tokio::test]
async fn targets_without_additional_records_are_looked_up() {
    let zone = Zone::new()
        .srv("_grpc._tcp.echo", 1, 0, 3, 50051, "dual.other.test.")
        .other_addr("dual", 1, "127.0.0.7")
        .other_addr("dual", 1, "::1");
    let Some(mut knot) = Knot::start(&zone) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until_endpoints(&[("127.0.0.7:50051", 0, 300), ("[::1]:50051", 0, 300)])
        .await;
    // The target's address changes: the old one is removed, the new one inserted.
    knot.set_zone(
        &Zone::new()
            .srv("_grpc._tcp.echo", 1, 0, 3, 50051, "dual.other.test.")
            .other_addr("dual", 1, "127.0.0.8")
            .other_addr("dual", 1, "::1"),
    );
    w.until_endpoints(&[("127.0.0.8:50051", 0, 300), ("[::1]:50051", 0, 300)])
        .await;
    assert_eq!(w.seen().redundant, 0);
}

/// What is not a DNS name is refused when the stream is built, before any query.
#[test]
fn bad_srv_names_are_refused_at_build() {
    for name in ["", ".", "has space._tcp.x.", "a..b"] {
        let e = Dns::srv(name).build().unwrap_err();
        assert!(
            matches!(e, tower_lb::Error::InvalidConfig(_)),
            "{name:?}: {e}"
        );
    }
}
