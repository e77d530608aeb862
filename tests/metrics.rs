//! The `metrics` feature against a real exporter (Prometheus text) and real tonic servers:
//! counters follow the calls, health and breaker states are state sets, removed endpoints and
//! dropped balancers zero their gauges.
//!
//! One test: the recorder is process-wide.

use std::convert::Infallible;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::mpsc;
use tower_lb::discover::{Change, Endpoint, Key};
use tower_lb::health::OutlierDetection;
use tower_lb::metrics::Metrics;
use tower_lb::{Balancer, Policy};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

const INTERVAL: Duration = Duration::from_millis(20);

/// The value of the series `name{labels}` (labels in the exporter's order, which is the
/// order they were given).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Waits (bounded) until `series` reads `want`.
async fn wait_value(prometheus: &PrometheusHandle, series: &str, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = prometheus.render();
        if value(&text, series) == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never became {want}:\n{text}"
        );
        tokio::time::sleep(INTERVAL).await;
    }
}

async fn calls(client: &mut EchoClient<Balancer>, n: usize) -> usize {
    let mut failed = 0;
    for _ in 0..n {
        let request = EchoRequest {
            message: "hi".into(),
            stream_count: 0,
        };
        failed += usize::from(client.unary(request).await.is_err());
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_calls_ejections_and_discovery() {
    let prometheus = PrometheusBuilder::new().install_recorder().unwrap();
    let servers: Vec<TestServer> = (0..3)
        .map(|i| TestServer::start(&format!("metrics-{i}")).unwrap())
        .collect();
    let (tx, rx) = mpsc::unbounded_channel::<Change>();
    let discovery = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (Ok::<_, Infallible>(c), rx))
    });
    for s in &servers {
        tx.send(Change::Insert(
            Key::from(s.addr()),
            Endpoint::new(s.addr()).unwrap(),
        ))
        .unwrap();
    }
    let balancer = Balancer::builder()
        .policy(Policy::round_robin())
        .outlier_detection(
            OutlierDetection::default()
                .base_ejection_time(Duration::from_secs(30))
                .success_rate(None)
                .failure_percentage(None),
        )
        .metrics(Metrics::new("test").interval(INTERVAL))
        .build(discovery)
        .unwrap();
    let series = |name: &str, s: &TestServer| {
        format!(r#"{name}{{balancer="test",endpoint="{}"}}"#, s.addr())
    };
    let state = |name: &str, s: &TestServer, state: &str| {
        format!(
            r#"{name}{{balancer="test",endpoint="{}",state="{state}"}}"#,
            s.addr()
        )
    };
    wait_value(
        &prometheus,
        r#"tower_lb_ready_endpoints{balancer="test"}"#,
        3.0,
    )
    .await;
    wait_value(&prometheus, r#"tower_lb_endpoints{balancer="test"}"#, 3.0).await;

    // 30 calls by round robin: 10 each, none failed.
    let mut client = EchoClient::new(balancer.clone());
    assert_eq!(calls(&mut client, 30).await, 0);
    for s in &servers {
        wait_value(&prometheus, &series("tower_lb_requests_total", s), 10.0).await;
        wait_value(&prometheus, &series("tower_lb_failures_total", s), 0.0).await;
        wait_value(&prometheus, &series("tower_lb_in_flight", s), 0.0).await;
        wait_value(&prometheus, &series("tower_lb_endpoint_ready", s), 1.0).await;
        wait_value(
            &prometheus,
            &state("tower_lb_endpoint_health", s, "healthy"),
            1.0,
        )
        .await;
        wait_value(
            &prometheus,
            &state("tower_lb_breaker_state", s, "closed"),
            1.0,
        )
        .await;
        let text = prometheus.render();
        let latency = value(&text, &series("tower_lb_latency_estimate_seconds", s)).unwrap();
        assert!(latency > 0.0 && latency < 10.0, "{latency}");
    }

    // A failing endpoint: five failures eject it.
    let bad = &servers[0];
    bad.set_fail_all(true);
    assert_eq!(calls(&mut client, 30).await, 5);
    wait_value(&prometheus, &series("tower_lb_failures_total", bad), 5.0).await;
    wait_value(&prometheus, &series("tower_lb_ejections_total", bad), 1.0).await;
    wait_value(
        &prometheus,
        &state("tower_lb_endpoint_health", bad, "ejected"),
        1.0,
    )
    .await;
    wait_value(
        &prometheus,
        &state("tower_lb_endpoint_health", bad, "healthy"),
        0.0,
    )
    .await;
    wait_value(&prometheus, &series("tower_lb_endpoint_ready", bad), 0.0).await;
    wait_value(
        &prometheus,
        r#"tower_lb_ready_endpoints{balancer="test"}"#,
        2.0,
    )
    .await;
    wait_value(&prometheus, r#"tower_lb_panic_mode{balancer="test"}"#, 0.0).await;
    wait_value(
        &prometheus,
        r#"tower_lb_waiting_calls{balancer="test"}"#,
        0.0,
    )
    .await;
    wait_value(
        &prometheus,
        r#"tower_lb_standby_endpoints{balancer="test"}"#,
        0.0,
    )
    .await;
    wait_value(
        &prometheus,
        r#"tower_lb_retries_total{balancer="test"}"#,
        0.0,
    )
    .await;

    // Discovery removes one: its gauges go to 0, its counters stay.
    let gone = &servers[1];
    let finished = balancer
        .snapshot()
        .endpoints
        .into_iter()
        .find(|e| e.addr == gone.addr())
        .unwrap()
        .requests;
    assert!(finished >= 10);
    tx.send(Change::Remove(Key::from(gone.addr()))).unwrap();
    wait_value(&prometheus, r#"tower_lb_endpoints{balancer="test"}"#, 2.0).await;
    wait_value(&prometheus, &series("tower_lb_endpoint_ready", gone), 0.0).await;
    wait_value(
        &prometheus,
        &state("tower_lb_endpoint_health", gone, "healthy"),
        0.0,
    )
    .await;
    wait_value(
        &prometheus,
        &series("tower_lb_requests_total", gone),
        finished as f64,
    )
    .await;

    // The balancer dropped: nothing ready any more.
    drop(client);
    drop(balancer);
    wait_value(
        &prometheus,
        r#"tower_lb_ready_endpoints{balancer="test"}"#,
        0.0,
    )
    .await;
    wait_value(&prometheus, r#"tower_lb_endpoints{balancer="test"}"#, 0.0).await;
}
