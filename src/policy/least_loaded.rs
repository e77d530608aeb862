//! Least loaded ("least connections"): a full scan for the fewest requests in flight per unit
//! of weight. O(n) per pick — exact, and fine for tens of endpoints; prefer p2c for thousands.
//! The scan starts at a random offset so ties spread evenly.

use rand::RngCore;

use super::candidate::{index, usable};
use crate::endpoint::{EndpointState, ReadyEndpoint};
use crate::transport::EndpointChannel;

#[inline]
pub(crate) fn pick<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    now: Option<u64>,
    avoid: Option<&EndpointState>,
    rng: &mut impl RngCore,
) -> Option<usize> {
    let n = endpoints.len();
    if n == 0 {
        return None;
    }
    let start = index(rng, n);
    least(endpoints, (0..n).map(|step| (start + step) % n), now, avoid)
}

/// Of the `candidates` (indices into `endpoints`), the usable one with the fewest requests in
/// flight (and calls given up unanswered, see `endpoint/load.rs`) per unit of weight; the first of them on a tie, so callers start at a random one.
/// Shared by least-loaded (every endpoint) and least request (k random ones).
#[inline]
pub(super) fn least<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    candidates: impl Iterator<Item = usize>,
    now: Option<u64>,
    avoid: Option<&EndpointState>,
) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for i in candidates {
        let e = &endpoints[i];
        if !usable(e, avoid) {
            continue;
        }
        let (load, weight) = (e.state.load.in_flight_load(now), u64::from(e.weight));
        // load / weight < best_load / best_weight, without division.
        if best.is_none_or(|(_, bl, bw)| load * bw < bl * weight) {
            best = Some((i, load, weight));
        }
    }
    best.map(|(i, _, _)| i)
}
