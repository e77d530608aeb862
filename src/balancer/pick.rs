//! The pick: snapshot → policy → gate → in-flight hold, and the wait for a ready endpoint when
//! the snapshot has none to give.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rand::RngCore;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use crate::endpoint::{EndpointState, Entry, InFlight, ReadyEndpoint};
use crate::error::{Error, Unready};
use crate::policy::{Call, PickState, Policy};
use crate::ready_set::{ReadySet, Shared};
use crate::time::now_ns;
use crate::transport::EndpointChannel;

/// Picks an endpoint from the snapshot and counts the call on it: its channel, and the call's
/// hold on the endpoint (released when the response body ends). `None` when no endpoint could
/// take the call right now.
#[inline]
pub(crate) fn pick<T: EndpointChannel>(
    set: &ReadySet<T>,
    policy: &Policy,
    call: Call<'_>,
    state: &mut PickState<impl RngCore>,
) -> Option<(T, InFlight)> {
    let endpoint = set.pick(policy, call, state)?;
    // `None`: another caller took the trial of its half-open circuit since the pick (the
    // slow path picks again).
    let entry = endpoint.state.gate.enter()?;
    if entry == Entry::Trial {
        tracing::info!(endpoint = %endpoint.state.key, "circuit breaker half-open: one trial call");
    }
    Some((
        endpoint.channel.clone(),
        InFlight::start(endpoint.state.clone(), call.clock, entry),
    ))
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
    pub(crate) fn into_error(self, path: String, began: Instant) -> Error {
        match self {
            NotPicked::Unready(why) => Error::NoReadyEndpoint {
                path,
                waited: began.elapsed(),
                why,
            },
            NotPicked::QueueFull { limit, why } => Error::TooManyWaiting { path, limit, why },
        }
    }
}

/// Picks an endpoint (counting the call on it), waiting for new snapshots while none is
/// ready, as one of at most `max_waiting_calls`; at `deadline`, why nothing was ready.
pub(crate) async fn pick_or_wait<T: EndpointChannel>(
    shared: &Shared<T>,
    hash: Option<u64>,
    avoid: Option<&EndpointState>,
    state: &mut PickState<SmallRng>,
    deadline: Instant,
) -> Result<(T, InFlight), NotPicked> {
    let policy = &shared.config.policy;
    // Taken at the first wait, held until the call has an endpoint or gives up.
    let mut slot = None;
    loop {
        // Registered before the pick, so a snapshot published in between still wakes us.
        let mut changed = pin!(shared.changed.notified());
        changed.as_mut().enable();
        let why = {
            let set = shared.set.load();
            match pick(&set, policy, Call::new(policy, hash, avoid), state) {
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
fn refusing<T: EndpointChannel>(ready: &[ReadyEndpoint<T>]) -> Option<Unready> {
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

/// A distinct RNG seed per clone without a system call: a global counter through SplitMix64.
pub(crate) fn fresh_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut z = COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed) ^ now_ns();
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
