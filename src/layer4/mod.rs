//! Layer 4: balanced TCP connections for protocols that are not HTTP/2. The same discovery,
//! ready set and policies as the [`Balancer`](crate::Balancer), but the unit of balancing is a
//! connection, picked once when it is opened.

mod stream;
mod target;

pub use stream::BalancedStream;
pub(crate) use target::{TcpProbe, TcpTarget};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpStream;
use tower::Service;

use crate::balancer::{Attempts, Balancer};
use crate::error::{BoxError, Error, Unready};
use crate::ready_set::Shared;
use crate::status::Snapshot;
use crate::transport::NoRequests;

/// A [`tower::Service<http::Uri>`](https://docs.rs/tower/0.5/tower/trait.Service.html) that returns a TCP connection to an endpoint picked by the
/// balancer's policy: a connector for hyper's legacy client, a database pool, or any protocol
/// that is not HTTP/2.
///
/// Endpoints join the ready set after a TCP connect probe succeeds; a dial that fails takes its
/// endpoint out (it is probed again after a backoff) and the connection is dialled to another
/// endpoint, up to the builder's `unsent_retries` times. With nothing reachable the call waits up
/// to the ready timeout, then fails with `UNAVAILABLE` saying why. Each open
/// [`BalancedStream`] counts as load on its endpoint until dropped, so
/// [`Policy::least_loaded`](crate::Policy::least_loaded) is "least connections". A hashing
/// policy hashes a request made of the URI alone (e.g. `HashKey::path()`, or a custom key on
/// `uri.host()`).
///
/// ```no_run
/// # async fn example() -> Result<(), tower_lb::BoxError> {
/// use tower::{Service, ServiceExt};
/// use tower_lb::{Balancer, Policy, discover};
/// let mut connector = Balancer::builder()
///     .policy(Policy::least_loaded())
///     .build_tcp(discover::fixed(["127.0.0.1:6379".parse()?, "127.0.0.1:6380".parse()?]))?;
/// let stream = connector.ready().await?.call(http::Uri::from_static("tcp://cache")).await?;
/// println!("connected to {}", stream.peer_addr());
/// # Ok(()) }
/// ```
pub struct TcpBalancer {
    inner: Balancer<NoRequests<TcpTarget>>,
    connect_timeout: Duration,
}

impl TcpBalancer {
    pub(crate) fn new(inner: Balancer<NoRequests<TcpTarget>>, connect_timeout: Duration) -> Self {
        TcpBalancer {
            inner,
            connect_timeout,
        }
    }

    /// A point-in-time view of the balancer (`in_flight` counts open connections); see
    /// [`Balancer::snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        self.inner.snapshot()
    }

    /// Waits until at least `at_least` endpoints are reachable, for at most `within`; see
    /// [`Balancer::wait_ready`].
    pub async fn wait_ready(&self, at_least: usize, within: Duration) -> Result<usize, Error> {
        self.inner.wait_ready(at_least, within).await
    }

    /// How many endpoints are reachable right now.
    pub fn ready_len(&self) -> usize {
        self.inner.ready_len()
    }
}

impl Clone for TcpBalancer {
    fn clone(&self) -> Self {
        TcpBalancer {
            inner: self.inner.clone(),
            connect_timeout: self.connect_timeout,
        }
    }
}

impl std::fmt::Debug for TcpBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpBalancer")
            .field("balancer", &self.inner)
            .finish()
    }
}

impl Service<http::Uri> for TcpBalancer {
    type Response = BalancedStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<BalancedStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (shared, seed) = self.inner.begin_call();
        Box::pin(dial(shared, uri, seed, self.connect_timeout))
    }
}

/// Picks, dials, and on a failed dial marks the endpoint down and picks another.
async fn dial(
    shared: Arc<Shared<NoRequests<TcpTarget>>>,
    uri: http::Uri,
    seed: u64,
    connect_timeout: Duration,
) -> Result<BalancedStream, BoxError> {
    let hash = match http::Request::builder().uri(uri.clone()).body(()) {
        Ok(request) => shared.config.policy.request_hash(&request),
        Err(_) => None,
    };
    let wait = shared.config.ready_timeout;
    let mut attempts = Attempts::new(shared, hash, seed, wait, None);
    loop {
        let (NoRequests(target), mut hold) = match attempts.next().await {
            Ok(picked) => picked,
            Err(stopped) => return Err(stopped.into_error(uri.to_string()).boxed()),
        };
        let attempt = tokio::time::timeout(connect_timeout, TcpStream::connect(target.addr));
        let error = match attempt.await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                hold.on_connected();
                return Ok(BalancedStream::new(stream, hold));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("connect timed out after {connect_timeout:?}"),
        };
        let error = format!("{}: {error}", target.addr);
        tracing::debug!(%error, "dial failed; marking the endpoint down and picking again");
        target.mark_down(error.clone());
        hold.on_error();
        if attempts.refused(hold).is_err() {
            return Err(Error::NoReadyEndpoint {
                path: uri.to_string(),
                waited: attempts.began().elapsed(),
                why: Unready::AllUnreachable {
                    discovered: attempts.shared().set.load().all.len(),
                    connecting: 0,
                    last_error: Some(error),
                },
            }
            .boxed());
        }
    }
}
