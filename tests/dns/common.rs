//! Helpers shared by the DNS tests: a watcher that reads a discovery stream into a set, and
//! test-friendly settings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_lb::discover::dns::{Dns, DnsDiscovery, DnsError, DnsErrorKind};
use tower_lb::discover::{Change, Endpoint, Key};

/// A resolver that gives up fast, for fault tests.
pub fn fast(dns: Dns, server: SocketAddr) -> Dns {
    dns.name_servers([server])
        .timeout(Duration::from_millis(300))
        .attempts(2)
        .ttl_bounds(Duration::from_secs(1), Duration::from_secs(30))
        .backoff(
            tower_lb::Backoff::default()
                .initial(Duration::from_millis(200))
                .max(Duration::from_secs(1)),
        )
}

/// Everything a stream has said so far.
#[derive(Debug, Default)]
pub struct Seen {
    /// The set the changes add up to.
    pub set: BTreeMap<Key, Endpoint>,
    /// Every change, in order.
    pub changes: Vec<Change>,
    /// Every error item, in order.
    pub errors: Vec<DnsError>,
    /// Changes that changed nothing (an insert of what was there, a remove of what was not):
    /// a diffing stream sends none.
    pub redundant: usize,
}

impl Seen {
    /// `(addr, priority, weight)` of every endpoint, sorted.
    pub fn endpoints(&self) -> Vec<(String, u32, u32)> {
        self.set
            .values()
            .map(|e| (e.addr().to_string(), e.priority(), e.weight()))
            .collect()
    }

    /// `(addr, server name)` of every endpoint, sorted by key.
    pub fn names(&self) -> Vec<(String, Option<String>)> {
        self.set
            .values()
            .map(|e| (e.addr().to_string(), e.server_name().map(str::to_owned)))
            .collect()
    }

    pub fn errors_of(&self, kind: DnsErrorKind) -> usize {
        self.errors.iter().filter(|e| e.kind() == kind).count()
    }
}

/// Reads a discovery stream in a task.
pub struct Watch {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The longest a test waits for a condition.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn watch(mut discovery: DnsDiscovery) -> Watch {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            // Bounded like every loop here: far more items than any test produces.
            for _ in 0..1_000_000 {
                let Some(item) = discovery.next().await else {
                    return;
                };
                let mut seen = seen.lock().unwrap();
                match item {
                    Ok(change) => {
                        match &change {
                            Change::Insert(key, endpoint) => {
                                if seen.set.insert(key.clone(), endpoint.clone()).as_ref()
                                    == Some(endpoint)
                                {
                                    seen.redundant += 1;
                                }
                            }
                            Change::Remove(key) => {
                                if seen.set.remove(key).is_none() {
                                    seen.redundant += 1;
                                }
                            }
                        }
                        seen.changes.push(change);
                    }
                    Err(e) => seen.errors.push(e),
                }
            }
        }
    });
    Watch { seen, task }
}

impl Watch {
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// Waits (at most [`WAIT`]) until `cond` holds; panics with `what` and the state if not.
    pub async fn until(&self, what: &str, cond: impl Fn(&Seen) -> bool) {
        self.until_within(what, WAIT, cond).await
    }

    pub async fn until_within(&self, what: &str, within: Duration, cond: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            {
                let seen = self.seen();
                if cond(&seen) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}; endpoints {:?}, last errors {:?}",
                    seen.endpoints(),
                    seen.errors.iter().rev().take(3).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the set is exactly `want` (`(addr, priority, weight)`, any order).
    pub async fn until_endpoints(&self, want: &[(&str, u32, u32)]) {
        let mut want: Vec<(String, u32, u32)> = want
            .iter()
            .map(|&(a, p, w)| (a.to_string(), p, w))
            .collect();
        want.sort();
        self.until(&format!("endpoints {want:?}"), |s| {
            let mut got = s.endpoints();
            got.sort();
            got == want
        })
        .await
    }

    /// How many changes have been seen (a mark for [`changes_since`](Self::changes_since)).
    pub fn mark(&self) -> usize {
        self.seen().changes.len()
    }

    /// The changes since `mark`, compared by address, priority and weight: the endpoints'
    /// TLS server names are left out here (`Seen::names` checks them).
    pub fn changes_since(&self, mark: usize) -> Vec<Change> {
        self.seen().changes[mark..].iter().map(unnamed).collect()
    }
}

/// An insert of `addr` with this priority and weight.
pub fn insert(addr: &str, priority: u32, weight: u32) -> Change {
    let endpoint: Endpoint = addr.parse().unwrap();
    Change::Insert(
        Key::from(addr),
        endpoint
            .with_weight(weight)
            .unwrap()
            .with_priority(priority),
    )
}

/// `change` with the endpoint's server name left out.
fn unnamed(change: &Change) -> Change {
    match change {
        Change::Insert(key, e) => Change::Insert(
            key.clone(),
            Endpoint::new(e.addr())
                .and_then(|u| u.with_weight(e.weight()))
                .unwrap()
                .with_priority(e.priority()),
        ),
        Change::Remove(key) => Change::Remove(key.clone()),
    }
}

pub fn remove(addr: &str) -> Change {
    Change::Remove(Key::from(addr))
}
