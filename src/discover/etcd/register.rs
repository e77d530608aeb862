//! Registration for servers: one key under the prefix, bound to a lease kept alive, in the Go
//! naming convention, so clients (this crate's, and Go's resolver) see the instance come and go.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::client::Client;
use super::error::{EtcdError, EtcdErrorKind};
use super::proto::LeaseKeepAliveRequest;
use super::settings::Settings;
use crate::error::Error;

/// How to register one instance; made by [`Etcd::registration`](super::Etcd::registration).
///
/// The key is `<prefix><addr>` (the Go endpoints manager's layout) and the value
/// `{"Op":0,"Addr":"<addr>","Metadata":<metadata>}`, which Go's naming resolver and
/// [`GoNaming`](super::GoNaming) both read.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_lb::discover::etcd::Etcd;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let etcd = Etcd::new(["http://127.0.0.1:2379"], "services/echo");
/// let registration = etcd
///     .registration("10.0.0.7:50051".parse()?)
///     .ttl(Duration::from_secs(10))
///     .metadata(serde_json::json!({ "weight": 2 }))
///     .start()
///     .await?;
/// // ... serve ...
/// registration.deregister().await?; // the key is gone at once
/// # Ok(()) }
/// ```
pub struct RegistrationBuilder {
    settings: Result<Arc<Settings>, Error>,
    addr: SocketAddr,
    key: Option<String>,
    ttl: Duration,
    metadata: Value,
}

impl fmt::Debug for RegistrationBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationBuilder")
            .field("addr", &self.addr)
            .field("name", &self.key)
            .field("ttl", &self.ttl)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl RegistrationBuilder {
    pub(crate) fn new(settings: Result<Arc<Settings>, Error>, addr: SocketAddr) -> Self {
        RegistrationBuilder {
            settings,
            addr,
            key: None,
            ttl: Duration::from_secs(10),
            metadata: Value::Null,
        }
    }

    /// The lease's time to live, in whole seconds (at least 1 s; default 10 s): how long the key
    /// outlives an instance that stopped without deregistering. It is renewed every third of it.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The value's `Metadata` (default `null`). [`GoNaming`](super::GoNaming) reads `weight`,
    /// `priority` and `serverName` from an object.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// The key's name after the prefix instead of the address.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.key = Some(name.into());
        self
    }

    /// Grants the lease, writes the key, and starts keeping the lease alive in a task.
    ///
    /// Fails if no member can be reached (each tried once) or etcd refuses; the caller decides
    /// whether to retry. Once started, faults are retried with backoff: when the lease expired
    /// meanwhile, a new one is granted and the key written again.
    pub async fn start(self) -> Result<Registration, EtcdError> {
        let settings = self
            .settings
            .map_err(|e| EtcdError::new(EtcdErrorKind::Config, e.to_string()))?;
        let ttl = i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let key = format!(
            "{}{}",
            settings.prefix,
            self.key.unwrap_or_else(|| self.addr.to_string())
        );
        // Byte for byte what Go's endpoints manager writes (json.Marshal of its Update: fields
        // in declaration order).
        let value = format!(
            r#"{{"Op":0,"Addr":{},"Metadata":{}}}"#,
            Value::String(self.addr.to_string()),
            self.metadata
        )
        .into_bytes();
        let inner = Arc::new(Inner {
            settings,
            key,
            value,
            ttl,
            lease: AtomicI64::new(0),
        });
        let client = Client::connect(&inner.settings, 0).await?;
        inner.register(&client).await?;
        let task = tokio::spawn(inner.clone().keep_alive(client));
        Ok(Registration { inner, task })
    }
}

struct Inner {
    settings: Arc<Settings>,
    key: String,
    value: Vec<u8>,
    ttl: i64,
    lease: AtomicI64,
}

impl Inner {
    /// A new lease, and the key under it.
    async fn register(&self, client: &Client) -> Result<(), EtcdError> {
        let url = &self.settings.endpoints[client.member];
        let lease = client.grant(url, self.ttl).await?;
        client
            .put(url, &self.key, self.value.clone(), lease)
            .await?;
        self.lease.store(lease, Ordering::Relaxed);
        tracing::info!(key = %self.key, lease, ttl = self.ttl, member = %url, "etcd: registered");
        Ok(())
    }

