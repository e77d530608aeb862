//! One connection to one etcd member, authenticated: the calls discovery and registration make.

use std::time::Duration;

use futures_core::Stream;
use tokio::sync::mpsc;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};
use tonic::{Request, Streaming};

use super::error::{EtcdError, EtcdErrorKind};
use super::proto::auth_client::AuthClient;
use super::proto::kv_client::KvClient;
use super::proto::lease_client::LeaseClient;
use super::proto::watch_client::WatchClient;
use super::proto::{
    AuthenticateRequest, KeyValue, LeaseGrantRequest, LeaseKeepAliveRequest,
    LeaseKeepAliveResponse, LeaseRevokeRequest, PutRequest, RangeRequest, WatchRequest,
    WatchResponse,
};
use super::settings::Settings;

/// Keys per page of a list (each page is read at the first page's revision).
const PAGE: i64 = 1_000;

/// The largest message read from etcd: a page of keys, or a watch response, whose values may be
/// large (etcd accepts values up to its `--max-request-bytes`, 1.5 MiB by default).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A connection to one member.
pub(crate) struct Client {
    channel: Channel,
    token: Option<AsciiMetadataValue>,
    /// Which of the settings' endpoints this is.
    pub(crate) member: usize,
    request_timeout: Duration,
}

impl Client {
    /// Connects to the first member that answers, trying each once from `start` on. On failure
    /// returns the last member's error.
    pub(crate) async fn connect(settings: &Settings, start: usize) -> Result<Client, EtcdError> {
        let n = settings.endpoints.len();
        let mut last = None;
        for i in 0..n {
            let member = (start + i) % n;
            match Self::connect_one(settings, member).await {
                Ok(client) => return Ok(client),
                Err(e) => {
                    tracing::debug!(member = %settings.endpoints[member], error = %e, "etcd member not reachable");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| EtcdError::new(EtcdErrorKind::Config, "no etcd endpoints")))
    }

    async fn connect_one(settings: &Settings, member: usize) -> Result<Client, EtcdError> {
        let url = &settings.endpoints[member];
        let config = |e: &dyn std::fmt::Display| {
            EtcdError::new(EtcdErrorKind::Config, format!("{url}: {e}"))
        };
        let mut endpoint = TonicEndpoint::from_shared(url.clone())
            .map_err(|e| config(&e))?
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(settings.request_timeout)
            .keep_alive_while_idle(true);
        if let Some(tls) = &settings.tls {
            endpoint = endpoint
                .tls_config(tls.client_config())
                .map_err(|e| config(&e))?;
        }
        let channel = tokio::time::timeout(settings.connect_timeout, endpoint.connect())
            .await
            .map_err(|_| {
                EtcdError::new(
                    EtcdErrorKind::Unreachable,
                    format!("{url}: connect timed out"),
                )
            })?
            .map_err(|e| {
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = format!("{why}: {s}");
                    source = s.source();
                }
                EtcdError::new(EtcdErrorKind::Unreachable, format!("{url}: {why}"))
            })?;
        let mut client = Client {
            channel,
            token: None,
            member,
            request_timeout: settings.request_timeout,
        };
        if let Some((name, password)) = &settings.auth {
            let request = AuthenticateRequest {
                name: name.clone(),
                password: password.clone(),
            };
            let mut auth = AuthClient::new(client.channel.clone());
            // etcd answers a wrong name or password with INVALID_ARGUMENT.
            let answer = client
                .unary(url, "authenticate", auth.authenticate(request))
                .await
                .map_err(|e| match e.kind() {
                    EtcdErrorKind::Rejected => EtcdError::new(EtcdErrorKind::Auth, e.message()),
                    _ => e,
                })?;
            let token = AsciiMetadataValue::try_from(answer.token).map_err(|_| {
                EtcdError::new(
                    EtcdErrorKind::Auth,
                    format!("{url}: the token is not ASCII"),
                )
            })?;
            client.token = Some(token);
        }
        Ok(client)
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            request.metadata_mut().insert("token", token.clone());
        }
        request
    }

    async fn unary<T>(
        &self,
        url: &str,
        what: &str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, EtcdError> {
        match tokio::time::timeout(self.request_timeout, call).await {
            Ok(Ok(answer)) => Ok(answer.into_inner()),
            Ok(Err(status)) => Err(EtcdError::from_status(&format!("{url} {what}"), &status)),
            Err(_) => Err(EtcdError::new(
                EtcdErrorKind::Unreachable,
                format!("{url} {what}: no answer within {:?}", self.request_timeout),
            )),
        }
    }

    fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Every key under the prefix, read at one revision (page by page): the revision and the
    /// keys.
    pub(crate) async fn list(
        &self,
        url: &str,
        prefix: &[u8],
    ) -> Result<(i64, Vec<KeyValue>), EtcdError> {
        let end = prefix_end(prefix);
        let mut key = prefix.to_vec();
        let mut revision = 0;
        let mut all = Vec::new();
        loop {
            let request = self.request(RangeRequest {
                key: key.clone(),
                range_end: end.clone(),
                limit: PAGE,
                revision,
                serializable: false,
            });
            let mut kv = self.kv();
            let page = self.unary(url, "list", kv.range(request)).await?;
            if revision == 0 {
                revision = page.header.as_ref().map_or(0, |h| h.revision);
            }
            let more = page.more;
            let Some(last) = page.kvs.last() else { break };
            key = last.key.clone();
            key.push(0);
            all.extend(page.kvs);
            if !more {
                break;
            }
        }
        Ok((revision, all))
    }

    /// A watch of the prefix from `start_revision` on, with progress notifications, that etcd
    /// cancels when its member has no leader.
    pub(crate) async fn watch(
        &self,
        url: &str,
        prefix: &[u8],
        start_revision: i64,
    ) -> Result<(mpsc::Sender<WatchRequest>, Streaming<WatchResponse>), EtcdError> {
        use super::proto::{WatchCreateRequest, watch_request::RequestUnion};
        let (tx, rx) = mpsc::channel(4);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: prefix.to_vec(),
                range_end: prefix_end(prefix),
                start_revision,
                progress_notify: true,
                ..Default::default()
            })),
        };
        // The channel has room: this cannot fail.
        let _ = tx.try_send(create);
        let mut request = self.request(receiver_stream(rx));
        request
            .metadata_mut()
            .insert("hasleader", AsciiMetadataValue::from_static("true"));
        let mut client =
            WatchClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let stream = self.unary(url, "watch", client.watch(request)).await?;
        Ok((tx, stream))
    }

    fn lease(&self) -> LeaseClient<Channel> {
        LeaseClient::new(self.channel.clone())
    }

    /// A new lease of `ttl` seconds: its id.
    pub(crate) async fn grant(&self, url: &str, ttl: i64) -> Result<i64, EtcdError> {
        let request = self.request(LeaseGrantRequest { ttl, id: 0 });
        let mut lease = self.lease();
        let answer = self
            .unary(url, "lease grant", lease.lease_grant(request))
            .await?;
        if !answer.error.is_empty() {
            return Err(EtcdError::new(
                EtcdErrorKind::Rejected,
                format!("{url} lease grant: {}", answer.error),
            ));
        }
        Ok(answer.id)
    }

    /// Revokes a lease (its keys are deleted).
    pub(crate) async fn revoke(&self, url: &str, id: i64) -> Result<(), EtcdError> {
        let request = self.request(LeaseRevokeRequest { id });
        let mut lease = self.lease();
        self.unary(url, "lease revoke", lease.lease_revoke(request))
            .await
            .map(|_| ())
    }

    /// Puts a key bound to a lease.
    pub(crate) async fn put(
        &self,
        url: &str,
        key: &str,
        value: Vec<u8>,
        lease: i64,
    ) -> Result<(), EtcdError> {
        let request = self.request(PutRequest {
            key: key.as_bytes().to_vec(),
            value,
            lease,
        });
        let mut kv = self.kv();
        self.unary(url, "put", kv.put(request)).await.map(|_| ())
    }

    /// The keep-alive stream of a lease, with its first renewal sent: send a request, read the
    /// new TTL. (etcd sends the response headers with the first answer, so the call returns only
    /// once a request is on its way.)
    pub(crate) async fn keep_alive(
        &self,
        url: &str,
        id: i64,
    ) -> Result<
        (
            mpsc::Sender<LeaseKeepAliveRequest>,
            Streaming<LeaseKeepAliveResponse>,
        ),
        EtcdError,
    > {
        let (tx, rx) = mpsc::channel(4);
        // The channel has room: this cannot fail.
        let _ = tx.try_send(LeaseKeepAliveRequest { id });
        let request = self.request(receiver_stream(rx));
        let mut lease = self.lease();
        let stream = self
            .unary(url, "lease keep-alive", lease.lease_keep_alive(request))
            .await?;
        Ok((tx, stream))
    }

    /// Time limit of one call.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// The end of a prefix range: the prefix with its last byte that is not 0xff incremented
/// (etcd's `GetPrefixRangeEnd`); `\0` (to the end of the key space) if there is none.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"svc/"), b"svc0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
