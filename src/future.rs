//! The response future of one balanced call.
//!
//! The common case is one state: the endpoint's own call future, with the call's in-flight
//! hold beside it; no allocation of ours. Two rare cases move to a boxed slow path: no endpoint
//! was ready at dispatch (wait for the next snapshot, up to the ready timeout), or the
//! connection handed the request back unsent (pick again, a bounded number of times).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rand::rngs::SmallRng;
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::endpoint::{EndpointState, InFlight};
use crate::error::{BoxError, Error, Unready};
use crate::grpc_timeout::grpc_timeout;
use crate::policy::PickState;
use crate::ready_set::{ReadyEndpoint, Shared};
use crate::transport::{Channel, SendError};

/// What a balanced call resolves to.
pub type CallResult<T> =
    Result<http::Response<ResponseBody<<T as Channel>::ResponseBody>>, BoxError>;

/// A balancer clone's own handle on the shared state: an `Arc` per clone around the shared
/// `Arc`, so concurrent callers never contend on one reference count.
#[allow(clippy::redundant_allocation)]
pub(crate) type Handle<T> = Arc<Arc<Shared<T>>>;

type SlowFuture<T> = Pin<Box<dyn Future<Output = CallResult<T>> + Send>>;

pin_project_lite::pin_project! {
    /// The future returned by [`Balancer::call`](crate::Balancer).
    pub struct ResponseFuture<T: Channel> {
        #[pin]
        state: State<T>,
        // The call's span, entered on every poll; `Span::none()` (no allocation, nothing
        // recorded) unless a subscriber wants it.
        span: tracing::Span,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<T: Channel> {
        Sending {
            #[pin]
            future: T::Future,
            in_flight: Option<InFlight>,
            // The balancer clone's own handle (see `Balancer::shared`).
            shared: Option<Handle<T>>,
            seed: u64,
        },
        Slow { future: SlowFuture<T> },
    }
}

impl<T: Channel> ResponseFuture<T> {
    #[inline]
    pub(crate) fn sending(
        future: T::Future,
        in_flight: InFlight,
        shared: Handle<T>,
        seed: u64,
        span: tracing::Span,
    ) -> Self {
        ResponseFuture {
            state: State::Sending {
                future,
                in_flight: Some(in_flight),
                shared: Some(shared),
                seed,
            },
            span,
        }
    }

    /// No endpoint was ready at dispatch: wait for one.
    pub(crate) fn waiting(
        shared: Arc<Shared<T>>,
        request: http::Request<T::RequestBody>,
        seed: u64,
        span: tracing::Span,
    ) -> Self {
        let future = Box::pin(slow_call(shared, request, 0, None, seed, span.clone()));
        ResponseFuture {
            state: State::Slow { future },
            span,
        }
    }
}

/// The span of one call: its policy, the endpoint it went to and the attempt (above 1 after a
/// request came back unsent). At `DEBUG`, target `tower_lb::call`.
#[inline]
pub(crate) fn call_span(policy: &'static str, endpoint: Option<&EndpointState>) -> tracing::Span {
    let span = tracing::debug_span!(
        target: "tower_lb::call",
        "call",
        policy,
        endpoint = tracing::field::Empty,
        attempt = 1u32,
    );
    if let Some(e) = endpoint {
        record_endpoint(&span, e);
    }
    span
}

#[inline]
fn record_endpoint(span: &tracing::Span, endpoint: &EndpointState) {
    if !span.is_disabled() {
        span.record("endpoint", tracing::field::display(&endpoint.addr));
    }
}

impl<T: Channel> Future for ResponseFuture<T> {
    type Output = CallResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut state = this.state;
        loop {
            match state.as_mut().project() {
                StateProj::Sending {
                    future,
                    in_flight,
                    shared,
                    seed,
                } => {
                    let result = ready!(future.poll(cx));
                    let mut hold = in_flight.take();
                    match result {
                        Ok(response) => return Poll::Ready(Ok(wrap(response, hold))),
                        Err(SendError::Failed(e)) => {
                            if let Some(h) = hold.as_mut() {
                                h.on_error();
                            }
                            return Poll::Ready(Err(e));
                        }
                        Err(SendError::Unsent { request, error }) => {
                            // Not an outcome of the endpoint: the call never left.
                            let avoid = hold.take().map(|h| h.endpoint().clone());
                            tracing::debug!(%error, "request handed back unsent; picking again");
                            let Some(handle) = shared.take() else {
                                return Poll::Ready(Err(error));
                            };
                            let shared = Arc::clone(&*handle);
                            let span = this.span.clone();
                            let future =
                                Box::pin(slow_call(shared, request, 1, avoid, *seed, span));
                            state.set(State::Slow { future });
                        }
                    }
                }
                StateProj::Slow { future } => return future.as_mut().poll(cx),
            }
        }
    }
}

#[inline]
fn wrap<B>(response: http::Response<B>, hold: Option<InFlight>) -> http::Response<ResponseBody<B>> {
    let (parts, body) = response.into_parts();
    let body = match hold {
        Some(mut hold) => {
            hold.on_headers(parts.status, &parts.headers);
            ResponseBody::new(body, Some(hold))
        }
        None => ResponseBody::new(body, None),
    };
    http::Response::from_parts(parts, body)
}

