//! The discovery task: connect, list the prefix at a revision, watch from the next one,
//! resume after a fault from the last revision seen, list again after a compaction.

use std::sync::Arc;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::sync::mpsc;

use super::client::Client;
use super::decode::{Decoder, MAX_VALUE_BYTES};
use super::error::{EtcdError, EtcdErrorKind};
use super::proto::{KeyValue, event::EventType};
use super::settings::Settings;
use super::state::KeySet;
use super::status::EtcdStatus;
use crate::discover::{Change, Endpoint};

/// How a session ended.
enum End {
    /// The stream was dropped: stop.
    Closed,
    /// A fault: back off, reconnect, resume from the last revision.
    Failed(EtcdError),
}

/// Values that named no endpoint in one batch: counted, with the first as the example, so a
/// hostile prefix cannot flood the log.
#[derive(Default)]
struct Skipped {
    count: usize,
    first: Option<(String, String)>,
}

impl Skipped {
    fn add(&mut self, key: &str, why: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((key.to_owned(), why));
        }
    }

    fn into_error(self) -> Option<EtcdError> {
        let (key, why) = self.first?;
        let more = match self.count {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        Some(EtcdError::new(
            EtcdErrorKind::BadValue,
            format!("key {key:?} names no endpoint: {why}{more}"),
        ))
    }
}

pub(crate) struct Watcher {
    settings: Arc<Settings>,
    decoder: Arc<dyn Decoder>,
    out: mpsc::Sender<Result<Change, EtcdError>>,
    status: EtcdStatus,
    set: KeySet,
    /// The last revision seen (0: never listed).
    revision: i64,
    /// Whether the set is the registry's as of `revision` (false: list before watching).
    listed: bool,
    /// The member to try first on the next connection.
    next_member: usize,
    failures: u32,
    rng: SmallRng,
}

