//! [`OrcaLayer`]: what a server adds to report its load; the service and future it makes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

use super::body::{CallGuard, OutOfBandStream, ReportingBody};
use super::tracker::{Tracker, Utilization};
use crate::orca::{self, LoadReport};

/// A Tower layer for a gRPC server (tonic's `Server::builder().layer(..)`) that reports the
/// server's load to its clients in every response's `endpoint-load-metrics-bin` trailer, as
/// gRPC ORCA (A51) specifies, for client-side balancing by it
/// ([`Policy::weighted_round_robin`](crate::Policy::weighted_round_robin) here, or any gRPC
/// client's `weighted_round_robin`).
///
/// Each report carries, from the last full window (1 s by default): the requests and errors
/// per second (`rps_fractional`, `eps`), the mean latency (named metric `latency_seconds`),
/// the utilisation if a source is set, and the calls in flight now (named metric
/// `in_flight`). A call counts from its request to its trailers; one whose response ends
/// without trailers (cancelled, reset) counts as an error and carries no report.
///
/// All services the layer makes share its counts, so use one layer per server.
///
/// The layer also serves gRPC's out-of-band load reports (A51,
/// [`OUT_OF_BAND_PATH`](crate::orca::OUT_OF_BAND_PATH)): a client that opens
/// `OpenRcaService/StreamCoreMetrics` gets the report at the interval it asks for, at least
/// [`min_reporting_interval`](Self::min_reporting_interval).
///
/// The layer also answers load probes ([`PROBE_PATH`](crate::orca::PROBE_PATH), the probes
/// of [`Policy::prequal`](crate::Policy::prequal)) itself, at once, with the same report —
/// calls in flight now and the latency a call sent now can expect — without counting them as
/// calls or passing them to the service.
///
/// ```
/// use tower_lb::server::OrcaLayer;
/// // A server that can run 8 calls at once reports mean in flight / 8 as its utilisation.
/// let layer = OrcaLayer::new().utilization_from_in_flight(8);
/// ```
#[derive(Debug, Clone)]
pub struct OrcaLayer {
    tracker: Arc<Tracker>,
    utilization: Utilization,
    window: Duration,
    min_interval: Duration,
}

impl Default for OrcaLayer {
    fn default() -> Self {
        OrcaLayer::new()
    }
}

impl OrcaLayer {
    /// Reports rates, latency and calls in flight; no utilisation until one of the
    /// `utilization` settings below chooses a source. gRPC's weighted round robin needs a
    /// utilisation: without one, clients balance as plain round robin.
    pub fn new() -> Self {
        OrcaLayer::with(Utilization::None, Duration::from_secs(1))
    }

    fn with(utilization: Utilization, window: Duration) -> Self {
        OrcaLayer {
            tracker: Arc::new(Tracker::new(utilization.clone(), window)),
            utilization,
            window,
            min_interval: DEFAULT_MIN_INTERVAL,
        }
    }

    /// Reports the process's CPU utilisation (`cpu_utilization`: CPU time over wall time
    /// and the CPUs it may use), read from `/proc/self/stat` once per window. Where that file
    /// does not exist (not Linux) the field stays 0.
    pub fn cpu_utilization(self) -> Self {
        OrcaLayer::with(Utilization::Cpu, self.window)
    }

    /// Reports the mean calls in flight over the window divided by `slots`
    /// (`application_utilization`): for a server whose capacity is a number of calls at once
    /// (a concurrency limit, a worker pool), 1.0 when every slot was busy all the time, calls
    /// queueing or not (a queue shows in the latency). `slots` of 0 is taken as 1.
    pub fn utilization_from_in_flight(self, slots: u32) -> Self {
        let slots = f64::from(slots.max(1));
        OrcaLayer::with(Utilization::InFlightPer(slots), self.window)
    }

    /// Reports what `utilization` returns (`application_utilization`), asked once per window;
    /// a NaN, infinite or negative answer is sent as 0 (no utilisation).
    pub fn utilization(self, utilization: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        OrcaLayer::with(Utilization::Custom(Arc::new(utilization)), self.window)
    }

    /// How long a measuring window is (default 1 s; at least 10 ms): rates, latency and
    /// utilisation in reports are the last full window's.
    pub fn window(self, window: Duration) -> Self {
        let window = window.max(Duration::from_millis(10));
        OrcaLayer {
            min_interval: self.min_interval,
            ..OrcaLayer::with(self.utilization, window)
        }
    }

    /// The shortest interval the out-of-band stream reports at (default 1 s): a client that
    /// asks for less gets this (gRPC A51's minimum reporting interval).
    pub fn min_reporting_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval.max(Duration::from_millis(10));
        self
    }
}

/// The out-of-band stream's minimum reporting interval unless set.
const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(1);

impl<S> Layer<S> for OrcaLayer {
    type Service = OrcaService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OrcaService {
            inner,
            tracker: self.tracker.clone(),
            min_interval: self.min_interval,
        }
    }
}

