//! Configured retries (A6 `retryPolicy`): one attempt at a time; an attempt that fails with a
//! retryable code before the call is committed is sent again, after a randomised exponential
//! backoff (or the server's pushback), to an endpoint picked afresh that passes over the one
//! that failed — while the policy's attempts, retry throttling, the retry budget and the
//! call's deadline all allow. When they do not, the last answer is the call's.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rand::Rng;

use super::attempt::{self, Pushback, Verdict};
use super::attempts::Attempts;
use super::deadline::Deadline;
use super::future::{CallResult, not_sent, record_endpoint, stopped_error};
use super::replay::Replay;
use crate::error::CallStage;
use crate::method_config::RetryPolicy;
use crate::transport::{EndpointChannel, SendError};

/// A call with a retry policy, its request buffered in `replay`.
pub(crate) async fn retried_call<T: EndpointChannel>(
    mut attempts: Attempts<T>,
    replay: Replay,
    policy: RetryPolicy,
    mut deadline: Option<Deadline>,
    span: tracing::Span,
) -> CallResult<T> {
    let path = replay.head().uri().path().to_owned();
    // Attempts sent (those handed back unsent are the unsent-retry loop's).
    let mut sent = 0u32;
    loop {
        let (channel, mut hold) = match attempts.next().await {
            Ok(picked) => picked,
            Err(stopped) => return Err(stopped_error(stopped, &deadline, &path)),
        };
        if let Some(d) = &deadline {
            hold.note_deadline(d.timeout());
        }
        record_endpoint(&span, hold.endpoint());
        span.record("attempt", sent + 1);
        let request = replay.request(sent);
        let result = match deadline.as_mut() {
            None => attempt::send(channel, request).await,
            Some(d) => tokio::select! {
                biased;
                sent = attempt::send(channel, request) => sent,
                () = d.expired() => return Err(d.expire(&mut hold)),
            },
        };
        let answer = match result {
            Ok(response) => Ok(response),
            Err(SendError::Failed(e)) => Err(e),
            Err(SendError::Unsent { error, .. }) => {
                tracing::debug!(%error, "request handed back unsent; picking again");
                if let Err(n) = attempts.refused(hold) {
                    return Err(not_sent(&path, n));
                }
                continue;
            }
        };
        sent += 1;
        let verdict = attempt::judge(&answer, &mut hold, policy.retryable());
        let shared = attempts.shared();
        let delay = match verdict {
            Verdict::Commit => None,
            Verdict::Again { code, pushback } => {
                attempt::failed(shared);
                let delay = match pushback {
                    Pushback::Absent => Some(jitter(attempts.rng(), policy.backoff_bound(sent))),
                    Pushback::After(d) => Some(d),
                    Pushback::Stop => None,
                };
                let shared = attempts.shared();
                let more = delay.is_some()
                    && sent < policy.max_attempts()
                    && attempt::may_try_again(shared);
                tracing::debug!(
                    attempt = sent,
                    ?code,
                    ?delay,
                    retry = more,
                    "attempt failed"
                );
                delay.filter(|_| more)
            }
        };
        let Some(delay) = delay else {
            attempt::succeeded(attempts.shared(), verdict);
            return attempt::commit(answer, hold, deadline);
        };
        attempts.shared().attempts.retries.fetch_add(1, Relaxed);
        attempts.pass_over(hold.endpoint());
        let last = hold.endpoint().addr;
        drop((answer, hold));
        match deadline.as_mut() {
            None => tokio::time::sleep(delay).await,
            Some(d) => tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = d.expired() => return Err(d.exceeded_boxed(CallStage::Headers(last))),
            },
        }
    }
}

/// A6's backoff: uniformly random between 0 and `bound`.
fn jitter(rng: &mut impl Rng, bound: Duration) -> Duration {
    bound.mul_f64(rng.random::<f64>())
}
