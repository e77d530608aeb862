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

/// One endpoint: a socket address, its weight and its priority tier.
///
/// The address must be a concrete IP and port (no unspecified address, no port 0); the weight
/// is 1 by default and must be at least 1. The priority is 0 by default: calls go to the
/// endpoints of the lowest priority number that has any ready endpoint, and higher numbers
/// are backups (DNS SRV priority, nginx `backup`).
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
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    addr: SocketAddr,
    weight: u32,
    priority: u32,
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
