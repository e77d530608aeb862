//! HTTP/2 over TCP with hyper 1's client connection API.
//!
//! One connection per endpoint, multiplexed by every call to it. hyper splits a connection into
//! a [`SendRequest`] handle and a task that drives the socket; we spawn the task and watch it
//! end, which is how a refused or broken connection leaves the ready set at once.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme, Uri};
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::{Channel, ConnectFuture, Connection, Connector, SendError};
use crate::discover::Endpoint;
use crate::error::BoxError;

/// Dials endpoints over TCP and speaks HTTP/2 (prior knowledge, as gRPC does).
///
/// Sets `TCP_NODELAY`, a connect timeout (default 5 s) and HTTP/2 keep-alive pings (default
/// every 20 s, 10 s timeout, also while idle) so a peer that vanished without a FIN/RST is
/// noticed.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::transport::Http2Connector;
/// let connector: Http2Connector = Http2Connector::new()
///     .connect_timeout(Duration::from_secs(1))
///     .keep_alive(Some(Duration::from_secs(10)), Duration::from_secs(5));
/// ```
#[derive(Debug)]
pub struct Http2Connector<B = tonic::body::Body> {
    connect_timeout: Duration,
    keep_alive_interval: Option<Duration>,
    keep_alive_timeout: Duration,
    _body: PhantomData<fn(B)>,
}

impl<B> Clone for Http2Connector<B> {
    fn clone(&self) -> Self {
        Http2Connector {
            _body: PhantomData,
            ..*self
        }
    }
}

impl<B> Default for Http2Connector<B> {
    fn default() -> Self {
        Http2Connector {
            connect_timeout: super::DEFAULT_CONNECT_TIMEOUT,
            keep_alive_interval: Some(Duration::from_secs(20)),
            keep_alive_timeout: Duration::from_secs(10),
            _body: PhantomData,
        }
    }
}

impl<B> Http2Connector<B> {
    /// A connector with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long one TCP connect plus HTTP/2 handshake may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// HTTP/2 PING interval (`None`: no pings) and how long to wait for the answer.
    pub fn keep_alive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.keep_alive_interval = interval;
        self.keep_alive_timeout = timeout;
        self
    }
}

impl<B> Connector for Http2Connector<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Channel = Http2Channel<B>;

    fn connect(&self, endpoint: &Endpoint) -> ConnectFuture<Http2Channel<B>> {
        let addr = endpoint.addr();
        let settings = self.clone();
        Box::pin(async move {
            let dial = async {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let mut builder = Builder::new(TokioExecutor::new());
                builder.timer(TokioTimer::new());
                if let Some(interval) = settings.keep_alive_interval {
                    builder
                        .keep_alive_interval(interval)
                        .keep_alive_timeout(settings.keep_alive_timeout)
                        .keep_alive_while_idle(true);
                }
                let (send, conn) = builder.handshake::<_, B>(TokioIo::new(tcp)).await?;
                Ok::<_, BoxError>((send, conn))
            };
            let (send, conn) = match tokio::time::timeout(settings.connect_timeout, dial).await {
                Ok(result) => result?,
                Err(_) => {
                    return Err(format!(
                        "connect to {addr} timed out after {:?}",
                        settings.connect_timeout
                    )
                    .into());
                }
            };
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let result = conn.await;
                let _ = done_tx.send(result.err().map(BoxError::from));
            });
            let authority = Authority::try_from(addr.to_string())
                .map_err(|e| -> BoxError { format!("authority for {addr}: {e}").into() })?;
            Ok(Connection {
                channel: Http2Channel { send, authority },
                closed: Box::pin(async move { done_rx.await.unwrap_or(None) }),
            })
        })
    }
}

/// A request handle on one HTTP/2 connection. It fills in the scheme and authority of each
/// request's URI (tonic sends only the path), as tonic's own `Channel` does.
#[derive(Debug)]
pub struct Http2Channel<B> {
    send: SendRequest<B>,
    authority: Authority,
}

impl<B> Clone for Http2Channel<B> {
    fn clone(&self) -> Self {
        Http2Channel {
            send: self.send.clone(),
            authority: self.authority.clone(),
        }
    }
}

/// The boxed future of one HTTP/2 call. hyper's `try_send_request` returns an unnameable
/// `impl Future`; until `impl Trait` in associated types is stable, it must be boxed.
pub type Http2Future<B> = Pin<
    Box<dyn Future<Output = Result<http::Response<hyper::body::Incoming>, SendError<B>>> + Send>,
>;

impl<B> Channel for Http2Channel<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type RequestBody = B;
    type ResponseBody = hyper::body::Incoming;
    type Future = Http2Future<B>;

    #[inline]
    fn is_ready(&self) -> bool {
        self.send.is_ready()
    }

    fn send(&mut self, mut request: http::Request<B>) -> Self::Future {
        set_origin(request.uri_mut(), &self.authority);
        let sent = self.send.try_send_request(request);
        let authority = self.authority.clone();
        Box::pin(async move {
            sent.await.map_err(|mut e| match e.take_message() {
                Some(request) => SendError::Unsent {
                    request,
                    error: e.into_error().into(),
                },
                None => SendError::Failed(transport_failure(e.into_error(), &authority)),
            })
        })
    }
}

/// A call that failed on the connection before its response arrived is a transport failure:
/// gRPC's `UNAVAILABLE` (retryable by policies keyed on it), naming the endpoint, with hyper's
/// error as the source. tonic alone would show hyper's generic errors as `UNKNOWN`.
fn transport_failure(error: hyper::Error, authority: &Authority) -> BoxError {
    let mut status = tonic::Status::unavailable(format!(
        "tower-lb: connection to {authority} failed during the call: {error}"
    ));
    status.set_source(std::sync::Arc::new(error));
    Box::new(status)
}

/// Gives a path-only URI the `http` scheme and the endpoint's authority, keeping the path.
fn set_origin(uri: &mut Uri, authority: &Authority) {
    let mut parts = std::mem::take(uri).into_parts();
    if parts.scheme.is_none() {
        parts.scheme = Some(Scheme::HTTP);
    }
    parts.authority = Some(authority.clone());
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    // Scheme, authority and path are all present, so this cannot fail; keep `/` if it did.
    *uri = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_filled_in_and_path_kept() {
        let auth = Authority::from_static("127.0.0.1:50051");
        let mut uri = Uri::from_static("/echo.Echo/Unary?x=1");
        set_origin(&mut uri, &auth);
        assert_eq!(uri, "http://127.0.0.1:50051/echo.Echo/Unary?x=1");
        let mut uri = Uri::from_static("https://other:1/p");
        set_origin(&mut uri, &auth);
        assert_eq!(uri, "https://127.0.0.1:50051/p");
    }
}
