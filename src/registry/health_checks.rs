//! Active health checks from the control task's side: starting an endpoint's check when its
//! connection comes up, and taking its verdicts.

use std::sync::Arc;

use tokio::task::JoinHandle;

#[cfg(feature = "health")]
use super::check_task::spawn_health_check;
use super::control::Registry;
use crate::discover::Key;
use crate::endpoint::EndpointState;
#[cfg(feature = "health")]
use crate::endpoint::Signal;
#[cfg(feature = "health")]
use crate::health::Verdict;
use crate::transport::Connector;

impl<C: Connector> Registry<C> {
    #[cfg(feature = "health")]
    pub(super) fn on_verdict(
        &mut self,
        state: &Arc<EndpointState>,
        epoch: u64,
        verdict: Verdict,
    ) -> bool {
        let Some(key) = self.entry_of(state) else {
            return false;
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return false;
        };
        if entry.check.epoch != epoch {
            return false;
        }
        let serving = matches!(verdict, Verdict::Serving | Verdict::NoHealthService);
        let unknown = matches!(verdict, Verdict::ServiceUnknown(_));
        match &verdict {
            Verdict::Serving => {
                tracing::info!(endpoint = %key, addr = %entry.endpoint.addr(), "health check: SERVING")
            }
            Verdict::NoHealthService => tracing::info!(
                endpoint = %key,
                addr = %entry.endpoint.addr(),
                "health check: no grpc.health.v1 service; counted as healthy (gRPC A17)"
            ),
            Verdict::NotServing(why) => tracing::warn!(
                endpoint = %key,
                addr = %entry.endpoint.addr(),
                reason = %why,
                "health check: not serving; leaving the ready set"
            ),
            Verdict::ServiceUnknown(why) => tracing::warn!(
                endpoint = %key,
                addr = %entry.endpoint.addr(),
                service = self.health.check.as_ref().map_or("", |c| c.service_name()),
                reason = %why,
                "health check: the server does not know the checked service; a configuration error (check the health check's service name), not an outage; leaving the ready set"
            ),
        }
        let changed = entry.check.serving != Some(serving) || entry.check.unknown != unknown;
        entry.check.serving = Some(serving);
        entry.check.unknown = unknown;
        entry.state.set_checked(entry.check.health());
        if changed {
            self.touch(&key);
        }
        changed
    }

    /// The service name the health checks ask for, if checks are on.
    #[cfg(feature = "health")]
    pub(super) fn checked_service(&self) -> Option<&str> {
        self.health.check.as_ref().map(|c| c.service_name())
    }

    #[cfg(not(feature = "health"))]
    pub(super) fn checked_service(&self) -> Option<&str> {
        None
    }

    /// Starts the health check of an endpoint whose connection just came up, if checks are on.
    #[cfg(feature = "health")]
    pub(super) fn health_check_for(
        &self,
        key: &Key,
        state: &Arc<EndpointState>,
        channel: &C::Channel,
        epoch: u64,
    ) -> Option<JoinHandle<()>> {
        let config = self.health.check.clone()?;
        let signals = self.signals_tx.clone();
        let state = state.clone();
        Some(spawn_health_check(
            channel.clone(),
            config,
            key.clone(),
            move |verdict| {
                let _ = signals.send(Signal::Health {
                    state: state.clone(),
                    epoch,
                    verdict,
                });
            },
        ))
    }

    #[cfg(not(feature = "health"))]
    pub(super) fn health_check_for(
        &self,
        _key: &Key,
        _state: &Arc<EndpointState>,
        _channel: &C::Channel,
        _epoch: u64,
    ) -> Option<JoinHandle<()>> {
        None
    }
}
