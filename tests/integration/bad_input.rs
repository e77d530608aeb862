//! Bad input gets a clear error or a logged warning, never a panic, and the set stays
//! consistent.

use std::time::Duration;

use futures::StreamExt;
use tower_lb::discover::{Change, Endpoint, Key, fixed};
use tower_lb::{Balancer, Error};

use crate::common::*;

#[test]
fn invalid_endpoints_are_refused_with_a_reason() {
    for bad in [
        "",
        "localhost:80",
        "127.0.0.1",
        "127.0.0.1:0",
        "0.0.0.0:80",
        "[::]:80",
        "300.1.1.1:80",
        "127.0.0.1:99999",
    ] {
        let err = bad.parse::<Endpoint>().unwrap_err();
        assert!(matches!(err, Error::InvalidEndpoint(_)), "{bad:?}: {err}");
        assert!(err.to_string().contains("invalid endpoint"), "{err}");
    }
    let e: Endpoint = "127.0.0.1:1".parse().unwrap();
    let err = e.clone().with_weight(0).unwrap_err();
    assert!(err.to_string().contains("weight 0"), "{err}");
    assert_eq!(e.with_weight(u32::MAX).unwrap().weight(), u32::MAX);
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let err = Balancer::builder().build(fixed([])).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}

#[tokio::test]
async fn duplicates_unknown_removals_errors_and_an_ended_stream_keep_a_consistent_set() {
    let servers = servers(2, "bad");
    let a = endpoint(&servers[0]);
    let heavy = endpoint(&servers[1]).with_weight(5).unwrap();
    let changes: Vec<Result<Change, std::io::Error>> = vec![
        Ok(Change::Insert(Key::from("a"), a.clone())),
        Ok(Change::Insert(Key::from("a"), a.clone())), // duplicate: no-op
        Ok(Change::Remove(Key::from("nobody"))),       // unknown: warning
        Err(std::io::Error::other("resolver hiccup")), // logged, set kept
        Ok(Change::Insert(Key::from("b"), heavy)),
        Ok(Change::Insert(
            Key::from("b"),
            endpoint(&servers[1]).with_weight(2).unwrap(),
        )), // weight update in place
    ];
    // The stream then ends: the set stays.
    let balancer = builder()
        .build(futures::stream::iter(changes).boxed())
        .unwrap();
    wait_ready(&balancer, 2).await;
    let endpoints = balancer.snapshot().endpoints;
    assert_eq!(endpoints.len(), 2, "{endpoints:?}");
    assert_eq!(endpoints[0].key, Key::from("a"));
    assert_eq!(endpoints[1].weight, 2);
    let mut client = Client::new(balancer);
    for _ in 0..10 {
        echo(&mut client).await.expect("calls work after bad input");
    }
}

#[tokio::test]
async fn an_endpoint_moving_to_another_address_reconnects() {
    let servers = servers(2, "move");
    let (tx, discovery) = channel_discovery();
    let balancer = builder()
        .ready_timeout(Duration::from_secs(5))
        .build(discovery)
        .unwrap();
    tx.send(Change::Insert(Key::from("svc"), endpoint(&servers[0])))
        .unwrap();
    wait_ready(&balancer, 1).await;
    let mut client = Client::new(balancer.clone());
    assert_eq!(echo(&mut client).await.unwrap(), "move-0");
    tx.send(Change::Insert(Key::from("svc"), endpoint(&servers[1])))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = balancer.snapshot().endpoints;
        if status[0].addr == servers[1].addr() && balancer.ready_len() == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(echo(&mut client).await.unwrap(), "move-1");
}

