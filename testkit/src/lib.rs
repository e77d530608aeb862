//! Test support for `tower-lb`.
//!
//! * [`pb`]: the `echo.Echo` gRPC service (client and server), generated at
//!   build time with `protox` (no `protoc` needed).
//! * [`capacity`]: an Echo server of fixed capacity that reports its load (ORCA), and
//!   [`orca_pb`], the ORCA load report type generated from the xds proto.
//! * [`chaos`]: a chaos scenario for a `tower-lb` balancer (servers killed and
//!   restarted, discovery churn, a slow and an erroring server; every call's
//!   outcome counted), shared by `tests/chaos.rs` and the `chaos` and `soak`
//!   examples.
//! * [`interop`]: the gRPC interoperability test service (`grpc.testing`) on
//!   tonic and on Python grpcio, for `tests/interop/`.
//! * [`TestServer`]: an embedded tonic server running on its own OS thread
//!   with its own tokio runtime, so that it can be slowed down, made to fail,
//!   flipped unhealthy, killed hard and restarted on the same port while a
//!   test runs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_lb_testkit::{TestServer, pb};
//!
//! let server = TestServer::start("a")?;
//! let mut client = pb::echo_client::EchoClient::connect(server.url()).await?;
//! let reply = client
//!     .unary(pb::EchoRequest { message: "hi".into(), stream_count: 0 })
//!     .await?
//!     .into_inner();
//! assert_eq!(reply.server, "a");
//! let addr = server.addr();
//! server.kill(); // every connection is closed at once
//! let _again = TestServer::start_on("a", addr)?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::oneshot;
use tokio::time::Sleep;
use tokio_stream::Stream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::pb::echo_server::{Echo, EchoServer};
use crate::pb::{EchoReply, EchoRequest};

pub mod capacity;
pub mod chaos;
pub mod discovery;
pub mod interop;
pub mod settings;

/// Generated code for the xDS protos the tests use, nested as their packages are (the
/// generated service refers to the report type by relative path).
#[allow(missing_docs)]
pub mod xds {
    pub mod data {
        pub mod orca {
            pub mod v3 {
                tonic::include_proto!("xds.data.orca.v3");
            }
        }
    }
    pub mod service {
        pub mod orca {
            pub mod v3 {
                pub use prost_types::Duration;
                tonic::include_proto!("xds.service.orca.v3");
            }
        }
    }
}

/// The ORCA load report, `xds.data.orca.v3.OrcaLoadReport`: an independent decoder for what
/// tower-lb's server layer writes.
pub use xds::data::orca::v3 as orca_pb;
/// ORCA's out-of-band service, `xds.service.orca.v3.OpenRcaService`: an independent client
/// for the stream tower-lb's server layer serves.
pub use xds::service::orca::v3 as orca_service_pb;

/// Generated code for the `echo` protobuf package (messages, client, server).
#[allow(missing_docs)]
pub mod pb {
    tonic::include_proto!("echo");
}

/// Full gRPC name of the Echo service (`"echo.Echo"`), as used by the health
/// service.
pub const ECHO_SERVICE_NAME: &str = pb::echo_server::SERVICE_NAME;

/// The message of the `UNAVAILABLE` status returned by injected failures.
pub const INJECTED_FAILURE: &str = "injected failure";

/// The request headers `Unary` reports in `EchoReply::seen`, and their names there. The
/// `:authority` pseudo-header reaches the service as `x-seen-authority` (see
/// [`copy_authority`]).
const SEEN: [(&str, &str); 4] = [
    ("user-agent", "user-agent"),
    ("grpc-timeout", "grpc-timeout"),
    ("x-seen-authority", ":authority"),
    ("grpc-previous-rpc-attempts", "grpc-previous-rpc-attempts"),
];

/// Copies a request's `:authority` into a header the service can read (tonic hands services
/// the metadata, not the URI).
fn copy_authority<B>(mut request: http::Request<B>) -> http::Request<B> {
    if let Some(value) = request
        .uri()
        .authority()
        .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert("x-seen-authority", value);
    }
    request
}

