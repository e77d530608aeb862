//! Instructions per call, for comparing two builds of the hot path on a noisy machine: run
//! it under `valgrind --tool=callgrind` with CALLS=K and CALLS=2K; the difference in
//! instructions divided by K is the cost of one call (setup cancels out).
//! Usage: `CALLS=100000 N=10000 POLICY=in-flight cargo run --release --example call_cost`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use tower::Service;
use tower::util::ServiceFn;
use tower_lb::transport::ServiceConnector;
use tower_lb::{Balancer, PeakEwma, Policy, discover};

type Body = Empty<Bytes>;
type Req = http::Request<Body>;
type Resp = http::Response<Body>;
type Answer = fn(Req) -> Ready<Result<Resp, Infallible>>;

fn answer(_req: Req) -> Ready<Result<Resp, Infallible>> {
    ready(Ok(http::Response::new(Empty::new())))
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let calls = env("CALLS", 100_000);
    let n = env("N", 10);
    let policy = match std::env::var("POLICY").as_deref() {
        Ok("peak-ewma") => Policy::p2c_peak_ewma(PeakEwma::default()),
        _ => Policy::p2c_in_flight(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let endpoints: Vec<discover::Endpoint> = (0..n)
            .map(|i| format!("127.0.0.1:{}", 10_000 + i).parse().unwrap())
            .collect();
        let service: ServiceFn<Answer> = tower::service_fn(answer as Answer);
        let mut balancer = Balancer::builder()
            .policy(policy)
            .build_with(
                ServiceConnector::new(move |_: &discover::Endpoint| service),
                discover::fixed(endpoints),
            )
            .unwrap();
        while balancer.ready_len() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..calls {
            let response = balancer
                .call(http::Request::new(Empty::new()))
                .await
                .unwrap();
            drop(black_box(response));
        }
    });
}
