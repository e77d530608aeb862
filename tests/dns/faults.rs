//! Resolver faults keep the last good set: a dead server, SERVFAIL, REFUSED, silence,
//! garbage; truncated answers are fetched again over TCP; NXDOMAIN keeps the set for the
//! grace period.

use std::time::Duration;

use tower_lb::discover::dns::{Dns, DnsErrorKind, OnEmpty};

use crate::common::*;
use crate::fault_server::{FaultServer, Mode, addr, srv};
use crate::knot::{Knot, Zone};

const NAME: &str = "_grpc._tcp.echo.lb.test.";

fn zone(extra_port: Option<u16>) -> Zone {
    let mut zone = Zone::new()
        .srv("_grpc._tcp.echo", 1, 0, 1, 50051, "a.echo")
        .addr("a.echo", 1, "127.0.0.2");
    if let Some(port) = extra_port {
        zone = zone.srv("_grpc._tcp.echo", 1, 0, 1, port, "a.echo");
    }
    zone
}

/// The server dies: every resolution fails, each failure is an error item, the set stays.
/// It comes back with a changed zone: the change is seen.
#[tokio::test]
async fn dead_server_keeps_the_set_and_recovery_is_seen() {
    let Some(mut knot) = Knot::start(&zone(None)) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;

    knot.kill();
    w.until("three failed resolutions", |s| s.errors.len() >= 3)
        .await;
    {
        let seen = w.seen();
        assert_eq!(seen.endpoints(), [("127.0.0.2:50051".into(), 0, 100)]);
        for e in &seen.errors {
            assert!(
                matches!(e.kind(), DnsErrorKind::Timeout | DnsErrorKind::Unreachable),
                "{e}"
            );
            assert_eq!(e.kept(), 1);
        }
    }

    knot.restart(&zone(Some(50052)));
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100), ("127.0.0.2:50052", 0, 100)])
        .await;
    assert_eq!(w.seen().redundant, 0);
}

/// A zone that does not load makes Knot answer SERVFAIL: the set stays.
#[tokio::test]
async fn servfail_keeps_the_set() {
    let Some(mut knot) = Knot::start(&zone(None)) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;
    knot.restart_servfail();
    w.until("two SERVFAIL errors", |s| {
        s.errors_of(DnsErrorKind::ServerFailure) >= 2
    })
    .await;
    assert_eq!(w.seen().endpoints(), [("127.0.0.2:50051".into(), 0, 100)]);
    // Back with a changed zone: the change is seen, and nothing was sent that changed nothing.
    knot.restart(&zone(Some(50052)));
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100), ("127.0.0.2:50052", 0, 100)])
        .await;
    assert_eq!(w.seen().redundant, 0);
}

/// An answer too big for UDP comes back truncated from Knot; the resolver asks again over TCP
/// and every record arrives.
#[tokio::test]
async fn a_truncated_answer_is_fetched_over_tcp() {
    let mut zone = Zone::new();
    for i in 0..120u16 {
        let target = format!("backend-with-a-rather-long-name-{i:03}.echo");
        zone = zone
            .srv("_grpc._tcp.echo", 1, 0, 1, 40000 + i, &target)
            .addr(&target, 1, "127.0.0.2");
    }
    let Some(knot) = Knot::start(&zone) else {
        return;
    };
    let w = watch(fast(Dns::srv(NAME), knot.addr()).build().unwrap());
    w.until("all 120 endpoints", |s| s.set.len() == 120).await;
    assert!(w.seen().errors.is_empty(), "{:?}", w.seen().errors);
}