/// How long [`TestServer::start_on`] keeps retrying a bind that fails with
/// `AddrInUse`.
const BIND_RETRY_FOR: Duration = Duration::from_secs(2);

/// Upper bound of [`TestServer::shutdown_gracefully`]'s drain.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// State shared between a [`TestServer`] handle and its server thread.
#[derive(Debug, Default)]
struct Shared {
    name: String,
    delay_nanos: AtomicU64,
    failure_rate_bits: AtomicU64,
    failure_seq: AtomicU64,
    fail_all: AtomicBool,
    fail_next: AtomicU64,
    failure_code: AtomicI32,
    pushback: std::sync::Mutex<Option<String>>,
    cancelled: AtomicU64,
    calls: AtomicU64,
    stream_calls: AtomicU64,
    in_flight: AtomicUsize,
}

impl Shared {
    fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::Relaxed))
    }

    /// Decides whether the call that just arrived fails.
    ///
    /// Call number `n` (1-based, counted since the last `set_failure_rate`)
    /// fails iff `floor(n * rate) > floor((n - 1) * rate)`: over the first `N`
    /// calls exactly `floor(N * rate)` fail, evenly spread (0.5 fails every
    /// second call, 0.25 every fourth, ...).
    fn should_fail(&self) -> bool {
        if self.fail_all.load(Ordering::Relaxed) {
            return true;
        }
        let next = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if next.is_ok() {
            return true;
        }
        let rate = f64::from_bits(self.failure_rate_bits.load(Ordering::Relaxed));
        let n = self.failure_seq.fetch_add(1, Ordering::Relaxed) + 1;
        if rate <= 0.0 {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        (n as f64 * rate).floor() > ((n - 1) as f64 * rate).floor()
    }
}

impl Shared {
    /// The status of an injected failure: the code set (`UNAVAILABLE` by default), with the
    /// pushback header when one is set.
    fn injected(&self) -> Status {
        let code = match self.failure_code.load(Ordering::Relaxed) {
            0 => tonic::Code::Unavailable,
            n => tonic::Code::from_i32(n),
        };
        let mut status = Status::new(code, INJECTED_FAILURE);
        let pushback = self.pushback.lock().expect("pushback lock").clone();
        if let Some(value) = pushback.and_then(|p| p.parse().ok()) {
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", value);
        }
        status
    }
}

