//! `Etcd`: where etcd is, which prefix to watch, how to log in, how to read values.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::decode::{Decoder, GoNaming};
use super::register::RegistrationBuilder;
use super::settings::Settings;
use super::stream::EtcdDiscovery;
use super::tls::EtcdTls;
use crate::error::Error;
use crate::time::Backoff;

/// etcd discovery and registration settings: the members, the key prefix, credentials.
///
/// [`build`](Self::build) makes the discovery stream for a balancer;
/// [`registration`](Self::registration) registers a server instance under the same prefix.
///
/// ```no_run
/// use tower_lb::{Balancer, discover::etcd::Etcd};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let etcd = Etcd::new(["http://10.0.0.1:2379", "http://10.0.0.2:2379"], "services/echo")
///     .user("echo-client", "secret");
/// let balancer = Balancer::builder().build(etcd.build()?)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Etcd {
    settings: Settings,
    decoder: Arc<dyn Decoder>,
}

impl fmt::Debug for Etcd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.settings.endpoints)
            .field("prefix", &self.settings.prefix)
            .field("user", &self.settings.auth.as_ref().map(|(u, _)| u))
            .field("tls", &self.settings.tls)
            .field("connect_timeout", &self.settings.connect_timeout)
            .field("request_timeout", &self.settings.request_timeout)
            .field("backoff", &self.settings.backoff)
            .finish_non_exhaustive()
    }
}

impl Etcd {
    /// The etcd members (URLs such as `http://127.0.0.1:2379`; `host:port` alone means
    /// `http://`, or `https://` with [`tls`](Self::tls)) and the key prefix to watch. A `/` is
    /// added to the prefix unless it ends in one: `services/echo` watches `services/echo/...`,
    /// as the Go endpoints manager writes under `services/echo/`.
    ///
    /// Defaults: the Go naming convention's values ([`GoNaming`]), no credentials, plaintext,
    /// 2 s to connect, 5 s per call, the crate's [`Backoff`] between reconnections.
    pub fn new(
        endpoints: impl IntoIterator<Item = impl Into<String>>,
        prefix: impl Into<String>,
    ) -> Self {
        let mut prefix = prefix.into();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Etcd {
            settings: Settings {
                endpoints: endpoints.into_iter().map(Into::into).collect(),
                prefix,
                auth: None,
                tls: None,
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
                backoff: Backoff::default(),
            },
            decoder: Arc::new(GoNaming),
        }
    }

    /// Log in as this etcd user (etcd's `Authenticate`; the token is asked for again on each
    /// connection).
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.settings.auth = Some((name.into(), password.into()));
        self
    }

    /// Connect to etcd over TLS.
    pub fn tls(mut self, tls: EtcdTls) -> Self {
        self.settings.tls = Some(tls);
        self
    }

    /// Read values with this decoder instead of [`GoNaming`] (e.g.
    /// [`PlainAddr`](super::PlainAddr), or a closure).
    pub fn decoder(mut self, decoder: impl Decoder) -> Self {
        self.decoder = Arc::new(decoder);
        self
    }

    /// Time to connect to one member (and log in) before trying the next.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Time for one call (a page of the list, a lease grant) before the member is given up.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Waits between failed reconnections (after one round over every member).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// The prefix watched, ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.settings.prefix
    }

    /// The discovery stream. It starts when first polled (inside a tokio runtime).
    ///
    /// Fails with [`Error::InvalidConfig`] for no members, a URL that does not parse, an empty
    /// prefix, or a zero timeout.
    pub fn build(&self) -> Result<EtcdDiscovery, Error> {
        let settings = self.checked()?;
        Ok(EtcdDiscovery::start(settings, self.decoder.clone()))
    }

    /// Registers a server instance at `addr` under the prefix (see [`RegistrationBuilder`]).
    pub fn registration(&self, addr: SocketAddr) -> RegistrationBuilder {
        RegistrationBuilder::new(self.checked(), addr)
    }

    fn checked(&self) -> Result<Arc<Settings>, Error> {
        let invalid = |why: String| Err(Error::InvalidConfig(format!("etcd: {why}")));
        let mut settings = self.settings.clone();
        if settings.endpoints.is_empty() {
            return invalid("no endpoints".into());
        }
        if settings.prefix == "/" {
            return invalid("an empty prefix would watch every key".into());
        }
        if settings.connect_timeout.is_zero() || settings.request_timeout.is_zero() {
            return invalid("a zero timeout".into());
        }
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        for url in &mut settings.endpoints {
            if !url.contains("://") {
                *url = format!("{scheme}://{url}");
            }
            match url.parse::<http::Uri>() {
                Ok(uri)
                    if uri.host().is_some()
                        && matches!(uri.scheme_str(), Some("http" | "https")) => {}
                _ => return invalid(format!("{url:?} is not an http:// or https:// URL")),
            }
        }
        Ok(Arc::new(settings))
    }
}
