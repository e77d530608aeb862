//! [`CapacityServer`]: an Echo server with a fixed capacity — `slots` calls at once, each
//! taking `work` (a sleep) — that reports its load with tower-lb's ORCA layer, for the
//! weighted-round-robin tests and `examples/orca.rs`.
//!
//! For `examples/prequal_testbed.rs` (the Prequal testbed of prequal-rs on loopback) a server
//! can also be built with [`CapacityServer::builder`]: a speed factor (a slow server takes
//! `work / speed`), a [`Noise`] model that varies that speed over time (noisy neighbours), work
//! drawn from a seeded distribution ([`Work`]) or sent by the client in the request
//! ([`WORK_METADATA`]), and a mode in which it fails every call at once
//! ([`CapacityServer::set_failing`]).

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body::{Body, Frame};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Semaphore, oneshot};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tower::{Layer, Service};
use tower_lb::server::OrcaLayer;

use crate::pb::echo_server::{Echo, EchoServer};
use crate::pb::{EchoReply, EchoRequest};

/// The metadata key (`testkit-work-us`) by which a client sets a call's work, in microseconds
/// at speed 1, overriding the server's [`Work`]. The server still divides it by its speed.
pub const WORK_METADATA: &str = "testkit-work-us";

/// How much work a call is at speed 1 (the server sleeps `work / speed`), unless its request
/// sets [`WORK_METADATA`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Work {
    /// Every call the same.
    Fixed(Duration),
    /// Exponentially distributed with this mean, drawn from the server's own generator seeded
    /// with `seed` (the same seed gives the same sequence of draws, in arrival order).
    Exponential {
        /// The mean.
        mean: Duration,
        /// The generator's seed.
        seed: u64,
    },
}

impl Default for Work {
    fn default() -> Self {
        Work::Fixed(Duration::ZERO)
    }
}

/// A server's speed varying over time, as a neighbour on the same host would vary it: the time
/// is cut into spells, each lasting a time drawn uniformly from `hold`, and each spell's speed
/// factor is drawn from one of the `factors` (picked with its probability, then uniformly in
/// its range). The spells come from a generator seeded with `seed` and are laid out from the
/// moment the server starts, or [`CapacityServer::restart_noise`] was last called: the same
/// seed gives the same factors at the same time since then, so runs compared with each other
/// can see the same trajectory.
///
/// ```
/// use tower_lb_testkit::capacity::Noise;
/// // The Prequal testbed's noisy neighbour: half the time 0.3-0.7, half 0.9-1.3, spells of
/// // 0.7-1.3 s.
/// let noisy = Noise::noisy_neighbour(7);
/// assert_eq!(noisy, Noise::noisy_neighbour(7));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    factors: Vec<(f64, Range<f64>)>,
    hold: Range<Duration>,
    seed: u64,
}

impl Noise {
    /// No factors yet (add them with [`factor`](Self::factor)); spells last `hold`.
    ///
    /// # Panics
    ///
    /// If `hold` is empty or starts at zero.
    pub fn new(seed: u64, hold: Range<Duration>) -> Self {
        assert!(
            !hold.is_empty() && !hold.start.is_zero(),
            "Noise: hold must be a non-empty range above zero, got {hold:?}"
        );
        Noise {
            factors: Vec::new(),
            hold,
            seed,
        }
    }

    /// Adds a choice: with weight `probability` (the weights need not add to 1), a speed
    /// factor uniform in `range`.
    ///
    /// # Panics
    ///
    /// If `probability` is not above zero and finite, or `range` is empty or not above zero.
    pub fn factor(mut self, probability: f64, range: Range<f64>) -> Self {
        assert!(
            probability.is_finite() && probability > 0.0,
            "Noise: probability must be finite and above zero, got {probability}"
        );
        assert!(
            range.start > 0.0 && range.start < range.end && range.end.is_finite(),
            "Noise: factor range must be non-empty and above zero, got {range:?}"
        );
        self.factors.push((probability, range));
        self
    }

