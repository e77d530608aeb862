//! `Dns`: what to resolve, with which resolver settings, and how to treat answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{ResolverBuilder, TokioResolver};

use super::host::{parse_host_port, parse_name};
use super::on_empty::OnEmpty;
use super::resolve::{Query, Resolver};
use super::schedule::Schedule;
use super::stream::DnsDiscovery;
use super::tracker::Tracker;
use crate::error::Error;
use crate::time::Backoff;

/// Most attempts per query accepted by [`Dns::attempts`].
const MAX_ATTEMPTS: u32 = 10;

/// DNS discovery, configured: SRV records ([`Dns::srv`]) or the A/AAAA records of one host
/// ([`Dns::host`]). [`build`](Self::build) makes the stream the balancer reads.
///
/// | setting | default |
/// |---|---|
/// | [`name_servers`](Self::name_servers) | the system configuration (`/etc/resolv.conf`) |
/// | [`timeout`](Self::timeout) × [`attempts`](Self::attempts) | 2 s × 2 per query and name server |
/// | [`ttl_bounds`](Self::ttl_bounds) | 1 s to 30 s |
/// | [`max_endpoints`](Self::max_endpoints) | 1,000 |
/// | [`on_empty`](Self::on_empty) | keep the last good set for 60 s |
/// | [`backoff`](Self::backoff) | 1 s ×1.6, ±20 %, at most 120 s (and at most the upper TTL bound) |
///
/// ```
/// use std::time::Duration;
/// use tower_lb::discover::dns::{Dns, OnEmpty};
/// let discovery = Dns::host("echo.internal:50051")?
///     .name_servers(["127.0.0.1:5353".parse().unwrap()])
///     .timeout(Duration::from_millis(500))
///     .attempts(2)
///     .ttl_bounds(Duration::from_secs(1), Duration::from_secs(10))
///     .on_empty(OnEmpty::Clear)
///     .build()?;
/// # Ok::<(), tower_lb::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dns {
    query: Result<Query, Error>,
    name_servers: Option<Vec<SocketAddr>>,
    timeout: Duration,
    attempts: u32,
    min_ttl: Duration,
    max_ttl: Duration,
    max_endpoints: usize,
    on_empty: OnEmpty,
    backoff: Backoff,
}

impl Dns {
    fn new(query: Result<Query, Error>) -> Self {
        Dns {
            query,
            name_servers: None,
            timeout: Duration::from_secs(2),
            attempts: 2,
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(30),
            max_endpoints: 1000,
            on_empty: OnEmpty::default(),
            backoff: Schedule::default_backoff(),
        }
    }

    /// Discovery from the SRV records of `name`, e.g.
    /// `_grpc._tcp.echo.default.svc.cluster.local.` (the final dot skips the search domains).
    /// The name is checked by [`build`](Self::build).
    pub fn srv(name: &str) -> Self {
        Dns::new(
            parse_name(name.trim())
                .map(Query::Srv)
                .map_err(|why| Error::InvalidConfig(format!("DNS SRV name {name:?}: {why}"))),
        )
    }

    /// Discovery from the A and AAAA records of a host at a fixed port: `name:port`
    /// (`echo.internal:50051`). An IP address (`10.0.0.1:50051`, `[::1]:50051`) is its own
    /// answer.
    ///
    /// Fails with [`Error::InvalidConfig`] for a missing or malformed port or name, and
    /// [`Error::InvalidEndpoint`] for port 0.
    ///
    /// ```
    /// use tower_lb::discover::dns::Dns;
    /// assert!(Dns::host("echo.internal:50051").is_ok());
    /// assert!(Dns::host("echo.internal").is_err()); // no port
    /// ```
    pub fn host(host_port: &str) -> Result<Self, Error> {
        let (host, port) = parse_host_port(host_port)?;
        Ok(Dns::new(Ok(Query::Host(host, port))))
    }

    /// Asks these name servers (each over UDP, and TCP for truncated answers) instead of the
    /// system's. The hosts file is not read then, and names without a final dot are asked as
    /// they are (no search domains).
    pub fn name_servers(mut self, servers: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.name_servers = Some(servers.into_iter().collect());
        self
    }

