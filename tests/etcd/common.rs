//! Shared by the etcd tests: a watcher that applies a discovery stream to a map, bounded waits.
//! Callers and the wait for ready endpoints are the DNS tests' (`load`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_lb::discover::etcd::{EtcdDiscovery, EtcdError, EtcdErrorKind};
use tower_lb::discover::{Change, Endpoint};
use tower_lb::{Backoff, Balancer};

/// Quick reconnection for tests.
pub fn fast_backoff() -> Backoff {
    Backoff::default()
        .initial(Duration::from_millis(50))
        .max(Duration::from_millis(500))
}

/// Polls `done` every 10 ms for up to `secs` seconds; panics with `what` if it never holds.
pub async fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a discovery stream said, applied: the set by key, every change and error seen.
#[derive(Default)]
pub struct Seen {
    pub set: BTreeMap<String, Endpoint>,
    pub inserts: usize,
    pub removes: usize,
    pub errors: Vec<EtcdError>,
}

impl Seen {
    pub fn addrs(&self) -> Vec<String> {
        self.set.keys().cloned().collect()
    }

    pub fn errors_of(&self, kind: EtcdErrorKind) -> Vec<&EtcdError> {
        self.errors.iter().filter(|e| e.kind() == kind).collect()
    }
}

/// Reads a discovery stream in a task.
pub struct Watcher {
    pub seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Watcher {
    pub fn start(mut discovery: EtcdDiscovery) -> Watcher {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Some(item) = discovery.next().await {
                    let mut seen = seen.lock().unwrap();
                    match item {
                        Ok(Change::Insert(key, endpoint)) => {
                            seen.inserts += 1;
                            seen.set.insert(key.to_string(), endpoint);
                        }
                        Ok(Change::Remove(key)) => {
                            seen.removes += 1;
                            assert!(
                                seen.set.remove(key.as_str()).is_some(),
                                "removed {key}, never inserted"
                            );
                        }
                        Err(e) => seen.errors.push(e),
                    }
                }
            }
        });
        Watcher { seen, task }
    }

    pub fn with<R>(&self, f: impl FnOnce(&Seen) -> R) -> R {
        f(&self.seen.lock().unwrap())
    }

    pub async fn wait_for(&self, secs: u64, what: &str, mut done: impl FnMut(&Seen) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.with(&mut done) {
            assert!(
                Instant::now() < deadline,
                "never: {what}; set {:?}, errors {:?}",
                self.with(|s| s.addrs()),
                self.with(|s| s.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A balancer that reconnects fast.
pub fn balancer(discovery: EtcdDiscovery) -> Balancer {
    Balancer::builder()
        .backoff(
            Backoff::default()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(200)),
        )
        .build(discovery)
        .expect("balancer")
}
