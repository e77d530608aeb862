//! HTTP/2 over TCP with hyper 1's client connection API.
//!
//! One connection per endpoint, multiplexed by every call to it. hyper splits a connection into
//! a [`SendRequest`] handle and a task that drives the socket; we spawn the task and watch it
//! end, which is how a refused or broken connection leaves the ready set at once. With TLS
//! (feature `tls`), the handshake runs between the TCP connect and HTTP/2's.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme, Uri};
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::channel::{Channel, SendError};
use super::connector::{ConnectFuture, Connection, Connector};
use crate::discover::Endpoint;
use crate::error::BoxError;

/// Dials endpoints over TCP and speaks HTTP/2 (prior knowledge, as gRPC does).
///
/// Sets `TCP_NODELAY`, a connect timeout (default 5 s) and HTTP/2 keep-alive pings (default
/// every 20 s, 10 s timeout, also while idle) so a peer that vanished without a FIN/RST is
/// noticed. With [`tls`][tls-method] (feature `tls`), every connection is TLS; see
/// [`tls`][tls-module].
///
/// ```
/// use std::time::Duration;
/// use tower_lb::transport::Http2Connector;
/// let connector: Http2Connector = Http2Connector::new()
///     .connect_timeout(Duration::from_secs(1))
///     .keep_alive(Some(Duration::from_secs(10)), Duration::from_secs(5));
/// ```
///
// Links to items behind a feature: the item when the feature is on, else its docs.rs page.
#[cfg_attr(feature = "tls", doc = "[tls-method]: Self::tls")]
#[cfg_attr(
    not(feature = "tls"),
    doc = "[tls-method]: https://docs.rs/tower-lb/latest/tower_lb/transport/struct.Http2Connector.html#method.tls"
)]
#[cfg_attr(feature = "tls", doc = "[tls-module]: crate::tls")]
#[cfg_attr(
    not(feature = "tls"),
    doc = "[tls-module]: https://docs.rs/tower-lb/latest/tower_lb/tls/index.html"
)]
#[derive(Debug)]
pub struct Http2Connector<B = tonic::body::Body> {
    connect_timeout: Duration,
    keep_alive_interval: Option<Duration>,
    keep_alive_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
    _body: PhantomData<fn(B)>,
}

impl<B> Clone for Http2Connector<B> {
    fn clone(&self) -> Self {
        Http2Connector {
            connect_timeout: self.connect_timeout,
            keep_alive_interval: self.keep_alive_interval,
            keep_alive_timeout: self.keep_alive_timeout,
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
            _body: PhantomData,
        }
    }
}

impl<B> Default for Http2Connector<B> {
    fn default() -> Self {
        Http2Connector {
            connect_timeout: super::connector::DEFAULT_CONNECT_TIMEOUT,
            keep_alive_interval: Some(Duration::from_secs(20)),
            keep_alive_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
            _body: PhantomData,
        }
    }
}

impl<B> Http2Connector<B> {
    /// A connector with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long one TCP connect plus the TLS (if any) and HTTP/2 handshakes may take.
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

    /// Speaks TLS to every endpoint (feature `tls`): TCP, then the TLS handshake, then HTTP/2,
    /// with `https` as the requests' scheme and the server name as their authority. A failed
    /// handshake fails the connection attempt; nothing falls back to plaintext.
    ///
    /// ```
    /// # fn run(ca_pem: &str) -> Result<(), tower_lb::Error> {
    /// use tower_lb::{tls::ClientTls, transport::Http2Connector};
    /// let connector: Http2Connector = Http2Connector::new().tls(ClientTls::from_root_pem(ca_pem)?);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// HTTP/2's handshake on an established stream; spawns the connection task and returns
    /// the request handle and a future of the connection's end.
    async fn http2<I>(&self, io: I) -> Result<(SendRequest<B>, Closed), BoxError>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let mut builder = Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        if let Some(interval) = self.keep_alive_interval {
            builder
                .keep_alive_interval(interval)
                .keep_alive_timeout(self.keep_alive_timeout)
                .keep_alive_while_idle(true);
        }
        let (send, conn) = builder.handshake::<_, B>(TokioIo::new(io)).await?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let result = conn.await;
            let _ = done_tx.send(result.err().map(|e| BoxError::from(with_causes(&e))));
        });
        Ok((send, Box::pin(async move { done_rx.await.unwrap_or(None) })))
    }
}

/// Resolves when a connection has closed.
type Closed = Pin<Box<dyn Future<Output = Option<BoxError>> + Send>>;

