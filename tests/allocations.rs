//! The request path allocates nothing per call: picking, counting the call, dispatching,
//! entering the call's span and releasing the call when its response is dropped.
//!
//! A counting global allocator (this binary's own) counts every allocation the calls make.
//! The endpoints are in-process services that allocate nothing themselves, so every count is
//! the balancer's. Run: `cargo test --test allocations`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use tower::{Service, ServiceExt};
use tower_lb::transport::{ServiceChannel, ServiceConnector};
use tower_lb::{Balancer, HashKey, Policy, discover};

type Body = Empty<Bytes>;
type Req = http::Request<Body>;
type Resp = http::Response<Body>;
type Trivial = tower::util::ServiceFn<fn(Req) -> Ready<Result<Resp, Infallible>>>;

/// Counts allocations made on threads that opted in (the test's own thread), so the test
/// harness's other threads do not disturb the count.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the thread-locals may be gone while a thread shuts down.
        let _ = COUNTING.try_with(|on| {
            if on.get() {
                let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            }
        });
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn answer(_: Req) -> Ready<Result<Resp, Infallible>> {
    ready(Ok(http::Response::new(Empty::new())))
}

/// Allocations made by `calls` calls through a balancer over `n` endpoints with `policy`.
fn allocations_per_call(policy: Policy, n: usize, calls: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let endpoints: Vec<discover::Endpoint> = (0..n)
            .map(|i| format!("127.0.0.1:{}", 20_000 + i).parse().unwrap())
            .collect();
        let service: Trivial = tower::service_fn(answer as fn(Req) -> _);
        let mut balancer: Balancer<ServiceChannel<Trivial, Body>> = Balancer::builder()
            .policy(policy)
            .build_with(
                ServiceConnector::new(move |_: &discover::Endpoint| service),
                discover::fixed(endpoints),
            )
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while balancer.ready_len() < n {
            assert!(tokio::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let request = || {
            let mut r = http::Request::new(Empty::new());
            r.headers_mut()
                .insert("x-user", http::HeaderValue::from_static("user-7"));
            r
        };
        // Warm up: the first calls may fill lazily created state (the span callsite's
        // interest, thread-locals).
        for _ in 0..100 {
            drop(
                balancer
                    .ready()
                    .await
                    .unwrap()
                    .call(request())
                    .await
                    .unwrap(),
            );
        }
        // The requests are built outside the counted section; the response is dropped
        // inside it, so releasing the call is counted too.
        let requests: Vec<Req> = (0..calls).map(|_| request()).collect();
        COUNTING.with(|on| on.set(true));
        let before = ALLOCATIONS.with(Cell::get);
        for r in requests {
            let response = balancer.ready().await.unwrap().call(r).await.unwrap();
            drop(response);
        }
        let after = ALLOCATIONS.with(Cell::get);
        COUNTING.with(|on| on.set(false));
        (after - before) as f64 / calls as f64
    })
}

fn policies() -> Vec<Policy> {
    vec![
        Policy::default(),
        Policy::p2c_in_flight(),
        Policy::least_loaded(),
        Policy::least_request(3).unwrap(),
        Policy::pick_first(),
        Policy::pick_first_shuffled(),
        Policy::round_robin(),
        Policy::weighted_round_robin(Default::default()),
        Policy::prequal(Default::default()),
        Policy::weighted_random(),
        Policy::ring_hash(HashKey::header("x-user").unwrap()),
        Policy::maglev(HashKey::header("x-user").unwrap())
            .bounded_load(0.25)
            .unwrap(),
    ]
}

/// One test, three phases in turn: tracing caches per call site whether anyone listens, and
/// subscribers of tests running side by side on other threads would blur that.
#[test]
fn a_call_allocates_nothing_unless_a_subscriber_wants_call_spans() {
    for policy in policies() {
        let name = policy.name();
        assert_eq!(
            allocations_per_call(policy, 8, 1_000),
            0.0,
            "{name}, no subscriber"
        );
    }

    // A subscriber at INFO: the DEBUG call span is off, and costs no allocation.
    let info = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(info, || {
        for policy in policies() {
            let name = policy.name();
            assert_eq!(allocations_per_call(policy, 8, 1_000), 0.0, "{name}, INFO");
        }
    });

    // The check of the two above: with call spans on, the fmt subscriber formats their
    // fields into a fresh string per call, and the counter must see that.
    let debug = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(debug, || {
        assert!(allocations_per_call(Policy::default(), 8, 100) >= 1.0);
    });
}
