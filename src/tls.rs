//! TLS and mutual TLS to endpoints with rustls (feature `tls`).
//!
//! [`ClientTls`] says whom to trust (a root store of your own: no system or web roots are
//! added behind your back), which client certificate to show (mTLS), and optionally one server
//! name for every endpoint. Give it to
//! [`Http2Connector::tls`](crate::transport::Http2Connector::tls), and the connector to
//! [`Builder::build_with`](crate::Builder::build_with). Each connection then dials TCP, completes the TLS handshake (ALPN `h2`), and only
//! then starts HTTP/2. A failed handshake is a failed connection attempt: the endpoint stays
//! out of the ready set with the handshake's error as its last error, and reconnects with the
//! usual backoff. There is no path back to plaintext.
//!
//! **The server name is never the IP address.** The certificate is checked against, and SNI
//! carries, the first of:
//!
//! 1. the name configured with [`ClientTls::server_name`] (one authority for all endpoints,
//!    like the host part of a gRPC target);
//! 2. the endpoint's own name, [`Endpoint::server_name`]: DNS discovery sets it to the SRV
//!    target (for SRV) or to the host name asked for (for A/AAAA); static lists set it with
//!    [`Endpoint::with_server_name`].
//!
//! With neither, the balancer refuses to connect and says so. An address is what DNS happened
//! to answer today; the name is what the client meant to reach, and the only thing a
//! certificate for a pod that moves can honestly vouch for.
//!
//! ```
//! use tower_lb::{Balancer, discover, tls::ClientTls, transport::Http2Connector};
//! # async fn run(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<(), tower_lb::Error> {
//! let tls = ClientTls::from_root_pem(ca_pem)?      // trust this CA only
//!     .identity_pem(cert_pem, key_pem)?            // mTLS: our client certificate
//!     .server_name("echo.internal")?;              // optional: one name for all endpoints
//! let endpoints = vec!["10.0.0.1:443".parse::<discover::Endpoint>()?];
//! let balancer = Balancer::builder()
//!     .build_with(Http2Connector::new().tls(tls), discover::fixed(endpoints))?;
//! # Ok(()) }
//! ```
//!
//! rustls runs with its `ring` provider, chosen explicitly for every connection, so the
//! process-wide default provider (which panics when two providers are linked and none was
//! installed) plays no part.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

pub use rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::discover::Endpoint;
use crate::error::{BoxError, Error};

/// How the balancer speaks TLS to its endpoints: trusted roots, an optional client
/// certificate (mTLS) and an optional server name for every endpoint. ALPN offers `h2` only.
///
/// Cheap to clone (the rustls configuration is shared). Every constructor and setter checks
/// its input at once: bad PEM, a key that does not match the certificate or a bad name is an
/// [`Error::InvalidConfig`], never a panic and never a surprise at the first call.
///
/// ```
/// use tower_lb::tls::{ClientTls, rustls::RootCertStore};
/// // An empty root store trusts nothing: refused up front.
/// let err = ClientTls::new(RootCertStore::empty()).unwrap_err();
/// assert!(err.to_string().contains("no trusted root"));
/// let err = ClientTls::from_root_pem("not pem").unwrap_err();
/// assert!(err.to_string().contains("no PEM CERTIFICATE"));
/// ```
#[derive(Clone)]
pub struct ClientTls {
    roots: Arc<RootCertStore>,
    config: Arc<ClientConfig>,
    has_identity: bool,
    server_name: Option<Name>,
}

/// A checked server name, with its text for messages and authorities.
#[derive(Clone)]
struct Name {
    text: Arc<str>,
    rustls: ServerName<'static>,
}

impl Name {
    fn parse(name: &str) -> Result<Name, String> {
        let rustls = ServerName::try_from(name.to_owned())
            .map_err(|e| format!("server name {name:?} is not a DNS name ({e})"))?;
        if matches!(rustls, ServerName::IpAddress(_)) {
            return Err(format!(
                "server name {name:?} is an IP address; TLS checks endpoints by DNS name"
            ));
        }
        Ok(Name {
            text: Arc::from(name),
            rustls,
        })
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots.len())
            .field("client_identity", &self.has_identity)
            .field("server_name", &self.server_name.as_ref().map(|n| &*n.text))
            .finish()
    }
}

fn invalid(why: impl fmt::Display) -> Error {
    Error::InvalidConfig(format!("TLS: {why}"))
}

