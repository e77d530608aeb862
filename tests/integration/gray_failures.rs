//! Gray failures: a peer that accepts TCP but never speaks HTTP/2 (a stopped process, whose
//! kernel still accepts; a port taken by something else) is never a ready endpoint, and the
//! reason says what it is; a backend process frozen mid-traffic (SIGSTOP) does not collect
//! callers, and comes back when it thaws.

use std::time::Duration;

use tonic::Code;
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::transport::Http2Connector;
use tower_lb_testkit::TestServer;

use crate::common::*;

const BOUND: Duration = Duration::from_secs(10);

/// A listener that accepts every connection and holds it open, silent.
async fn silent_listener() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_listener_that_accepts_and_never_speaks_is_never_ready() {
    let (silent, task) = silent_listener().await;
    let server = TestServer::start("speaks").unwrap();
    let quick = || Http2Connector::new().connect_timeout(Duration::from_millis(200));
    let balancer = builder()
        .build_with(
            quick(),
            fixed([Endpoint::new(silent).unwrap(), endpoint(&server)]),
        )
        .unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    // Every call goes to the server that speaks; the silent one never joins.
    let mut client = Client::new(balancer.clone());
    for _ in 0..20 {
        assert_eq!(echo(&mut client).await.unwrap(), "speaks");
    }
    let silent_status = balancer
        .snapshot()
        .endpoints
        .into_iter()
        .find(|e| e.addr == silent)
        .unwrap();
    assert!(!silent_status.ready, "{silent_status:?}");

    // Alone, it makes calls fail fast with the reason.
    let alone = builder()
        .ready_timeout(Duration::from_millis(600))
        .build_with(quick(), fixed([Endpoint::new(silent).unwrap()]))
        .unwrap();
    let status = tokio::time::timeout(BOUND, echo(&mut Client::new(alone)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("HTTP/2 settings") && status.message().contains("not spoken"),
        "{}",
        status.message()
    );
    task.abort();
}

/// The environment variable that turns this test binary into a child Echo server.
const CHILD: &str = "TOWER_LB_ECHO_CHILD";

/// Not a test: when this binary runs with `CHILD` set, it serves Echo on 127.0.0.1, prints the
/// address, and runs until killed — a real server process the parent can stop with SIGSTOP.
#[test]
#[ignore = "a child server process for frozen_backend tests, started by them"]
fn echo_server_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    // With a grpc.health.v1 service, so the parent can check its health too.
    let server = TestServer::start_with_health("frozen").unwrap();
    println!("addr={}", server.addr());
    // Bounded even if the parent dies without killing it.
    std::thread::sleep(Duration::from_secs(120));
}

/// A child process serving Echo; killed when dropped.
struct Child {
    process: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Child {
    fn start() -> Child {
        use std::io::BufRead;
        let mut process = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "gray_failures::echo_server_child",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let addr = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("addr=").map(|a| a.parse().unwrap()))
            .expect("the child prints its address");
        Child { process, addr }
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.process.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One of three backends is frozen (SIGSTOP: its kernel still accepts and buffers) under 32
/// callers with 500 ms deadlines. Every call ends by its deadline (bounded from outside, so a
/// hang fails the test), and once the first call to it has timed out, the frozen backend gets
/// only a few more calls; after SIGCONT it serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_backend_does_not_collect_callers() {
    frozen_backend(false).await;
}

/// The same with active health checks (grpc.health.v1 `Watch`) on every endpoint: a frozen
/// server's Watch stream goes quiet rather than failing, so the calls' own deadlines are what
/// keep callers off it, as without checks.
#[cfg(feature = "health")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_backend_does_not_collect_callers_with_health_checks_on() {
    frozen_backend(true).await;
}

