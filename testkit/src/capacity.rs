//! [`CapacityServer`]: an Echo server with a fixed capacity — `slots` calls at once, each
//! taking `work` (a sleep) — that reports its load with tower-lb's ORCA layer, for the
//! weighted-round-robin tests and `examples/orca.rs`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body::{Body, Frame};
use tokio::sync::{Semaphore, oneshot};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tower::{Layer, Service};
use tower_lb::server::OrcaLayer;

use crate::pb::echo_server::{Echo, EchoServer};
use crate::pb::{EchoReply, EchoRequest};

#[derive(Debug)]
struct Shared {
    name: String,
    slots: Semaphore,
    work: Duration,
    calls: AtomicU64,
    /// Slot-time used, in nanoseconds.
    busy_ns: AtomicU64,
    /// What replaces the `endpoint-load-metrics-bin` trailer, when set (to test bad reports).
    bad_trailer: Mutex<Option<http::HeaderValue>>,
}

/// An Echo server on its own thread and runtime that runs at most `slots` calls at once (the
/// rest queue inside it), each `Unary` call taking `work`, and reports
/// `OrcaLayer::utilization_from_in_flight(slots)` in every response's trailers.
#[derive(Debug)]
pub struct CapacityServer {
    addr: SocketAddr,
    slots: u32,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CapacityServer {
    /// Starts it on `127.0.0.1:0`.
    pub fn start(name: &str, slots: u32, work: Duration) -> io::Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = std_listener.local_addr()?;
        let (runtime, listener) = crate::server_runtime(std_listener)?;
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            slots: Semaphore::new(slots as usize),
            work,
            calls: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            bad_trailer: Mutex::new(None),
        });
        let service = EchoServer::new(Capacity {
            shared: shared.clone(),
        });
        let tamper = TamperLayer {
            shared: shared.clone(),
        };
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("capacity-server-{name}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                    let serve = Server::builder()
                        .layer(tamper)
                        .layer(OrcaLayer::new().utilization_from_in_flight(slots))
                        .add_service(service)
                        .serve_with_incoming(incoming);
                    tokio::select! {
                        _ = serve => {}
                        _ = stop_rx => {}
                    }
                });
                drop(runtime);
            })?;
        Ok(CapacityServer {
            addr,
            slots,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Calls it has finished.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// Slot-time its calls have used (the sum of their work), for utilisation =
    /// busy / (slots × elapsed).
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.shared.busy_ns.load(Ordering::Relaxed))
    }

    /// How many calls it runs at once.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// Replaces the load report in its trailers with `value` (`None`: the real report again).
    pub fn set_bad_trailer(&self, value: Option<&'static str>) {
        *self.shared.bad_trailer.lock().unwrap() = value.map(http::HeaderValue::from_static);
    }
}

impl Drop for CapacityServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug, Clone)]
struct Capacity {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl Echo for Capacity {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let _slot = self
            .shared
            .slots
            .acquire()
            .await
            .map_err(|_| Status::unavailable("closed"))?;
        // Slot-time counts even for a call its client cancels mid-work.
        let _busy = Busy {
            shared: &self.shared,
            started: Instant::now(),
        };
        tokio::time::sleep(self.shared.work).await;
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(EchoReply {
            message: request.into_inner().message,
            server: self.shared.name.clone(),
            seen: Default::default(),
        }))
    }

    async fn client_stream(
        &self,
        _: Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        Err(Status::unimplemented("unary only"))
    }

    type BidiStreamStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<EchoReply, Status>> + Send>>;

    async fn bidi_stream(
        &self,
        _: Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStreamStream>, Status> {
        Err(Status::unimplemented("unary only"))
    }

    type ServerStreamStream = Self::BidiStreamStream;

    async fn server_stream(
        &self,
        _: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        Err(Status::unimplemented("unary only"))
    }
}

/// Adds the time a call held its slot, when it lets go of it.
struct Busy<'a> {
    shared: &'a Shared,
    started: Instant,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let busy = self.started.elapsed().as_nanos() as u64;
        self.shared.busy_ns.fetch_add(busy, Ordering::Relaxed);
    }
}

/// Outside the ORCA layer: overwrites its trailer with the configured bad value.
#[derive(Debug, Clone)]
struct TamperLayer {
    shared: Arc<Shared>,
}

impl<S> Layer<S> for TamperLayer {
    type Service = Tamper<S>;
    fn layer(&self, inner: S) -> Tamper<S> {
        Tamper {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Tamper<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqB, ResB> Service<http::Request<ReqB>> for Tamper<S>
where
    S: Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
    ResB: 'static,
{
    type Response = http::Response<Tampered<ResB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqB>) -> Self::Future {
        let bad = self.shared.bad_trailer.lock().unwrap().clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|inner| Tampered { inner, bad }))
        })
    }
}

/// A body whose trailers get the bad report.
struct Tampered<B> {
    inner: B,
    bad: Option<http::HeaderValue>,
}

impl<B: Body + Unpin> Body for Tampered<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let (Some(Ok(f)), Some(bad)) = (&mut frame, &self.bad)
            && let Some(trailers) = f.trailers_mut()
        {
            trailers.insert("endpoint-load-metrics-bin", bad.clone());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
