//! Active health checks with `grpc.health.v1` (gRPC A17), over an endpoint's own connection.
//!
//! One task per endpoint runs tonic-health's generated client over the endpoint's [`Channel`]:
//!
//! * It opens a `Watch(service)` stream and turns each message into a [`Verdict`]: `SERVING` is
//!   healthy, anything else (`NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN`, or a number outside
//!   the enum) is not. Only changes are reported.
//! * If Watch's first answer does not arrive within the [timeout](HealthCheck::timeout), or the
//!   stream fails or ends (any status other than `UNIMPLEMENTED`, including `OK`), the endpoint
//!   is reported not serving and Watch is retried after an exponential backoff (1 s, ×1.6,
//!   30 s cap, ±20 % jitter), which restarts at 1 s once a stream has answered. `NOT_FOUND`,
//!   tonic-health's answer for a service it does not know, is reported as `SERVICE_UNKNOWN`.
//! * If Watch is `UNIMPLEMENTED`, A17 would stop and call the endpoint healthy; servers that
//!   implement only `Check` are common enough that we poll `Check(service)` every
//!   [check interval](HealthCheck::check_interval) instead, each call bounded by the timeout. A
//!   failed or timed-out Check is reported and retried after the interval or the backoff,
//!   whichever is longer. Watch is not tried again: the connection, hence the server, is the
//!   same.
//! * If Check is `UNIMPLEMENTED` too, the endpoint has no health service: it is reported as
//!   [`Verdict::NoHealthService`] (healthy, per A17) once, and the task ends.
//!
//! The task never panics on an answer and never loops without waiting on the network or a
//! timer; it runs until the control task aborts it.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::discover::Key;
use crate::endpoint::Backoff;
use crate::endpoint::load::now_ns;
use crate::error::BoxError;
use crate::transport::{Channel, SendError};

/// The shortest check interval and timeout: below this, a check would be a busy loop.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Active health checking with the standard gRPC health service, `grpc.health.v1.Health`.
///
/// Each endpoint is watched over its own connection with `Watch(service)`; servers that only
/// implement `Check` are polled every [check interval](Self::check_interval). An endpoint
/// whose service is not `SERVING`, or whose health check fails, takes no new calls until it
/// is `SERVING` again. An endpoint without a health service at all (`UNIMPLEMENTED`) counts as
/// healthy, as gRPC specifies (A17).
///
/// Defaults: service `""` (the whole server), check interval 5 s, timeout 2 s.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::health::HealthCheck;
///
/// let check = HealthCheck::grpc()
///     .service("echo.Echo")
///     .check_interval(Duration::from_secs(10))
///     .timeout(Duration::from_secs(1));
/// assert_eq!(check.service_name(), "echo.Echo");
/// assert_eq!(HealthCheck::default().service_name(), ""); // the whole server
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    service: String,
    check_interval: Duration,
    timeout: Duration,
    // The retry backoff of a failed Watch, as two durations: `Backoff` holds f64s, so it is not
    // `Eq`. Not configurable yet (tests shorten it).
    retry_initial: Duration,
    retry_max: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self::grpc()
    }
}

impl HealthCheck {
    /// Checks service `""`, the health of the server as a whole, with the default settings.
    pub fn grpc() -> Self {
        HealthCheck {
            service: String::new(),
            check_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }

    /// Checks the named service instead of the whole server, e.g. `"echo.Echo"` (the full
    /// gRPC service name, as the server registered it with its health service).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = name.into();
        self
    }

    /// How often to call `Check` on servers that do not implement `Watch` (default 5 s; values
    /// under 10 ms are raised to 10 ms). `Watch` needs no period: the server sends changes.
    pub fn check_interval(mut self, every: Duration) -> Self {
        self.check_interval = every.max(MIN_PERIOD);
        self
    }

    /// How long one `Check` call, or the wait for `Watch`'s first answer, may take before the
    /// endpoint counts as not serving (default 2 s; values under 10 ms are raised to 10 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(MIN_PERIOD);
        self
    }

    /// The service whose health is checked (`""` for the whole server).
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// Shortens the retry backoff, so tests need not wait a second per retry.
    #[cfg(test)]
    fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max;
        self
    }

    fn backoff(&self) -> Backoff {
        Backoff::default()
            .initial(self.retry_initial)
            .max(self.retry_max)
            .multiplier(1.6)
            .jitter(0.2)
    }
}

