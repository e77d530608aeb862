//! The response future of one balanced call.
//!
//! The common case is one state: the endpoint's own call future, with the call's in-flight
//! hold beside it; no allocation of ours. Two rare cases move to a boxed slow path: no endpoint
//! was ready at dispatch (wait for the next snapshot, up to the ready timeout), or the
//! connection handed the request back unsent (pick again, a bounded number of times).
//!
//! A call with a deadline carries it (see `deadline.rs`) through both paths and into the
//! response body: at the deadline the call ends with `DEADLINE_EXCEEDED` wherever it is.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::time::Instant;

use super::attempts::{Attempts, Stopped};
use super::body::ResponseBody;
use super::deadline::Deadline;
use super::pick::{NotPicked, fresh_seed};
use crate::endpoint::{EndpointState, InFlight};
use crate::error::{BoxError, CallStage, Error};
use crate::ready_set::Shared;
use crate::transport::{EndpointChannel, SendError};

/// What a balanced call resolves to.
pub type CallResult<T> =
    Result<http::Response<ResponseBody<<T as EndpointChannel>::ResponseBody>>, BoxError>;

/// A balancer clone's own handle on the shared state: an `Arc` per clone around the shared
/// `Arc`, so concurrent callers never contend on one reference count.
#[allow(clippy::redundant_allocation)]
pub(crate) type Handle<T> = Arc<Arc<Shared<T>>>;

pub(crate) type SlowFuture<T> = Pin<Box<dyn Future<Output = CallResult<T>> + Send>>;

pin_project_lite::pin_project! {
    /// The future returned by [`Balancer::call`](crate::Balancer).
    pub struct ResponseFuture<T: EndpointChannel> {
        #[pin]
        state: State<T>,
        // The call's span, entered on every poll; `Span::none()` (no allocation, nothing
        // recorded) unless a subscriber wants it.
        span: tracing::Span,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<T: EndpointChannel> {
        Sending {
            #[pin]
            future: T::Future,
            in_flight: Option<InFlight>,
            // The balancer clone's own handle (see `Balancer::shared`).
            shared: Option<Handle<T>>,
            deadline: Option<Deadline>,
        },
        Slow { future: SlowFuture<T> },
    }
}

impl<T: EndpointChannel> ResponseFuture<T> {
    #[inline]
    pub(crate) fn sending(
        future: T::Future,
        in_flight: InFlight,
        shared: Handle<T>,
        deadline: Option<Deadline>,
        span: tracing::Span,
    ) -> Self {
        ResponseFuture {
            state: State::Sending {
                future,
                in_flight: Some(in_flight),
                shared: Some(shared),
                deadline,
            },
            span,
        }
    }

    /// No endpoint was ready at dispatch: wait for one (until the deadline, for a
    /// wait-for-ready call).
    pub(crate) fn waiting(
        shared: Arc<Shared<T>>,
        request: http::Request<T::RequestBody>,
        seed: u64,
        deadline: Option<Deadline>,
        wait_for_ready: bool,
        span: tracing::Span,
    ) -> Self {
        let future = Box::pin(slow_call(
            shared,
            request,
            None,
            seed,
            deadline,
            wait_for_ready,
            span.clone(),
        ));
        ResponseFuture {
            state: State::Slow { future },
            span,
        }
    }
}

impl<T: EndpointChannel> ResponseFuture<T> {
    /// A call whose every step is `future` (a call with a retry or hedging policy).
    pub(crate) fn boxed(future: SlowFuture<T>, span: tracing::Span) -> Self {
        ResponseFuture {
            state: State::Slow { future },
            span,
        }
    }

    /// A call that fails before it is sent (a deadline already passed).
    #[cold]
    pub(crate) fn failed(error: BoxError, span: tracing::Span) -> Self {
        ResponseFuture {
            state: State::Slow {
                future: Box::pin(std::future::ready(Err(error))),
            },
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
pub(crate) fn record_endpoint(span: &tracing::Span, endpoint: &EndpointState) {
    if !span.is_disabled() {
        span.record("endpoint", tracing::field::display(&endpoint.addr));
    }
}

impl<T: EndpointChannel> Future for ResponseFuture<T> {
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
                    deadline,
                } => {
                    let result = match future.poll(cx) {
                        Poll::Ready(result) => result,
                        Poll::Pending => {
                            ready!(poll_deadline(deadline, cx));
                            // The deadline passed first: release the endpoint; dropping this
                            // future with the endpoint's resets the stream. (Both are `Some`
                            // here: the deadline fired, and the hold lives until the future
                            // completes.)
                            if let (Some(d), Some(mut hold)) = (deadline.as_ref(), in_flight.take())
                            {
                                return Poll::Ready(Err(d.expire(&mut hold)));
                            }
                            return Poll::Pending;
                        }
                    };
                    let mut hold = in_flight.take();
                    match result {
                        Ok(response) => {
                            return Poll::Ready(wrap(response, hold, deadline.take()));
                        }
                        Err(SendError::Failed(e)) => {
                            if let Some(h) = hold.as_mut() {
                                h.on_error();
                            }
                            return Poll::Ready(Err(e));
                        }
                        Err(SendError::Unsent { request, error }) => {
                            // Not an outcome of the endpoint: the call never left.
                            tracing::debug!(%error, "request handed back unsent; picking again");
                            let Some(handle) = shared.take() else {
                                return Poll::Ready(Err(error));
                            };
                            let shared = Arc::clone(&*handle);
                            let span = this.span.clone();
                            let deadline = deadline.take();
                            let future = Box::pin(slow_call(
                                shared,
                                request,
                                hold,
                                fresh_seed(),
                                deadline,
                                false,
                                span,
                            ));
                            state.set(State::Slow { future });
                        }
                    }
                }
                StateProj::Slow { future } => return future.as_mut().poll(cx),
            }
        }
    }
}