/// Fault shapes from the in-process server: forced truncation (TCP answers), then REFUSED,
/// SERVFAIL, silence and garbage: each keeps the set and is an error item of its kind; the
/// server answering again changes nothing that did not change.
#[tokio::test]
async fn fault_shapes_keep_the_set() {
    let server = FaultServer::start().await;
    server.set_records(vec![
        srv(NAME, 1, 0, 1, 50051, "a.lb.test."),
        addr("a.lb.test.", 1, "127.0.0.2"),
    ]);
    server.set_mode(Mode::TruncateUdp);
    let w = watch(fast(Dns::srv(NAME), server.addr()).build().unwrap());
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;
    let (_, tcp) = server.queries();
    assert!(
        tcp >= 1,
        "the truncated UDP answer was not retried over TCP"
    );

    for (mode, kinds) in [
        (Mode::Refused, &[DnsErrorKind::Refused][..]),
        (Mode::ServFail, &[DnsErrorKind::ServerFailure]),
        (Mode::Silent, &[DnsErrorKind::Timeout]),
        // A message that does not parse is dropped by the resolver (it may be spoofed) and
        // the query times out, or reported as malformed.
        (
            Mode::Garbage,
            &[DnsErrorKind::Timeout, DnsErrorKind::Malformed],
        ),
    ] {
        server.set_mode(mode);
        let before = w.seen().errors.len();
        w.until(&format!("two errors under {mode:?}"), |s| {
            s.errors[before..]
                .iter()
                .filter(|e| kinds.contains(&e.kind()))
                .count()
                >= 2
        })
        .await;
        assert_eq!(
            w.seen().endpoints(),
            [("127.0.0.2:50051".into(), 0, 100)],
            "{mode:?}"
        );
    }
    server.set_mode(Mode::Answer);
    server.set_records(vec![
        srv(NAME, 1, 0, 1, 50051, "a.lb.test."),
        srv(NAME, 1, 0, 1, 50052, "a.lb.test."),
        addr("a.lb.test.", 1, "127.0.0.2"),
    ]);
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100), ("127.0.0.2:50052", 0, 100)])
        .await;
    assert_eq!(w.seen().redundant, 0);
}

/// NXDOMAIN: by default the set is kept for the grace period, with errors saying so, then
/// emptied; `Clear` empties at once; `Keep` never does.
#[tokio::test]
async fn nxdomain_keeps_the_set_for_the_grace_period() {
    let Some(mut knot) = Knot::start(&zone(None)) else {
        return;
    };
    let grace = Duration::from_secs(3);
    let kept_for = watch(
        fast(Dns::srv(NAME), knot.addr())
            .on_empty(OnEmpty::KeepFor(grace))
            .build()
            .unwrap(),
    );
    let cleared = watch(
        fast(Dns::srv(NAME), knot.addr())
            .on_empty(OnEmpty::Clear)
            .build()
            .unwrap(),
    );
    let kept = watch(
        fast(Dns::srv(NAME), knot.addr())
            .on_empty(OnEmpty::Keep)
            .build()
            .unwrap(),
    );
    for w in [&kept_for, &cleared, &kept] {
        w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;
    }

    // The SRV name goes away (NXDOMAIN).
    knot.set_zone(&Zone::new().addr("a.echo", 1, "127.0.0.2"));
    let gone = tokio::time::Instant::now();
    cleared
        .until("Clear to empty the set", |s| s.set.is_empty())
        .await;
    kept_for
        .until("a NotFound error while the set is kept", |s| {
            s.errors_of(DnsErrorKind::NotFound) >= 1 && s.set.len() == 1
        })
        .await;
    assert!(kept_for.seen().errors.iter().all(|e| e.kept() == 1));
    kept_for
        .until("KeepFor to empty the set after the grace period", |s| {
            s.set.is_empty()
        })
        .await;
    assert!(
        gone.elapsed() >= grace,
        "emptied after {:?}, before the grace period",
        gone.elapsed()
    );
    assert_eq!(kept.seen().set.len(), 1, "Keep never empties");

    // The name comes back: every stream has the endpoint again.
    knot.set_zone(&zone(None));
    for w in [&kept_for, &cleared, &kept] {
        w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;
        assert_eq!(w.seen().redundant, 0);
    }
}
