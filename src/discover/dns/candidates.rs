//! From the addresses an answer names to the endpoint set: undialable addresses skipped,
//! duplicates collapsed, the size capped — deterministically, whatever the record order.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::discover::{Endpoint, Key};

/// The endpoint set a resolution produced, keyed by socket address.
pub(crate) type EndpointSet = BTreeMap<Key, Endpoint>;

/// One address an answer names, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) addr: SocketAddr,
    pub(crate) priority: u32,
    pub(crate) weight: u32,
    /// The DNS name the address was found under (SRV target, or the host name asked for),
    /// without the trailing dot: the endpoint's TLS server name.
    pub(crate) server_name: Option<Arc<str>>,
}

impl Candidate {
    /// Orders candidates best first: lower priority, then larger weight, then lower address,
    /// then name (two targets with one address: the choice must not depend on record order).
    fn rank(&self) -> (u32, std::cmp::Reverse<u32>, SocketAddr, Option<&str>) {
        (
            self.priority,
            std::cmp::Reverse(self.weight),
            self.addr,
            self.server_name.as_deref(),
        )
    }
}

/// The TLS server name of a DNS name: its ASCII form without the trailing dot.
pub(crate) fn server_name(name: &hickory_resolver::proto::rr::Name) -> Arc<str> {
    let ascii = name.to_ascii();
    Arc::from(ascii.strip_suffix('.').unwrap_or(&ascii))
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
        kept.sort_unstable_by(|a, b| a.rank().cmp(&b.rank()));
        tracing::warn!(%name, answered = kept.len(), max, "DNS answer has more endpoints than the cap; keeping the best ranked");
        kept.truncate(max);
    }
    let mut unnamed = 0usize;
    let mut unnamed_example = None;
    let set = kept
        .into_iter()
        .filter_map(|c| {
            // `undialable` already refused what `Endpoint` refuses; this cannot fail, but
            // a refusal would only drop the candidate.
            let endpoint = Endpoint::new(c.addr)
                .and_then(|e| e.with_weight(c.weight.max(1)))
                .ok()?
                .with_priority(c.priority);
            // A DNS name that is no TLS name (a label rustls would refuse) leaves the endpoint
            // without one: plaintext does not care, and TLS refuses to connect and says why.
            let endpoint = match c.server_name.as_deref() {
                Some(name) => match endpoint.clone().with_server_name(name) {
                    Ok(named) => named,
                    Err(e) => {
                        unnamed += 1;
                        unnamed_example.get_or_insert(e);
                        endpoint
                    }
                },
                None => endpoint,
            };
            Some((Key::from(c.addr), endpoint))
        })
        .collect();
    if let Some(e) = unnamed_example {
        tracing::warn!(%name, endpoints = unnamed, example = %e, "DNS names in the answer are not usable as TLS server names; those endpoints have none");
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(addr: &str, priority: u32, weight: u32) -> Candidate {
        Candidate {
            addr: addr.parse().unwrap(),
            priority,
            weight,
            server_name: None,
        }
    }

    fn named(addr: &str, name: &str) -> Candidate {
        Candidate {
            server_name: Some(Arc::from(name)),
            ..c(addr, 0, 1)
        }
    }

    #[test]
    fn endpoints_carry_the_name_they_were_found_under() {
        let set = endpoint_set(
            "x",
            [
                named("10.0.0.1:443", "a.example"),
                named("10.0.0.2:443", "b_bad name.example"),
                c("10.0.0.3:443", 0, 1),
            ],
            10,
        );
        let names: Vec<Option<&str>> = set.values().map(Endpoint::server_name).collect();
        assert_eq!(names, [Some("a.example"), None, None]);
    }

    #[test]
    fn one_address_under_two_names_keeps_the_same_name_in_any_order() {
        let records = [
            named("10.0.0.1:443", "b.example"),
            named("10.0.0.1:443", "a.example"),
        ];
        let forward = endpoint_set("x", records.clone(), 10);
        let backward = endpoint_set("x", records.into_iter().rev(), 10);
        assert_eq!(forward, backward);
        assert_eq!(
            forward[&Key::from("10.0.0.1:443")].server_name(),
            Some("a.example")
        );
    }

    #[test]
    fn duplicates_keep_best_priority_then_largest_weight_in_any_order() {
        let records = [
            c("10.0.0.1:80", 20, 900),
            c("10.0.0.1:80", 10, 100),
            c("10.0.0.1:80", 10, 300),
        ];
        let forward = endpoint_set("x", records.clone(), 10);
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
