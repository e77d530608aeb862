//! Gray DNS faults: a server that answers one address family and fails the other, and a name
//! that comes back after an empty spell has emptied the set — found again on the records'
//! TTL rather than the grown backoff, and at once on a refresh.

use std::time::Duration;

use hickory_resolver::proto::rr::RecordType;
use tower_lb::Backoff;
use tower_lb::discover::dns::{Dns, DnsErrorKind, OnEmpty};

use crate::common::*;
use crate::fault_server::{FaultServer, Mode, addr, srv};
use crate::knot::{Knot, Zone};

const NAME: &str = "_grpc._tcp.echo.lb.test.";

/// A failure of one family uses the other's answer, for a host and for SRV targets (looked
/// up, as this server sends no additional section); once both families were known, a failing
/// family keeps its last known addresses.
#[tokio::test]
async fn a_family_that_fails_leaves_the_other_family_s_endpoints() {
    for (failing, working) in [
        (RecordType::AAAA, "127.0.0.2:50051"),
        (RecordType::A, "[::1]:50051"),
    ] {
        let server = FaultServer::start().await;
        server.set_records(vec![
            srv(NAME, 1, 0, 1, 50051, "a.lb.test."),
            addr("a.lb.test.", 1, "127.0.0.2"),
            addr("a.lb.test.", 1, "::1"),
        ]);
        server.set_mode(Mode::ServFailFor(failing));
        let host = watch(
            fast(Dns::host("a.lb.test.:50051").unwrap(), server.addr())
                .build()
                .unwrap(),
        );
        let targets = watch(fast(Dns::srv(NAME), server.addr()).build().unwrap());
        host.until_endpoints(&[(working, 0, 1)]).await;
        targets.until_endpoints(&[(working, 0, 100)]).await;
        for w in [&host, &targets] {
            let seen = w.seen();
            assert!(seen.errors.is_empty(), "{failing}: {:?}", seen.errors);
        }

        // Both families answer: both endpoints.
        server.set_mode(Mode::Answer);
        let both = [("127.0.0.2:50051", 0, 1), ("[::1]:50051", 0, 1)];
        host.until_endpoints(&both).await;
        // One fails again: its endpoint is kept from the last answer, nothing is removed.
        let mark = host.mark();
        server.set_mode(Mode::ServFailFor(failing));
        let (udp, tcp) = server.queries();
        host.until("three more resolutions", |_| {
            let (u, t) = server.queries();
            u + t >= udp + tcp + 3 * 2 * 2
        })
        .await;
        assert!(
            host.changes_since(mark).is_empty(),
            "{failing}: {:?}",
            host.changes_since(mark)
        );
        assert_eq!(host.seen().set.len(), 2);
    }
}

/// After an empty spell has emptied the set, the next resolutions are paced by the last
/// answer's TTL, not by the backoff (here 20 s); a refresh while backing off is honoured.
#[tokio::test]
async fn after_an_emptied_set_the_ttl_paces_retries_and_refresh_works() {
    let server = FaultServer::start().await;
    let records = vec![
        srv(NAME, 2, 0, 1, 50051, "a.lb.test."),
        addr("a.lb.test.", 2, "127.0.0.2"),
    ];
    server.set_records(records.clone());
    let slow_backoff = Backoff::default()
        .initial(Duration::from_secs(20))
        .max(Duration::from_secs(30));
    let discovery = fast(Dns::srv(NAME), server.addr())
        .backoff(slow_backoff)
        .on_empty(OnEmpty::Clear)
        .build()
        .unwrap();
    let refresher = discovery.refresher();
    let w = watch(discovery);
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;

    // NXDOMAIN: emptied; the empty answers that follow say they retry within the TTL (2 s),
    // where the backoff says 20 s.
    server.set_records(vec![]);
    w.until("the set emptied", |s| s.set.is_empty()).await;
    w.until("two empty answers after", |s| {
        s.errors_of(DnsErrorKind::NotFound) >= 2
    })
    .await;
    for e in &w.seen().errors {
        assert!(e.retry_in() <= Duration::from_secs(2), "{e}");
    }

    // Restored: seen again on the TTL schedule.
    server.set_records(records.clone());
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;

    // With a 30 s TTL and an emptied set, only a refresh brings it back soon; it is honoured
    // while backing off, with exactly one query.
    let long = vec![
        srv(NAME, 30, 0, 1, 50051, "a.lb.test."),
        addr("a.lb.test.", 30, "127.0.0.2"),
    ];
    server.set_records(long.clone());
    refresher.refresh();
    w.until("the 30 s answer", |_| server.srv_queries() >= 1)
        .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    server.set_records(vec![]);
    refresher.refresh();
    w.until("emptied again", |s| s.set.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    server.set_records(long);
    let before = server.srv_queries();
    refresher.refresh();
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;
    assert_eq!(
        server.srv_queries(),
        before + 1,
        "one resolution: the refresh"
    );
}

/// Knot: NXDOMAIN empties the set (`Clear`), the records come back and are found, and the
/// empty answers in between retried within the records' TTL.
#[tokio::test]
async fn knot_nxdomain_then_restored_records_are_found_on_the_ttl() {
    let zone = Zone::new()
        .srv("_grpc._tcp.echo", 2, 0, 1, 50051, "a.echo")
        .addr("a.echo", 2, "127.0.0.2");
    let Some(mut knot) = Knot::start(&zone) else {
        return;
    };
    let discovery = fast(Dns::srv(NAME), knot.addr())
        .backoff(
            Backoff::default()
                .initial(Duration::from_secs(20))
                .max(Duration::from_secs(30)),
        )
        .on_empty(OnEmpty::Clear)
        .build()
        .unwrap();
    let refresher = discovery.refresher();
    let w = watch(discovery);
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;

    knot.set_zone(&Zone::new().addr("a.echo", 2, "127.0.0.2"));
    w.until("the set emptied", |s| s.set.is_empty()).await;
    w.until("an empty answer after", |s| {
        s.errors_of(DnsErrorKind::NotFound) >= 1
    })
    .await;
    assert!(
        w.seen()
            .errors
            .iter()
            .all(|e| e.retry_in() <= Duration::from_secs(2)),
        "{:?}",
        w.seen().errors
    );
    knot.set_zone(&zone);
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;

    // Emptied again: a refresh while backing off finds the restored records.
    knot.set_zone(&Zone::new().addr("a.echo", 2, "127.0.0.2"));
    w.until("emptied again", |s| s.set.is_empty()).await;
    knot.set_zone(&zone);
    refresher.refresh();
    w.until_endpoints(&[("127.0.0.2:50051", 0, 100)]).await;
}
