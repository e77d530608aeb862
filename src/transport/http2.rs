//! HTTP/2 over TCP with hyper 1's client connection API.
//!
//! One connection per endpoint, multiplexed by every call to it. hyper splits a connection into
//! a [`SendRequest`] handle and a task that drives the socket; we spawn the task and watch it
//! end, which is how a refused or broken connection leaves the ready set at once. With TLS
//! (feature `tls`), the handshake runs between the TCP connect and HTTP/2's. Either way the
//! connection counts only once the server has spoken (`first_read.rs`).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme, Uri};
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use http::HeaderValue;
use http::header::USER_AGENT;

use super::channel::{EndpointChannel, ProbeFuture, SendError};
use super::connector::{ConnectFuture, Connection, Connector};
use super::first_read::FirstRead;
use super::ping::{PingIo, Pinger, Pong};
use super::settings::Http2Settings;
use crate::discover::Endpoint;
use crate::error::BoxError;

/// Dials endpoints over TCP and speaks HTTP/2 (prior knowledge, as gRPC does).
///
/// Defaults: `TCP_NODELAY` on, a 5 s connect timeout, and HTTP/2 keep-alive pings after 5
/// minutes without a byte from the server while calls are open (20 s to answer), the most
/// gRPC servers accept by default (see [`keep_alive`](Self::keep_alive)). A frozen server is
/// found sooner another way: a call that hits its deadline has its connection pinged at once.
/// Every setting of tonic's `Endpoint` that concerns the connection has its counterpart here
/// (the [`transport`](crate::transport) module maps each one); give the connector to
/// [`Builder::build_with`](crate::Builder::build_with), which refuses values HTTP/2 does not
/// allow with a message naming the setting. With [`tls`][tls-method]
/// (feature `tls`), every connection is TLS; see [`tls`][tls-module].
///
/// ```
/// use std::time::Duration;
/// use tower_lb::transport::Http2Connector;
/// let connector: Http2Connector = Http2Connector::new()
///     .connect_timeout(Duration::from_secs(1))
///     .keep_alive(Some(Duration::from_secs(10)), Duration::from_secs(5))
///     .initial_stream_window_size(Some(1 << 20))
///     .authority("echo.internal:50051");
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
    settings: Http2Settings,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
    _body: PhantomData<fn(B)>,
}

impl<B> Clone for Http2Connector<B> {
    fn clone(&self) -> Self {
        Http2Connector {
            settings: self.settings.clone(),
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
            _body: PhantomData,
        }
    }
}

impl<B> Default for Http2Connector<B> {
    fn default() -> Self {
        Http2Connector::with_settings(Http2Settings::default())
    }
}

impl Http2Connector {
    /// A connector for tonic's request body with the default settings. For another body
    /// type, `Http2Connector::<YourBody>::default()`.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B> Http2Connector<B> {
    fn with_settings(settings: Http2Settings) -> Self {
        Http2Connector {
            settings,
            #[cfg(feature = "tls")]
            tls: None,
            _body: PhantomData,
        }
    }

