//! Discovery churn: every tick one change through the balancer's discovery stream — a weight
//! change, a removal (re-inserted a few ticks later), or an extra key for an address that is
//! already discovered, inserted or removed.
//!
//! At most one server's own key is out at a time, so with one server down the others keep
//! taking calls: the churn never makes "nothing ready" by itself.

use std::convert::Infallible;
use std::net::SocketAddr;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tower_lb::discover::{Change, Endpoint, Key};

use super::rng::Rng;

/// Extra keys (a second endpoint on an address already discovered) alive at once, at most.
const MAX_EXTRA: usize = 2;
/// A removed key comes back after 1 ..= this many ticks.
const MAX_OUT_TICKS: u32 = 5;
/// Weights are drawn from 1 ..= this.
const MAX_WEIGHT: u32 = 5;

/// How many changes of each kind the churn sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChurnCounts {
    /// Weight changes (an `Insert` over a key already present).
    pub weight_changes: u64,
    /// `Remove`s of a key.
    pub removes: u64,
    /// `Insert`s of a key not present (re-inserts and extra keys).
    pub inserts: u64,
}

/// The discovery stream a balancer under churn is built from: every server's own key at
/// weight 1, then whatever [`Churn::tick`] sends.
pub(crate) fn discovery(
    addrs: &[SocketAddr],
) -> (
    mpsc::UnboundedSender<Change>,
    impl Stream<Item = Result<Change, Infallible>> + Send + 'static,
) {
    let (tx, stream) = crate::discovery::channel();
    for &addr in addrs {
        let _ = tx.send(Change::Insert(Key::from(addr), endpoint(addr, 1)));
    }
    (tx, stream)
}

fn endpoint(addr: SocketAddr, weight: u32) -> Endpoint {
    Endpoint::new(addr)
        .and_then(|e| e.with_weight(weight))
        .expect("a loopback address and a weight in 1..=MAX_WEIGHT are valid")
}

pub(crate) struct Churn {
    tx: mpsc::UnboundedSender<Change>,
    rng: Rng,
    addrs: Vec<SocketAddr>,
    tick: u64,
    /// The server key that is out, and the tick it comes back at.
    out: Option<(usize, u64)>,
    extras: Vec<(Key, SocketAddr)>,
    next_extra: u64,
    pub(crate) counts: ChurnCounts,
}

impl Churn {
    pub(crate) fn new(
        tx: mpsc::UnboundedSender<Change>,
        addrs: Vec<SocketAddr>,
        seed: u64,
    ) -> Self {
        Churn {
            tx,
            rng: Rng::new(seed),
            addrs,
            tick: 0,
            out: None,
            extras: Vec::new(),
            next_extra: 0,
            counts: ChurnCounts::default(),
        }
    }

    /// One tick: brings back a key whose time is up, then makes one change.
    pub(crate) fn tick(&mut self) {
        self.tick += 1;
        if let Some((i, back_at)) = self.out
            && self.tick >= back_at
        {
            self.out = None;
            let weight = self.rng.between(1, MAX_WEIGHT);
            self.send(Change::Insert(
                Key::from(self.addrs[i]),
                endpoint(self.addrs[i], weight),
            ));
            self.counts.inserts += 1;
        }
        let roll = self.rng.below(100);
        let i = self.rng.below(self.addrs.len());
        match roll {
            // Weight change of a server key that is in.
            0..40 => {
                if self.out.is_some_and(|(o, _)| o == i) {
                    return;
                }
                let weight = self.rng.between(1, MAX_WEIGHT);
                self.send(Change::Insert(
                    Key::from(self.addrs[i]),
                    endpoint(self.addrs[i], weight),
                ));
                self.counts.weight_changes += 1;
            }
            // Remove a server key, if none is out.
            40..65 => {
                if self.out.is_some() {
                    return;
                }
                let back_at = self.tick + u64::from(self.rng.between(1, MAX_OUT_TICKS));
                self.out = Some((i, back_at));
                self.send(Change::Remove(Key::from(self.addrs[i])));
                self.counts.removes += 1;
            }
            // A second key on an address already discovered.
            65..85 => {
                if self.extras.len() >= MAX_EXTRA {
                    return;
                }
                self.next_extra += 1;
                let key = Key::from(format!("extra-{}", self.next_extra));
                let weight = self.rng.between(1, MAX_WEIGHT);
                self.send(Change::Insert(key.clone(), endpoint(self.addrs[i], weight)));
                self.extras.push((key, self.addrs[i]));
                self.counts.inserts += 1;
            }
            // Remove an extra key, or change its weight.
            _ => {
                if self.extras.is_empty() {
                    return;
                }
                let j = self.rng.below(self.extras.len());
                if self.rng.below(2) == 0 {
                    let (key, _) = self.extras.swap_remove(j);
                    self.send(Change::Remove(key));
                    self.counts.removes += 1;
                } else {
                    let (key, addr) = self.extras[j].clone();
                    let weight = self.rng.between(1, MAX_WEIGHT);
                    self.send(Change::Insert(key, endpoint(addr, weight)));
                    self.counts.weight_changes += 1;
                }
            }
        }
    }

    fn send(&self, change: Change) {
        // The balancer is gone only once the run is over.
        let _ = self.tx.send(change);
    }
}