/// What a health check concluded about one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// SERVING.
    Serving,
    /// The endpoint has no health service (UNIMPLEMENTED on Watch and Check): healthy, per
    /// gRPC A17; checking stops.
    NoHealthService,
    /// NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN, or the check failed; the string says which, for
    /// logs and errors.
    NotServing(String),
}

/// Whether channels of type `T` can carry health checks (their request body is
/// `tonic::body::Body`, the body tonic's generated client sends).
pub(crate) fn supported<T: Channel>() -> bool {
    TypeId::of::<T::RequestBody>() == TypeId::of::<tonic::body::Body>()
}

/// Runs until aborted: watches one endpoint's health over its own connection (`channel`) and
/// calls `report` with each verdict that differs from the previous one (the first verdict is
/// always reported).
///
/// With a channel that cannot carry health checks (see [`supported`]) it reports
/// `NotServing` once and ends: the caller should have refused the configuration.
pub(crate) fn spawn_health_check<T: Channel>(
    channel: T,
    config: HealthCheck,
    key: Key,
    report: impl Fn(Verdict) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(channel, config, key, report))
}

async fn run<T: Channel>(
    channel: T,
    config: HealthCheck,
    key: Key,
    report: impl Fn(Verdict) + Send + Sync + 'static,
) {
    let mut reporter = Reporter {
        last: None,
        report,
        key,
    };
    if !supported::<T>() {
        tracing::warn!(endpoint = %reporter.key, "health check needs a channel with tonic request bodies");
        reporter.set(Verdict::NotServing(UNSUPPORTED.to_owned()));
        return;
    }
    // Seeded per endpoint, so checks that fail together do not retry together.
    let seed = crate::hash_bytes(reporter.key.as_str().as_bytes()) ^ now_ns();
    let mut checker = Checker {
        client: HealthClient::new(GrpcChannel { channel }),
        backoff: config.backoff(),
        rng: SmallRng::seed_from_u64(seed),
        config,
        reporter,
    };
    checker.watch_until_unimplemented().await;
    checker.poll_check().await;
}

/// One endpoint's health check task state.
struct Checker<T, F> {
    client: HealthClient<GrpcChannel<T>>,
    config: HealthCheck,
    reporter: Reporter<F>,
    backoff: Backoff,
    rng: SmallRng,
}

impl<T: Channel, F: Fn(Verdict)> Checker<T, F> {
    /// Watches, and watches again after each failure, until Watch is UNIMPLEMENTED.
    async fn watch_until_unimplemented(&mut self) {
        let mut failures: u32 = 0;
        loop {
            let mut answered = false;
            let reason = match self.watch(&mut answered).await {
                WatchEnd::Unimplemented => return,
                WatchEnd::Failed(reason) => reason,
            };
            if answered {
                failures = 0;
            }
            failures = failures.saturating_add(1);
            self.reporter.set(Verdict::NotServing(reason));
            let delay = self.backoff.delay(failures, self.rng.random::<f64>());
            tokio::time::sleep(delay).await;
        }
    }

    /// Runs one Watch call to its end, reporting each answer. Sets `answered` once a message
    /// came.
    async fn watch(&mut self, answered: &mut bool) -> WatchEnd {
        let request = HealthCheckRequest {
            service: self.config.service.clone(),
        };
        // The timeout covers the response headers and the first message: the server sends the
        // current status at once. Later messages come only on changes, so they have no
        // deadline (a dead peer is noticed by the connection's keep-alive).
        let client = &mut self.client;
        let first = tokio::time::timeout(self.config.timeout, async {
            let mut stream = client.watch(request).await?.into_inner();
            let first = stream.message().await?;
            Ok::<_, Status>((stream, first))
        })
        .await;
        let (mut stream, mut next) = match first {
            Ok(Ok(started)) => started,
            Ok(Err(status)) => return watch_failed(&status),
            Err(_) => {
                return WatchEnd::Failed(format!(
                    "no Watch answer within {:?}",
                    self.config.timeout
                ));
            }
        };
        loop {
            match next {
                Some(response) => {
                    *answered = true;
                    self.reporter.set(verdict_of(response));
                }
                None => return WatchEnd::Failed("Watch stream ended by the server".to_owned()),
            }
            next = match stream.message().await {
                Ok(next) => next,
                Err(status) => return watch_failed(&status),
            };
        }
    }