    /// How long one TCP connect plus the TLS (if any) and HTTP/2 handshakes may take (default
    /// 5 s; tonic's `Endpoint::connect_timeout`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// HTTP/2 PING interval (`None`: no pings; default 5 min) and how long to wait for the
    /// answer before the connection counts as broken (default 20 s); tonic's
    /// `Endpoint::http2_keep_alive_interval` and `keep_alive_timeout`. A PING goes out only
    /// after `interval` without a byte from the server.
    ///
    /// gRPC servers limit PINGs: grpc-core (C++, Python, Ruby...), grpc-go and grpc-java by
    /// default accept one per 5 minutes while they send nothing, and none on a connection
    /// without calls; past that they close the connection with GOAWAY `too_many_pings`. Go
    /// shorter only where the servers permit it (tonic servers set no limit).
    pub fn keep_alive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.settings.keep_alive_interval = interval;
        self.settings.keep_alive_timeout = timeout;
        self
    }

    /// Whether keep-alive pings go out on a connection with no call in flight (default off:
    /// gRPC servers refuse them unless configured to permit them, see
    /// [`keep_alive`](Self::keep_alive)); tonic's `Endpoint::keep_alive_while_idle`.
    pub fn keep_alive_while_idle(mut self, enabled: bool) -> Self {
        self.settings.keep_alive_while_idle = enabled;
        self
    }

    /// `TCP_NODELAY` (default on, as gRPC wants: small frames go out at once); tonic's
    /// `Endpoint::tcp_nodelay`.
    pub fn tcp_nodelay(mut self, enabled: bool) -> Self {
        self.settings.tcp_nodelay = enabled;
        self
    }

    /// TCP keep-alive probes after this long idle (default off: HTTP/2 pings do the job);
    /// tonic's `Endpoint::tcp_keepalive`.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.settings.tcp_keepalive = idle;
        self
    }

    /// The time between TCP keep-alive probes (default: the system's); tonic's
    /// `Endpoint::tcp_keepalive_interval`. Applies when [`tcp_keepalive`](Self::tcp_keepalive)
    /// is set.
    pub fn tcp_keepalive_interval(mut self, interval: Option<Duration>) -> Self {
        self.settings.tcp_keepalive_interval = interval;
        self
    }

    /// Unanswered TCP keep-alive probes before the connection is dropped (default: the
    /// system's); tonic's `Endpoint::tcp_keepalive_retries`. Applies when
    /// [`tcp_keepalive`](Self::tcp_keepalive) is set.
    pub fn tcp_keepalive_retries(mut self, retries: Option<u32>) -> Self {
        self.settings.tcp_keepalive_retries = retries;
        self
    }

    /// `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged before the kernel drops
    /// the connection (default: the system's, often 15 minutes). On Linux and Android only;
    /// elsewhere it is ignored with a debug event.
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.tcp_user_timeout = timeout;
        self
    }

    /// HTTP/2's initial flow-control window of each stream (default hyper's, 2 MiB; at most
    /// 2^31 - 1); tonic's `Endpoint::initial_stream_window_size`.
    pub fn initial_stream_window_size(mut self, size: Option<u32>) -> Self {
        self.settings.initial_stream_window_size = size;
        self
    }

    /// HTTP/2's initial flow-control window of the connection (default hyper's, 5 MiB; at
    /// most 2^31 - 1); tonic's `Endpoint::initial_connection_window_size`.
    pub fn initial_connection_window_size(mut self, size: Option<u32>) -> Self {
        self.settings.initial_connection_window_size = size;
        self
    }

    /// Sizes the flow-control windows from the measured bandwidth-delay product instead
    /// (default off); overrides the two initial window sizes. tonic's
    /// `Endpoint::http2_adaptive_window`.
    pub fn adaptive_window(mut self, enabled: bool) -> Self {
        self.settings.adaptive_window = enabled;
        self
    }

    /// The largest frame payload this side accepts (16,384 ..= 16,777,215; default 16,384);
    /// tonic's `Endpoint::max_frame_size`.
    pub fn max_frame_size(mut self, size: Option<u32>) -> Self {
        self.settings.max_frame_size = size;
        self
    }

    /// The largest header list this side accepts, in bytes (default hyper's, 16 KiB); tonic's
    /// `Endpoint::http2_max_header_list_size`.
    pub fn max_header_list_size(mut self, size: Option<u32>) -> Self {
        self.settings.max_header_list_size = size;
        self
    }

    /// The `:authority` of every request (`host` or `host:port`), for servers and proxies that
    /// route by virtual host. It wins over an origin the caller set (tonic's `with_origin`)
    /// and over the endpoint's address, as tonic's `Endpoint::origin` does. Without it, a
    /// request keeps the authority its caller gave it, or gets the endpoint's address (with
    /// TLS, its server name and port).
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.settings.authority = Some(authority.into());
        self
    }

    /// Names the client in the `user-agent` of requests that carry none: `"{agent}
    /// tower-lb/{version}"` (without it, `tower-lb/{version}`); a request with its own
    /// `user-agent` keeps it. tonic's `Endpoint::user_agent`.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.settings.user_agent = Some(agent.into());
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
        let s = &self.settings;
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .initial_stream_window_size(s.initial_stream_window_size)
            .initial_connection_window_size(s.initial_connection_window_size)
            .adaptive_window(s.adaptive_window)
            .max_frame_size(s.max_frame_size);
        if let Some(size) = s.max_header_list_size {
            builder.max_header_list_size(size);
        }
        if let Some(interval) = s.keep_alive_interval {
            builder
                .keep_alive_interval(interval)
                .keep_alive_timeout(s.keep_alive_timeout)
                .keep_alive_while_idle(s.keep_alive_while_idle);
        }
        let (send, conn) = builder.handshake::<_, B>(TokioIo::new(io)).await?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let result = conn.await;
            let _ = done_tx.send(result.err().map(|e| BoxError::from(with_causes(&e))));
        });
        Ok((send, Box::pin(async move { done_rx.await.unwrap_or(None) })))
    }

    /// HTTP/2 over `io`, established once the server has sent its first bytes (its
    /// SETTINGS; see `first_read.rs`), and able to ping it (`ping.rs`). `Err`: why the
    /// connection closed before that.
    async fn spoken<I>(&self, io: I) -> Result<(SendRequest<B>, Closed, Pinger), String>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let (io, pinger) = PingIo::new(io);
        let (io, first_read) = FirstRead::new(io);
        let (send, mut closed) = self.http2(io).await.map_err(|e| e.to_string())?;
        let closed_early = tokio::select! {
            first = first_read => match first {
                Ok(()) => None,
                // The stream is gone: the connection has ended or is ending.
                Err(_) => Some((&mut closed).await),
            },
            why = &mut closed => Some(why),
        };
        match closed_early {
            None => Ok((send, closed, pinger)),
            Some(why) => Err(why.map_or_else(|| "closed".to_owned(), |e| e.to_string())),
        }
    }

    /// A connected TCP stream with the socket options set.
    async fn tcp(&self, addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
        let tcp = TcpStream::connect(addr).await?;
        let s = &self.settings;
        tcp.set_nodelay(s.tcp_nodelay)?;
        let socket = socket2::SockRef::from(&tcp);
        if let Some(idle) = s.tcp_keepalive {
            let mut keepalive = socket2::TcpKeepalive::new().with_time(idle);
            if let Some(interval) = s.tcp_keepalive_interval {
                keepalive = keepalive.with_interval(interval);
            }
            if let Some(retries) = s.tcp_keepalive_retries {
                keepalive = keepalive.with_retries(retries);
            }
            socket.set_tcp_keepalive(&keepalive)?;
        }
        if let Some(timeout) = s.tcp_user_timeout {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            socket.set_tcp_user_timeout(Some(timeout))?;
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            tracing::debug!(
                ?timeout,
                "TCP_USER_TIMEOUT is not available on this platform"
            );
        }
        Ok(tcp)
    }
}