    /// The Prequal testbed's host with a noisy neighbour (prequal-rs,
    /// `crates/prequal-testbed/src/server.rs`): each spell of 0.7-1.3 s, with probability
    /// 1/2 a factor in 0.3-0.7 (the neighbour busy), else 0.9-1.3.
    pub fn noisy_neighbour(seed: u64) -> Self {
        Noise::new(
            seed,
            Duration::from_millis(700)..Duration::from_millis(1300),
        )
        .factor(0.5, 0.3..0.7)
        .factor(0.5, 0.9..1.3)
    }

    /// The Prequal testbed's host without one: each spell of 0.7-1.3 s a factor in 1.2-2.0
    /// (the server gets more than its nominal share of the host).
    pub fn uncontended(seed: u64) -> Self {
        Noise::new(
            seed,
            Duration::from_millis(700)..Duration::from_millis(1300),
        )
        .factor(1.0, 1.2..2.0)
    }

    /// The factor at `elapsed` since the schedule's start, for tests and reports: the same
    /// function the server uses.
    pub fn factor_at(&self, elapsed: Duration) -> f64 {
        NoiseClock::new(self.clone(), Instant::now()).factor_after(elapsed)
    }

    fn draw(&self, rng: &mut SmallRng) -> (f64, Duration) {
        let total: f64 = self.factors.iter().map(|(p, _)| p).sum();
        let mut pick = rng.random::<f64>() * total;
        let mut range = self.factors.last().map_or(1.0..1.0, |(_, r)| r.clone());
        for (p, r) in &self.factors {
            if pick < *p {
                range = r.clone();
                break;
            }
            pick -= p;
        }
        let factor = if range.is_empty() {
            1.0
        } else {
            rng.random_range(range)
        };
        let hold = rng.random_range(self.hold.clone());
        (factor, hold)
    }
}

/// A [`Noise`] schedule laid out from `epoch`: spells are drawn as time reaches them.
#[derive(Debug)]
struct NoiseClock {
    noise: Noise,
    epoch: Instant,
    rng: SmallRng,
    /// Each spell's end (since `epoch`) and factor, in order.
    spells: Vec<(Duration, f64)>,
}

impl NoiseClock {
    fn new(noise: Noise, epoch: Instant) -> Self {
        NoiseClock {
            rng: SmallRng::seed_from_u64(noise.seed),
            noise,
            epoch,
            spells: Vec::new(),
        }
    }

    fn factor(&mut self, now: Instant) -> f64 {
        self.factor_after(now.saturating_duration_since(self.epoch))
    }

    fn factor_after(&mut self, elapsed: Duration) -> f64 {
        if self.noise.factors.is_empty() {
            return 1.0;
        }
        while self.spells.last().is_none_or(|&(end, _)| end <= elapsed) {
            let start = self.spells.last().map_or(Duration::ZERO, |&(end, _)| end);
            let (factor, hold) = self.noise.draw(&mut self.rng);
            self.spells.push((start + hold, factor));
        }
        let at = self.spells.partition_point(|&(end, _)| end <= elapsed);
        self.spells[at].1
    }
}

#[derive(Debug)]
struct Shared {
    name: String,
    slots: Semaphore,
    work: Work,
    /// Draws for `Work::Exponential`.
    work_rng: Mutex<SmallRng>,
    speed: f64,
    noise: Mutex<Option<NoiseClock>>,
    failing: AtomicBool,
    failed: AtomicU64,
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

/// Settings of a [`CapacityServer`] beyond its slots: see [`CapacityServer::builder`].
#[derive(Debug, Clone)]
pub struct CapacityServerBuilder {
    name: String,
    slots: u32,
    work: Work,
    speed: f64,
    noise: Option<Noise>,
}

impl CapacityServerBuilder {
    /// The work of a call at speed 1 (default none: `Work::Fixed(0)`), unless its request
    /// sets [`WORK_METADATA`].
    pub fn work(mut self, work: Work) -> Self {
        self.work = work;
        self
    }

