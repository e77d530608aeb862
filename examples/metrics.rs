//! Metrics: a balancer's endpoints as Prometheus sees them, served in the Prometheus text
//! format on a loopback port.
//!
//! ```text
//! cargo run --example metrics --features metrics
//! METRICS_SECS=60 cargo run --example metrics --features metrics   # then: curl 127.0.0.1:<port>/metrics
//! ```
//!
//! Three embedded backends, one of them failing 2 calls in 10; 2,000 calls; then the example
//! scrapes its own `/metrics` endpoint, prints the `tower_lb_*` lines and checks them against
//! what the calls saw. `METRICS_SECS` keeps the endpoint up that many seconds longer, for
//! `curl` or a local Prometheus.
//!
//! Any exporter of the [`metrics`](https://docs.rs/metrics) facade works the same way: install
//! it first, then build the balancer with `.metrics(Metrics::new("<name>"))`.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_lb::metrics::Metrics;
use tower_lb::{Balancer, discover, health::OutlierDetection};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

const CALLS: usize = 2_000;
const CONCURRENCY: usize = 16;
/// How often the balancer sets its metrics (the default is 1 s; shorter for a quick demo).
const INTERVAL: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // 1. The recorder first: the balancer registers its metrics with whichever is installed.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, prometheus));

    // 2. Three backends; backend-3 fails 20 % of its calls (outlier detection stays out of
    //    the way here, so that the failures show in the counters).
    let servers: Vec<TestServer> = (1..=3)
        .map(|i| TestServer::start(&format!("backend-{i}")))
        .collect::<Result<_, _>>()?;
    servers[2].set_failure_rate(0.2);
    let endpoints = servers
        .iter()
        .map(|s| discover::Endpoint::new(s.addr()))
        .collect::<Result<Vec<_>, _>>()?;
    let balancer = Balancer::builder()
        .outlier_detection(OutlierDetection::disabled())
        .metrics(Metrics::new("echo").interval(INTERVAL))
        .build(discover::fixed(endpoints))?;

    // 3. Calls from 16 tasks.
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let mut client = EchoClient::new(balancer.clone());
        tasks.push(tokio::spawn(async move {
            let mut failed = 0;
            for _ in 0..CALLS / CONCURRENCY {
                let request = EchoRequest {
                    message: "hi".into(),
                    stream_count: 0,
                };
                failed += usize::from(client.unary(request).await.is_err());
            }
            failed
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    println!("{CALLS} calls, {failed} failed\n");

    // 4. Scrape: the next interval has set every counter.
    tokio::time::sleep(INTERVAL * 3).await;
    let text = scrape(addr).await?;
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tower_lb_") || l.starts_with("# HELP tower_lb_"))
        .collect();
    println!("GET http://{addr}/metrics\n");
    for line in &ours {
        println!("{line}");
    }

    // 5. The metrics agree with what the calls saw.
    let requests = sum(&ours, "tower_lb_requests_total{");
    let failures = sum(&ours, "tower_lb_failures_total{");
    let ready = sum(&ours, "tower_lb_ready_endpoints{");
    println!("\nrequests_total {requests}, failures_total {failures}, ready_endpoints {ready}");
    let ok = requests == CALLS as f64 && failures == failed as f64 && ready == 3.0;
    if !ok {
        return Err("the metrics do not match the calls".into());
    }
    println!("ok: the metrics match the calls");

    if let Some(secs) = std::env::var("METRICS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        println!("\nserving http://{addr}/metrics for {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    Ok(())
}

/// The sum of the values of every series of one metric.
fn sum(lines: &[&str], prefix: &str) -> f64 {
    lines
        .iter()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A minimal HTTP/1.1 server: every request gets the current metrics.
async fn serve(listener: TcpListener, prometheus: PrometheusHandle) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let prometheus = prometheus.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            // One read is enough for a GET from curl or Prometheus on loopback.
            if stream.read(&mut request).await.is_err() {
                return;
            }
            let body = prometheus.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
    }
}

async fn scrape(addr: SocketAddr) -> Result<String, Box<dyn Error>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .ok_or("no HTTP body")?;
    Ok(body)
}
