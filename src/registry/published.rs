//! What the last publishes leave for the next: each entry's standing as last counted and
//! their tally (so the tier, panic mode and why nothing is ready cost O(1), not a walk), the
//! keys touched since, and the lists of the snapshot before the current one, taken back when
//! no call held it, for the next publish to patch instead of rebuilding.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::discover::{Endpoint, Key};
use crate::endpoint::{EndpointState, ReadyEndpoint};

/// Publishes after which the touched keys are more than this fraction of the entries (as
/// 1/`FULL_ABOVE`) rebuild the set instead of patching it: a patch costs a binary search per
/// key, a rebuild a walk of every entry.
pub(super) const FULL_ABOVE: usize = 8;

/// What one entry counted for at the last publish that looked at it (nothing, for an entry
/// not yet counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Standing {
    pub(super) counted: bool,
    pub(super) priority: u32,
    pub(super) connected: bool,
    pub(super) ejected: bool,
    pub(super) serving: bool,
    /// Its health check says the server does not know the checked service.
    pub(super) unknown: bool,
    /// Its last connection attempt failed (and it is not connected since).
    pub(super) failed: bool,
}

impl Standing {
    /// Connected, not ejected, and serving by its health check (if checked).
    pub(super) fn healthy(&self) -> bool {
        self.connected && !self.ejected && self.serving
    }

    /// What panic mode adds: connected and not ejected, whatever its health check says.
    pub(super) fn usable_in_panic(&self) -> bool {
        self.connected && !self.ejected
    }
}

/// Counts of one priority tier's entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TierTally {
    pub(super) total: usize,
    pub(super) healthy: usize,
    pub(super) usable: usize,
    pub(super) unknown: usize,
}

/// The sum of every entry's [`Standing`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) tiers: BTreeMap<u32, TierTally>,
    pub(super) connected: usize,
    /// Connected and not ejected.
    pub(super) open: usize,
    /// Of those, the ones whose check says the service is unknown.
    pub(super) open_unknown: usize,
    pub(super) ejected: usize,
    /// Connected and not serving by its health check.
    pub(super) not_serving: usize,
    /// Not connected, and no attempt failed yet.
    pub(super) connecting: usize,
}

impl Tally {
    pub(super) fn add(&mut self, s: &Standing) {
        self.count(s, 1);
    }

    pub(super) fn remove(&mut self, s: &Standing) {
        self.count(s, usize::MAX); // wrapping: -1
    }

    fn count(&mut self, s: &Standing, one: usize) {
        if !s.counted {
            return;
        }
        let n = |b: bool| if b { one } else { 0 };
        let tier = self.tiers.entry(s.priority).or_default();
        tier.total = tier.total.wrapping_add(one);
        tier.healthy = tier.healthy.wrapping_add(n(s.healthy()));
        tier.usable = tier.usable.wrapping_add(n(s.usable_in_panic()));
        tier.unknown = tier.unknown.wrapping_add(n(s.unknown));
        if tier.total == 0 {
            self.tiers.remove(&s.priority);
        }
        self.connected = self.connected.wrapping_add(n(s.connected));
        self.open = self.open.wrapping_add(n(s.usable_in_panic()));
        self.open_unknown = self
            .open_unknown
            .wrapping_add(n(s.usable_in_panic() && s.unknown));
        self.ejected = self.ejected.wrapping_add(n(s.ejected));
        self.not_serving = self.not_serving.wrapping_add(n(s.connected && !s.serving));
        self.connecting = self.connecting.wrapping_add(n(!s.connected && !s.failed));
    }

    /// The tier's counts (all zero for no tier).
    pub(super) fn tier(&self, tier: Option<u32>) -> TierTally {
        tier.and_then(|t| self.tiers.get(&t).copied())
            .unwrap_or_default()
    }
}

/// The lists of a snapshot nobody holds any more, for the next publish to patch.
pub(super) struct Spare<T> {
    pub(super) ready: Vec<ReadyEndpoint<T>>,
    pub(super) all: Vec<(Arc<EndpointState>, Endpoint)>,
    /// What its ready list was chosen under.
    pub(super) tier: Option<u32>,
    pub(super) panic: bool,
    /// Keys touched between it and the snapshot now published.
    pub(super) touched: Vec<Key>,
}

/// The control task's memory of what it published.
pub(super) struct Published<T> {
    pub(super) tally: Tally,
    /// Keys whose entry may have changed since the last publish.
    pub(super) touched: Vec<Key>,
    /// The tally must be counted again from every entry (the touched keys were given up).
    pub(super) recount: bool,
    /// The keys touched between the snapshot the last publish replaced and the one it made
    /// (`None` when they were given up): what a patch of the replaced one must look at again.
    pub(super) last_touched: Option<Vec<Key>>,
    pub(super) spare: Option<Spare<T>>,
    /// Empty buffers a patch merges into (see [`patch`]).
    pub(super) other_ready: Vec<ReadyEndpoint<T>>,
    pub(super) other_all: Vec<(Arc<EndpointState>, Endpoint)>,
}