    /// The server's speed (default 1): a call's work takes `work / (speed × noise factor)`.
    ///
    /// # Panics
    ///
    /// If `speed` is not finite and above zero.
    pub fn speed(mut self, speed: f64) -> Self {
        assert!(
            speed.is_finite() && speed > 0.0,
            "speed must be finite and above zero, got {speed}"
        );
        self.speed = speed;
        self
    }

    /// A speed factor varying over time (default none: 1). The factor is read when a call
    /// gets its slot and holds for that call.
    pub fn noise(mut self, noise: Noise) -> Self {
        self.noise = Some(noise);
        self
    }

    /// Starts it on `127.0.0.1:0`, its own thread and runtime.
    pub fn start(self) -> io::Result<CapacityServer> {
        CapacityServer::start_with(self)
    }
}

impl CapacityServer {
    /// Starts it on `127.0.0.1:0`: `slots` calls at once, each taking `work`.
    pub fn start(name: &str, slots: u32, work: Duration) -> io::Result<Self> {
        CapacityServer::builder(name, slots)
            .work(Work::Fixed(work))
            .start()
    }

    /// A server of `slots` calls at once, to be given a speed, noise and work before it starts.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tower_lb_testkit::capacity::{CapacityServer, Noise, Work};
    /// // Half the nominal speed, a noisy neighbour, work exponential with mean 40 ms.
    /// let server = CapacityServer::builder("slow-1", 4)
    ///     .speed(0.5)
    ///     .noise(Noise::noisy_neighbour(1))
    ///     .work(Work::Exponential { mean: Duration::from_millis(40), seed: 1 })
    ///     .start()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder(name: &str, slots: u32) -> CapacityServerBuilder {
        CapacityServerBuilder {
            name: name.to_owned(),
            slots,
            work: Work::default(),
            speed: 1.0,
            noise: None,
        }
    }

