//! Membership: discovery's inserts and removes, the endpoint limit and its standby list.

use std::sync::Arc;

use tokio::time::Instant;

use super::connection::spawn_connection;
use super::control::Registry;
use super::entry::{CheckState, Ejection, Entry};
use super::published::Standing;
use crate::discover::{Change, Endpoint, Key};
use crate::endpoint::EndpointState;
use crate::error::BoxError;
use crate::transport::Connector;

impl<C: Connector> Registry<C> {
    pub(super) fn on_discovery<E: Into<BoxError>>(
        &mut self,
        change: Option<Result<Change, E>>,
        discovering: &mut bool,
    ) -> bool {
        if !self.discovery_answered {
            // The reason an empty set gives changes from "discovering".
            self.discovery_answered = true;
            self.publish.noted(Instant::now());
        }
        if matches!(change, Some(Ok(_))) && self.discovery_error.take().is_some() {
            tracing::info!("discovery delivers changes again");
            self.publish.noted(Instant::now());
        }
        match change {
            Some(Ok(Change::Insert(key, endpoint))) => self.insert(key, endpoint),
            Some(Ok(Change::Remove(key))) => self.remove(&key),
            Some(Err(e)) => {
                let e: BoxError = e.into();
                tracing::warn!(error = %e, "discovery error; keeping the current endpoint set");
                self.discovery_error = Some((e.to_string(), Instant::now()));
                self.publish.noted(Instant::now());
                false
            }
            None => {
                *discovering = false;
                tracing::info!(
                    endpoints = self.entries.len(),
                    "discovery stream ended; keeping the current endpoint set"
                );
                false
            }
        }
    }

    fn insert(&mut self, key: Key, endpoint: Endpoint) -> bool {
        if let Some(entry) = self.entries.get_mut(&key) {
            // A new server name is a new TLS peer identity: the connection made under the
            // old name must not carry on, so it reconnects like a new address.
            if entry.endpoint.addr() == endpoint.addr()
                && entry.endpoint.server_name() == endpoint.server_name()
            {
                if entry.endpoint == endpoint {
                    return false;
                }
                tracing::debug!(endpoint = %key, weight = endpoint.weight(), priority = endpoint.priority(), "weight or priority updated");
                entry.endpoint = endpoint;
                self.touch(&key);
                return true;
            }
            tracing::info!(endpoint = %key, from = %entry.endpoint.addr(), to = %endpoint.addr(), from_name = entry.endpoint.server_name(), to_name = endpoint.server_name(), "address or server name changed; reconnecting");
        } else if self.entries.len() >= self.max_endpoints {
            return self.hold_back(key, endpoint);
        } else {
            self.standby.remove(&key);
            tracing::info!(endpoint = %key, addr = %endpoint.addr(), weight = endpoint.weight(), priority = endpoint.priority(), "endpoint added");
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let state = Arc::new(EndpointState::new(
            key.clone(),
            endpoint.addr(),
            &self.defaults,
        ));
        let task = spawn_connection(
            self.dialer.clone(),
            key.clone(),
            generation,
            endpoint.clone(),
            state.clone(),
            self.events_tx.clone(),
        );
        // Replacing an entry drops the old one, which aborts its connection task.
        let entry = Entry {
            endpoint,
            state,
            generation,
            task,
            channel: None,
            last_error: None,
            ejection: Ejection::default(),
            check: CheckState::default(),
            joined: None,
            reports: None,
            counted: Standing::default(),
        };
        self.touch(&key);
        let replaced = self.entries.insert(key, entry);
        if let Some(old) = &replaced {
            self.retire(old);
        }
        self.update_ejection_cap();
        if replaced.is_some() || self.entries.len() == 1 {
            // The old connection, perhaps a ready one, is gone: calls must see it at once. Or
            // this is the first endpoint: a failing call's reason should say it is connecting.
            return true;
        }
        // New and still connecting: only the snapshot shows it until its connection's
        // outcome, which is published at once.
        self.publish.noted(Instant::now());
        false
    }

    /// Removes an endpoint, or forgets it if it waited on standby; room made lets the first
    /// standby endpoint join.
    fn remove(&mut self, key: &Key) -> bool {
        if self.standby.remove(key).is_some() {
            return true;
        }
        match self.entries.remove(key) {
            Some(entry) => {
                tracing::info!(endpoint = %key, addr = %entry.endpoint.addr(), in_flight = entry.state.load.in_flight(), "endpoint removed; draining in-flight calls");
                self.retire(&entry);
                self.touch(key);
                if let Some(reported) = &entry.state.reported {
                    reported.retire();
                }
                self.update_ejection_cap();
                self.promote_standby();
                true
            }
            None => {
                tracing::warn!(endpoint = %key, "discovery removed an unknown endpoint; ignored");
                false
            }
        }
    }

    /// An endpoint beyond `max_endpoints`: on standby while there is room (as many again),
    /// with a warning when it first goes there; else dropped, with a warning each time.
    fn hold_back(&mut self, key: Key, endpoint: Endpoint) -> bool {
        let max = self.max_endpoints;
        if self.standby.contains_key(&key) || self.standby.len() < max {
            if self.standby.insert(key.clone(), endpoint).is_none() {
                tracing::warn!(endpoint = %key, max_endpoints = max, standby = self.standby.len(), "endpoint limit reached; endpoint on standby until another leaves");
            }
            // Only the snapshot's standby count changes.
            self.publish.noted(Instant::now());
            return false;
        }
        self.refused += 1;
        tracing::warn!(endpoint = %key, max_endpoints = max, refused = self.refused, "endpoint limit reached and the standby list is full; endpoint dropped");
        false
    }

    /// Room was made: the first endpoint on standby (in key order) joins.
    fn promote_standby(&mut self) {
        if self.entries.len() < self.max_endpoints
            && let Some((key, endpoint)) = self.standby.pop_first()
        {
            tracing::info!(endpoint = %key, standby = self.standby.len(), "endpoint joins from standby");
            self.insert(key, endpoint);
        }
    }
}