/// How far a connection attempt got: the TCP connect, the TLS handshake, the server's first
/// bytes.
const STAGE_TCP: u8 = 0;
const STAGE_TLS: u8 = 1;
const STAGE_SPEAK: u8 = 2;

/// Resolves when a connection has closed.
type Closed = Pin<Box<dyn Future<Output = Option<BoxError>> + Send>>;

impl<B> Connector for Http2Connector<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Channel = Http2Channel<B>;

    fn validate(&self) -> Result<(), crate::error::Error> {
        self.settings.validate().map(drop)
    }

    fn connect(&self, endpoint: &Endpoint) -> ConnectFuture<Http2Channel<B>> {
        let addr = endpoint.addr();
        let settings = self.clone();
        let on_request = self.settings.validate();
        // The server name is settled before anything is dialled: without one, TLS refuses.
        #[cfg(feature = "tls")]
        let tls = self.tls.as_ref().map(|tls| tls.dial(endpoint));
        Box::pin(async move {
            let on_request = on_request?;
            #[cfg(feature = "tls")]
            let tls = tls.transpose()?;
            #[cfg(feature = "tls")]
            let (scheme, authority) = match &tls {
                Some(tls) => (Scheme::HTTPS, format!("{}:{}", tls.name(), addr.port())),
                None => (Scheme::HTTP, addr.to_string()),
            };
            #[cfg(not(feature = "tls"))]
            let (scheme, authority) = (Scheme::HTTP, addr.to_string());
            let (authority, keep_callers) = match on_request.authority {
                Some(configured) => (configured, false),
                None => {
                    let own = Authority::try_from(authority)
                        .map_err(|e| -> BoxError { format!("authority for {addr}: {e}").into() })?;
                    (own, true)
                }
            };
            // How far the attempt got, for the message of one that times out.
            let stage = AtomicU8::new(STAGE_TCP);
            let dial = async {
                let tcp = settings.tcp(addr).await?;
                #[cfg(feature = "tls")]
                if let Some(tls) = &tls {
                    stage.store(STAGE_TLS, Relaxed);
                    let stream = tls.handshake(addr, tcp).await?;
                    stage.store(STAGE_SPEAK, Relaxed);
                    return settings.spoken(stream).await.map_err(|why| -> BoxError {
                        format!(
                            "TLS connection to {addr} as {:?} closed before the server sent \
                             anything ({why}); a server that requires a client certificate \
                             does this when it refuses ours (or none was configured)",
                            tls.name()
                        )
                        .into()
                    });
                }
                stage.store(STAGE_SPEAK, Relaxed);
                settings.spoken(tcp).await.map_err(|why| -> BoxError {
                    format!(
                        "connection to {addr} closed before the server sent its HTTP/2 \
                         settings ({why}): not an HTTP/2 server?"
                    )
                    .into()
                })
            };
            let timeout = settings.settings.connect_timeout;
            let (send, closed, pinger) = match tokio::time::timeout(timeout, dial).await {
                Ok(result) => result?,
                Err(_) => {
                    let waiting = match stage.load(Relaxed) {
                        STAGE_TCP => "for the TCP connection",
                        STAGE_TLS => "for the TLS handshake",
                        _ => {
                            "for the server's HTTP/2 settings: it accepted the connection but \
                             has not spoken (a stopped or overloaded process, or not an HTTP/2 \
                             server)"
                        }
                    };
                    return Err(format!(
                        "connect to {addr} timed out after {timeout:?} waiting {waiting}"
                    )
                    .into());
                }
            };
            Ok(Connection {
                channel: Http2Channel {
                    send,
                    peer: Arc::new(Peer {
                        scheme,
                        authority,
                        keep_callers,
                        user_agent: on_request.user_agent,
                        pinger,
                    }),
                },
                closed,
            })
        })
    }
}

