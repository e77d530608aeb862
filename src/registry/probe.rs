//! Probing a connection after a call on it timed out.
//!
//! A frozen server (a stopped process, a deadlocked runtime) keeps its TCP connection: the
//! kernel still acknowledges, and HTTP/2 keep-alive notices only after its interval and
//! timeout (5 minutes and 20 s by default). When a call hits its deadline, the control task
//! asks the endpoint's channel to probe (HTTP/2 PING, see the transport's `ping.rs`): a live server
//! answers at once however busy, a frozen one does not, and the channel closes the
//! connection. The endpoint then leaves the ready set, and a reconnection counts only once the
//! server speaks again (the transport's `first_read.rs`).
//!
//! One probe at a time per endpoint, and after an answer none for [`PROBE_SPACING`]: a server
//! whose calls keep timing out while it answers PINGs (slow handlers, a deadlocked
//! application on a live HTTP/2 stack) gets a PING every few seconds, not one per timeout.
//! gRPC servers count PINGs from a client that arrive while they send nothing ("ping
//! strikes") and may answer too many with GOAWAY; at this rate that takes seconds, and costs a
//! reconnection to a server that was not answering anyway.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::control::Registry;
use crate::endpoint::EndpointState;
use crate::transport::{Connector, EndpointChannel};

/// How long a probe waits for an answer. A live server's HTTP/2 layer answers a PING within a
/// round trip and a scheduling delay, ahead of queued requests; a second of silence on a
/// connection where a call just timed out is a peer that is not there.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// After an answered probe, how long before the endpoint's connection is probed again.
const PROBE_SPACING: Duration = Duration::from_secs(2);

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
            tokio::time::sleep(PROBE_SPACING).await;
            state.probing.store(false, Relaxed);
        });
    }
}
