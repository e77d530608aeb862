//! From the addresses an answer names to the endpoint set: undialable addresses skipped,
//! duplicates collapsed, the size capped — deterministically, whatever the record order.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::{IpAddr, SocketAddr};

use crate::discover::{Endpoint, Key};

/// The endpoint set a resolution produced, keyed by socket address.
pub(crate) type EndpointSet = BTreeMap<Key, Endpoint>;

/// One address an answer names, before validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) addr: SocketAddr,
    pub(crate) priority: u32,
    pub(crate) weight: u32,
}

impl Candidate {
    /// Orders candidates best first: lower priority, then larger weight, then lower address.
    fn rank(&self) -> (u32, std::cmp::Reverse<u32>, SocketAddr) {
        (self.priority, std::cmp::Reverse(self.weight), self.addr)
    }
}

/// Why an address cannot be an endpoint, if it cannot.
fn undialable(addr: SocketAddr) -> Option<&'static str> {
    if addr.port() == 0 {
        return Some("port 0");
    }
    match addr.ip() {
        ip if ip.is_unspecified() => Some("unspecified address"),
        ip if ip.is_multicast() => Some("multicast address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("broadcast address"),
        _ => None,
    }
}

/// The endpoint set of `candidates`: undialable ones skipped (one warning per answer), one
/// endpoint per socket address (best priority, then larger weight), at most `max` endpoints
/// (the best ranked; one warning).
pub(crate) fn endpoint_set(
    name: &str,
    candidates: impl IntoIterator<Item = Candidate>,
    max: usize,
) -> EndpointSet {
    let mut best: BTreeMap<SocketAddr, Candidate> = BTreeMap::new();
    let mut skipped = 0usize;
    let mut example = None;
    for c in candidates {
        if let Some(why) = undialable(c.addr) {
            skipped += 1;
            example.get_or_insert((c.addr, why));
            continue;
        }
        match best.entry(c.addr) {
            Entry::Vacant(v) => {
                v.insert(c);
            }
            Entry::Occupied(mut o) => {
                if c.rank() < o.get().rank() {
                    o.insert(c);
                }
            }
        }
    }
    if let Some((addr, why)) = example {
        tracing::warn!(%name, skipped, example = %addr, reason = why, "DNS answer names addresses that cannot be dialled; skipped");
    }
    let mut kept: Vec<Candidate> = best.into_values().collect();
    if kept.len() > max {
        kept.sort_unstable_by_key(Candidate::rank);
        tracing::warn!(%name, answered = kept.len(), max, "DNS answer has more endpoints than the cap; keeping the best ranked");
        kept.truncate(max);
    }
    kept.into_iter()
        .filter_map(|c| {
            // `undialable` already refused what `Endpoint` refuses; this cannot fail, but
            // a refusal would only drop the candidate.
            let endpoint = Endpoint::new(c.addr)
                .and_then(|e| e.with_weight(c.weight.max(1)))
                .ok()?
                .with_priority(c.priority);
            Some((Key::from(c.addr), endpoint))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(addr: &str, priority: u32, weight: u32) -> Candidate {
        Candidate {
            addr: addr.parse().unwrap(),
            priority,
            weight,
        }
    }

    #[test]
    fn duplicates_keep_best_priority_then_largest_weight_in_any_order() {
        let records = [
            c("10.0.0.1:80", 20, 900),
            c("10.0.0.1:80", 10, 100),
            c("10.0.0.1:80", 10, 300),
        ];
        let forward = endpoint_set("x", records, 10);
        let backward = endpoint_set("x", records.into_iter().rev(), 10);
        assert_eq!(forward, backward);
        let e = &forward[&Key::from("10.0.0.1:80")];
        assert_eq!((e.priority(), e.weight()), (10, 300));
    }

    #[test]
    fn undialable_addresses_are_skipped() {
        let set = endpoint_set(
            "x",
            [
                c("0.0.0.0:80", 0, 1),
                c("[::]:80", 0, 1),
                c("10.0.0.1:0", 0, 1),
                c("224.0.0.1:80", 0, 1),
                c("255.255.255.255:80", 0, 1),
                c("[ff02::1]:80", 0, 1),
                c("127.0.0.1:80", 0, 0),
            ],
            10,
        );
        assert_eq!(set.len(), 1);
        // A weight of 0 can only come from a bug upstream; it becomes 1, not a panic.
        assert_eq!(set[&Key::from("127.0.0.1:80")].weight(), 1);
    }

    #[test]
    fn cap_keeps_best_ranked() {
        let mut records: Vec<Candidate> = (0..50u8)
            .map(|i| c(&format!("10.0.1.{i}:80"), 1, 100))
            .collect();
        records.push(c("10.0.9.9:80", 0, 1));
        records.push(c("10.0.9.8:80", 1, 500));
        let set = endpoint_set("x", records, 3);
        let keys: Vec<&str> = set.keys().map(Key::as_str).collect();
        assert_eq!(keys, ["10.0.1.0:80", "10.0.9.8:80", "10.0.9.9:80"]);
    }
}