    async fn keep_alive(self: Arc<Self>, first: Client) {
        let seed = crate::time::now_ns() ^ (Arc::as_ptr(&self) as usize as u64);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut client = Some(first);
        let mut next_member = 0;
        let mut failures = 0u32;
        loop {
            let error = match client.take() {
                Some(c) => {
                    next_member = c.member + 1;
                    match self.renew(&c, &mut failures).await {
                        Renewal::LeaseLost => match self.register(&c).await {
                            Ok(()) => {
                                client = Some(c);
                                continue;
                            }
                            Err(e) => e,
                        },
                        Renewal::Failed(e) => e,
                    }
                }
                None => match Client::connect(&self.settings, next_member).await {
                    Ok(c) => {
                        client = Some(c);
                        continue;
                    }
                    Err(e) => e,
                },
            };
            failures = failures.saturating_add(1);
            let delay = self.settings.backoff.delay(failures, rng.random::<f64>());
            tracing::warn!(key = %self.key, error = %error, retry_in = ?delay, "etcd: keeping the lease alive failed");
            tokio::time::sleep(delay).await;
        }
    }

    /// Renews the lease every third of its TTL until a fault, or until etcd says it is gone.
    async fn renew(&self, client: &Client, failures: &mut u32) -> Renewal {
        let url = &self.settings.endpoints[client.member];
        let mut id = self.lease.load(Ordering::Relaxed);
        let (tx, mut responses) = match client.keep_alive(url, id).await {
            Ok(stream) => stream,
            Err(e) => return Renewal::Failed(e),
        };
        let period = Duration::from_millis((self.ttl as u64).saturating_mul(1000) / 3)
            .max(Duration::from_millis(300));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is now: that renewal was sent with the call
        let mut first = true;
        loop {
            if !first {
                tick.tick().await;
                id = self.lease.load(Ordering::Relaxed);
                if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
                    return Renewal::Failed(EtcdError::new(
                        EtcdErrorKind::Unreachable,
                        format!("{url}: the keep-alive stream closed"),
                    ));
                }
            }
            first = false;
            let answer = tokio::time::timeout(client.request_timeout(), responses.message()).await;
            match answer {
                Ok(Ok(Some(answer))) if answer.ttl > 0 => *failures = 0,
                Ok(Ok(Some(_))) => {
                    let error = EtcdError::new(
                        EtcdErrorKind::LeaseLost,
                        format!(
                            "lease {id} of {} expired or was revoked; registering again",
                            self.key
                        ),
                    );
                    tracing::warn!(error = %error, "etcd");
                    return Renewal::LeaseLost;
                }
                Ok(Ok(None)) => {
                    return Renewal::Failed(EtcdError::new(
                        EtcdErrorKind::Unreachable,
                        format!("{url}: the keep-alive stream ended"),
                    ));
                }
                Ok(Err(status)) => {
                    return Renewal::Failed(EtcdError::from_status(
                        &format!("{url} lease keep-alive"),
                        &status,
                    ));
                }
                Err(_) => {
                    return Renewal::Failed(EtcdError::new(
                        EtcdErrorKind::Unreachable,
                        format!("{url} lease keep-alive: no answer"),
                    ));
                }
            }
        }
    }
}

enum Renewal {
    LeaseLost,
    Failed(EtcdError),
}

/// A registered instance: its key stays while the lease is kept alive.
///
/// [`deregister`](Self::deregister) removes the key at once (call it on shutdown, before the
/// server stops serving, so clients stop sending first). Dropping the registration, or
/// [`stop_keep_alive`](Self::stop_keep_alive), only stops the renewals: the key goes when the
/// lease expires, which is what a crashed instance looks like.
pub struct Registration {
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("key", &self.inner.key)
            .field("lease", &self.lease())
            .field("ttl_secs", &self.inner.ttl)
            .finish()
    }
}

impl Registration {
    /// The full key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The current lease's id (a new one after a lease was lost and the key written again).
    pub fn lease(&self) -> i64 {
        self.inner.lease.load(Ordering::Relaxed)
    }

    /// Stops renewing the lease and leaves the key to expire with it (within the TTL).
    pub fn stop_keep_alive(self) {
        self.task.abort();
    }

    /// Stops renewing and revokes the lease, which deletes the key at once.
    ///
    /// If no member answers, the key still goes when the lease expires; the error says so.
    pub async fn deregister(self) -> Result<(), EtcdError> {
        self.task.abort();
        let inner = &self.inner;
        let lease = self.lease();
        let client = Client::connect(&inner.settings, 0).await?;
        let url = &inner.settings.endpoints[client.member];
        match client.revoke(url, lease).await {
            Ok(()) => {
                tracing::info!(key = %inner.key, lease, "etcd: deregistered");
                Ok(())
            }
            // Already expired or revoked: the key is gone.
            Err(e) if e.kind() == EtcdErrorKind::Rejected && e.message().contains("not found") => {
                Ok(())
            }
            Err(e) => Err(EtcdError::new(
                e.kind(),
                format!(
                    "{}; {} goes when its lease expires (within {} s)",
                    e.message(),
                    inner.key,
                    inner.ttl
                ),
            )),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.task.abort();
    }
}
