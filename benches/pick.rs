//! Pick + dispatch cost per call over N in-process, always-ready endpoints.
//!
//! Every contender wraps the same trivial service (answers at once with an empty body), so what
//! is measured is the balancer: choosing an endpoint, counting the call on it, dispatching, and
//! releasing the call when the response is dropped.
//!
//! * `baseline/service-direct`: the endpoint service called directly, no balancer: the floor
//!   (building the request and response and dropping them) that every contender pays.
//! * `tower-lb/in-flight`, `tower-lb/peak-ewma`: `Balancer` over `ServiceConnector`, one call
//!   per iteration (`poll_ready` is always `Ready`, so `call` is the whole request path).
//! * `tower-p2c/pending-requests`, `tower-p2c/peak-ewma`: tower 0.5's `p2c::Balance` over a
//!   `ServiceList` of `PendingRequests` / `PeakEwma` (30 ms default RTT, 10 s decay);
//!   `ready().await` then `call(req).await`.
//! * `tower-buffer-p2c/peak-ewma`: the same PeakEwma p2c behind `tower::buffer::Buffer`
//!   (bound 1024), as tonic's `Channel::balance_list` wraps it: clone, ready, call.
//! * `tower-lb/prequal`: `Policy::prequal` with its defaults over endpoints that answer load
//!   probes at once (a fixed report) and calls like the others. The loop yields every 64
//!   calls so the probe task runs on this thread: the figure is the call *plus* its share of
//!   probing (3 probes per call, each an in-process request and answer), not the pick alone.
//!
//! Single-task numbers run on a current-thread runtime. The `pick-2-tasks` groups run two
//! tasks on a 2-worker multi-thread runtime, each with its own clone / `Buffer` handle, and
//! report wall time divided by the total number of calls.
//!
//! Run: `cargo bench --bench pick`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::Empty;
use tokio::runtime::Runtime;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwma as TowerPeakEwma, PendingRequests};
use tower::util::ServiceFn;
use tower::{Service, ServiceExt};
use tower_lb::transport::{Connector, ServiceChannel, ServiceConnector};
use tower_lb::{Balancer, PeakEwma, Policy, Prequal, discover};

type Body = Empty<Bytes>;
type Req = http::Request<Body>;
type Resp = http::Response<Body>;
type Trivial = ServiceFn<fn(Req) -> Ready<Result<Resp, Infallible>>>;
type LbBalancer = Balancer<ServiceChannel<Trivial, Body>>;
type TowerBalance<S> = Balance<ServiceList<Vec<S>>, Req>;
type TowerEwmaBalance = TowerBalance<TowerPeakEwma<Trivial>>;
type TonicReq = http::Request<tonic::body::Body>;
type TonicResp = http::Response<tonic::body::Body>;
type Probed = ServiceFn<fn(TonicReq) -> Ready<Result<TonicResp, Infallible>>>;
type ProbedBalancer = Balancer<ServiceChannel<Probed, tonic::body::Body>>;

/// Calls between yields in the Prequal contender, so its probe task runs.
const YIELD_EVERY: u64 = 64;

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const TWO_TASK_SIZES: [usize; 2] = [10, 10_000];
const DEFAULT_RTT: Duration = Duration::from_millis(30);
const DECAY: Duration = Duration::from_secs(10);

fn answer(_req: Req) -> Ready<Result<Resp, Infallible>> {
    ready(Ok(http::Response::new(Empty::new())))
}

/// The endpoint service: always ready, answers at once.
fn trivial() -> Trivial {
    tower::service_fn(answer as fn(Req) -> Ready<Result<Resp, Infallible>>)
}

/// An endpoint that answers load probes with a fixed report (nothing in flight, 1 ms) and
/// every other call at once.
fn answer_or_probe(req: TonicReq) -> Ready<Result<TonicResp, Infallible>> {
    let mut response = http::Response::new(tonic::body::Body::empty());
    if req.uri().path() == tower_lb::orca::PROBE_PATH {
        let mut report = tower_lb::orca::LoadReport::default();
        report.in_flight = Some(0.0);
        report.latency = Some(0.001);
        let headers = response.headers_mut();
        headers.insert("grpc-status", http::HeaderValue::from_static("0"));
        headers.insert(
            tower_lb::orca::TRAILER,
            // Unpadded base64, as gRPC writes `-bin` metadata.
            http::HeaderValue::from_str(&STANDARD_NO_PAD.encode(report.encode())).expect("header"),
        );
    }
    ready(Ok(response))
}