async fn frozen_backend(health_checks: bool) {
    let frozen = Child::start();
    let healthy = [
        TestServer::start_with_health("warm-1").unwrap(),
        TestServer::start_with_health("warm-2").unwrap(),
    ];
    let endpoints = healthy
        .iter()
        .map(endpoint)
        .chain([Endpoint::new(frozen.addr).unwrap()]);
    // Ejections short enough for the thaw below to show within the test.
    let outlier = tower_lb::health::OutlierDetection::default()
        .base_ejection_time(Duration::from_secs(5))
        .max_ejection_time(Duration::from_secs(5));
    let configured = builder().outlier_detection(outlier);
    #[cfg(feature = "health")]
    let configured = match health_checks {
        true => configured.health_check(tower_lb::health::HealthCheck::grpc()),
        false => configured,
    };
    #[cfg(not(feature = "health"))]
    let _ = health_checks;
    let balancer = configured.build(fixed(endpoints)).unwrap();
    balancer.wait_ready(3, BOUND).await.unwrap();
    let frozen_addr = frozen.addr;
    // Calls given to the frozen backend so far: those finished plus those in flight.
    let frozen_requests = move |b: &tower_lb::Balancer| {
        b.snapshot()
            .endpoints
            .into_iter()
            .find(|e| e.addr == frozen_addr)
            .map_or(0, |e| e.requests + u64::from(e.in_flight))
    };
    // Warm up: every backend answers.
    let mut client = Client::new(balancer.clone());
    for _ in 0..30 {
        echo(&mut client).await.unwrap();
    }

    frozen.signal("-STOP");
    let first_timeout = std::sync::Arc::new(std::sync::Mutex::new(None::<u64>));
    let callers = (0..32).map(|_| {
        let mut client = Client::new(balancer.clone());
        let balancer = balancer.clone();
        let first_timeout = first_timeout.clone();
        let frozen_requests = move || frozen_requests(&balancer);
        tokio::spawn(async move {
            let (mut ok, mut timed_out) = (0u32, 0u32);
            for _ in 0..40 {
                let mut request = tonic::Request::new(tower_lb_testkit::pb::EchoRequest {
                    message: "hi".into(),
                    stream_count: 0,
                });
                request.set_timeout(Duration::from_millis(500));
                let call = tokio::time::timeout(Duration::from_secs(5), client.unary(request));
                match call
                    .await
                    .expect("a call outlived its 500 ms deadline by seconds")
                {
                    Ok(_) => ok += 1,
                    Err(status) => {
                        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
                        timed_out += 1;
                        let mut first = first_timeout.lock().unwrap();
                        if first.is_none() {
                            *first = Some(frozen_requests());
                        }
                    }
                }
            }
            (ok, timed_out)
        })
    });
    let mut ok = 0;
    for caller in callers.collect::<Vec<_>>() {
        let (o, _) = caller.await.unwrap();
        ok += o;
    }
    let at_first_timeout = first_timeout.lock().unwrap().expect("a call timed out");
    let after = frozen_requests(&balancer).saturating_sub(at_first_timeout);
    println!("answered {ok} of 1280; calls to the frozen backend after its first timeout: {after}");
    // 1,280 calls in all; the healthy two answered almost all of them.
    assert!(ok >= 1_200, "only {ok} of 1280 calls answered");
    assert!(
        after <= 5,
        "the frozen backend got {after} calls after the first timed out on it"
    );

    // Its connection was probed after the first timeout and closed: the kernel still holds
    // the TCP connection, but nothing answers on it.
    wait_for_addr(
        &balancer,
        frozen_addr,
        "closed: the frozen backend's connection",
        BOUND,
        |s| s.state != tower_lb::ConnectionState::Ready,
    )
    .await;

    // Thawed, it is back in the ready set once its ejection ends (PeakEWMA then lets its
    // learned 500 ms fade over the decay time before it takes its full share again).
    frozen.signal("-CONT");
    let back = Duration::from_secs(30);
    wait_for_addr(&balancer, frozen_addr, "back", back, |s| s.ready).await;
    let alone = builder()
        .build(fixed([Endpoint::new(frozen_addr).unwrap()]))
        .unwrap();
    alone.wait_ready(1, BOUND).await.unwrap();
    assert_eq!(echo(&mut Client::new(alone)).await.unwrap(), "frozen");
}