impl<B> Connector for Http2Connector<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Channel = Http2Channel<B>;

    fn connect(&self, endpoint: &Endpoint) -> ConnectFuture<Http2Channel<B>> {
        let addr = endpoint.addr();
        let settings = self.clone();
        // The server name is settled before anything is dialled: without one, TLS refuses.
        #[cfg(feature = "tls")]
        let tls = self.tls.as_ref().map(|tls| tls.dial(endpoint));
        Box::pin(async move {
            #[cfg(feature = "tls")]
            let tls = tls.transpose()?;
            #[cfg(feature = "tls")]
            let (scheme, authority) = match &tls {
                Some(tls) => (Scheme::HTTPS, format!("{}:{}", tls.name(), addr.port())),
                None => (Scheme::HTTP, addr.to_string()),
            };
            #[cfg(not(feature = "tls"))]
            let (scheme, authority) = (Scheme::HTTP, addr.to_string());
            let authority = Authority::try_from(authority)
                .map_err(|e| -> BoxError { format!("authority for {addr}: {e}").into() })?;
            let dial = async {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                #[cfg(feature = "tls")]
                if let Some(tls) = &tls {
                    let stream = tls.handshake(addr, tcp).await?;
                    let (stream, first_read) = crate::tls::FirstRead::new(stream);
                    let (send, mut closed) = settings.http2(stream).await?;
                    // Connected once the server speaks: see `FirstRead`.
                    let closed_early = tokio::select! {
                        first = first_read => match first {
                            Ok(()) => None,
                            // The stream is gone: the connection has ended or is ending.
                            Err(_) => Some((&mut closed).await),
                        },
                        why = &mut closed => Some(why),
                    };
                    if let Some(why) = closed_early {
                        let why = why.map_or_else(|| "closed".to_owned(), |e| e.to_string());
                        return Err(format!(
                            "TLS connection to {addr} as {:?} closed before the server sent \
                             anything ({why}); a server that requires a client certificate \
                             does this when it refuses ours (or none was configured)",
                            tls.name()
                        )
                        .into());
                    }
                    return Ok((send, closed));
                }
                settings.http2(tcp).await
            };
            let (send, closed) = match tokio::time::timeout(settings.connect_timeout, dial).await {
                Ok(result) => result?,
                Err(_) => {
                    return Err(format!(
                        "connect to {addr} timed out after {:?}",
                        settings.connect_timeout
                    )
                    .into());
                }
            };
            Ok(Connection {
                channel: Http2Channel {
                    send,
                    scheme,
                    authority,
                },
                closed,
            })
        })
    }
}

/// A request handle on one HTTP/2 connection. It fills in the scheme and authority of each
/// request's URI (tonic sends only the path), as tonic's own `Channel` does: `http` and the
/// endpoint's address, or with TLS `https` and the server name with the port.
#[derive(Debug)]
pub struct Http2Channel<B> {
    send: SendRequest<B>,
    scheme: Scheme,
    authority: Authority,
}

impl<B> Clone for Http2Channel<B> {
    fn clone(&self) -> Self {
        Http2Channel {
            send: self.send.clone(),
            scheme: self.scheme.clone(),
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
        set_origin(request.uri_mut(), &self.scheme, &self.authority);
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

/// An error with its chain of causes, `a: b: c`: hyper says only "connection error", the
/// reason (a reset, a TLS alert such as a server refusing our client certificate) is in its
/// sources. Repeated messages are skipped.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Gives a path-only URI the connection's scheme and the endpoint's authority, keeping the
/// path.
fn set_origin(uri: &mut Uri, scheme: &Scheme, authority: &Authority) {
    let mut parts = std::mem::take(uri).into_parts();
    if parts.scheme.is_none() {
        parts.scheme = Some(scheme.clone());
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
    fn causes_are_chained_once() {
        let inner = std::io::Error::other("received fatal alert: CertificateRequired");
        let outer = std::io::Error::new(std::io::ErrorKind::ConnectionReset, inner);
        assert_eq!(
            with_causes(&outer),
            "received fatal alert: CertificateRequired"
        );
        #[derive(Debug)]
        struct Wrap(std::io::Error);
        impl std::fmt::Display for Wrap {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("connection error")
            }
        }
        impl std::error::Error for Wrap {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = Wrap(std::io::Error::other("reset"));
        assert_eq!(with_causes(&wrapped), "connection error: reset");
    }

    #[test]
    fn origin_is_filled_in_and_path_kept() {
        let auth = Authority::from_static("127.0.0.1:50051");
        let mut uri = Uri::from_static("/echo.Echo/Unary?x=1");
        set_origin(&mut uri, &Scheme::HTTP, &auth);
        assert_eq!(uri, "http://127.0.0.1:50051/echo.Echo/Unary?x=1");
        let mut uri = Uri::from_static("https://other:1/p");
        set_origin(&mut uri, &Scheme::HTTP, &auth);
        assert_eq!(uri, "https://127.0.0.1:50051/p");
        let mut uri = Uri::from_static("/p");
        set_origin(
            &mut uri,
            &Scheme::HTTPS,
            &Authority::from_static("echo.test:443"),
        );
        assert_eq!(uri, "https://echo.test:443/p");
    }
}