fn prequal_balancer(rt: &Runtime, n: usize) -> ProbedBalancer {
    let service: Probed =
        tower::service_fn(answer_or_probe as fn(TonicReq) -> Ready<Result<TonicResp, Infallible>>);
    ready_balancer(
        rt,
        n,
        Policy::prequal(Prequal::default()),
        ServiceConnector::new(move |_: &discover::Endpoint| service),
    )
}

/// Built inside the loop for every contender, so its cost cancels out in ratios.
#[inline]
fn request() -> Req {
    http::Request::new(Empty::new())
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn tower_lb(rt: &Runtime, n: usize, policy: Policy) -> LbBalancer {
    let service = trivial();
    ready_balancer(
        rt,
        n,
        policy,
        ServiceConnector::new(move |_: &discover::Endpoint| service),
    )
}

/// Must run inside `rt`'s context (the control task is spawned there); waits until all `n`
/// endpoints (`connector`'s, on 127.0.0.1:10000 and up) are in the ready set.
fn ready_balancer<C: Connector>(
    rt: &Runtime,
    n: usize,
    policy: Policy,
    connector: C,
) -> Balancer<C::Channel> {
    rt.block_on(async {
        let endpoints: Vec<discover::Endpoint> = (0..n)
            .map(|i| {
                format!("127.0.0.1:{}", 10_000 + i)
                    .parse()
                    .expect("endpoint")
            })
            .collect();
        let balancer = Balancer::builder()
            .policy(policy)
            .build_with(connector, discover::fixed(endpoints))
            .expect("balancer");
        let deadline = Instant::now() + Duration::from_secs(30);
        while balancer.ready_len() < n {
            assert!(Instant::now() < deadline, "endpoints never became ready");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(balancer.ready_len(), n);
        balancer
    })
}

/// A tower p2c balancer over `n` services, driven until all of them are ready.
fn tower_p2c<S>(rt: &Runtime, services: Vec<S>) -> TowerBalance<S>
where
    S: Service<Req> + tower::load::Load,
    S::Error: Into<tower::BoxError>,
    <S as tower::load::Load>::Metric: std::fmt::Debug,
{
    let n = services.len();
    let mut balance = Balance::new(ServiceList::new::<Req>(services));
    rt.block_on(async {
        balance.ready().await.expect("ready");
    });
    assert_eq!(balance.len(), n);
    balance
}

fn tower_pending(rt: &Runtime, n: usize) -> TowerBalance<PendingRequests<Trivial>> {
    let services = (0..n)
        .map(|_| PendingRequests::new(trivial(), CompleteOnResponse::default()))
        .collect();
    tower_p2c(rt, services)
}

fn tower_ewma(rt: &Runtime, n: usize) -> TowerEwmaBalance {
    let decay_ns = DECAY.as_nanos() as f64;
    let services = (0..n)
        .map(|_| {
            TowerPeakEwma::new(
                trivial(),
                DEFAULT_RTT,
                decay_ns,
                CompleteOnResponse::default(),
            )
        })
        .collect();
    tower_p2c(rt, services)
}

/// `Buffer` around the PeakEwma p2c; created inside `rt` (the worker task is spawned there).
fn tower_buffer(rt: &Runtime, n: usize) -> Buffer<Req, <TowerEwmaBalance as Service<Req>>::Future> {
    let balance = tower_ewma(rt, n);
    let _guard = rt.enter();
    Buffer::new(balance, 1024)
}

fn bench_single(c: &mut Criterion) {
    let rt = current_thread();
    for n in SIZES {
        let mut group = c.benchmark_group(format!("pick/n={n}"));
        group
            .throughput(Throughput::Elements(1))
            .sample_size(50)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        // The floor: the endpoint service called directly (request, call, response, drop).
        let mut direct = trivial();
        group.bench_function("baseline/service-direct", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let svc = direct.ready().await.expect("ready");
                        let response = svc.call(request()).await.expect("call");
                        drop(black_box(response));
                    }
                    start.elapsed()
                })
            })
        });

        for (name, policy) in [
            ("tower-lb/in-flight", Policy::p2c_in_flight()),
            (
                "tower-lb/peak-ewma",
                Policy::p2c_peak_ewma(PeakEwma::default()),
            ),
        ] {
            let mut balancer = tower_lb(&rt, n, policy);
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let response = balancer.call(request()).await.expect("call");
                            drop(black_box(response));
                        }
                        start.elapsed()
                    })
                })
            });
            drop(balancer);
        }

        let mut prequal = prequal_balancer(&rt, n);
        let mut ran = false;
        group.bench_function("tower-lb/prequal", |b| {
            ran = true;
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for i in 0..iters {
                        let response = prequal
                            .call(http::Request::new(tonic::body::Body::empty()))
                            .await
                            .expect("call");
                        drop(black_box(response));
                        if i % YIELD_EVERY == YIELD_EVERY - 1 {
                            tokio::task::yield_now().await;
                        }
                    }
                    start.elapsed()
                })
            })
        });
        let answered = prequal
            .snapshot()
            .endpoints
            .iter()
            .filter(|e| e.server_load.as_ref().is_some_and(|l| l.reports > 0))
            .count();
        assert!(
            !ran || answered > 0,
            "the probes were answered: {:?}",
            prequal.snapshot().endpoints[0].server_load
        );
        drop(prequal);

        let mut pending = tower_pending(&rt, n);
        group.bench_function("tower-p2c/pending-requests", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let svc = pending.ready().await.expect("ready");
                        let response = svc.call(request()).await.expect("call");
                        drop(black_box(response));
                    }
                    start.elapsed()
                })
            })
        });
        drop(pending);

        let mut ewma = tower_ewma(&rt, n);
        group.bench_function("tower-p2c/peak-ewma", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let svc = ewma.ready().await.expect("ready");
                        let response = svc.call(request()).await.expect("call");
                        drop(black_box(response));
                    }
                    start.elapsed()
                })
            })
        });
        drop(ewma);

        let buffer = tower_buffer(&rt, n);
        group.bench_function("tower-buffer-p2c/peak-ewma", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut handle = buffer.clone();
                        let svc = handle.ready().await.expect("ready");
                        let response = svc.call(request()).await.expect("call");
                        drop(black_box(response));
                    }
                    start.elapsed()
                })
            })
        });
        drop(buffer);

        group.finish();
    }
}