#[test]
fn invalid_policy_settings_are_refused_with_a_reason() {
    use tower_lb::{HashKey, Picker, Policy};
    let ring = || Policy::ring_hash(HashKey::path());
    let maglev = || Policy::maglev(HashKey::path());
    let refused = [
        ("epsilon 0", ring().bounded_load(0.0).unwrap_err()),
        ("epsilon NaN", ring().bounded_load(f64::NAN).unwrap_err()),
        ("epsilon -1", maglev().bounded_load(-1.0).unwrap_err()),
        (
            "epsilon inf",
            maglev().bounded_load(f64::INFINITY).unwrap_err(),
        ),
        (
            "bound without hashing",
            Policy::round_robin().bounded_load(0.25).unwrap_err(),
        ),
        ("ring min 0", ring().ring_size(0, 1024).unwrap_err()),
        ("ring min > max", ring().ring_size(4096, 1024).unwrap_err()),
        (
            "ring max > 8M",
            ring().ring_size(1024, 8 * 1024 * 1024 + 1).unwrap_err(),
        ),
        (
            "ring size on maglev",
            maglev().ring_size(1024, 4096).unwrap_err(),
        ),
        ("table not prime", maglev().table_size(65_536).unwrap_err()),
        (
            "table too large",
            maglev().table_size(16_777_291).unwrap_err(),
        ),
        ("table size on ring", ring().table_size(65_537).unwrap_err()),
        ("bad header name", HashKey::header("x user").unwrap_err()),
    ];
    for (what, err) in refused {
        assert!(matches!(err, Error::InvalidConfig(_)), "{what}: {err}");
    }
    // A Picker refuses a weight of 0 and a key given twice.
    let zero = Picker::new(Policy::default(), [(Key::from("a"), 0)], 1).unwrap_err();
    assert!(zero.to_string().contains("weight 0"), "{zero}");
    let twice = Picker::new(
        Policy::default(),
        [(Key::from("a"), 1), (Key::from("a"), 2)],
        1,
    )
    .unwrap_err();
    assert!(twice.to_string().contains("twice"), "{twice}");
}

#[tokio::test]
async fn invalid_health_settings_are_refused_with_a_reason() {
    use tower_lb::health::{FailurePercentage, OutlierDetection, SlowStart, SuccessRate};
    use tower_lb::{HashKey, Policy};
    let od = OutlierDetection::default;
    let second = Duration::from_secs(1);
    let refused = [
        (
            "interval 0",
            builder().outlier_detection(od().interval(Duration::ZERO)),
        ),
        (
            "ejection 101 %",
            builder().outlier_detection(od().max_ejection_percent(101)),
        ),
        (
            "0 consecutive",
            builder().outlier_detection(od().consecutive_failures(Some(0))),
        ),
        (
            "stdev NaN",
            builder().outlier_detection(
                od().success_rate(Some(SuccessRate::default().stdev_factor(f64::NAN))),
            ),
        ),
        (
            "threshold 200 %",
            builder().outlier_detection(
                od().failure_percentage(Some(FailurePercentage::default().threshold(200))),
            ),
        ),
        (
            "slow start 0 s",
            builder().slow_start(SlowStart::new(Duration::ZERO)),
        ),
        (
            "slow start aggression -1",
            builder().slow_start(SlowStart::new(second).aggression(-1.0)),
        ),
        (
            "slow start with hashing",
            builder()
                .policy(Policy::maglev(HashKey::path()))
                .slow_start(SlowStart::new(second)),
        ),
        ("panic 1.5", builder().panic_threshold(Some(1.5))),
        ("panic NaN", builder().panic_threshold(Some(f64::NAN))),
    ];
    for (what, builder) in refused {
        let err = builder.build(fixed(Vec::<Endpoint>::new())).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{what}: {err}");
    }
    // Disabled outlier detection ignores its (unused) settings.
    let off = OutlierDetection::disabled().interval(Duration::ZERO);
    assert!(
        builder()
            .outlier_detection(off)
            .build(fixed(Vec::<Endpoint>::new()))
            .is_ok()
    );
}

#[cfg(feature = "health")]
#[tokio::test]
async fn health_checks_need_a_grpc_channel() {
    use std::convert::Infallible;
    use tower_lb::health::HealthCheck;
    use tower_lb::transport::ServiceConnector;
    let connector: ServiceConnector<_, String> = ServiceConnector::new(|_: &Endpoint| {
        tower::service_fn(|_: http::Request<String>| async {
            Ok::<_, Infallible>(http::Response::new(String::new()))
        })
    });
    let err = Balancer::builder()
        .health_check(HealthCheck::grpc())
        .build_with(connector, fixed(Vec::<Endpoint>::new()))
        .unwrap_err();
    assert!(err.to_string().contains("tonic::body::Body"), "{err}");
}
