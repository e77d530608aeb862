//! Power of two choices over a ready-set snapshot.

use rand::RngCore;

use super::candidate::{fallback, index, usable};
use crate::endpoint::{EndpointState, EwmaClock, PeakEwma, ReadyEndpoint};
use crate::transport::EndpointChannel;

/// The load measure of p2c.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LoadMetric {
    InFlight,
    PeakEwma(PeakEwma),
}

/// Picks an endpoint: two distinct random candidates, the cheaper one wins; a candidate whose
/// connection has just closed is passed over. `None` only when no endpoint is ready.
/// `clock` is read by the caller when the policy compares latency (only PeakEWMA uses it). `avoid` is an endpoint that
/// just handed a request back unsent: it is passed over unless nothing else is ready.
#[inline]
pub(crate) fn pick<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    metric: &LoadMetric,
    clock: Option<EwmaClock>,
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
            let now = clock.map(|c| c.now_ns());
            ea.state.load.in_flight_load(now) * u64::from(eb.weight)
                <= eb.state.load.in_flight_load(now) * u64::from(ea.weight)
        }
        LoadMetric::PeakEwma(config) => {
            let clock = clock.unwrap_or_else(|| EwmaClock::now(config));
            let (now, decay) = (clock.now_ns(), clock.decay_ns);
            let (la, lb) = (
                ea.state.load.peak_ewma(now, decay),
                eb.state.load.peak_ewma(now, decay),
            );
            let ca = la.cost(&lb) * f64::from(eb.weight);
            let cb = lb.cost(&la) * f64::from(ea.weight);
            la.before(ca, &lb, cb)
        }
    };
    let (first, second) = if a_first { (a, b) } else { (b, a) };
    if usable(&endpoints[first], avoid) {
        return Some(first);
    }
    if usable(&endpoints[second], avoid) {
        return Some(second);
    }
    // Both candidates are out: go on from the (random) second one.
    fallback(endpoints, avoid, second)
}
