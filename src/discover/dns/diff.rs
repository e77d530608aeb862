//! The changes that turn the published endpoint set into a new one.

use crate::discover::Change;

use super::candidates::EndpointSet;

/// Inserts for new endpoints and for endpoints whose weight or priority changed, then removes
/// for endpoints that are gone; nothing for unchanged ones. Inserts come first so that a
/// replaced endpoint never leaves the balancer with an empty set.
pub(crate) fn diff(old: &EndpointSet, new: &EndpointSet) -> Vec<Change> {
    let inserts = new
        .iter()
        .filter(|(key, endpoint)| old.get(*key) != Some(*endpoint))
        .map(|(key, endpoint)| Change::Insert(key.clone(), endpoint.clone()));
    let removes = old
        .keys()
        .filter(|key| !new.contains_key(*key))
        .map(|key| Change::Remove(key.clone()));
    inserts.chain(removes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Endpoint, Key};

    fn set(entries: &[(&str, u32, u32)]) -> EndpointSet {
        entries
            .iter()
            .map(|&(addr, priority, weight)| {
                let e: Endpoint = addr.parse().unwrap();
                (
                    Key::from(addr),
                    e.with_weight(weight).unwrap().with_priority(priority),
                )
            })
            .collect()
    }

    #[test]
    fn only_differences_go_out_inserts_first() {
        let old = set(&[
            ("10.0.0.1:80", 0, 100),
            ("10.0.0.2:80", 0, 100),
            ("10.0.0.3:80", 0, 100),
        ]);
        let new = set(&[
            ("10.0.0.1:80", 0, 100), // unchanged
            ("10.0.0.2:80", 1, 100), // priority changed
            ("10.0.0.4:80", 0, 100), // joined; .3 left
        ]);
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![
                Change::Insert(
                    Key::from("10.0.0.2:80"),
                    new[&Key::from("10.0.0.2:80")].clone()
                ),
                Change::Insert(
                    Key::from("10.0.0.4:80"),
                    new[&Key::from("10.0.0.4:80")].clone()
                ),
                Change::Remove(Key::from("10.0.0.3:80")),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn weight_change_is_an_insert() {
        let old = set(&[("10.0.0.1:80", 0, 100)]);
        let new = set(&[("10.0.0.1:80", 0, 300)]);
        assert!(matches!(&diff(&old, &new)[..], [Change::Insert(_, e)] if e.weight() == 300));
    }
}