    /// Calls Check every interval (longer while it fails) until it is UNIMPLEMENTED.
    async fn poll_check(&mut self) {
        tracing::debug!(
            endpoint = %self.reporter.key,
            service = %self.config.service,
            every = ?self.config.check_interval,
            "Watch is UNIMPLEMENTED; polling Check"
        );
        let mut failures: u32 = 0;
        loop {
            let request = HealthCheckRequest {
                service: self.config.service.clone(),
            };
            let answer =
                tokio::time::timeout(self.config.timeout, self.client.check(request)).await;
            let (verdict, failed) = match answer {
                Ok(Ok(response)) => (verdict_of(response.into_inner()), false),
                Ok(Err(status)) if status.code() == Code::Unimplemented => {
                    tracing::info!(
                        endpoint = %self.reporter.key,
                        "no health service (Watch and Check are UNIMPLEMENTED): counted healthy, no longer checked"
                    );
                    self.reporter.set(Verdict::NoHealthService);
                    return;
                }
                Ok(Err(status)) if status.code() == Code::NotFound => (
                    Verdict::NotServing(service_unknown("Check", &status)),
                    false,
                ),
                Ok(Err(status)) => (
                    Verdict::NotServing(format!("Check failed: {}", status_text(&status))),
                    true,
                ),
                Err(_) => (
                    Verdict::NotServing(format!(
                        "no Check answer within {:?}",
                        self.config.timeout
                    )),
                    true,
                ),
            };
            self.reporter.set(verdict);
            let wait = if failed {
                failures = failures.saturating_add(1);
                let delay = self.backoff.delay(failures, self.rng.random::<f64>());
                self.config.check_interval.max(delay)
            } else {
                failures = 0;
                self.config.check_interval
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// How one Watch call ended.
enum WatchEnd {
    /// The server does not implement Watch.
    Unimplemented,
    /// Anything else: why, for the `NotServing` verdict.
    Failed(String),
}

fn watch_failed(status: &Status) -> WatchEnd {
    match status.code() {
        Code::Unimplemented => WatchEnd::Unimplemented,
        // grpc.health.v1 says Watch answers SERVICE_UNKNOWN; tonic-health fails it instead.
        Code::NotFound => WatchEnd::Failed(service_unknown("Watch", status)),
        _ => WatchEnd::Failed(format!("Watch failed: {}", status_text(status))),
    }
}

/// The verdict of one health answer; any status number is accepted.
fn verdict_of(response: HealthCheckResponse) -> Verdict {
    match ServingStatus::try_from(response.status) {
        Ok(ServingStatus::Serving) => Verdict::Serving,
        Ok(status) => Verdict::NotServing(status.as_str_name().to_owned()),
        Err(_) => Verdict::NotServing(format!("status {}", response.status)),
    }
}

fn service_unknown(call: &str, status: &Status) -> String {
    format!("SERVICE_UNKNOWN ({call}: {})", status_text(status))
}

fn status_text(status: &Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {}", status.code(), status.message())
    }
}

const UNSUPPORTED: &str =
    "health checks need a channel whose request body is tonic::body::Body; this one's is not";

/// Reports verdicts that differ from the last one.
struct Reporter<F> {
    last: Option<Verdict>,
    report: F,
    key: Key,
}

impl<F: Fn(Verdict)> Reporter<F> {
    fn set(&mut self, verdict: Verdict) {
        if self.last.as_ref() == Some(&verdict) {
            return;
        }
        tracing::debug!(endpoint = %self.key, ?verdict, "health verdict changed");
        (self.report)(verdict.clone());
        self.last = Some(verdict);
    }
}

/// Lets tonic's generated client send over one of our channels.
///
/// tonic sends path-only URIs; the channel fills in the origin, as it does for the calls the
/// balancer routes to it. The response body is boxed into tonic's own body type, whose error
/// type (`Status`) meets the client's bounds whatever the channel's is.
struct GrpcChannel<T> {
    channel: T,
}

type GrpcFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, BoxError>> + Send>>;

impl<T: Channel> tower::Service<http::Request<tonic::body::Body>> for GrpcChannel<T> {
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = GrpcFuture;

    // Always ready, like the balancer: a connection that cannot take the call hands it back
    // unsent, which fails the check.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> GrpcFuture {
        let (parts, body) = request.into_parts();
        // Succeeds exactly when `T::RequestBody` is `tonic::body::Body` (see `supported`).
        let body: Box<dyn Any> = Box::new(body);
        let body = match body.downcast::<T::RequestBody>() {
            Ok(body) => *body,
            Err(_) => return Box::pin(std::future::ready(Err(UNSUPPORTED.into()))),
        };
        let sent = self.channel.send(http::Request::from_parts(parts, body));
        Box::pin(async move {
            match sent.await {
                Ok(response) => Ok(response.map(tonic::body::Body::new)),
                Err(SendError::Unsent { error, .. } | SendError::Failed(error)) => Err(error),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::Stream;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;
    use tonic::transport::Server;
    use tonic::transport::server::TcpIncoming;
    use tonic_health::pb::health_server::{Health, HealthServer};
    use tower_lb_testkit::TestServer;

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

    fn start<T: Channel>(
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

    /// Aborts the task and checks that it had not panicked.
    async fn stop(handle: JoinHandle<()>) {
        handle.abort();
        let ended = tokio::time::timeout(WAIT, handle).await.expect("ends");
        assert!(ended.is_ok() || ended.unwrap_err().is_cancelled());
    }

    async fn watch_follows_serving(config: HealthCheck) {
        let server = TestServer::start_with_health("a").unwrap();
        let (handle, mut rx) = start(connect(server.addr()).await, config);
        assert_eq!(next(&mut rx).await, Verdict::Serving);
        server.set_serving(false);
        assert_eq!(
            next(&mut rx).await,
            Verdict::NotServing("NOT_SERVING".into())
        );
        server.set_serving(true);
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
    async fn unknown_service_is_not_serving() {
        let server = TestServer::start_with_health("a").unwrap();
        let config = HealthCheck::grpc().service("no.Such");
        let (handle, mut rx) = start(connect(server.addr()).await, config);
        let verdict = next(&mut rx).await;
        assert!(
            not_serving(&verdict).contains("SERVICE_UNKNOWN"),
            "{verdict:?}"
        );
        stop(handle).await;
    }

    #[tokio::test]
    async fn no_health_service_is_healthy_and_ends_the_task() {
        let server = TestServer::start("a").unwrap();
        let (handle, mut rx) = start(connect(server.addr()).await, HealthCheck::grpc());
        assert_eq!(next(&mut rx).await, Verdict::NoHealthService);
        tokio::time::timeout(WAIT, handle)
            .await
            .expect("the task ends by itself")
            .unwrap();
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn killed_server_is_not_serving() {
        let server = TestServer::start_with_health("a").unwrap();
        let (handle, mut rx) = start(connect(server.addr()).await, HealthCheck::grpc());
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
            let fake = Fake {
                check,
                ..fake(Watch::Unimplemented)
            };
            let config = HealthCheck::grpc()
                .timeout(Duration::from_millis(100))
                .check_interval(Duration::from_millis(20));
            let (handle, mut rx) = start(connect(serve(fake).await).await, config);
            let verdict = next(&mut rx).await;
            assert!(not_serving(&verdict).contains(expected), "{verdict:?}");
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
        let config = HealthCheck::grpc()
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(100));
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
        let config = HealthCheck::grpc()
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(100));
        let addr = serve(fake(Watch::Send(vec![0, 3, 42, -1, 1]))).await;
        let (handle, mut rx) = start(connect(addr).await, config);
        for expected in ["UNKNOWN", "SERVICE_UNKNOWN", "status 42", "status -1"] {
            assert_eq!(next(&mut rx).await, Verdict::NotServing(expected.into()));
        }
        assert_eq!(next(&mut rx).await, Verdict::Serving);
        stop(handle).await;
    }

    fn string_channel() -> impl Channel<RequestBody = String> {
        ServiceChannel::new(tower::service_fn(|_: http::Request<String>| async {
            Ok::<_, Infallible>(http::Response::new(String::new()))
        }))
    }

    fn is_supported<T: Channel>(_: &T) -> bool {
        supported::<T>()
    }

    #[test]
    fn only_tonic_bodies_are_supported() {
        assert!(supported::<Http2Channel<tonic::body::Body>>());
        assert!(!supported::<Http2Channel<String>>());
        assert!(!is_supported(&string_channel()));
    }

    #[tokio::test]
    async fn an_unsupported_channel_is_reported_once() {
        let (handle, mut rx) = start(string_channel(), HealthCheck::grpc());
        let verdict = next(&mut rx).await;
        assert!(not_serving(&verdict).contains("tonic::body::Body"));
        tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    }

    #[test]
    fn settings_are_kept_and_floored() {
        let check = HealthCheck::default()
            .service("echo.Echo")
            .check_interval(Duration::ZERO)
            .timeout(Duration::from_nanos(1));
        assert_eq!(check.service_name(), "echo.Echo");
        assert_eq!(check.check_interval, MIN_PERIOD);
        assert_eq!(check.timeout, MIN_PERIOD);
        assert_eq!(HealthCheck::default(), HealthCheck::grpc());
    }
}