/// A request handle on one HTTP/2 connection. It completes each request as tonic's own
/// `Channel` does:
///
/// * **scheme**: the caller's, else `http` (with TLS, `https`);
/// * **`:authority`**: the connector's [`authority`](Http2Connector::authority) if set; else
///   the caller's (tonic's `with_origin`); else the endpoint's address, or with TLS its server
///   name and port;
/// * **`user-agent`**: the caller's if set, else `tower-lb/{version}` (after the connector's
///   [`user_agent`](Http2Connector::user_agent), if set).
#[derive(Debug)]
pub struct Http2Channel<B> {
    send: SendRequest<B>,
    /// The rest is per connection, behind one pointer: a call clones its channel.
    peer: Arc<Peer>,
}

/// What a connection's calls share besides the request handle.
#[derive(Debug)]
struct Peer {
    scheme: Scheme,
    authority: Authority,
    /// Whether a request's own authority wins over `authority` (none was configured).
    keep_callers: bool,
    user_agent: HeaderValue,
    pinger: Pinger,
}

impl<B> Clone for Http2Channel<B> {
    fn clone(&self) -> Self {
        Http2Channel {
            send: self.send.clone(),
            peer: self.peer.clone(),
        }
    }
}

/// The boxed future of one HTTP/2 call. hyper's `try_send_request` returns an unnameable
/// `impl Future`; until `impl Trait` in associated types is stable, it must be boxed.
pub type Http2Future<B> = Pin<
    Box<dyn Future<Output = Result<http::Response<hyper::body::Incoming>, SendError<B>>> + Send>,
