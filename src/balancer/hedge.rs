//! Hedged calls (A6 `hedgingPolicy`): the first attempt goes out at once, another after each
//! hedging delay without an answer — each to an endpoint picked afresh that passes over the
//! last one tried — up to the policy's attempts, while retry throttling and the retry budget
//! allow. The first answer that is not a non-fatal failure is the call's; the other attempts
//! are dropped, which resets their streams (`RST_STREAM` `CANCEL`), so their servers see the
//! cancellation. A non-fatal failure sends the next attempt at once (or after the server's
//! pushback). Each attempt holds its own in-flight hold: it is load where it runs.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::attempt::{self, Pushback, Verdict};
use super::attempts::Attempts;
use super::deadline::Deadline;
use super::future::{CallResult, record_endpoint, stopped_error};
use super::replay::Replay;
use crate::endpoint::InFlight;
use crate::error::CallStage;
use crate::method_config::HedgingPolicy;
use crate::transport::{EndpointChannel, SendError};

/// A call with a hedging policy, its request buffered in `replay`.
pub(crate) async fn hedged_call<T: EndpointChannel>(
    mut attempts: Attempts<T>,
    replay: Replay,
    policy: HedgingPolicy,
    mut deadline: Option<Deadline>,
    span: tracing::Span,
) -> CallResult<T> {
    let path = replay.head().uri().path().to_owned();
    let first = match attempts.next().await {
        Ok(picked) => picked,
        Err(stopped) => return Err(stopped_error(stopped, &deadline, &path)),
    };
    // Each attempt's hold, by its number; taken when the attempt ends.
    let mut holds: Vec<Option<InFlight>> = Vec::with_capacity(policy.max_attempts() as usize);
    let mut running = FuturesUnordered::new();
    let timeout = deadline.as_ref().map(Deadline::timeout);
    let launch = |(channel, mut hold): (T, InFlight), holds: &mut Vec<Option<InFlight>>| {
        if let Some(timeout) = timeout {
            hold.note_deadline(timeout);
        }
        record_endpoint(&span, hold.endpoint());
        let n = holds.len();
        span.record("attempt", n + 1);
        let request = replay.request(n as u32);
        holds.push(Some(hold));
        numbered(n, attempt::send(channel, request))
    };
    attempts.pass_over(&first.1.endpoint().clone());
    running.push(launch(first, &mut holds));
    let mut next_at = Instant::now() + policy.hedging_delay();
    // No further attempt: pushback said stop, or throttling or the budget refused.
    let mut stopped = false;
    let mut last: Option<attempt::Ended<T::ResponseBody>> = None;
    loop {
        let more = !stopped && holds.len() < policy.max_attempts() as usize;
        if running.is_empty() && !more {
            break;
        }
        tokio::select! {
            biased;
            () = expired(&mut deadline) => {
                for hold in holds.iter_mut().flatten() {
                    hold.on_timeout();
                }
                let d = deadline.as_ref().expect("only a deadline expires");
                return Err(d.exceeded_boxed(CallStage::Headers(last_endpoint_addr(&holds, &last))));
            }
            Some((n, result)) = running.next() => {
                let mut hold = holds[n].take().expect("each attempt ends once");
                let answer = match result {
                    Ok(response) => Ok(response),
                    Err(SendError::Failed(e)) => Err(e),
                    Err(SendError::Unsent { error, .. }) => {
                        // It never left: the next attempt goes at once, elsewhere.
                        tracing::debug!(%error, "hedged attempt handed back unsent");
                        attempts.pass_over(hold.endpoint());
                        next_at = Instant::now();
                        continue;
                    }
                };
                let verdict = attempt::judge(&answer, &mut hold, policy.non_fatal());
                let Verdict::Again { code, pushback } = verdict else {
                    attempt::succeeded(attempts.shared(), verdict);
                    // Dropping the other attempts cancels them.
                    drop(running);
                    return attempt::commit(answer, hold, deadline);
                };
                attempt::failed(attempts.shared());
                tracing::debug!(attempt = n + 1, ?code, "hedged attempt failed (non-fatal)");
                match pushback {
                    Pushback::Absent => next_at = Instant::now(),
                    Pushback::After(d) => next_at = Instant::now() + d,
                    Pushback::Stop => stopped = true,
                }
                last = Some((answer, hold));
            }
            () = tokio::time::sleep_until(next_at), if more => {
                next_at = Instant::now() + policy.hedging_delay();
                if !attempt::may_try_again(attempts.shared()) {
                    stopped = true;
                    continue;
                }
                // From the current snapshot: the attempts under way must not wait on a pick.
                if let Some(picked) = attempts.pick_now() {
                    attempts.pass_over(picked.1.endpoint());
                    attempts.shared().attempts.hedges.fetch_add(1, Relaxed);
                    running.push(launch(picked, &mut holds));
                }
            }
        }
    }
    match last {
        Some((answer, hold)) => attempt::commit(answer, hold, deadline),
        // Every attempt was handed back unsent.
        None => Err(super::future::not_sent(&path, holds.len() as u32)),
    }
}

/// An attempt's future, with its number.
async fn numbered<F: Future>(n: usize, future: F) -> (usize, F::Output) {
    (n, future.await)
}

/// Ready when the call's deadline passes; never without one.
async fn expired(deadline: &mut Option<Deadline>) {
    match deadline {
        Some(d) => d.expired().await,
        None => std::future::pending().await,
    }
}

/// The endpoint of an attempt still under way, or of the last that failed, for the error.
fn last_endpoint_addr<B>(
    holds: &[Option<InFlight>],
    last: &Option<attempt::Ended<B>>,
) -> std::net::SocketAddr {
    holds
        .iter()
        .rev()
        .flatten()
        .chain(last.as_ref().map(|(_, hold)| hold))
        .map(|hold| hold.endpoint().addr)
        .next()
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
}
