//! The entry of a call whose method has a retry or hedging policy: buffer the request for
//! replay, then hand the call to the retry or the hedging loop, boxed. A request that cannot
//! be replayed goes back to the ordinary path. And the entry of a call whose method limits
//! its message sizes, which takes the boxed path too.

use std::sync::Arc;

use super::attempts::Attempts;
use super::deadline::Deadline;
use super::future::{ResponseFuture, call_span};
use super::hedge::hedged_call;
use super::message_size::check_request;
use super::replay::{Buffered, buffer};
use super::retry::retried_call;
use crate::method_config::{AttemptPolicy, MethodConfig};
use crate::ready_set::Shared;
use crate::transport::EndpointChannel;

/// The call's future, or the request back (with its deadline) when it cannot be replayed.
// The request travels back by value, as in `SendError`: boxing it would allocate for every
// call that is sent once.
#[allow(clippy::result_large_err, clippy::type_complexity)]
pub(crate) fn configured_call<T: EndpointChannel>(
    shared: &Arc<Shared<T>>,
    policy: AttemptPolicy,
    request: http::Request<T::RequestBody>,
    seed: u64,
    deadline: Option<Deadline>,
    wait_for_ready: bool,
) -> Result<ResponseFuture<T>, (http::Request<T::RequestBody>, Option<Deadline>)> {
    let replay = match buffer(request, shared.config.retry_buffer_limit) {
        Buffered::Replayable(replay) => replay,
        Buffered::Once(request) => {
            tracing::debug!(
                "request body not replayable (incomplete at dispatch, or too large): sent once"
            );
            return Err((request, deadline));
        }
    };
    let span = call_span(shared.config.policy.name(), None);
    let until = deadline.as_ref().map(Deadline::instant);
    let attempts = Attempts::of_request(shared.clone(), replay.head(), seed, wait_for_ready, until);
    let future = match policy {
        AttemptPolicy::Retry(policy) => Box::pin(retried_call(
            attempts,
            replay,
            policy,
            deadline,
            span.clone(),
        )) as _,
        AttemptPolicy::Hedge(policy) => Box::pin(hedged_call(
            attempts,
            replay,
            policy,
            deadline,
            span.clone(),
        )) as _,
    };
    Ok(ResponseFuture::boxed(future, span))
}

/// A call whose method limits its message sizes: the request is checked before it is sent
/// (when complete at dispatch), then the call goes on as its policy says — retried, hedged, or
/// sent once through the boxed path — and its response's messages are checked as they are
/// read.
#[cold]
#[inline(never)]
pub(crate) fn limited_call<T: EndpointChannel>(
    shared: &Arc<Shared<T>>,
    method: &MethodConfig,
    request: http::Request<T::RequestBody>,
    seed: u64,
    deadline: Option<Deadline>,
) -> ResponseFuture<T> {
    let wait_for_ready = method.waits_for_ready();
    let request = match method.get_max_request_message_bytes() {
        None => request,
        Some(limit) => match check_request(request, limit) {
            Ok(request) => request,
            Err(error) => return ResponseFuture::failed(error, tracing::Span::none()),
        },
    };
    let sent = match method.policy {
        Some(policy) => configured_call(shared, policy, request, seed, deadline, wait_for_ready),
        None => Err((request, deadline)),
    };
    let future = sent.unwrap_or_else(|(request, deadline)| {
        let span = call_span(shared.config.policy.name(), None);
        ResponseFuture::waiting(
            shared.clone(),
            request,
            seed,
            deadline,
            wait_for_ready,
            span,
        )
    });
    match method.get_max_response_message_bytes() {
        None => future,
        Some(limit) => ResponseFuture::boxed(
            Box::pin(async move {
                let response = future.await?;
                Ok(response.map(|body| body.limited(limit)))
            }),
            tracing::Span::none(),
        ),
    }
}
