//! Power of two choices over a ready-set snapshot.

use rand::RngCore;

use super::{LoadMetric, index};
use crate::endpoint::EndpointState;
use crate::ready_set::ReadyEndpoint;
use crate::transport::Channel;

/// Picks an endpoint: two distinct random candidates, the cheaper one wins; a candidate whose
/// connection has just closed is passed over. `None` only when no endpoint is ready.
/// `now` is `now_ns()`, read by the caller (only PeakEWMA uses it). `avoid` is an endpoint that
/// just handed a request back unsent: it is passed over unless nothing else is ready.
#[inline]
pub(crate) fn pick<T: Channel>(
    endpoints: &[ReadyEndpoint<T>],
    metric: &LoadMetric,
    now: u64,
    avoid: Option<&EndpointState>,
    rng: &mut impl RngCore,
) -> Option<usize> {
    let n = endpoints.len();
    match n {
        0 => return None,
        1 => return endpoints[0].channel.is_ready().then_some(0),
        _ => {}
    }
    let a = index(rng, n);
    let mut b = index(rng, n - 1);
    if b >= a {
        b += 1;
    }
    let (ea, eb) = (&endpoints[a], &endpoints[b]);
    let a_first = match metric {
        LoadMetric::InFlight => {
            // Compare in-flight / weight without division: ia * wb <= ib * wa.
            u64::from(ea.state.load.in_flight()) * u64::from(eb.weight)
                <= u64::from(eb.state.load.in_flight()) * u64::from(ea.weight)
        }
        LoadMetric::PeakEwma(config) => {
            let decay = config.decay_ns();
            ea.state.load.peak_ewma_cost(now, decay) * f64::from(eb.weight)
                <= eb.state.load.peak_ewma_cost(now, decay) * f64::from(ea.weight)
        }
    };
    let (first, second) = if a_first { (a, b) } else { (b, a) };
    let usable = |i: usize| {
        endpoints[i].channel.is_ready()
            && !avoid.is_some_and(|x| std::ptr::eq(x, &*endpoints[i].state))
    };
    if usable(first) {
        return Some(first);
    }
    if usable(second) {
        return Some(second);
    }
    // Both candidates are out (a connection closed since this snapshot was published, or the
    // endpoint to avoid). Take any usable endpoint rather than fail, the avoided one last.
    let start = index(rng, n);
    let mut ring = (0..n).map(|i| (start + i) % n);
    ring.find(|&i| usable(i))
        .or_else(|| (0..n).find(|&i| endpoints[i].channel.is_ready()))
}
