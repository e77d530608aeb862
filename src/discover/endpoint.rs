//! What discovery says about one endpoint: where it is and how much traffic it should get.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::Error;

/// The name under which discovery tracks an endpoint (e.g. a pod name, or `ip:port`).
///
/// Cheap to clone. Built from strings and socket addresses:
///
/// ```
/// use tower_lb::discover::Key;
/// let a = Key::from("pod-a");
/// let b = Key::from("127.0.0.1:50051".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(b.as_str(), "127.0.0.1:50051");
/// assert_ne!(a, b);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Arc<str>);

impl Key {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key(Arc::from(s))
    }
}

impl From<String> for Key {
    fn from(s: String) -> Self {
        Key(Arc::from(s))
    }
}

impl From<SocketAddr> for Key {
    fn from(a: SocketAddr) -> Self {
        Key(Arc::from(a.to_string()))
    }
}

/// One endpoint: a socket address, its weight, its priority tier and, for TLS, its server name.
///
/// The address must be a concrete IP and port (no unspecified address, no port 0); the weight
/// is 1 by default and must be at least 1. The priority is 0 by default: calls go to the
/// endpoints of the lowest priority number that has any ready endpoint, and higher numbers
/// are backups (DNS SRV priority, nginx `backup`). The server name is the DNS name a TLS
/// connection checks the endpoint's certificate against (none by default; DNS discovery sets
/// it); plaintext connections ignore it.
///
/// ```
/// use tower_lb::discover::Endpoint;
/// let e: Endpoint = "127.0.0.1:50051".parse().unwrap();
/// assert_eq!(e.weight(), 1);
/// let heavy = e.clone().with_weight(3).unwrap();
/// assert_eq!(heavy.weight(), 3);
/// assert!(e.with_weight(0).is_err());
/// assert!("localhost:50051".parse::<Endpoint>().is_err()); // names go through DNS discovery
/// assert!("127.0.0.1:0".parse::<Endpoint>().is_err());
/// let backup = heavy.with_priority(1);
/// assert_eq!(backup.priority(), 1);
/// let named = backup.with_server_name("Echo.Example.")?;
/// assert_eq!(named.server_name(), Some("echo.example"));
/// # Ok::<(), tower_lb::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    addr: SocketAddr,
    weight: u32,
    priority: u32,
    server_name: Option<Arc<str>>,
}

impl Endpoint {
    /// An endpoint at this address with weight 1.
    ///
    /// Fails for port 0 and for the unspecified address (`0.0.0.0`, `::`).
    pub fn new(addr: SocketAddr) -> Result<Self, Error> {
        if addr.port() == 0 {
            return Err(Error::InvalidEndpoint(format!("{addr}: port 0")));
        }
        if addr.ip().is_unspecified() {
            return Err(Error::InvalidEndpoint(format!(
                "{addr}: unspecified address cannot be dialled"
            )));
        }
        Ok(Endpoint {
            addr,
            weight: 1,
            priority: 0,
            server_name: None,
        })
    }

    /// The same endpoint with another weight (1 ..= `u32::MAX`; 0 is refused).
    pub fn with_weight(mut self, weight: u32) -> Result<Self, Error> {
        if weight == 0 {
            return Err(Error::InvalidEndpoint(format!(
                "{}: weight 0 (weights run from 1 to {})",
                self.addr,
                u32::MAX
            )));
        }
        self.weight = weight;
        Ok(self)
    }

    /// The same endpoint in another priority tier (0 is the first choice; endpoints of a higher
    /// number get calls only while no endpoint of a lower number is ready).
    pub fn with_priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// The same endpoint with the DNS name TLS checks its certificate against (and sends as
    /// SNI), e.g. the SRV target it was found under. Plaintext connections ignore it.
    ///
    /// The name must be a DNS name: ASCII letters, digits, `-` and `_` in dot-separated labels of
    /// 1 to 63 characters, 253 at most in all. A trailing dot is dropped and letters are made
    /// lower case (names are compared without case). An IP address is refused: a certificate is
    /// checked against the name the client meant, never the address it happened to dial.
    ///
    /// ```
    /// use tower_lb::discover::Endpoint;
    /// let e: Endpoint = "10.0.0.1:443".parse()?;
    /// assert_eq!(e.clone().with_server_name("echo.internal.")?.server_name(), Some("echo.internal"));
    /// assert!(e.clone().with_server_name("10.0.0.1").is_err());
    /// assert!(e.with_server_name("bad name").is_err());
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn with_server_name(mut self, name: &str) -> Result<Self, Error> {
        let name = server_name(name).map_err(|why| {
            Error::InvalidEndpoint(format!("{}: server name {name:?}: {why}", self.addr))
        })?;
        self.server_name = Some(Arc::from(name));
        Ok(self)
    }

    /// The socket address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relative share of traffic this endpoint should get.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The priority tier (0 is the first choice).
    pub fn priority(&self) -> u32 {
        self.priority
    }

    /// The DNS name TLS checks the endpoint's certificate against, if it has one.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }
}

/// The canonical form of a DNS name for TLS (lower case, no trailing dot), or why `name` is
/// not one. Checked by hand so that the check holds without the `tls` feature too; rustls
/// checks the name again when it dials.
fn server_name(name: &str) -> Result<String, &'static str> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(
            "an IP address is not a server name (TLS checks the DNS name the endpoint was found under)",
        );
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("empty name");
    }
    if trimmed.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(
                "only ASCII letters, digits, '-' and '_' may appear in a label (use the punycode form of international names)",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    if trimmed
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the last label is all digits (not a host name)");
    }
    Ok(trimmed.to_ascii_lowercase())
}

impl FromStr for Endpoint {
    type Err = Error;

    /// Parses `ip:port` (`[v6]:port` for IPv6).
    fn from_str(s: &str) -> Result<Self, Error> {
        let addr: SocketAddr = s.trim().parse().map_err(|e| {
            Error::InvalidEndpoint(format!(
                "{s:?} is not an ip:port socket address ({e}); use DNS discovery for names"
            ))
        })?;
        Endpoint::new(addr)
    }
}

impl TryFrom<SocketAddr> for Endpoint {
    type Error = Error;
    fn try_from(addr: SocketAddr) -> Result<Self, Error> {
        Endpoint::new(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_checked_and_made_canonical() {
        let e: Endpoint = "127.0.0.1:443".parse().unwrap();
        for (input, want) in [
            ("echo.test", "echo.test"),
            ("Echo.Test.", "echo.test"),
            ("_grpc-lb.x-1.example", "_grpc-lb.x-1.example"),
            ("localhost", "localhost"),
        ] {
            let named = e.clone().with_server_name(input).unwrap();
            assert_eq!(named.server_name(), Some(want), "{input}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["abcdefghi"; 26].join(".");
        for (input, why) in [
            ("", "empty name"),
            (".", "empty name"),
            ("127.0.0.1", "IP address"),
            ("::1", "IP address"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("bad name", "ASCII letters"),
            ("\u{e9}cho.test", "ASCII letters"),
            ("-a.test", "starts or ends with '-'"),
            ("a.123", "all digits"),
            (long_label.as_str(), "longer than 63"),
            (long_name.as_str(), "longer than 253"),
        ] {
            let err = e.clone().with_server_name(input).unwrap_err();
            assert!(matches!(err, Error::InvalidEndpoint(_)), "{input}: {err}");
            assert!(err.to_string().contains(why), "{input}: {err}");
        }
        assert_eq!(e.server_name(), None);
    }
}
