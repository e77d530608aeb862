//! Section 7, subsetting: many clients, each connecting to a subset of a large fleet through
//! the crate's own `discover::subset`. How evenly the fleet is covered (a server's load is the
//! number of subsets it is in, each client spreading its calls evenly over its subset), and
//! how many members of each client's subset change when one server leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;

use futures::StreamExt;
use tower_lb::discover::subset::{Subsetting, subset};
use tower_lb::discover::{Change, Endpoint, Key};

use crate::table::Table;

/// One rule of choosing, for client `i` of `clients`.
type Rule = (&'static str, fn(usize, u64, u64) -> Subsetting);

const RULES: [Rule; 2] = [
    ("rendezvous (random seed per client)", |size, i, _| {
        Subsetting::rendezvous_with_seed(size, i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }),
    ("deterministic aperture (client i of n)", |size, i, n| {
        Subsetting::aperture(size, i, n).expect("i < n")
    }),
];

fn server(i: usize) -> (Key, Endpoint) {
    let addr = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 8080));
    (Key::from(addr), Endpoint::new(addr).expect("valid"))
}

/// The subset `subsetting` chooses from `fleet`, run through the discovery adapter.
fn chosen(fleet: &[(Key, Endpoint)], subsetting: Subsetting) -> BTreeSet<Key> {
    let changes = fleet
        .iter()
        .map(|(k, e)| Ok::<_, Infallible>(Change::Insert(k.clone(), e.clone())));
    let stream = subset(futures::stream::iter(changes), subsetting);
    let mut set = BTreeSet::new();
    for change in futures::executor::block_on(stream.collect::<Vec<_>>()) {
        match change {
            Ok(Change::Insert(k, _)) => set.insert(k),
            Ok(Change::Remove(k)) => set.remove(&k),
            Err(never) => match never {},
        };
    }
    set
}

/// Coverage and movement of one rule.
pub struct Outcome {
    pub max_over_mean: f64,
    pub min_over_mean: f64,
    /// Subset members changed per client when one server leaves: mean and most.
    pub moved_mean: f64,
    pub moved_max: usize,
}

pub fn run(rule: &Rule, clients: u64, servers: usize, size: usize) -> Outcome {
    let fleet: Vec<(Key, Endpoint)> = (0..servers).map(server).collect();
    // The server that leaves: one in the middle of the key order.
    let mut without = fleet.clone();
    without.remove(servers / 2);
    let mut load: BTreeMap<Key, u64> = fleet.iter().map(|(k, _)| (k.clone(), 0)).collect();
    let (mut moved_total, mut moved_max) = (0usize, 0usize);
    for i in 0..clients {
        let subsetting = (rule.1)(size, i, clients);
        let before = chosen(&fleet, subsetting);
        for key in &before {
            *load.get_mut(key).expect("a fleet key") += 1;
        }
        let after = chosen(&without, subsetting);
        let moved = before
            .difference(&after)
            .count()
            .max(after.difference(&before).count());
        moved_total += moved;
        moved_max = moved_max.max(moved);
    }
    let mean = (clients as f64 * size.min(servers) as f64) / servers as f64;
    let max = *load.values().max().unwrap_or(&0) as f64;
    let min = *load.values().min().unwrap_or(&0) as f64;
    Outcome {
        max_over_mean: max / mean,
        min_over_mean: min / mean,
        moved_mean: moved_total as f64 / clients as f64,
        moved_max,
    }
}

pub fn report(clients: u64, servers: usize, size: usize) -> String {
    let mut table = Table::new(&[
        "rule",
        "server load max/mean",
        "server load min/mean",
        "members changed per client when one server leaves: mean",
        "most",
    ]);
    for rule in &RULES {
        let o = run(rule, clients, servers, size);
        table.row(vec![
            rule.0.to_string(),
            format!("{:.2}", o.max_over_mean),
            format!("{:.2}", o.min_over_mean),
            format!("{:.3}", o.moved_mean),
            o.moved_max.to_string(),
        ]);
    }
    format!(
        "## 7. Subsetting\n\n{clients} clients, each connecting to {size} of {servers} servers \
         through `discover::subset`; a server's load is the number of subsets it is in (each \
         client spreads its calls evenly over its subset), relative to the mean \
         ({clients} × {size} / {servers}). Movement: the subset of each client with the fleet, \
         and with the server in the middle of the key order gone.\n\n{table}\nReading: \
         rendezvous needs no coordination and moves at most one member, but covers the fleet \
         as unevenly as random draws; the aperture tiles the ring, so every server is in the \
         same number of subsets give or take one, at the price of knowing each client's index \
         and the number of clients.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aperture_tiles_the_fleet_and_both_move_at_most_one_member() {
        let rendezvous = run(&RULES[0], 200, 1_000, 20);
        let aperture = run(&RULES[1], 200, 1_000, 20);
        assert!(aperture.max_over_mean <= 1.25, "{}", aperture.max_over_mean);
        assert!(aperture.min_over_mean >= 0.75, "{}", aperture.min_over_mean);
        assert!(rendezvous.max_over_mean > aperture.max_over_mean);
        assert!(rendezvous.moved_max <= 1 && aperture.moved_max <= 1);
    }
}
