//! Pick first: every call goes to one endpoint — the first usable one in a stable order — and
//! stays there while it is usable; when it goes, calls move to the next in the order.
//!
//! The order is computed with each snapshot: endpoints in key order, or, shuffled, by
//! `xxh64(key, salt)` with a salt drawn per balancer, so different clients of one
//! configuration start on different endpoints while each one's order stays put across
//! snapshots. The endpoint calls went to in the previous snapshot goes first while it is still
//! ready ("sticky"), so an endpoint that comes back does not pull the calls back to itself.
//! A pick reads the order until it finds a usable endpoint: one read while the current one is
//! usable, no allocation.

use xxhash_rust::xxh64::xxh64;

use super::candidate::{open, usable};
use crate::discover::Key;
use crate::endpoint::{EndpointState, ReadyEndpoint};
use crate::transport::EndpointChannel;

/// One snapshot's order of preference, as indices into the ready set.
#[derive(Debug)]
pub(crate) struct Order {
    order: Box<[u32]>,
}

impl Order {
    /// The order for `ready`: by key, or by `xxh64(key, salt)` when shuffled; `stay_on` (the
    /// endpoint the previous snapshot sent calls to) first if it is ready.
    pub(crate) fn build<T>(
        ready: &[ReadyEndpoint<T>],
        salt: Option<u64>,
        stay_on: Option<&Key>,
    ) -> Order {
        let mut order: Vec<u32> = (0..ready.len() as u32).collect();
        if let Some(salt) = salt {
            // Ties (a 64-bit collision) fall back to key order: stable either way.
            order.sort_by_cached_key(|&i| {
                (
                    xxh64(ready[i as usize].state.key.as_str().as_bytes(), salt),
                    i,
                )
            });
        }
        if let Some(key) = stay_on
            && let Some(at) = order
                .iter()
                .position(|&i| ready[i as usize].state.key == *key)
        {
            order[..=at].rotate_right(1);
        }
        Order {
            order: order.into_boxed_slice(),
        }
    }

    /// The key of the endpoint calls go to first, for the next snapshot's `stay_on`.
    pub(crate) fn first<'a, T>(&self, ready: &'a [ReadyEndpoint<T>]) -> Option<&'a Key> {
        let &i = self.order.first()?;
        ready.get(i as usize).map(|e| &e.state.key)
    }

    #[cfg(test)]
    pub(crate) fn indices(&self) -> &[u32] {
        &self.order
    }
}

/// The first usable endpoint in the order; the avoided one only when nothing else is open.
#[inline]
pub(crate) fn pick<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    order: &Order,
    avoid: Option<&EndpointState>,
) -> Option<usize> {
    let mut walk = order.order.iter().map(|&i| i as usize);
    if let Some(i) = walk.next()
        && endpoints.get(i).is_some_and(|e| usable(e, avoid))
    {
        return Some(i);
    }
    next(endpoints, order, avoid)
}

/// The first one is out: the next usable one in the order, else any open one in the order.
#[cold]
fn next<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    order: &Order,
    avoid: Option<&EndpointState>,
) -> Option<usize> {
    let walk = || order.order.iter().map(|&i| i as usize);
    walk()
        .find(|&i| endpoints.get(i).is_some_and(|e| usable(e, avoid)))
        .or_else(|| walk().find(|&i| endpoints.get(i).is_some_and(open)))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::endpoint::Passive;
    use crate::policy::Policy;
    use crate::transport::NoRequests;
    use crate::{Picker, discover::Key};

    fn ready(n: usize) -> Vec<ReadyEndpoint<NoRequests<()>>> {
        let defaults = Policy::pick_first().endpoint_defaults(None, Arc::new(Passive::inert()));
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        (0..n)
            .map(|i| ReadyEndpoint {
                channel: NoRequests(()),
                state: Arc::new(EndpointState::new(
                    Key::from(format!("k{i}")),
                    addr,
                    &defaults,
                )),
                weight: 1,
            })
            .collect()
    }

    #[test]
    fn every_pick_goes_to_the_first_in_key_order() {
        let keys = ["c", "a", "b"].map(|k| (Key::from(k), 1));
        let mut picker = Picker::new(Policy::pick_first(), keys, 1).unwrap();
        for _ in 0..100 {
            assert_eq!(picker.pick(None, Duration::ZERO), Some(0));
        }
        assert_eq!(picker.key(0).unwrap().as_str(), "a");
    }

    #[test]
    fn the_current_endpoint_stays_first_across_snapshots() {
        let set = ready(4);
        let order = Order::build(&set, None, None);
        assert_eq!(order.indices(), &[0, 1, 2, 3]);
        // Calls went to k2 (k0 and k1 were gone): k2 stays first, the rest keep their order.
        let k2 = Key::from("k2");
        let order = Order::build(&set, None, Some(&k2));
        assert_eq!(order.indices(), &[2, 0, 1, 3]);
        assert_eq!(order.first(&set), Some(&k2));
        // A key no longer ready changes nothing.
        let gone = Key::from("gone");
        assert_eq!(
            Order::build(&set, None, Some(&gone)).indices(),
            &[0, 1, 2, 3]
        );
        assert_eq!(Order::build(&ready(0), None, Some(&k2)).first(&set), None);
    }

    #[test]
    fn shuffled_orders_spread_the_first_endpoint() {
        let set = ready(4);
        let mut firsts = [0u32; 4];
        for salt in 0..4000u64 {
            let order = Order::build(&set, Some(salt), None);
            let mut sorted = order.indices().to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3], "a permutation");
            // The same salt, the same order.
            assert_eq!(
                order.indices(),
                Order::build(&set, Some(salt), None).indices()
            );
            firsts[order.indices()[0] as usize] += 1;
        }
        for f in firsts {
            assert!((850..1150).contains(&f), "{firsts:?}");
        }
    }
}