impl ClientTls {
    /// Trusts the certificates of `roots` (and nothing else), with no client certificate.
    ///
    /// Fails for an empty store, which could verify no server at all.
    pub fn new(roots: RootCertStore) -> Result<Self, Error> {
        if roots.is_empty() {
            return Err(invalid(
                "no trusted root certificates: an empty root store can verify no server",
            ));
        }
        let roots = Arc::new(roots);
        let config = config(&roots, None)?;
        Ok(ClientTls {
            roots,
            config,
            has_identity: false,
            server_name: None,
        })
    }

    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks; other blocks are
    /// skipped).
    ///
    /// Fails if there is no certificate block, or a block is not valid base64 or not a
    /// certificate rustls can use as a trust anchor.
    pub fn from_root_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let certs = certificates(pem.as_ref(), "root certificates")?;
        let mut roots = RootCertStore::empty();
        for (i, cert) in certs.into_iter().enumerate() {
            roots
                .add(cert)
                .map_err(|e| invalid(format!("root certificate {}: {e}", i + 1)))?;
        }
        Self::new(roots)
    }

    /// Shows this client certificate chain (PEM `CERTIFICATE` blocks, leaf first) and its
    /// private key (PEM PKCS#8, PKCS#1 or SEC1) to servers that ask for one: mutual TLS.
    ///
    /// Fails for missing or malformed PEM, an unsupported key, or a key that is not the
    /// certificate's.
    pub fn identity_pem(
        self,
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<Self, Error> {
        let chain = certificates(cert_chain_pem.as_ref(), "client certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_ref()).map_err(|e| {
            invalid(format!(
                "client private key: no usable PEM PRIVATE KEY block ({e})"
            ))
        })?;
        self.identity(chain, key)
    }

    /// Like [`identity_pem`](Self::identity_pem), from DER values already parsed.
    pub fn identity(
        mut self,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, Error> {
        if cert_chain.is_empty() {
            return Err(invalid("client certificate chain is empty"));
        }
        self.config = config(&self.roots, Some((cert_chain, key)))?;
        self.has_identity = true;
        Ok(self)
    }

    /// Checks every endpoint's certificate against `name` (and sends it as SNI and in the
    /// `:authority` of requests), whatever name the endpoint has. For a set of backends that
    /// share one certificate name, as behind one gRPC target `dns:///echo.internal:443`.
    ///
    /// Fails unless `name` is a DNS name; an IP address is refused.
    pub fn server_name(mut self, name: &str) -> Result<Self, Error> {
        let name = name.strip_suffix('.').unwrap_or(name);
        self.server_name = Some(Name::parse(name).map_err(invalid)?);
        Ok(self)
    }

    /// What one connection to `endpoint` needs: the name to check, or why there is none.
    pub(crate) fn dial(&self, endpoint: &Endpoint) -> Result<TlsDial, BoxError> {
        let name = match (&self.server_name, endpoint.server_name()) {
            (Some(name), _) => name.clone(),
            (None, Some(name)) => {
                Name::parse(name).map_err(|e| format!("TLS to {}: {e}", endpoint.addr()))?
            }
            (None, None) => {
                return Err(format!(
                    "TLS to {} needs a server name to check its certificate against: none is \
                     configured (ClientTls::server_name) and the endpoint has none \
                     (Endpoint::with_server_name; DNS discovery sets it); the IP address is \
                     never used as the name",
                    endpoint.addr()
                )
                .into());
            }
        };
        Ok(TlsDial {
            connector: TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

/// The TLS side of one connection attempt.
pub(crate) struct TlsDial {
    connector: TlsConnector,
    name: Name,
}

impl TlsDial {
    /// The name the certificate is checked against.
    pub(crate) fn name(&self) -> &str {
        &self.name.text
    }

    /// Runs the handshake on a dialled TCP stream.
    pub(crate) async fn handshake(
        &self,
        addr: SocketAddr,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, BoxError> {
        self.connector
            .connect(self.name.rustls.clone(), tcp)
            .await
            .map_err(|e| -> BoxError {
                format!(
                    "TLS handshake with {addr} as {:?} failed: {e}",
                    &*self.name.text
                )
                .into()
            })
    }
}

/// The certificates of `pem`, or why there are none.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what}: malformed PEM ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(format!("{what}: no PEM CERTIFICATE block found")));
    }
    Ok(certs)
}

/// The rustls configuration: ring, TLS 1.2 and 1.3, our roots, ALPN `h2` only.
fn config(
    roots: &Arc<RootCertStore>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, Error> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_root_certificates(roots.clone());
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| invalid(format!("client certificate and key: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