impl<T> Default for Published<T> {
    fn default() -> Self {
        Published {
            tally: Tally::default(),
            touched: Vec::new(),
            recount: true,
            last_touched: None,
            spare: None,
            other_ready: Vec::new(),
            other_all: Vec::new(),
        }
    }
}

impl<T> Published<T> {
    /// Notes that `key`'s entry changed (appeared, left, connected, ...). `entries`: how many
    /// there are; touching far more keys than that between publishes gives up the list and
    /// counts everything again at the next publish.
    pub(super) fn touch(&mut self, key: &Key, entries: usize) {
        if self.recount {
            return;
        }
        if self.touched.len() > 2 * entries + 64 {
            self.touched = Vec::new();
            self.recount = true;
            return;
        }
        self.touched.push(key.clone());
    }
}

/// Most edits a patch makes in place, one at a time (each moves the list's tail: two move
/// about as much as one pass); more are merged in one pass into a second buffer.
const IN_PLACE: usize = 2;

/// Applies `edits` (sorted by key, one a key) to `list` (sorted by `key_of`): each key's
/// element replaced, added or removed. Elements move, none is cloned: a binary search per
/// edit, then for a few edits the list's tail moved in place (an insert grows the buffer by
/// one place, which a large buffer does without copying), for more one pass into `other`, an
/// empty buffer that keeps its allocation from one publish to the next (a fresh one costs a
/// page fault per 4 KiB touched: 24 ms for 100,000 endpoints' 5.6 MB on a loaded machine).
pub(super) fn patch<E>(
    list: &mut Vec<E>,
    other: &mut Vec<E>,
    key_of: impl Fn(&E) -> &Key,
    edits: Vec<(Key, Option<E>)>,
) {
    if edits.len() > IN_PLACE {
        merge(list, other, key_of, edits);
        return;
    }
    // From the last, so that an edit does not move the places of those still to come.
    for (key, new) in edits.into_iter().rev() {
        match (list.binary_search_by(|e| key_of(e).cmp(&key)), new) {
            (Ok(i), Some(e)) => list[i] = e,
            (Ok(i), None) => drop(list.remove(i)),
            (Err(i), Some(e)) => {
                // Exactly: the snapshot holds a boxed slice, which would shrink it back.
                list.reserve_exact(1);
                list.insert(i, e);
            }
            (Err(_), None) => {}
        }
    }
}

/// [`patch`] in one pass into `other`, which becomes `list`; `list`'s buffer, emptied, becomes
/// `other`.
fn merge<E>(
    list: &mut Vec<E>,
    other: &mut Vec<E>,
    key_of: impl Fn(&E) -> &Key,
    edits: Vec<(Key, Option<E>)>,
) {
    let mut out = std::mem::take(other);
    out.clear();
    out.reserve(list.len() + edits.len());
    let mut old = list.drain(..);
    for (key, new) in edits {
        let (before, found) = match old.as_slice().binary_search_by(|e| key_of(e).cmp(&key)) {
            Ok(i) => (i, true),
            Err(i) => (i, false),
        };
        out.extend(old.by_ref().take(before));
        if found {
            old.next();
        }
        out.extend(new);
    }
    out.extend(old);
    *other = std::mem::replace(list, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_replaces_adds_and_removes_in_order_in_place_or_merged() {
        let k = |s: &str| Key::from(s);
        let edits = || {
            vec![
                (k("a"), Some((k("a"), 1))),
                (k("d"), None),
                (k("f"), Some((k("f"), 2))),
                (k("g"), None),
                (k("z"), Some((k("z"), 3))),
            ]
        };
        let old =
            || -> Vec<(Key, u32)> { ["b", "d", "f", "h"].iter().map(|s| (k(s), 0)).collect() };
        let mut in_place = old();
        for edit in edits().into_iter().rev() {
            patch(&mut in_place, &mut Vec::new(), |e| &e.0, vec![edit]);
        }
        let mut merged = old();
        let mut other = Vec::with_capacity(1);
        patch(&mut merged, &mut other, |e| &e.0, edits());
        assert!(
            other.is_empty() && other.capacity() >= 4,
            "the old buffer, emptied"
        );
        for new in [in_place, merged] {
            let got: Vec<(&str, u32)> = new.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            assert_eq!(got, [("a", 1), ("b", 0), ("f", 2), ("h", 0), ("z", 3)]);
        }
    }

    #[test]
    fn the_tally_undoes_what_it_added() {
        let s = Standing {
            counted: true,
            priority: 1,
            connected: true,
            serving: true,
            ..Standing::default()
        };
        let mut t = Tally::default();
        t.add(&s);
        assert_eq!(t.tier(Some(1)).healthy, 1);
        assert_eq!(t.open, 1);
        t.remove(&s);
        assert_eq!(t, Tally::default());
    }
}