    /// How long one query waits for an answer (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a query is sent before the resolution counts as failed: 1 ..= 10,
    /// default 2.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The answer's TTL is clamped to `min ..= max` to schedule the next resolution (default
    /// 1 s to 30 s). `min` is also the shortest time between two resolutions asked for by
    /// [`Refresher::refresh`](super::Refresher::refresh), and bounds the failure backoff from
    /// below; `max` bounds it from above.
    pub fn ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max;
        self
    }

    /// The most endpoints kept from one answer (default 1,000); the rest are dropped with a
    /// warning, worst ranked first.
    pub fn max_endpoints(mut self, max: usize) -> Self {
        self.max_endpoints = max;
        self
    }

    /// What an empty answer does to the set (default: keep it for 60 s).
    pub fn on_empty(mut self, on_empty: OnEmpty) -> Self {
        self.on_empty = on_empty;
        self
    }

    /// The backoff between failed resolutions (default 1 s ×1.6, ±20 %, at most 120 s). The
    /// delays are also clamped to the TTL bounds.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Checks the configuration and builds the discovery stream. Nothing is resolved until the
    /// stream is first polled.
    ///
    /// Fails with [`Error::InvalidConfig`] for a bad name, a zero timeout, attempts outside
    /// 1 ..= 10, TTL bounds with a zero or inverted range, a zero endpoint cap, an empty list of
    /// name servers, or a system DNS configuration that cannot be read.
    pub fn build(self) -> Result<DnsDiscovery, Error> {
        let invalid = |why: String| Err(Error::InvalidConfig(why));
        let query = self.query.clone()?;
        if self.timeout.is_zero() {
            return invalid("DNS timeout must be more than zero".into());
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.attempts) {
            return invalid(format!(
                "DNS attempts must be 1 to {MAX_ATTEMPTS}, not {}",
                self.attempts
            ));
        }
        if self.min_ttl.is_zero() || self.min_ttl > self.max_ttl {
            return invalid(format!(
                "DNS TTL bounds must satisfy 0 < min <= max (got {:?} ..= {:?})",
                self.min_ttl, self.max_ttl
            ));
        }
        if self.max_endpoints == 0 {
            return invalid("DNS max_endpoints must be at least 1".into());
        }
        let resolver = Resolver::new(self.hickory()?, query, self.max_endpoints);
        let schedule = Schedule {
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            backoff: self.backoff,
        };
        let tracker = Tracker::new(
            resolver.display_name(),
            schedule,
            self.on_empty,
            self.max_endpoints,
        );
        Ok(DnsDiscovery::new(
            Arc::new(resolver),
            tracker,
            self.round_limit(),
        ))
    }

    /// The longest one resolution may take: an SRV query, then its targets, each `attempts`
    /// tries of `timeout`, with room to spare. Beyond it the resolution counts as timed out.
    fn round_limit(&self) -> Duration {
        self.timeout
            .saturating_mul(self.attempts)
            .saturating_mul(4)
            .saturating_add(Duration::from_secs(1))
    }

    fn hickory(&self) -> Result<TokioResolver, Error> {
        let mut builder: ResolverBuilder<TokioRuntimeProvider> = match &self.name_servers {
            None => TokioResolver::builder_tokio().map_err(|e| {
                Error::InvalidConfig(format!(
                    "cannot read the system DNS configuration ({e}); set Dns::name_servers"
                ))
            })?,
            Some(servers) => {
                if servers.is_empty() {
                    return Err(Error::InvalidConfig(
                        "DNS name_servers: the list is empty".into(),
                    ));
                }
                let servers = servers
                    .iter()
                    .map(|addr| {
                        let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                        for connection in &mut server.connections {
                            connection.port = addr.port();
                        }
                        server
                    })
                    .collect();
                let mut builder = TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers),
                    TokioRuntimeProvider::default(),
                );
                builder.options_mut().use_hosts_file = ResolveHosts::Never;
                builder
            }
        };
        let options = builder.options_mut();
        options.timeout = self.timeout;
        // hickory counts retries after the first try.
        options.attempts = (self.attempts - 1) as usize;
        // The stream clears the cache before each resolution; a small one serves the target
        // lookups within one.
        options.cache_size = 64;
        builder
            .build()
            .map_err(|e| Error::InvalidConfig(format!("DNS resolver: {e}")))
    }
}
