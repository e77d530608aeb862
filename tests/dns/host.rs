//! Host discovery: the A and AAAA records of one name, at a fixed port.

use tower_lb::discover::dns::Dns;

use crate::common::*;
use crate::knot::{Knot, Zone};

#[tokio::test]
async fn a_and_aaaa_records_at_a_fixed_port() {
    let zone = Zone::new()
        .addr("echo", 1, "127.0.0.2")
        .addr("echo", 1, "127.0.0.3")
        .addr("echo", 1, "::1");
    let Some(mut knot) = Knot::start(&zone) else {
        return;
    };
    let w = watch(
        fast(Dns::host("echo.lb.test.:50051").unwrap(), knot.addr())
            .build()
            .unwrap(),
    );
    w.until_endpoints(&[
        ("127.0.0.2:50051", 0, 1),
        ("127.0.0.3:50051", 0, 1),
        ("[::1]:50051", 0, 1),
    ])
    .await;

    // One address leaves, one joins; the other two are left alone.
    let mark = w.mark();
    knot.set_zone(
        &Zone::new()
            .addr("echo", 1, "127.0.0.3")
            .addr("echo", 1, "127.0.0.4")
            .addr("echo", 1, "::1"),
    );
    w.until_endpoints(&[
        ("127.0.0.3:50051", 0, 1),
        ("127.0.0.4:50051", 0, 1),
        ("[::1]:50051", 0, 1),
    ])
    .await;
    assert_eq!(
        w.changes_since(mark),
        [insert("127.0.0.4:50051", 0, 1), remove("127.0.0.2:50051")]
    );

    // Only AAAA left: the IPv4 endpoints go, the IPv6 one stays.
    knot.set_zone(&Zone::new().addr("echo", 1, "::1"));
    w.until_endpoints(&[("[::1]:50051", 0, 1)]).await;
    let seen = w.seen();
    assert_eq!(seen.redundant, 0);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    // The TLS server name is the host name asked for, never the address.
    assert_eq!(
        seen.names(),
        [("[::1]:50051".to_owned(), Some("echo.lb.test".to_owned()))]
    );
}

/// An IP address needs no DNS: it is its own answer.
#[tokio::test]
async fn an_ip_address_is_its_own_answer() {
    let w = watch(Dns::host("[::1]:50051").unwrap().build().unwrap());
    w.until_endpoints(&[("[::1]:50051", 0, 1)]).await;
    assert_eq!(w.seen().names(), [("[::1]:50051".to_owned(), None)]);
}

#[test]
fn host_port_errors_say_what_is_wrong() {
    let e = Dns::host("echo.internal").unwrap_err();
    assert!(e.to_string().contains("missing :port"), "{e}");
    let e = Dns::host("echo.internal:0").unwrap_err();
    assert!(matches!(e, tower_lb::Error::InvalidEndpoint(_)), "{e}");
    let e = Dns::host("echo.internal:50051")
        .unwrap()
        .name_servers([])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let e = Dns::host("echo.internal:50051")
        .unwrap()
        .ttl_bounds(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(1),
        )
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("TTL bounds"), "{e}");
    let e = Dns::host("echo.internal:50051")
        .unwrap()
        .attempts(0)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("attempts"), "{e}");
}
