//! What consistent hashing hashes: a key taken from each request.

use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use xxhash_rust::xxh64::{Xxh64, xxh64};

use crate::error::Error;

/// The parts of a request a [`HashKey`] can look at (borrowed; nothing is copied).
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The request method.
    pub method: &'a http::Method,
    /// The request URI; for gRPC its path is `/package.Service/Method`.
    pub uri: &'a http::Uri,
    /// The request headers (gRPC metadata).
    pub headers: &'a http::HeaderMap,
    /// The request extensions (tonic copies a `tonic::Request`'s extensions here).
    pub extensions: &'a http::Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of an `http::Request`.
    pub fn of<B>(request: &'a http::Request<B>) -> Self {
        RequestHead {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }
}

type KeyFn = dyn Fn(&RequestHead<'_>) -> Option<u64> + Send + Sync;

/// Where a hashing policy finds the key of a request.
///
/// A request without the key (a missing header, or a closure that returns `None`) is balanced
/// by the policy's fallback instead (see [`Policy::fallback`](crate::Policy::fallback)).
///
/// ```
/// use tower_lb::{HashKey, RequestHead};
/// // gRPC metadata `x-user-id`: every call of one user goes to the same endpoint.
/// let by_user = HashKey::header("x-user-id").unwrap();
/// // The gRPC method: all calls of one method together (e.g. for cache locality).
/// let by_method = HashKey::path();
/// // Anything else: return a 64-bit hash, e.g. of a tenant the caller stored in extensions.
/// #[derive(Clone)]
/// struct Tenant(String);
/// let by_tenant = HashKey::custom(|head: &RequestHead<'_>| {
///     head.extensions.get::<Tenant>().map(|t| tower_lb::hash_bytes(t.0.as_bytes()))
/// });
/// assert!(HashKey::header("not a header name").is_err());
/// ```
#[derive(Clone)]
pub struct HashKey(Source);

#[derive(Clone)]
enum Source {
    Header(HeaderName),
    Path,
    Custom(Arc<KeyFn>),
}

impl HashKey {
    /// The value of this request header (gRPC metadata key). Several values of the same
    /// header are hashed together, joined by commas, as gRPC does.
    pub fn header(name: &str) -> Result<Self, Error> {
        HeaderName::from_bytes(name.as_bytes())
            .map(|h| HashKey(Source::Header(h)))
            .map_err(|_| Error::InvalidConfig(format!("{name:?} is not a valid header name")))
    }

    /// The request path: the gRPC method (`/package.Service/Method`).
    pub fn path() -> Self {
        HashKey(Source::Path)
    }

    /// A key computed by the caller's closure, returning a 64-bit hash (use
    /// [`hash_bytes`](crate::hash_bytes) for bytes), or `None` for "no key".
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> Option<u64> + Send + Sync + 'static,
    {
        HashKey(Source::Custom(Arc::new(f)))
    }

    /// The request's hash, or `None` when it has no key.
    #[inline]
    pub(crate) fn hash<B>(&self, request: &http::Request<B>) -> Option<u64> {
        match &self.0 {
            Source::Path => Some(hash_bytes(request.uri().path().as_bytes())),
            Source::Header(name) => {
                let mut values = request.headers().get_all(name).iter();
                let first = values.next()?;
                let Some(second) = values.next() else {
                    return Some(hash_bytes(first.as_bytes()));
                };
                let mut hasher = Xxh64::new(0);
                hasher.update(first.as_bytes());
                for v in std::iter::once(second).chain(values) {
                    hasher.update(b",");
                    hasher.update(v.as_bytes());
                }
                Some(hasher.digest())
            }
            Source::Custom(f) => f(&RequestHead::of(request)),
        }
    }
}

/// The hash consistent hashing uses for keys: xxHash64 with seed 0 (as gRPC's ring hash).
///
/// ```
/// assert_eq!(tower_lb::hash_bytes(b"user-42"), tower_lb::hash_bytes(b"user-42"));
/// assert_ne!(tower_lb::hash_bytes(b"user-42"), tower_lb::hash_bytes(b"user-43"));
/// ```
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxh64(bytes, 0)
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Header(h) => write!(f, "HashKey::header({:?})", h.as_str()),
            Source::Path => f.write_str("HashKey::path()"),
            Source::Custom(_) => f.write_str("HashKey::custom(..)"),
        }
    }
}

impl PartialEq for HashKey {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Source::Header(a), Source::Header(b)) => a == b,
            (Source::Path, Source::Path) => true,
            (Source::Custom(a), Source::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::builder().uri("/echo.Echo/Unary");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn header_keys_hash_their_values_and_miss_without_them() {
        let key = HashKey::header("x-user-id").unwrap();
        let a = key.hash(&request(&[("x-user-id", "a")]));
        assert_eq!(a, Some(hash_bytes(b"a")));
        assert_ne!(a, key.hash(&request(&[("x-user-id", "b")])));
        assert_eq!(key.hash(&request(&[])), None);
        // Two values hash as "a,b".
        let both = key.hash(&request(&[("x-user-id", "a"), ("x-user-id", "b")]));
        assert_eq!(both, Some(hash_bytes(b"a,b")));
    }

    #[test]
    fn path_and_custom_keys() {
        assert_eq!(
            HashKey::path().hash(&request(&[])),
            Some(hash_bytes(b"/echo.Echo/Unary"))
        );
        let key = HashKey::custom(|h| h.headers.get("k").map(|v| v.len() as u64));
        assert_eq!(key.hash(&request(&[("k", "abc")])), Some(3));
        assert_eq!(key.hash(&request(&[])), None);
    }
}