/// Ready once the call's deadline (if it has one) has passed.
#[inline]
fn poll_deadline(deadline: &mut Option<Deadline>, cx: &mut Context<'_>) -> Poll<()> {
    match deadline.as_mut().map(|d| d.poll_expired(cx)) {
        Some(true) => Poll::Ready(()),
        _ => Poll::Pending,
    }
}

/// The response, its body holding the call's place and deadline; or the deadline's error, if
/// the answer is the server keeping the deadline ([`Deadline::kept_by_server`]).
#[inline]
fn wrap<B>(
    response: http::Response<B>,
    mut hold: Option<InFlight>,
    deadline: Option<Deadline>,
) -> Result<http::Response<ResponseBody<B>>, BoxError> {
    let (parts, body) = response.into_parts();
    if let Some(hold) = hold.as_mut() {
        hold.on_headers(parts.status, &parts.headers);
        if let Some(d) = &deadline
            && d.kept_by_server(hold)
        {
            return Err(d.expire(hold));
        }
    }
    Ok(http::Response::from_parts(
        parts,
        ResponseBody::new(body, hold, deadline),
    ))
}

/// The slow path: wait for a ready endpoint until the ready timeout (or the call's deadline,
/// if sooner), and re-pick after a request comes back unsent, as far as the retry budget
/// allows. `refused`: the hold of a first attempt whose request came back unsent.
async fn slow_call<T: EndpointChannel>(
    shared: Arc<Shared<T>>,
    mut request: http::Request<T::RequestBody>,
    refused: Option<InFlight>,
    seed: u64,
    mut deadline: Option<Deadline>,
    wait_for_ready: bool,
    span: tracing::Span,
) -> CallResult<T> {
    let until = deadline.as_ref().map(Deadline::instant);
    let mut attempts = Attempts::of_request(shared, &request, seed, wait_for_ready, until);
    if let Some(hold) = refused
        && let Err(n) = attempts.refused(hold)
    {
        return Err(not_sent(request.uri().path(), n));
    }
    loop {
        let (mut channel, mut hold) = match attempts.next().await {
            Ok(picked) => picked,
            Err(stopped) => return Err(stopped_error(stopped, &deadline, request.uri().path())),
        };
        if let Some(d) = &deadline {
            hold.note_deadline(d.timeout());
        }
        record_endpoint(&span, hold.endpoint());
        span.record("attempt", attempts.attempt());
        let sent = match deadline.as_mut() {
            None => channel.send(request).await,
            Some(d) => {
                let answered = tokio::select! {
                    biased;
                    sent = channel.send(request) => Some(sent),
                    () = d.expired() => None,
                };
                match answered {
                    Some(sent) => sent,
                    None => return Err(d.expire(&mut hold)),
                }
            }
        };
        match sent {
            Ok(response) => return wrap(response, Some(hold), deadline),
            Err(SendError::Failed(e)) => {
                hold.on_error();
                return Err(e);
            }
            Err(SendError::Unsent {
                request: back,
                error,
            }) => {
                if let Err(n) = attempts.refused(hold) {
                    tracing::debug!(%error, attempts = n, "request refused unsent on every attempt");
                    return Err(not_sent(back.uri().path(), n));
                }
                request = back;
            }
        }
    }
}

/// The error of a call that stopped looking for an endpoint: `DEADLINE_EXCEEDED` when its own
/// deadline ended the wait, else what the attempts say.
#[cold]
pub(crate) fn stopped_error(stopped: Stopped, deadline: &Option<Deadline>, path: &str) -> BoxError {
    match (stopped, deadline) {
        (
            Stopped::NotPicked {
                why: NotPicked::Unready(why),
                ..
            },
            Some(d),
        ) if Instant::now() >= d.instant() => d.exceeded_boxed(CallStage::Endpoint(why)),
        (stopped, _) => stopped.into_error(path.to_owned()).boxed(),
    }
}

pub(crate) fn not_sent(path: &str, attempts: u32) -> BoxError {
    Error::NotSent {
        path: path.to_owned(),
        attempts,
    }
    .boxed()
}