>;

impl<B> EndpointChannel for Http2Channel<B>
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

    /// Pings the server (an HTTP/2 PING, which its connection layer answers however busy it
    /// is); without an answer within `timeout`, the connection is closed and its calls fail.
    fn probe(&self, timeout: Duration) -> Option<ProbeFuture> {
        let peer = self.peer.clone();
        Some(Box::pin(async move {
            if peer.pinger.ping(timeout).await == Pong::Silent {
                tracing::warn!(
                    endpoint = %peer.authority,
                    ?timeout,
                    "no answer to an HTTP/2 PING after a call timed out; closing the connection"
                );
            }
        }))
    }

    fn send(&mut self, mut request: http::Request<B>) -> Self::Future {
        let peer = &*self.peer;
        set_origin(
            request.uri_mut(),
            &peer.scheme,
            &peer.authority,
            peer.keep_callers,
        );
        if let http::header::Entry::Vacant(slot) = request.headers_mut().entry(USER_AGENT) {
            slot.insert(peer.user_agent.clone());
        }
        let sent = self.send.try_send_request(request);
        let authority = peer.authority.clone();
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
    let mut status = if cancelled_here(&error) {
        // Our side reset the stream: the caller cancelled (tonic's cancel, a request stream
        // that ended in error). The connection is fine; gRPC calls this CANCELLED.
        tonic::Status::cancelled(format!(
            "tower-lb: the call to {authority} was cancelled by this client"
        ))
    } else {
        tonic::Status::unavailable(format!(
            "tower-lb: connection to {authority} failed during the call: {error}"
        ))
    };
    status.set_source(std::sync::Arc::new(error));
    Box::new(status)
}

/// Whether `error` is a `CANCEL` reset this side sent (not the peer, not the HTTP/2 library).
fn cancelled_here(error: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return h2.is_reset()
                && h2.reason() == Some(h2::Reason::CANCEL)
                && !h2.is_remote()
                && !h2.is_library();
        }
        source = cause.source();
    }
    false
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

/// Gives a request URI the connection's scheme (unless it has one) and `authority` (unless
/// it has one and `keep_callers`), keeping the path.
fn set_origin(uri: &mut Uri, scheme: &Scheme, authority: &Authority, keep_callers: bool) {
    let mut parts = std::mem::take(uri).into_parts();
    if parts.scheme.is_none() {
        parts.scheme = Some(scheme.clone());
    }
    if !(keep_callers && parts.authority.is_some()) {
        parts.authority = Some(authority.clone());
    }
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
        set_origin(&mut uri, &Scheme::HTTP, &auth, true);
        assert_eq!(uri, "http://127.0.0.1:50051/echo.Echo/Unary?x=1");
        // The caller's origin is kept, unless an authority was configured.
        let mut uri = Uri::from_static("https://other:1/p");
        set_origin(&mut uri, &Scheme::HTTP, &auth, true);
        assert_eq!(uri, "https://other:1/p");
        let mut uri = Uri::from_static("https://other:1/p");
        set_origin(&mut uri, &Scheme::HTTP, &auth, false);
        assert_eq!(uri, "https://127.0.0.1:50051/p");
        let mut uri = Uri::from_static("/p");
        set_origin(
            &mut uri,
            &Scheme::HTTPS,
            &Authority::from_static("echo.test:443"),
            true,
        );
        assert_eq!(uri, "https://echo.test:443/p");
    }
}