    fn start_with(settings: CapacityServerBuilder) -> io::Result<Self> {
        let CapacityServerBuilder {
            name,
            slots,
            work,
            speed,
            noise,
        } = settings;
        let name = name.as_str();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = std_listener.local_addr()?;
        let (runtime, listener) = crate::server_runtime(std_listener)?;
        let work_seed = match work {
            Work::Exponential { seed, .. } => seed,
            Work::Fixed(_) => 0,
        };
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            slots: Semaphore::new(slots as usize),
            work,
            work_rng: Mutex::new(SmallRng::seed_from_u64(work_seed)),
            speed,
            noise: Mutex::new(noise.map(|n| NoiseClock::new(n, Instant::now()))),
            failing: AtomicBool::new(false),
            failed: AtomicU64::new(0),
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

    /// Calls it has failed on purpose ([`set_failing`](Self::set_failing)).
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// While `true`, every `Unary` call fails at once with `INTERNAL` (as an HTTP server's
    /// 500), taking no slot and doing no work. The calls still pass through the ORCA layer,
    /// whose reports then show a server with nothing in flight: a failing server that looks
    /// idle (the Prequal testbed's "sinkhole").
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::Relaxed);
    }

    /// Lays its [`Noise`] schedule out again from now, from the start of its seeded sequence:
    /// runs that each call this when they start see the same speed at the same time into the
    /// run. Does nothing without noise.
    pub fn restart_noise(&self) {
        if let Some(clock) = self.shared.noise.lock().unwrap().as_mut() {
            *clock = NoiseClock::new(clock.noise.clone(), Instant::now());
        }
    }

    /// Its speed now: the configured speed times the noise factor.
    pub fn speed_now(&self) -> f64 {
        self.shared.speed * self.shared.noise_factor(Instant::now())
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

    /// How many of its slots calls hold now (queued calls not counted).
    pub fn slots_in_use(&self) -> u32 {
        let free = self.shared.slots.available_permits() as u32;
        self.slots.saturating_sub(free)
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

impl Shared {
    fn noise_factor(&self, now: Instant) -> f64 {
        self.noise
            .lock()
            .unwrap()
            .as_mut()
            .map_or(1.0, |clock| clock.factor(now))
    }

    /// A call's work at speed 1: the request's [`WORK_METADATA`], else the server's [`Work`].
    fn work_of(&self, request: &Request<EchoRequest>) -> Duration {
        let asked = request
            .metadata()
            .get(WORK_METADATA)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(micros) = asked {
            return Duration::from_micros(micros);
        }
        match self.work {
            Work::Fixed(work) => work,
            Work::Exponential { mean, .. } => {
                let u: f64 = self.work_rng.lock().unwrap().random();
                mean.mul_f64(-(1.0 - u).ln())
            }
        }
    }
}

#[tonic::async_trait]
impl Echo for Capacity {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        if self.shared.failing.load(Ordering::Relaxed) {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
            return Err(Status::internal("failing on purpose"));
        }
        let work = self.shared.work_of(&request);
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
        // The speed when the call gets its slot holds for the whole call.
        let speed = self.shared.speed * self.shared.noise_factor(Instant::now());
        tokio::time::sleep(work.div_f64(speed)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_a_function_of_seed_and_time() {
        let a = Noise::noisy_neighbour(3);
        let times: Vec<Duration> = (0..200).map(|i| Duration::from_millis(i * 97)).collect();
        let first: Vec<f64> = times.iter().map(|&t| a.factor_at(t)).collect();
        // Asked in another order, from another clock: the same factors.
        let mut clock = NoiseClock::new(a.clone(), Instant::now());
        for (&t, &f) in times.iter().zip(&first).rev() {
            assert_eq!(clock.factor_after(t), f);
        }
        assert!(
            first
                .iter()
                .all(|f| (0.3..0.7).contains(f) || (0.9..1.3).contains(f))
        );
        // Both choices come up, and spells last 0.7-1.3 s: 19.4 s hold between 15 and 28.
        assert!(first.iter().any(|&f| f < 0.7) && first.iter().any(|&f| f > 0.9));
        let changes = first.windows(2).filter(|w| w[0] != w[1]).count();
        assert!((14..=28).contains(&changes), "{changes} changes");
        let other: Vec<f64> = times
            .iter()
            .map(|&t| Noise::noisy_neighbour(4).factor_at(t))
            .collect();
        assert_ne!(first, other);
        let quiet = Noise::uncontended(3);
        assert!(
            times
                .iter()
                .all(|&t| (1.2..2.0).contains(&quiet.factor_at(t)))
        );
    }

    #[test]
    fn exponential_work_has_its_mean_and_requests_override_it() {
        let shared = Shared {
            name: "t".into(),
            slots: Semaphore::new(1),
            work: Work::Exponential {
                mean: Duration::from_millis(40),
                seed: 9,
            },
            work_rng: Mutex::new(SmallRng::seed_from_u64(9)),
            speed: 1.0,
            noise: Mutex::new(None),
            failing: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            bad_trailer: Mutex::new(None),
        };
        let request = || {
            Request::new(EchoRequest {
                message: String::new(),
                stream_count: 0,
            })
        };
        let n = 20_000;
        let total: Duration = (0..n).map(|_| shared.work_of(&request())).sum();
        let mean_ms = total.as_secs_f64() * 1e3 / f64::from(n);
        assert!((38.0..42.0).contains(&mean_ms), "mean {mean_ms} ms");
        let mut asked = request();
        asked
            .metadata_mut()
            .insert(WORK_METADATA, "1234".parse().unwrap());
        assert_eq!(shared.work_of(&asked), Duration::from_micros(1234));
    }
}