impl Watcher {
    pub(crate) fn new(
        settings: Arc<Settings>,
        decoder: Arc<dyn Decoder>,
        out: mpsc::Sender<Result<Change, EtcdError>>,
        status: EtcdStatus,
    ) -> Self {
        let seed = crate::time::now_ns() ^ (Arc::as_ptr(&settings) as usize as u64);
        Watcher {
            settings,
            decoder,
            out,
            status,
            set: KeySet::default(),
            revision: 0,
            listed: false,
            next_member: 0,
            failures: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let error = match self.session().await {
                End::Closed => return,
                End::Failed(error) => error,
            };
            self.failures = self.failures.saturating_add(1);
            let delay = self
                .settings
                .backoff
                .delay(self.failures, self.rng.random::<f64>());
            tracing::warn!(
                prefix = %self.settings.prefix,
                error = %error,
                endpoints = self.set.len(),
                retry_in = ?delay,
                "etcd discovery: keeping the last good set, reconnecting"
            );
            self.status.failed(&error);
            if self.out.send(Err(error)).await.is_err() {
                return;
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// One connection: list if needed, then watch until a fault.
    async fn session(&mut self) -> End {
        let client = match Client::connect(&self.settings, self.next_member).await {
            Ok(client) => client,
            Err(e) => return End::Failed(e),
        };
        // Whatever ends this session, the next one starts with another member.
        self.next_member = client.member + 1;
        let url = self.settings.endpoints[client.member].clone();
        loop {
            if !self.listed
                && let Err(e) = self.list(&client, &url).await
            {
                return e;
            }
            match self.watch(&client, &url).await {
                Ok(()) => {
                    // Compacted past our revision: list again on the same member, at once.
                    self.listed = false;
                }
                Err(end) => return end,
            }
        }
    }

    async fn list(&mut self, client: &Client, url: &str) -> Result<(), End> {
        let (revision, kvs) = client
            .list(url, self.settings.prefix.as_bytes())
            .await
            .map_err(End::Failed)?;
        let mut skipped = Skipped::default();
        let mut list = Vec::with_capacity(kvs.len());
        for kv in kvs {
            if let Some(endpoint) = self.decode(&kv, &mut skipped) {
                list.push((kv.key, endpoint));
            }
        }
        self.set.replace(list);
        self.revision = revision;
        self.listed = true;
        self.status.listed();
        tracing::debug!(prefix = %self.settings.prefix, revision, member = url, "etcd discovery: listed");
        self.publish(skipped).await
    }

    /// Watches from the revision after the last seen. `Ok` when a compaction overtook it.
    async fn watch(&mut self, client: &Client, url: &str) -> Result<(), End> {
        let start = self.revision + 1;
        let (_requests, mut responses) = client
            .watch(url, self.settings.prefix.as_bytes(), start)
            .await
            .map_err(End::Failed)?;
        loop {
            let response = match responses.message().await {
                Ok(Some(response)) => response,
                Ok(None) => {
                    return Err(End::Failed(EtcdError::new(
                        EtcdErrorKind::Unreachable,
                        format!("{url}: the watch stream ended"),
                    )));
                }
                Err(status) => {
                    return Err(End::Failed(EtcdError::from_status(
                        &format!("{url} watch"),
                        &status,
                    )));
                }
            };
            if response.compact_revision > 0 {
                let error = EtcdError::new(
                    EtcdErrorKind::Compacted,
                    format!(
                        "{url}: revisions up to {} were compacted, the watch needed {start}; \
                         listing the prefix again",
                        response.compact_revision
                    ),
                );
                tracing::info!(prefix = %self.settings.prefix, error = %error, "etcd discovery");
                if self.out.send(Err(error)).await.is_err() {
                    return Err(End::Closed);
                }
                return Ok(());
            }
            if response.canceled {
                return Err(End::Failed(EtcdError::new(
                    EtcdErrorKind::WatchCanceled,
                    format!("{url}: {}", response.cancel_reason),
                )));
            }
            if response.created {
                self.failures = 0;
                self.status.watching_on(url);
                tracing::debug!(prefix = %self.settings.prefix, from = start, member = url, "etcd discovery: watching");
            }
            if response.events.is_empty() {
                // A progress notification: every event up to its revision has been sent.
                if !response.created {
                    let revision = response.header.as_ref().map_or(0, |h| h.revision);
                    self.revision = self.revision.max(revision);
                }
                continue;
            }
            let mut skipped = Skipped::default();
            for event in response.events {
                let Some(kv) = event.kv else { continue };
                self.revision = self.revision.max(kv.mod_revision);
                if event.r#type == EventType::Delete as i32 {
                    self.set.delete(&kv.key);
                } else {
                    let endpoint = self.decode(&kv, &mut skipped);
                    self.set.put(&kv.key, endpoint);
                }
            }
            self.publish(skipped).await?;
        }
    }

    fn decode(&self, kv: &KeyValue, skipped: &mut Skipped) -> Option<Endpoint> {
        let key = String::from_utf8_lossy(&kv.key);
        let shown: String = key.chars().take(200).collect();
        if kv.value.len() > MAX_VALUE_BYTES {
            skipped.add(
                &shown,
                format!(
                    "a value of {} bytes, above the limit of {MAX_VALUE_BYTES}",
                    kv.value.len()
                ),
            );
            return None;
        }
        match self.decoder.decode(&key, &kv.value) {
            Ok(endpoint) => Some(endpoint),
            Err(why) => {
                skipped.add(&shown, why);
                None
            }
        }
    }

    /// Sends what changed, then the batch's skipped values as one `Err` item.
    async fn publish(&mut self, skipped: Skipped) -> Result<(), End> {
        for change in self.set.changes() {
            if self.out.send(Ok(change)).await.is_err() {
                return Err(End::Closed);
            }
        }
        self.status.published(self.revision, self.set.len());
        if let Some(error) = skipped.into_error() {
            tracing::warn!(prefix = %self.settings.prefix, error = %error, "etcd discovery: values skipped");
            if self.out.send(Err(error)).await.is_err() {
                return Err(End::Closed);
            }
        }
        Ok(())
    }
}
