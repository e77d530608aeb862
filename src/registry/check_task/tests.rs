//! The health-check task against real tonic servers: tonic-health's own service, and a
//! scripted one for the answers a real server gives only on a bad day.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

use super::*;
use crate::discover::Endpoint;
use crate::transport::{Connector, Http2Channel, Http2Connector, ServiceChannel};

/// Every wait is bounded by this; no test asserts on timing.
const WAIT: Duration = Duration::from_secs(5);

async fn connect(addr: SocketAddr) -> Http2Channel<tonic::body::Body> {
    let endpoint = Endpoint::new(addr).unwrap();
    Http2Connector::<tonic::body::Body>::new()
        .connect(&endpoint)
        .await
        .unwrap()
        .channel
}

fn start<T: EndpointChannel>(
    channel: T,
    config: HealthCheck,
) -> (JoinHandle<()>, mpsc::UnboundedReceiver<Verdict>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = spawn_health_check(channel, config, Key::from("test"), move |v| {
        let _ = tx.send(v);
    });
    (handle, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Verdict>) -> Verdict {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a verdict within 5 s")
        .expect("the check task reports before it ends")
}

fn not_serving(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::NotServing(reason) => reason,
        other => panic!("expected NotServing, got {other:?}"),
    }
}

fn service_unknown(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::ServiceUnknown(reason) => reason,
        other => panic!("expected ServiceUnknown, got {other:?}"),
    }
}

/// Aborts the task and checks that it had not panicked.
async fn stop(handle: JoinHandle<()>) {
    handle.abort();
    let ended = tokio::time::timeout(WAIT, handle).await.expect("ends");
    assert!(ended.is_ok() || ended.unwrap_err().is_cancelled());
}