/// Counts a unary call that ends before it answers (its client cancelled it) in
/// [`TestServer::cancelled`].
#[derive(Debug)]
struct Unfinished(Option<Arc<Shared>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Counts one call in [`TestServer::in_flight`] for as long as it lives.
#[derive(Debug)]
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The Echo implementation served by [`TestServer`].
#[derive(Debug, Clone)]
struct EchoService {
    shared: Arc<Shared>,
}

/// A bare Echo service answering as `name`, for servers a test or example runs itself (many
/// listeners in one runtime, say), where a [`TestServer`] thread each would be too many.
pub fn echo_service(name: &str) -> pb::echo_server::EchoServer<impl pb::echo_server::Echo> {
    pb::echo_server::EchoServer::new(EchoService {
        shared: Arc::new(Shared {
            name: name.to_owned(),
            ..Shared::default()
        }),
    })
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.shared.calls.fetch_add(1, Ordering::SeqCst);
        let _in_flight = InFlight::new(&self.shared);
        let mut unfinished = Unfinished(Some(Arc::clone(&self.shared)));
        let fail = self.shared.should_fail();
        let delay = self.shared.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        unfinished.0 = None;
        if fail {
            return Err(self.shared.injected());
        }
        let seen = SEEN
            .iter()
            .filter_map(|(header, name)| {
                let value = request.metadata().get(*header)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect();
        Ok(Response::new(EchoReply {
            message: request.into_inner().message,
            server: self.shared.name.clone(),
            seen,
        }))
    }

    async fn client_stream(
        &self,
        request: Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.shared.stream_calls.fetch_add(1, Ordering::SeqCst);
        let _in_flight = InFlight::new(&self.shared);
        let mut requests = request.into_inner();
        let mut messages = Vec::new();
        while let Some(request) = requests.message().await? {
            messages.push(request.message);
        }
        Ok(Response::new(EchoReply {
            message: messages.join(","),
            server: self.shared.name.clone(),
            seen: Default::default(),
        }))
    }

    type BidiStreamStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

    async fn bidi_stream(
        &self,
        request: Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStreamStream>, Status> {
        self.shared.stream_calls.fetch_add(1, Ordering::SeqCst);
        let in_flight = InFlight::new(&self.shared);
        let name = self.shared.name.clone();
        let requests = request.into_inner();
        let replies = tokio_stream::StreamExt::map(requests, move |request| {
            let _held = &in_flight;
            request.map(|r| EchoReply {
                message: r.message,
                server: name.clone(),
                seen: Default::default(),
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }

    type ServerStreamStream = EchoStream;

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        self.shared.stream_calls.fetch_add(1, Ordering::SeqCst);
        let in_flight = InFlight::new(&self.shared);
        if self.shared.should_fail() {
            return Err(self.shared.injected());
        }
        let request = request.into_inner();
        Ok(Response::new(EchoStream {
            remaining: request.stream_count,
            message: request.message,
            sleep: None,
            in_flight,
        }))
    }
}

/// The response stream of `ServerStream`: `remaining` replies, each after the
/// server's current delay.
#[derive(Debug)]
struct EchoStream {
    remaining: u32,
    message: String,
    sleep: Option<Pin<Box<Sleep>>>,
    in_flight: InFlight,
}

impl Stream for EchoStream {
    type Item = Result<EchoReply, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        if this.sleep.is_none() {
            let delay = this.in_flight.0.delay();
            if !delay.is_zero() {
                this.sleep = Some(Box::pin(tokio::time::sleep(delay)));
            }
        }
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        this.remaining -= 1;
        Poll::Ready(Some(Ok(EchoReply {
            message: this.message.clone(),
            server: this.in_flight.0.name.clone(),
            seen: Default::default(),
        })))
    }
}

/// How the server thread is asked to stop.
#[derive(Debug)]
enum Stop {
    /// Drop the runtime now: listener and connections close at once.
    Kill,
    /// Stop accepting, drain in-flight calls for at most this long, then kill.
    Graceful(Duration),
}

/// Configures and starts a [`TestServer`]; see [`TestServer::builder`].
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    name: String,
    addr: SocketAddr,
    health: bool,
    tls: Option<ServerTlsConfig>,
    max_concurrent_streams: Option<u32>,
}

impl TestServerBuilder {
    /// Lets each connection have at most this many calls open at once (HTTP/2's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`); more wait in the client. Default: tonic's (none).
    pub fn max_concurrent_streams(mut self, max: u32) -> Self {
        self.max_concurrent_streams = Some(max);
        self
    }

    /// Listens on `addr` instead of `127.0.0.1:0`. If the port is still busy
    /// (`AddrInUse`), the bind is retried for up to ~2 s.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Also serves `grpc.health.v1.Health`, with services `""` and
    /// `"echo.Echo"` initially `SERVING` (see [`TestServer::set_serving`]).
    pub fn health(mut self, enabled: bool) -> Self {
        self.health = enabled;
        self
    }

    /// Serves over TLS with this configuration (its identity, and `client_ca_root` to ask
    /// for client certificates), instead of plaintext HTTP/2.
    pub fn tls(mut self, config: ServerTlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Binds the listener (synchronously, so the port is open on return) and
    /// starts serving on a dedicated thread with its own tokio runtime.
    pub fn start(self) -> io::Result<TestServer> {
        let std_listener = bind_with_retry(self.addr)?;
        let addr = std_listener.local_addr()?;
        let (runtime, listener) = server_runtime(std_listener)?;

        let shared = Arc::new(Shared {
            name: self.name.clone(),
            ..Shared::default()
        });
        let health = if self.health {
            let reporter = HealthReporter::new();
            poll_to_completion(reporter.set_service_status("", ServingStatus::Serving));
            poll_to_completion(
                reporter.set_service_status(ECHO_SERVICE_NAME, ServingStatus::Serving),
            );
            Some(reporter)
        } else {
            None
        };

        let echo = EchoServer::new(EchoService {
            shared: Arc::clone(&shared),
        });
        let health_service = health
            .clone()
            .map(|r| HealthServer::new(HealthService::from_health_reporter(r)));
        let (stop_tx, stop_rx) = oneshot::channel();
        let server = match self.tls {
            Some(config) => Server::builder()
                .tls_config(config)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            None => Server::builder(),
        }
        .max_concurrent_streams(self.max_concurrent_streams)
        .layer(tower::util::MapRequestLayer::new(
            copy_authority::<tonic::body::Body>,
        ));

        let thread = std::thread::Builder::new()
            .name(format!("testkit-server-{}", self.name))
            .spawn(move || {
                runtime.block_on(async move {
                    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                    let (grace_tx, grace_rx) = oneshot::channel::<()>();
                    let mut server = server;
                    let serve = server
                        .add_service(echo)
                        .add_optional_service(health_service)
                        .serve_with_incoming_shutdown(incoming, async move {
                            let _ = grace_rx.await;
                        });
                    let control = async move {
                        // A dropped sender (handle leaked) counts as a kill.
                        if let Ok(Stop::Graceful(grace)) = stop_rx.await {
                            let _ = grace_tx.send(());
                            tokio::time::sleep(grace).await;
                        }
                    };
                    tokio::select! {
                        _ = serve => {}
                        _ = control => {}
                    }
                });
                // Dropping the runtime drops every task, hence the listener
                // and every connection, before the thread ends.
                drop(runtime);
            })?;

        Ok(TestServer {
            addr,
            shared,
            health,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// An Echo gRPC server on its own OS thread and tokio runtime.
///
/// Its behaviour (delay, injected failures, health) can be changed at runtime
/// through `&self`. Dropping it kills it like [`TestServer::kill`].
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    health: Option<HealthReporter>,
    stop: Option<oneshot::Sender<Stop>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A builder for a server named `name` on `127.0.0.1:0`, without health.
    pub fn builder(name: &str) -> TestServerBuilder {
        TestServerBuilder {
            name: name.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            health: false,
            tls: None,
            max_concurrent_streams: None,
        }
    }

    /// Starts a server named `name` on a free port of 127.0.0.1.
    pub fn start(name: &str) -> io::Result<TestServer> {
        Self::builder(name).start()
    }

    /// Starts a server named `name` on `addr`, e.g. to restart a killed server
    /// on the same port. Uses `SO_REUSEADDR` and retries a busy port for ~2 s
    /// (blocking the calling thread meanwhile).
    pub fn start_on(name: &str, addr: SocketAddr) -> io::Result<TestServer> {
        Self::builder(name).addr(addr).start()
    }

    /// Like [`TestServer::start`], also serving `grpc.health.v1.Health`.
    pub fn start_with_health(name: &str) -> io::Result<TestServer> {
        Self::builder(name).health(true).start()
    }

    /// Like [`TestServer::start_on`], also serving `grpc.health.v1.Health`.
    pub fn start_with_health_on(name: &str, addr: SocketAddr) -> io::Result<TestServer> {
        Self::builder(name).addr(addr).health(true).start()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}`, ready for `tonic::transport::Endpoint::from_shared`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's name, echoed in [`pb::EchoReply::server`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Each unary call (and each stream item) waits `delay` before answering.
    pub fn set_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.shared.delay_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Makes a deterministic fraction `rate` (clamped to `[0, 1]`) of calls
    /// fail with `UNAVAILABLE: injected failure`.
    ///
    /// Counting restarts at each call of this method: call `n` fails iff
    /// `floor(n * rate) > floor((n - 1) * rate)`, so 0.5 fails exactly every
    /// second call. Unary and streaming calls share the count.
    pub fn set_failure_rate(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.shared
            .failure_rate_bits
            .store(rate.to_bits(), Ordering::Relaxed);
        self.shared.failure_seq.store(0, Ordering::Relaxed);
    }

    /// When `true`, every call fails with `UNAVAILABLE: injected failure`
    /// (overrides [`TestServer::set_failure_rate`]).
    pub fn set_fail_all(&self, fail_all: bool) {
        self.shared.fail_all.store(fail_all, Ordering::Relaxed);
    }

    /// The next `n` calls fail (as injected failures), whatever the failure rate.
    pub fn fail_next(&self, n: u64) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// The code of injected failures (`UNAVAILABLE` until set).
    pub fn set_failure_code(&self, code: tonic::Code) {
        self.shared
            .failure_code
            .store(code as i32, Ordering::Relaxed);
    }

    /// Injected failures carry `grpc-retry-pushback-ms: value` (`None`: no such header).
    pub fn set_pushback(&self, value: Option<&str>) {
        *self.shared.pushback.lock().expect("pushback lock") = value.map(str::to_owned);
    }

    /// Unary calls that ended before answering: their client went away (a hedge that lost,
    /// a deadline), seen as the server's handler being dropped.
    pub fn cancelled(&self) -> u64 {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// Number of unary calls received so far.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Number of `ServerStream` calls received so far.
    pub fn stream_calls(&self) -> u64 {
        self.shared.stream_calls.load(Ordering::SeqCst)
    }

    /// Calls being processed right now (unary calls, and streams until their
    /// last item is sent or the client goes away).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Whether this server serves `grpc.health.v1.Health`.
    pub fn has_health(&self) -> bool {
        self.health.is_some()
    }

    /// Sets the health status of services `""` and `"echo.Echo"` to `SERVING`
    /// or `NOT_SERVING` (watchers are notified). No-op without health.
    pub fn set_serving(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if let Some(reporter) = &self.health {
            poll_to_completion(reporter.set_service_status("", status));
            poll_to_completion(reporter.set_service_status(ECHO_SERVICE_NAME, status));
        }
    }

    /// Kills the server hard: its runtime is dropped, so the listener and
    /// every open connection close at once (peers see EOF/reset, in-flight
    /// calls fail). Returns once the port is closed.
    pub fn kill(mut self) {
        self.stop(Stop::Kill);
    }

    /// Stops accepting connections (the listener closes at once), lets
    /// in-flight calls finish (for at most 30 s, then kills), then returns.
    pub fn shutdown_gracefully(self) {
        self.shutdown_gracefully_within(DEFAULT_GRACE);
    }

    /// Like [`TestServer::shutdown_gracefully`], but kills whatever is still
    /// open after `grace`.
    pub fn shutdown_gracefully_within(mut self, grace: Duration) {
        self.stop(Stop::Graceful(grace));
    }

    fn stop(&mut self, how: Stop) {
        if let Some(stop) = self.stop.take() {
            // An error means the server thread is already gone.
            let _ = stop.send(how);
        }
        if let Some(thread) = self.thread.take() {
            // A panic of the server thread has been reported already.
            let _ = thread.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop(Stop::Kill);
    }
}

/// Binds a listening socket with `SO_REUSEADDR` (Unix), retrying `AddrInUse`
/// on a fixed port for up to [`BIND_RETRY_FOR`].
/// A current-thread runtime for one server's own thread, and `listener` registered with it.
pub(crate) fn server_runtime(
    listener: StdTcpListener,
) -> io::Result<(tokio::runtime::Runtime, tokio::net::TcpListener)> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    Ok((runtime, listener))
}

fn bind_with_retry(addr: SocketAddr) -> io::Result<StdTcpListener> {
    let deadline = Instant::now() + BIND_RETRY_FOR;
    loop {
        match bind(addr) {
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    && addr.port() != 0
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<StdTcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // On Windows SO_REUSEADDR allows stealing a bound port; don't.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Drives `fut` to completion on the calling thread without a runtime.
///
/// Only for futures that complete promptly (here: `HealthReporter` updates,
/// which wait at most for a tokio `RwLock` held briefly by the server).
/// `unconstrained` keeps tokio's coop budget from starving the busy-poll when
/// called from inside a task.
fn poll_to_completion<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(tokio::task::unconstrained(fut));
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}
