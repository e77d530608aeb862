//! A fixed set of [`TestServer`]s that can be killed and restarted on their own addresses, so
//! discovery keeps pointing at them.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::TestServer;

/// How one server of a [`Fleet`] answers; re-applied after every restart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    /// Each call waits this long before answering.
    pub delay: Duration,
    /// A deterministic fraction of calls fail with `UNAVAILABLE: injected failure`
    /// (see [`TestServer::set_failure_rate`]).
    pub failure_rate: f64,
}

impl Behaviour {
    /// Answers every call after `delay`.
    pub fn healthy(delay: Duration) -> Self {
        Behaviour {
            delay,
            failure_rate: 0.0,
        }
    }
}

#[derive(Debug)]
struct Slot {
    name: String,
    addr: SocketAddr,
    behaviour: Behaviour,
    server: Mutex<Option<TestServer>>,
}

/// Servers named `{prefix}-1`, `{prefix}-2`, ... on 127.0.0.1, each killable and restartable
/// on its address.
///
/// [`kill`](Self::kill) and [`restart`](Self::restart) block the calling thread (a kill joins
/// the server's thread; a restart may wait for the port): call them from
/// `tokio::task::spawn_blocking` inside a runtime. Dropping the fleet kills what is still up,
/// which blocks too.
#[derive(Debug)]
pub struct Fleet {
    slots: Vec<Slot>,
}

impl Fleet {
    /// Starts one server per behaviour.
    pub fn start(prefix: &str, behaviours: &[Behaviour]) -> io::Result<Fleet> {
        let slots = behaviours
            .iter()
            .enumerate()
            .map(|(i, &behaviour)| {
                let name = format!("{prefix}-{}", i + 1);
                let server = TestServer::start(&name)?;
                apply(&server, behaviour);
                Ok(Slot {
                    name,
                    addr: server.addr(),
                    behaviour,
                    server: Mutex::new(Some(server)),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Fleet { slots })
    }

    /// Number of servers (up or down).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the fleet has no servers.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The address of server `i` (the same after every restart).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.slots[i].addr
    }

    /// The name of server `i`, as echoed in its replies.
    pub fn name(&self, i: usize) -> &str {
        &self.slots[i].name
    }

    /// The index of the server named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// Whether server `i` is running.
    pub fn is_up(&self, i: usize) -> bool {
        self.server(i).is_some()
    }

    /// Kills server `i` hard (see [`TestServer::kill`]); returns `false` if it was down.
    /// Blocks until its port is closed.
    pub fn kill(&self, i: usize) -> bool {
        let server = self.server(i).take();
        match server {
            Some(server) => {
                server.kill();
                true
            }
            None => false,
        }
    }

    /// Starts server `i` again on its address with its behaviour; a no-op if it is up.
    /// Blocks while the port is busy (up to ~2 s, see [`TestServer::start_on`]).
    pub fn restart(&self, i: usize) -> io::Result<()> {
        let slot = &self.slots[i];
        let mut guard = self.server(i);
        if guard.is_none() {
            let server = TestServer::start_on(&slot.name, slot.addr)?;
            apply(&server, slot.behaviour);
            *guard = Some(server);
        }
        Ok(())
    }

    /// Unary calls received by the running servers since they last (re)started.
    pub fn calls(&self) -> u64 {
        (0..self.len())
            .filter_map(|i| self.server(i).as_ref().map(TestServer::calls))
            .sum()
    }

    fn server(&self, i: usize) -> std::sync::MutexGuard<'_, Option<TestServer>> {
        // A poisoned slot only means a kill or restart panicked; the Option is still valid.
        self.slots[i]
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

fn apply(server: &TestServer, behaviour: Behaviour) {
    server.set_delay(behaviour.delay);
    server.set_failure_rate(behaviour.failure_rate);
}