/// A tonic server on a free loopback port, in a runtime of its own on its own thread, so that
/// [`Real::kill`] drops the listener and every connection at once, as a crash would. With
/// health, it serves tonic-health's own service with `""` and `"echo.Echo"` SERVING; without,
/// no service at all (every call UNIMPLEMENTED, as a server without grpc.health.v1 answers).
struct Real {
    addr: SocketAddr,
    reporter: Option<HealthReporter>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Real {
    async fn start(health: bool) -> Real {
        let reporter = if health {
            let (reporter, service) = tonic_health::server::health_reporter();
            reporter
                .set_service_status("", tonic_health::ServingStatus::Serving)
                .await;
            reporter
                .set_service_status("echo.Echo", tonic_health::ServingStatus::Serving)
                .await;
            Some((reporter, service))
        } else {
            None
        };
        let routes = match &reporter {
            Some((_, service)) => Routes::new(service.clone()),
            None => Routes::default(),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::spawn(
                    Server::builder()
                        .add_routes(routes)
                        .serve_with_incoming(TcpIncoming::from(listener)),
                );
                let _ = stopped.await;
            });
            // Dropping the runtime ends the server and every connection task at once.
            drop(runtime);
        });
        Real {
            addr,
            reporter: reporter.map(|(reporter, _)| reporter),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    async fn set_serving(&self, serving: bool) {
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        let reporter = self.reporter.as_ref().expect("a server with health");
        reporter.set_service_status("", status).await;
        reporter.set_service_status("echo.Echo", status).await;
    }

    fn kill(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Real {
    fn drop(&mut self) {
        self.stop_now();
    }
}

async fn watch_follows_serving(config: HealthCheck) {
    let server = Real::start(true).await;
    let (handle, mut rx) = start(connect(server.addr).await, config);
    assert_eq!(next(&mut rx).await, Verdict::Serving);
    server.set_serving(false).await;
    assert_eq!(
        next(&mut rx).await,
        Verdict::NotServing("NOT_SERVING".into())
    );
    server.set_serving(true).await;
    assert_eq!(next(&mut rx).await, Verdict::Serving);
    stop(handle).await;
}

#[tokio::test]
async fn watch_follows_the_server() {
    watch_follows_serving(HealthCheck::grpc()).await;
}

#[tokio::test]
async fn watch_follows_a_named_service() {
    watch_follows_serving(HealthCheck::grpc().service("echo.Echo")).await;
}

#[tokio::test]
async fn unknown_service_is_reported_as_such() {
    // tonic-health answers a Watch for a service it does not know with NOT_FOUND.
    let server = Real::start(true).await;
    let config = HealthCheck::grpc().service("no.Such");
    let (handle, mut rx) = start(connect(server.addr).await, config);
    let verdict = next(&mut rx).await;
    assert!(
        service_unknown(&verdict).contains("SERVICE_UNKNOWN"),
        "{verdict:?}"
    );
    stop(handle).await;
}

#[tokio::test]
async fn no_health_service_is_healthy_and_ends_the_task() {
    let server = Real::start(false).await;
    let (handle, mut rx) = start(connect(server.addr).await, HealthCheck::grpc());
    assert_eq!(next(&mut rx).await, Verdict::NoHealthService);
    tokio::time::timeout(WAIT, handle)
        .await
        .expect("the task ends by itself")
        .unwrap();
    assert_eq!(rx.recv().await, None);
}

#[tokio::test]
async fn killed_server_is_not_serving() {
    let server = Real::start(true).await;
    let (handle, mut rx) = start(connect(server.addr).await, HealthCheck::grpc());
    assert_eq!(next(&mut rx).await, Verdict::Serving);
    server.kill();
    let verdict = next(&mut rx).await;
    assert!(!not_serving(&verdict).is_empty());
    stop(handle).await;
}

/// What the fake health server's Watch does.
#[derive(Clone)]
enum Watch {
    Unimplemented,
    /// Never sends a message.
    Silent,
    /// Sends these status numbers, then ends the stream with OK.
    Send(Vec<i32>),
}

/// What the fake health server's Check does.
#[derive(Clone, Copy)]
enum Check {
    Unimplemented,
    /// tonic-health's answer for an unknown service.
    NotFound,
    /// Never answers.
    Hang,
    /// SERVING or NOT_SERVING, from `Fake::serving`.
    Answer,
}

/// A grpc.health.v1 server with scripted answers.
#[derive(Clone)]
struct Fake {
    watch: Watch,
    check: Check,
    serving: Arc<AtomicBool>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for Fake {
    async fn check(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, Status> {
        match self.check {
            Check::Unimplemented => return Err(Status::unimplemented("no Check")),
            Check::NotFound => return Err(Status::not_found("service not registered")),
            Check::Hang => std::future::pending::<()>().await,
            Check::Answer => {}
        }
        let status = if self.serving.load(Ordering::SeqCst) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        Ok(tonic::Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<WatchStream>, Status> {
        let stream: WatchStream = match &self.watch {
            Watch::Unimplemented => return Err(Status::unimplemented("no Watch")),
            Watch::Silent => Box::pin(futures::stream::pending()),
            Watch::Send(statuses) => Box::pin(futures::stream::iter(
                statuses
                    .clone()
                    .into_iter()
                    .map(|status| Ok(HealthCheckResponse { status })),
            )),
        };
        Ok(tonic::Response::new(stream))
    }
}

/// Serves `fake` on a free loopback port, in this test's runtime.
async fn serve(fake: Fake) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::new(fake))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    addr
}

fn fake(watch: Watch) -> Fake {
    Fake {
        watch,
        check: Check::Answer,
        serving: Arc::new(AtomicBool::new(true)),
    }
}

#[tokio::test]
async fn check_is_polled_when_watch_is_unimplemented() {
    let fake = fake(Watch::Unimplemented);
    let serving = Arc::clone(&fake.serving);
    let config = HealthCheck::grpc().check_interval(Duration::from_millis(50));
    let (handle, mut rx) = start(connect(serve(fake).await).await, config);
    assert_eq!(next(&mut rx).await, Verdict::Serving);
    serving.store(false, Ordering::SeqCst);
    assert_eq!(
        next(&mut rx).await,
        Verdict::NotServing("NOT_SERVING".into())
    );
    serving.store(true, Ordering::SeqCst);
    assert_eq!(next(&mut rx).await, Verdict::Serving);
    // Several more Checks answer SERVING; none of them is reported again.
    let repeated = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(repeated.is_err(), "{repeated:?}");
    stop(handle).await;
}

#[tokio::test]
async fn check_unimplemented_too_means_no_health_service() {
    let fake = Fake {
        check: Check::Unimplemented,
        ..fake(Watch::Unimplemented)
    };
    let (handle, mut rx) = start(connect(serve(fake).await).await, HealthCheck::grpc());
    assert_eq!(next(&mut rx).await, Verdict::NoHealthService);
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
}

#[tokio::test]
async fn check_failures_are_not_serving() {
    for (check, expected) in [
        (Check::NotFound, "SERVICE_UNKNOWN"),
        (Check::Hang, "no Check answer within"),
    ] {
        let unknown = matches!(check, Check::NotFound);
        let fake = Fake {
            check,
            ..fake(Watch::Unimplemented)
        };
        let config = HealthCheck::grpc()
            .timeout(Duration::from_millis(100))
            .check_interval(Duration::from_millis(20));
        let (handle, mut rx) = start(connect(serve(fake).await).await, config);
        let verdict = next(&mut rx).await;
        let reason = if unknown {
            service_unknown(&verdict)
        } else {
            not_serving(&verdict)
        };
        assert!(reason.contains(expected), "{verdict:?}");
        stop(handle).await;
    }
}

#[tokio::test]
async fn silent_watch_times_out() {
    let config = HealthCheck::grpc().timeout(Duration::from_millis(100));
    let (handle, mut rx) = start(connect(serve(fake(Watch::Silent)).await).await, config);
    let verdict = next(&mut rx).await;
    assert!(not_serving(&verdict).contains("within"), "{verdict:?}");
    stop(handle).await;
}

#[tokio::test]
async fn ended_watch_is_retried() {
    let config =
        HealthCheck::grpc().retry_backoff(Duration::from_millis(20), Duration::from_millis(100));
    let addr = serve(fake(Watch::Send(vec![1]))).await;
    let (handle, mut rx) = start(connect(addr).await, config);
    for _ in 0..2 {
        assert_eq!(next(&mut rx).await, Verdict::Serving);
        let verdict = next(&mut rx).await;
        assert!(not_serving(&verdict).contains("ended"), "{verdict:?}");
    }
    stop(handle).await;
}

#[tokio::test]
async fn any_status_number_is_an_answer() {
    let config =
        HealthCheck::grpc().retry_backoff(Duration::from_millis(20), Duration::from_millis(100));
    let addr = serve(fake(Watch::Send(vec![0, 3, 42, -1, 1]))).await;
    let (handle, mut rx) = start(connect(addr).await, config);
    assert_eq!(next(&mut rx).await, Verdict::NotServing("UNKNOWN".into()));
    assert_eq!(
        next(&mut rx).await,
        Verdict::ServiceUnknown("SERVICE_UNKNOWN".into())
    );
    for expected in ["status 42", "status -1"] {
        assert_eq!(next(&mut rx).await, Verdict::NotServing(expected.into()));
    }
    assert_eq!(next(&mut rx).await, Verdict::Serving);
    stop(handle).await;
}

fn string_channel() -> impl EndpointChannel<RequestBody = String> {
    ServiceChannel::new(tower::service_fn(|_: http::Request<String>| async {
        Ok::<_, Infallible>(http::Response::new(String::new()))
    }))
}

fn is_supported<T: EndpointChannel>(_: &T) -> bool {
    carries_grpc::<T>()
}

#[test]
fn only_tonic_bodies_are_supported() {
    assert!(carries_grpc::<Http2Channel<tonic::body::Body>>());
    assert!(!carries_grpc::<Http2Channel<String>>());
    assert!(!is_supported(&string_channel()));
}

#[tokio::test]
async fn an_unsupported_channel_is_reported_once() {
    let (handle, mut rx) = start(string_channel(), HealthCheck::grpc());
    let verdict = next(&mut rx).await;
    assert!(not_serving(&verdict).contains("tonic::body::Body"));
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
}
