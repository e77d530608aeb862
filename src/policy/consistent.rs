//! Consistent hashing: the request's key picks the endpoint, through a ring or a Maglev
//! table, optionally with bounded loads (Mirrokni, Thorup and Zadimoghaddam, 2018).
//!
//! With bounded loads no endpoint takes more than `ceil((1 + ε) × its weighted share of the
//! calls in flight)`: a key whose endpoint is full walks on to the next endpoint of the table
//! that is not. Hot keys spill over instead of overloading one endpoint, while most keys
//! still stay where they were.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::candidate::{fallback, usable};
use super::hash_key::HashKey;
use super::maglev::Maglev;
use super::ring::Ring;
use crate::endpoint::{EndpointState, ReadyEndpoint};
use crate::transport::EndpointChannel;

/// A hashing policy's configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hashing {
    pub(crate) key: HashKey,
    pub(crate) table: TableConfig,
    /// ε of bounded loads, if bounded.
    pub(crate) bound: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TableConfig {
    Ring { min: u64, max: u64 },
    Maglev { size: u64 },
}

/// The table of one snapshot.
#[derive(Debug)]
pub(crate) enum Table {
    Ring(Ring),
    Maglev(Maglev),
}

impl Table {
    pub(crate) fn build<T>(config: TableConfig, ready: &[ReadyEndpoint<T>]) -> Table {
        let endpoints = ready.iter().map(|e| (e.state.key.as_str(), e.weight));
        match config {
            TableConfig::Ring { min, max } => Table::Ring(Ring::build(endpoints, min, max)),
            TableConfig::Maglev { size } => Table::Maglev(Maglev::build(endpoints, size)),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        match self {
            Table::Ring(r) => r.len(),
            Table::Maglev(m) => m.len(),
        }
    }

    #[inline]
    fn position(&self, hash: u64) -> usize {
        match self {
            Table::Ring(r) => r.position(hash),
            Table::Maglev(m) => m.position(hash),
        }
    }

    #[inline]
    fn owner(&self, position: usize) -> usize {
        match self {
            Table::Ring(r) => r.owner(position),
            Table::Maglev(m) => m.owner(position),
        }
    }
}

/// Bounded loads at the moment of one pick: each endpoint's cap is
/// `ceil((1 + ε) × (calls in flight + this one) × weight / total weight)`.
pub(crate) struct Bound {
    /// `(1 + ε) × calls / total weight`, read once per pick.
    per_weight: f64,
}

impl Bound {
    /// `in_flight`: calls in flight on the whole balancer; `weight_sum`: the ready weights.
    #[inline]
    pub(crate) fn new(epsilon: f64, in_flight: &AtomicU64, weight_sum: u64) -> Self {
        let calls = (in_flight.load(Relaxed) + 1) as f64;
        Bound {
            per_weight: (1.0 + epsilon) * calls / weight_sum.max(1) as f64,
        }
    }

    #[inline]
    fn has_room(&self, e: &EndpointState, weight: u32) -> bool {
        f64::from(e.load.in_flight()) < (self.per_weight * f64::from(weight)).ceil()
    }
}

/// The endpoint for `hash`: its owner in the table, or — if that one is not usable, or full
/// under bounded loads — the next owner along the table that is.
#[inline]
pub(crate) fn pick<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    table: &Table,
    hash: u64,
    bound: Option<&Bound>,
    avoid: Option<&EndpointState>,
) -> Option<usize> {
    let len = table.len();
    if len == 0 || endpoints.is_empty() {
        return None;
    }
    let start = table.position(hash);
    let first = table.owner(start);
    let fits = |i: usize| {
        let e = &endpoints[i];
        usable(e, avoid) && bound.is_none_or(|b| b.has_room(&e.state, e.weight))
    };
    if fits(first) {
        return Some(first);
    }
    walk(endpoints, table, start, first, fits, avoid)
}

#[cold]
fn walk<T: EndpointChannel>(
    endpoints: &[ReadyEndpoint<T>],
    table: &Table,
    start: usize,
    first: usize,
    fits: impl Fn(usize) -> bool,
    avoid: Option<&EndpointState>,
) -> Option<usize> {
    let len = table.len();
    let mut last = first;
    for step in 1..len {
        let i = table.owner((start + step) % len);
        // Consecutive points of the same endpoint need no second look.
        if i != last && fits(i) {
            return Some(i);
        }
        last = i;
    }
    // Nothing fits (every endpoint unusable, or all full, which the bound rules out while the
    // counters agree): any usable endpoint rather than failing the call.
    fallback(endpoints, avoid, first)
}