/// The service an [`OrcaLayer`] makes: the inner service, with load reports on its responses.
#[derive(Debug, Clone)]
pub struct OrcaService<S> {
    inner: S,
    tracker: Arc<Tracker>,
    min_interval: Duration,
}

impl<S, ReqB, ResB> Service<http::Request<ReqB>> for OrcaService<S>
where
    S: Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    ReqB: http_body::Body + Send + 'static,
    ResB: Default,
{
    type Response = http::Response<ReportingBody<ResB>>;
    type Error = S::Error;
    type Future = ReportingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqB>) -> Self::Future {
        let answer = match request.uri().path() {
            orca::PROBE_PATH => Answer::Probe(self.tracker.probe()),
            orca::OUT_OF_BAND_PATH => Answer::OutOfBand {
                tracker: self.tracker.clone(),
                min_interval: self.min_interval,
                requested: Box::pin(requested_interval(request.into_body())),
            },
            _ => {
                return ReportingFuture {
                    call: Some(CallGuard::start(self.tracker.clone())),
                    answer: None,
                    inner: Some(self.inner.call(request)),
                };
            }
        };
        ReportingFuture {
            call: None,
            answer: Some(answer),
            inner: None,
        }
    }
}

/// What the layer answers itself, without the service.
enum Answer {
    /// A load probe: the report now.
    Probe(LoadReport),
    /// An out-of-band stream, once its request says at what interval.
    OutOfBand {
        tracker: Arc<Tracker>,
        min_interval: Duration,
        requested: Pin<Box<dyn Future<Output = Duration> + Send>>,
    },
}

/// The reporting interval an out-of-band request asks for (zero when it says none or cannot
/// be read): its first message, read up to [`orca::MAX_MESSAGE`].
async fn requested_interval<B>(body: B) -> Duration
where
    B: http_body::Body + Send + 'static,
{
    let mut body = std::pin::pin!(body);
    let mut messages = orca::Messages::default();
    let mut read = 0usize;
    while let Some(Ok(frame)) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let Ok(mut data) = frame.into_data() else {
            break;
        };
        use bytes::Buf;
        while data.has_remaining() && read <= orca::MAX_MESSAGE {
            let chunk = data.chunk();
            read += chunk.len();
            messages.push(chunk);
            let n = chunk.len();
            data.advance(n);
        }
        match messages.next() {
            Some(Ok(message)) => return orca::decode_oob_request(&message).unwrap_or_default(),
            Some(Err(_)) => break,
            None if read > orca::MAX_MESSAGE => break,
            None => {}
        }
    }
    Duration::ZERO
}

pin_project_lite::pin_project! {
    /// The response future of an [`OrcaService`].
    pub struct ReportingFuture<F> {
        #[pin]
        inner: Option<F>,
        call: Option<CallGuard>,
        // A probe or out-of-band stream, which never reaches the service.
        answer: Option<Answer>,
    }
}

impl<F, ResB, E> Future for ReportingFuture<F>
where
    F: Future<Output = Result<http::Response<ResB>, E>>,
    ResB: Default,
{
    type Output = Result<http::Response<ReportingBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return match this.answer {
                Some(Answer::Probe(report)) => Poll::Ready(Ok(probe_answer(*report))),
                Some(Answer::OutOfBand {
                    tracker,
                    min_interval,
                    requested,
                }) => {
                    let requested = std::task::ready!(requested.as_mut().poll(cx));
                    let interval = requested.max(*min_interval);
                    let stream = OutOfBandStream::new(tracker.clone(), interval);
                    Poll::Ready(Ok(out_of_band_answer(stream)))
                }
                None => Poll::Ready(Ok(probe_answer(LoadReport::default()))),
            };
        };
        let response = std::task::ready!(inner.poll(cx))?;
        let mut call = this.call.take();
        let (mut parts, body) = response.into_parts();
        if parts.headers.contains_key("grpc-status")
            && let Some(mut c) = call.take()
        {
            // Trailers-only (an error answered at once): the report goes in the headers.
            c.end_with(&mut parts.headers);
        }
        Poll::Ready(Ok(http::Response::from_parts(
            parts,
            ReportingBody::new(body, call),
        )))
    }
}

/// An out-of-band stream's answer: headers now, then a report per interval.
fn out_of_band_answer<B: Default>(stream: OutOfBandStream) -> http::Response<ReportingBody<B>> {
    let mut response = http::Response::new(ReportingBody::out_of_band(B::default(), stream));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A load probe's answer: trailers-only, OK, the report in its header.
fn probe_answer<B: Default>(report: LoadReport) -> http::Response<ReportingBody<B>> {
    let mut response = http::Response::new(ReportingBody::new(B::default(), None));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", http::HeaderValue::from_static("0"));
    headers.insert(orca::TRAILER, orca::to_header_value(&report));
    response
}

impl<F> std::fmt::Debug for ReportingFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportingFuture").finish_non_exhaustive()
    }
}

impl<B> std::fmt::Debug for ReportingBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportingBody").finish_non_exhaustive()
    }
}
