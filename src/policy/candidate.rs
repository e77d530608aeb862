//! What every policy asks of the endpoint it chose, and where it goes when the answer is no.

use rand::RngCore;

use crate::endpoint::{EndpointState, ReadyEndpoint};
use crate::transport::EndpointChannel;

/// Whether a picked endpoint can take the call: connected, admitted by its gate (breaker,
/// ejection, concurrency cap), and not the one to avoid.
#[inline]
pub(super) fn usable<T: EndpointChannel>(
    e: &ReadyEndpoint<T>,
    avoid: Option<&EndpointState>,
) -> bool {
    open(e) && !avoid.is_some_and(|x| std::ptr::eq(x, &*e.state))
}

/// Connected and admitted by its gate.
#[inline]
pub(super) fn open<T: EndpointChannel>(e: &ReadyEndpoint<T>) -> bool {
    e.channel.is_ready() && e.state.admits()
}

/// The chosen endpoint is out (its connection closed since this snapshot was published, its
/// gate is shut, or it is the one to avoid): take the next usable one after it, the avoided
/// one last.
#[cold]
pub(super) fn fallback<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    avoid: Option<&EndpointState>,
    from: usize,
) -> Option<usize> {
    let n = endpoints.len();
    let mut ring = (1..=n).map(|step| (from + step) % n);
    ring.find(|&i| usable(&endpoints[i], avoid))
        .or_else(|| (0..n).find(|&i| open(&endpoints[i])))
}

/// A uniform index below `n` (Lemire's multiply-shift; bias below 2^-32 for any real `n`).
#[inline]
pub(crate) fn index(rng: &mut impl RngCore, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}
