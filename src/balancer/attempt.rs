//! One attempt of a call with a retry or hedging policy: send it, read ahead to the first
//! response frame, and judge the answer — committed, or worth another attempt (A6).

use std::pin::Pin;
use std::time::Duration;

use http::HeaderMap;
use tonic::Code;

use super::body::ResponseBody;
use super::deadline::Deadline;
use super::peeked::Peeked;
use crate::endpoint::InFlight;
use crate::error::BoxError;
use crate::method_config::StatusCodes;
use crate::ready_set::Shared;
use crate::transport::{EndpointChannel, SendError};

/// An attempt's response: its headers, and its body with the first frame read ahead.
pub(crate) type Answer<B> = http::Response<Pin<Box<Peeked<B>>>>;

/// An attempt that ended: its answer (or error), and its hold on the endpoint.
pub(crate) type Ended<B> = (Result<Answer<B>, BoxError>, InFlight);

/// What an attempt's send came to.
pub(crate) type Sent<T> = Result<
    Answer<<T as EndpointChannel>::ResponseBody>,
    SendError<<T as EndpointChannel>::RequestBody>,
>;

/// Sends `request` on `channel` and reads until the call could be committed: the
/// response headers, and unless they end the call (Trailers-Only), the first frame.
pub(crate) async fn send<T: EndpointChannel>(
    mut channel: T,
    request: http::Request<T::RequestBody>,
) -> Sent<T> {
    let response = channel.send(request).await?;
    let (parts, body) = response.into_parts();
    let mut body = Peeked::new(body);
    if grpc_code(&parts.headers).is_none() {
        std::future::poll_fn(|cx| body.as_mut().poll_first(cx).map(|_| ())).await;
    }
    Ok(http::Response::from_parts(parts, body))
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Hand the answer to the caller.
    Commit,
    /// The attempt failed with one of the policy's codes: another may follow.
    Again { code: Code, pushback: Pushback },
}

/// The server's `grpc-retry-pushback-ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pushback {
    /// Not sent: the policy's own delay applies.
    Absent,
    /// Try again after this long.
    After(Duration),
    /// Negative or unreadable: no further attempt.
    Stop,
}

/// Records the answer on the attempt's hold (latency, outcome) and judges it against `codes`.
/// A transport failure before the response counts as `UNAVAILABLE`, as tonic reports it.
pub(crate) fn judge<B>(
    answer: &Result<Answer<B>, BoxError>,
    hold: &mut InFlight,
    codes: StatusCodes,
) -> Verdict {
    let response = match answer {
        Ok(response) => response,
        Err(_) => {
            hold.on_error();
            return again(Code::Unavailable, None, codes);
        }
    };
    hold.on_headers(response.status(), response.headers());
    if let Some(code) = grpc_code(response.headers()) {
        return again(code, Some(response.headers()), codes);
    }
    match response.body().first() {
        Some(Ok(frame)) => match frame.trailers_ref() {
            Some(trailers) => {
                hold.on_trailers(trailers);
                match grpc_code(trailers) {
                    Some(code) => again(code, Some(trailers), codes),
                    None => Verdict::Commit,
                }
            }
            // A message: the caller gets it, the call is committed.
            None => Verdict::Commit,
        },
        // The body failed before its first frame.
        Some(Err(_)) => {
            hold.on_error();
            again(Code::Unavailable, None, codes)
        }
        None => Verdict::Commit,
    }
}

fn again(code: Code, headers: Option<&HeaderMap>, codes: StatusCodes) -> Verdict {
    if !codes.contains(code) {
        return Verdict::Commit;
    }
    let pushback = match headers.and_then(|h| h.get("grpc-retry-pushback-ms")) {
        None => Pushback::Absent,
        Some(value) => match value.to_str().ok().and_then(|s| s.parse::<u64>().ok()) {
            Some(ms) => Pushback::After(Duration::from_millis(ms)),
            None => Pushback::Stop,
        },
    };
    Verdict::Again { code, pushback }
}

/// The `grpc-status` of a header map, if it has one.
fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    Some(Code::from_bytes(value.as_bytes()))
}

/// Hands an answer to the caller: the response, whose body holds the attempt's load until it
/// ends, or the attempt's error (the deadline's, for an answer that is the server keeping it:
/// [`Deadline::kept_by_server`]).
pub(crate) fn commit<B>(
    answer: Result<Answer<B>, BoxError>,
    mut hold: InFlight,
    deadline: Option<Deadline>,
) -> Result<http::Response<ResponseBody<B>>, BoxError>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = answer?.into_parts();
    if let Some(d) = &deadline
        && d.kept_by_server(&hold)
    {
        return Err(d.expire(&mut hold));
    }
    Ok(http::Response::from_parts(
        parts,
        ResponseBody::peeked(body, Some(hold), deadline),
    ))
}

/// Whether a further attempt may be made: retry throttling (when set) and the retry budget
/// both allow it. A refusal is counted.
pub(crate) fn may_try_again<T>(shared: &Shared<T>) -> bool {
    let allowed = shared.throttle.as_ref().is_none_or(|t| t.allows()) && shared.budget.withdraw();
    if !allowed {
        let throttled = &shared.attempts.throttled;
        throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    allowed
}

/// Feeds retry throttling: an attempt failed with a retryable or non-fatal code.
pub(crate) fn failed<T>(shared: &Shared<T>) {
    if let Some(t) = &shared.throttle {
        t.failed();
    }
}

/// Feeds retry throttling: a call committed with an answer that is not such a failure.
pub(crate) fn succeeded<T>(shared: &Shared<T>, verdict: Verdict) {
    if let (Some(t), Verdict::Commit) = (&shared.throttle, verdict) {
        t.succeeded();
    }
}
