//! `EtcdDiscovery`: the stream a balancer reads, fed by the discovery task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::decode::Decoder;
use super::error::EtcdError;
use super::settings::Settings;
use super::status::EtcdStatus;
use super::watch::Watcher;
use crate::discover::Change;

/// Changes queued between the task and the balancer.
const QUEUE: usize = 1_024;

/// The stream made by [`Etcd::build`](super::Etcd::build): endpoint changes from the watched
/// prefix, and an `Err` item for each fault (the set is kept) and each batch of skipped values.
///
/// It never ends. It is `Send`, `Unpin` and `'static`; pass it to
/// [`Builder::build`](crate::Builder::build). It must be polled inside a tokio runtime: the
/// first poll starts the task that talks to etcd, and dropping the stream stops it.
pub struct EtcdDiscovery {
    rx: mpsc::Receiver<Result<Change, EtcdError>>,
    start: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    task: Option<AbortHandle>,
    status: EtcdStatus,
    prefix: String,
}

impl fmt::Debug for EtcdDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdDiscovery")
            .field("prefix", &self.prefix)
            .field("started", &self.task.is_some())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl EtcdDiscovery {
    pub(crate) fn start(settings: Arc<Settings>, decoder: Arc<dyn Decoder>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let status = EtcdStatus::default();
        let prefix = settings.prefix.clone();
        let watcher = Watcher::new(settings, decoder, tx, status.clone());
        EtcdDiscovery {
            rx,
            start: Some(Box::pin(watcher.run())),
            task: None,
            status,
            prefix,
        }
    }

    /// The task's state: watching or keeping the last good set, the revision, the last fault.
    pub fn status(&self) -> EtcdStatus {
        self.status.clone()
    }
}

impl Stream for EtcdDiscovery {
    type Item = Result<Change, EtcdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(start) = self.start.take() {
            self.task = Some(tokio::spawn(start).abort_handle());
        }
        self.rx.poll_recv(cx)
    }
}

impl Drop for EtcdDiscovery {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