/// The slow path: wait for a ready endpoint until the ready timeout (or the call's own
/// `grpc-timeout`, if shorter), and re-pick after a request comes back unsent, as far as the
/// retry budget allows.
async fn slow_call<T: Channel>(
    shared: Arc<Shared<T>>,
    mut request: http::Request<T::RequestBody>,
    mut unsent: u32,
    mut avoid: Option<Arc<EndpointState>>,
    seed: u64,
    span: tracing::Span,
) -> CallResult<T> {
    let began = Instant::now();
    let wait = match grpc_timeout(request.headers()) {
        Some(t) => t.min(shared.config.ready_timeout),
        None => shared.config.ready_timeout,
    };
    let deadline = began.checked_add(wait).unwrap_or_else(far_future);
    let mut state = PickState::<SmallRng>::new(seed);
    let hash = shared.config.policy.request_hash(&request);
    loop {
        if unsent > 0 && !shared.budget.withdraw() {
            tracing::debug!(
                attempts = unsent,
                "request handed back unsent; retry budget spent"
            );
            return Err(Error::RetryBudgetExhausted {
                path: request.uri().path().to_owned(),
                attempts: unsent,
            }
            .boxed());
        }
        let picked = pick_or_wait(&shared, hash, avoid.as_deref(), &mut state, deadline).await;
        let (mut channel, mut hold) = match picked {
            Ok((channel, mut hold)) => {
                hold.note_deadline(request.headers());
                record_endpoint(&span, hold.endpoint());
                span.record("attempt", unsent + 1);
                (channel, hold)
            }
            Err(not) => return Err(not.into_error(request.uri().path(), began).boxed()),
        };
        match channel.send(request).await {
            Ok(response) => return Ok(wrap(response, Some(hold))),
            Err(SendError::Failed(e)) => {
                hold.on_error();
                return Err(e);
            }
            Err(SendError::Unsent {
                request: back,
                error,
            }) => {
                avoid = Some(hold.endpoint().clone());
                drop(hold);
                unsent += 1;
                if unsent > shared.config.max_unsent_retries {
                    tracing::debug!(%error, attempts = unsent, "request refused unsent on every attempt");
                    return Err(Error::NotSent {
                        path: back.uri().path().to_owned(),
                        attempts: unsent,
                    }
                    .boxed());
                }
                request = back;
            }
        }
    }
}

/// Why [`pick_or_wait`] found no endpoint.
#[derive(Debug)]
pub(crate) enum NotPicked {
    /// Nothing was ready until the deadline.
    Unready(Unready),
    /// Nothing was ready, and too many calls already waited.
    QueueFull { limit: usize, why: Unready },
}

impl NotPicked {
    /// The error of a call to `path` that began at `began`.
    pub(crate) fn into_error(self, path: &str, began: Instant) -> Error {
        match self {
            NotPicked::Unready(why) => Error::NoReadyEndpoint {
                path: path.to_owned(),
                waited: began.elapsed(),
                why,
            },
            NotPicked::QueueFull { limit, why } => Error::TooManyWaiting {
                path: path.to_owned(),
                limit,
                why,
            },
        }
    }
}

/// Picks an endpoint (counting the call on it), waiting for new snapshots while none is
/// ready, as one of at most `max_waiting_calls`; at `deadline`, why nothing was ready.
pub(crate) async fn pick_or_wait<T: Channel>(
    shared: &Shared<T>,
    hash: Option<u64>,
    avoid: Option<&EndpointState>,
    state: &mut PickState<SmallRng>,
    deadline: Instant,
) -> Result<(T, InFlight), NotPicked> {
    // Taken at the first wait, held until the call has an endpoint or gives up.
    let mut slot = None;
    loop {
        // Registered before the pick, so a snapshot published in between still wakes us.
        let mut changed = pin!(shared.changed.notified());
        changed.as_mut().enable();
        let why = {
            let set = shared.set.load();
            match crate::balancer::pick(&set, &shared.config, hash, avoid, state) {
                Some(picked) => return Ok(picked),
                // Every ready endpoint holds calls back (cap, open breaker): fail at once,
                // waiting would only queue more load on them.
                None => match refusing(&set.ready) {
                    Some(why) => return Err(NotPicked::Unready(why)),
                    None => set.why.clone(),
                },
            }
        };
        if Instant::now() >= deadline {
            return Err(NotPicked::Unready(why));
        }
        if slot.is_none() {
            let limit = shared.config.max_waiting_calls;
            match shared.waiting.enter(limit) {
                Some(s) => slot = Some(s),
                None => return Err(NotPicked::QueueFull { limit, why }),
            }
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Why no endpoint of a non-empty snapshot took the call, when every one of them is connected
/// but its gate is shut; `None` if a connection went away (a new snapshot is coming).
#[cold]
fn refusing<T: Channel>(ready: &[ReadyEndpoint<T>]) -> Option<Unready> {
    if ready.is_empty() || ready.iter().any(|e| !e.channel.is_ready()) {
        return None;
    }
    let shut = ready.iter().filter(|e| e.state.gate.is_shut()).count();
    let at_capacity = ready
        .iter()
        .filter(|e| !e.state.gate.is_shut() && e.state.gate.at_cap(e.state.load.in_flight()))
        .count();
    (at_capacity + shut >= ready.len()).then_some(Unready::AllRefusing {
        ready: ready.len(),
        at_capacity,
        shut,
    })
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86400 * 365)
}