/// Runs `calls` calls on one task's own service handle.
async fn lb_task(mut balancer: LbBalancer, calls: u64) {
    for _ in 0..calls {
        let response = balancer.call(request()).await.expect("call");
        drop(black_box(response));
    }
}

async fn buffer_task<S>(mut buffer: S, calls: u64)
where
    S: Service<Req, Response = Resp, Error = tower::BoxError>,
{
    for _ in 0..calls {
        let svc = buffer.ready().await.expect("ready");
        let response = svc.call(request()).await.expect("call");
        drop(black_box(response));
    }
}

/// Wall time of two tasks that together make `iters` calls.
fn two_tasks<F, Fut>(rt: &Runtime, iters: u64, mut task: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let first = iters / 2;
    let (a, b) = (task(first), task(iters - first));
    rt.block_on(async {
        let start = Instant::now();
        let (a, b) = (tokio::spawn(a), tokio::spawn(b));
        a.await.expect("task a");
        b.await.expect("task b");
        start.elapsed()
    })
}

fn bench_two_tasks(c: &mut Criterion) {
    let rt = multi_thread();
    for n in TWO_TASK_SIZES {
        let mut group = c.benchmark_group(format!("pick-2-tasks/n={n}"));
        group
            .throughput(Throughput::Elements(1))
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        for (name, policy) in [
            ("tower-lb/in-flight", Policy::p2c_in_flight()),
            (
                "tower-lb/peak-ewma",
                Policy::p2c_peak_ewma(PeakEwma::default()),
            ),
        ] {
            let balancer = tower_lb(&rt, n, policy);
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    two_tasks(&rt, iters, |calls| lb_task(balancer.clone(), calls))
                })
            });
            drop(balancer);
        }

        let buffer = tower_buffer(&rt, n);
        group.bench_function("tower-buffer-p2c/peak-ewma", |b| {
            b.iter_custom(|iters| two_tasks(&rt, iters, |calls| buffer_task(buffer.clone(), calls)))
        });
        drop(buffer);

        group.finish();
    }
}

criterion_group!(benches, bench_single, bench_two_tasks);
criterion_main!(benches);
