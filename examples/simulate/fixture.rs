//! The simulated world: endpoints named so that key order is id order, and request keys.

use tower_lb::{Error, Picker, Policy, discover::Key, hash_bytes};

/// The key of endpoint `id`. Zero-padded so that the picker's key order is id order: picker
/// index `i` is the `i`-th smallest id given.
pub fn endpoint_key(id: usize) -> Key {
    Key::from(format!("backend-{id:07}"))
}

/// A picker over endpoints `ids`, all of weight 1.
pub fn picker(
    policy: Policy,
    ids: impl IntoIterator<Item = usize>,
    seed: u64,
) -> Result<Picker, Error> {
    weighted_picker(policy, ids.into_iter().map(|id| (id, 1)), seed)
}

/// A picker over `(id, weight)` endpoints.
pub fn weighted_picker(
    policy: Policy,
    endpoints: impl IntoIterator<Item = (usize, u32)>,
    seed: u64,
) -> Result<Picker, Error> {
    let endpoints = endpoints
        .into_iter()
        .map(|(id, weight)| (endpoint_key(id), weight));
    Picker::new(policy, endpoints, seed)
}

/// The hash of request key number `k` (as a balancer hashes a header value `key-<k>`).
pub fn request_hash(k: usize) -> u64 {
    hash_bytes(format!("key-{k}").as_bytes())
}

/// Hashes of request keys `0..count`.
pub fn request_hashes(count: usize) -> Vec<u64> {
    (0..count).map(request_hash).collect()
}

/// `count` hashes spread evenly over the whole 64-bit hash space: each endpoint's share of
/// them is its share of the hash space, free of the sampling noise of random keys.
pub fn hash_grid(count: usize) -> Vec<u64> {
    let step = u64::MAX / count.max(1) as u64;
    (0..count as u64).map(|k| k * step + step / 2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picker_index_is_id_order() {
        let p = picker(Policy::round_robin(), [12, 3, 100], 1).expect("valid endpoints");
        let keys: Vec<&str> = (0..p.len())
            .filter_map(|i| p.key(i))
            .map(Key::as_str)
            .collect();
        assert_eq!(
            keys,
            ["backend-0000003", "backend-0000012", "backend-0000100"]
        );
    }
}
