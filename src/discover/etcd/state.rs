//! What the registry holds under the prefix, and what was published from it: etcd keys to
//! endpoints, and one endpoint per address.
//!
//! The balancer's key is the address (`ip:port`), not the etcd key: two keys naming the same
//! address (a re-registration under a new key, a copy left by hand) are one endpoint, which
//! leaves only when the last key naming it goes. Of several keys for one address, the smallest
//! key's value gives the weight, priority and server name, so the result does not depend on the
//! order of events.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::discover::{Change, Endpoint, Key};

/// The keys under the prefix that name endpoints, and the set published from them.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_key: BTreeMap<Vec<u8>, Endpoint>,
    by_addr: BTreeMap<SocketAddr, BTreeSet<Vec<u8>>>,
    published: BTreeMap<SocketAddr, Endpoint>,
    /// Addresses whose endpoint may have changed since the last [`changes`](Self::changes).
    touched: BTreeSet<SocketAddr>,
}

impl KeySet {
    /// The key now names this endpoint, or (`None`) no endpoint.
    pub(crate) fn put(&mut self, key: &[u8], endpoint: Option<Endpoint>) {
        self.delete(key);
        if let Some(endpoint) = endpoint {
            let addr = endpoint.addr();
            self.by_addr.entry(addr).or_default().insert(key.to_vec());
            self.by_key.insert(key.to_vec(), endpoint);
            self.touched.insert(addr);
        }
    }

    /// The key is gone.
    pub(crate) fn delete(&mut self, key: &[u8]) {
        if let Some(old) = self.by_key.remove(key) {
            let addr = old.addr();
            if let Some(keys) = self.by_addr.get_mut(&addr) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_addr.remove(&addr);
                }
            }
            self.touched.insert(addr);
        }
    }

    /// A fresh list replaces everything: the next [`changes`](Self::changes) is the diff
    /// between what was published and the list, nothing more.
    pub(crate) fn replace(&mut self, list: impl IntoIterator<Item = (Vec<u8>, Endpoint)>) {
        let keys: Vec<Vec<u8>> = self.by_key.keys().cloned().collect();
        for key in keys {
            self.delete(&key);
        }
        for (key, endpoint) in list {
            self.put(&key, Some(endpoint));
        }
    }

    /// The changes that make the published set match the keys: inserts (new addresses, or a new
    /// weight, priority or server name) first, then removes, so a replaced endpoint never
    /// leaves the set empty in between.
    pub(crate) fn changes(&mut self) -> Vec<Change> {
        let mut inserts = Vec::new();
        let mut removes = Vec::new();
        for addr in std::mem::take(&mut self.touched) {
            let now = self
                .by_addr
                .get(&addr)
                .and_then(|keys| keys.first())
                .and_then(|key| self.by_key.get(key));
            match (now, self.published.get(&addr)) {
                (Some(now), Some(before)) if now == before => {}
                (Some(now), _) => {
                    self.published.insert(addr, now.clone());
                    inserts.push(Change::Insert(Key::from(addr), now.clone()));
                }
                (None, Some(_)) => {
                    self.published.remove(&addr);
                    removes.push(Change::Remove(Key::from(addr)));
                }
                (None, None) => {}
            }
        }
        inserts.extend(removes);
        inserts
    }

    /// Endpoints published.
    pub(crate) fn len(&self) -> usize {
        self.published.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    #[test]
    fn one_endpoint_per_address_until_its_last_key_goes() {
        let mut set = KeySet::default();
        set.put(b"s/a", Some(ep("10.0.0.1:1")));
        set.put(b"s/b", Some(ep("10.0.0.1:1")));
        assert_eq!(set.changes().len(), 1);
        set.delete(b"s/a");
        assert!(set.changes().is_empty());
        set.delete(b"s/b");
        assert_eq!(set.changes(), vec![Change::Remove(Key::from("10.0.0.1:1"))]);
    }

    #[test]
    fn the_smallest_key_gives_the_weight_whatever_the_order() {
        for order in [[0, 1], [1, 0]] {
            let mut set = KeySet::default();
            let puts = [
                (&b"s/a"[..], ep("10.0.0.1:1").with_weight(2).unwrap()),
                (&b"s/b"[..], ep("10.0.0.1:1").with_weight(7).unwrap()),
            ];
            for i in order {
                set.put(puts[i].0, Some(puts[i].1.clone()));
            }
            let changes = set.changes();
            assert_eq!(changes.len(), 1);
            assert!(matches!(&changes[0], Change::Insert(_, e) if e.weight() == 2));
        }
    }

    #[test]
    fn a_fresh_list_is_diffed_against_what_was_published() {
        let mut set = KeySet::default();
        set.put(b"s/a", Some(ep("10.0.0.1:1")));
        set.put(b"s/b", Some(ep("10.0.0.2:1")));
        set.changes();
        set.replace([
            (b"s/b".to_vec(), ep("10.0.0.2:1")),
            (b"s/c".to_vec(), ep("10.0.0.3:1")),
        ]);
        assert_eq!(
            set.changes(),
            vec![
                Change::Insert(Key::from("10.0.0.3:1"), ep("10.0.0.3:1")),
                Change::Remove(Key::from("10.0.0.1:1")),
            ]
        );
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn a_key_that_moves_or_goes_bad_leaves() {
        let mut set = KeySet::default();
        set.put(b"s/a", Some(ep("10.0.0.1:1")));
        set.changes();
        set.put(b"s/a", Some(ep("10.0.0.9:1")));
        assert_eq!(set.changes().len(), 2);
        set.put(b"s/a", None);
        assert_eq!(set.changes(), vec![Change::Remove(Key::from("10.0.0.9:1"))]);
    }
}
