//! The connection task of one endpoint: connect eagerly, report up and down to the control
//! task, reconnect with backoff. Aborted when discovery removes the endpoint; the connection it
//! made keeps serving calls already in flight and closes after the last one.

use std::sync::Arc;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::discover::{Endpoint, Key};
use crate::endpoint::{ConnectionState, EndpointState};
use crate::time::{Backoff, now_ns};
use crate::transport::Connector;

/// What a connection task tells the control task. `generation` tells a live task from one that
/// was replaced (the endpoint's address changed) and whose last words must be ignored.
pub(crate) enum Event<T> {
    Up {
        key: Key,
        generation: u64,
        channel: T,
    },
    Down {
        key: Key,
        generation: u64,
        error: Option<String>,
    },
}

/// How a balancer dials: its connector, its reconnect backoff, and the slots that bound its
/// connection attempts under way at once (`Limits::max_connecting`).
pub(crate) struct Dialer<C> {
    pub(crate) connector: C,
    pub(crate) backoff: Backoff,
    pub(crate) slots: Arc<Semaphore>,
}

pub(crate) fn spawn_connection<C: Connector>(
    dialer: Arc<Dialer<C>>,
    key: Key,
    generation: u64,
    endpoint: Endpoint,
    state: Arc<EndpointState>,
    events: UnboundedSender<Event<C::Channel>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut rng = SmallRng::seed_from_u64(generation ^ now_ns());
        let mut failures: u32 = 0;
        loop {
            // A slot per attempt, given back when the attempt ends either way: after a restart
            // of every backend, a thousand endpoints do not dial at once.
            let slot = match dialer.slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    state.set_connection(ConnectionState::Queued);
                    tracing::debug!(endpoint = %key, "connection attempts at their limit (max_connecting); queued");
                    match dialer.slots.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        // Never closed: the task is aborted with its endpoint instead.
                        Err(_) => return,
                    }
                }
            };
            state.set_connection(ConnectionState::Connecting);
            let attempt = dialer.connector.connect(&endpoint).await;
            drop(slot);
            let error = match attempt {
                Ok(conn) => {
                    failures = 0;
                    state.set_connection(ConnectionState::Ready);
                    tracing::debug!(endpoint = %key, addr = %endpoint.addr(), "connected");
                    let up = Event::Up {
                        key: key.clone(),
                        generation,
                        channel: conn.channel,
                    };
                    if events.send(up).is_err() {
                        return;
                    }
                    let error = conn.closed.await.map(|e| e.to_string());
                    tracing::info!(
                        endpoint = %key,
                        addr = %endpoint.addr(),
                        error = error.as_deref().unwrap_or("closed by peer"),
                        "connection lost; leaving the ready set"
                    );
                    error.or_else(|| Some("connection closed".to_owned()))
                }
                Err(e) => {
                    tracing::debug!(endpoint = %key, addr = %endpoint.addr(), error = %e, "connect failed");
                    Some(e.to_string())
                }
            };
            failures = failures.saturating_add(1);
            state.set_connection(ConnectionState::Backoff);
            let down = Event::Down {
                key: key.clone(),
                generation,
                error,
            };
            if events.send(down).is_err() {
                return;
            }
            // The first reconnect after a connection that worked goes out quickly; repeated
            // failures back off.
            tokio::time::sleep(dialer.backoff.delay(failures, rng.random::<f64>())).await;
        }
    })
}
