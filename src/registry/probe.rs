//! Probing a connection after a call on it timed out.
//!
//! A frozen server (a stopped process, a deadlocked runtime) keeps its TCP connection: the
//! kernel still acknowledges, and HTTP/2 keep-alive notices only after its interval and
//! timeout (30 s by default). When a call hits its deadline, the control task asks the
//! endpoint's channel to probe: a live server answers at once, a frozen one does not, and the
//! channel closes the connection. The endpoint then leaves the ready set, and a reconnection
//! counts only once the server speaks again (see the transport's `first_read.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::control::Registry;
use crate::endpoint::EndpointState;
use crate::transport::{Connector, EndpointChannel};

/// How long a probe waits for an answer. A live server answers a probe within a round trip
/// and a scheduling delay; a second of silence on a connection where a call just timed out is
/// a peer that is not there. An alive but overloaded server may lose its connection to this
/// and reconnects at once.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl<C: Connector> Registry<C> {
    /// Probes the connection of `state`'s endpoint, if it is live and has one.
    pub(super) fn probe(&mut self, state: &Arc<EndpointState>) {
        let probe = self
            .entry_of(state)
            .and_then(|key| self.entries.get(&key))
            .and_then(|entry| entry.channel.as_ref())
            .and_then(|channel| channel.probe(PROBE_TIMEOUT));
        let Some(probe) = probe else {
            state.probing.store(false, Relaxed);
            return;
        };
        let state = state.clone();
        tokio::spawn(async move {
            probe.await;
            state.probing.store(false, Relaxed);
        });
    }
}
