//! TLS to etcd: the CA that signed the members' certificates, and a client certificate when
//! etcd asks for one (`--client-cert-auth`).

use std::fmt;

/// TLS settings for the connection to etcd (URLs `https://...`).
///
/// rustls with the ring provider, the given CA only (no system roots). The name checked is the
/// URL's host unless [`domain`](Self::domain) says otherwise.
///
/// ```
/// use tower_lb::discover::etcd::EtcdTls;
/// let ca = std::fs::read("/etc/etcd/ca.pem").unwrap_or_default();
/// let tls = EtcdTls::new(ca).domain("etcd.internal");
/// # let _ = tls;
/// ```
#[derive(Clone)]
pub struct EtcdTls {
    pub(crate) ca_pem: Vec<u8>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) domain: Option<String>,
}

impl EtcdTls {
    /// Trust the CA certificate(s) in this PEM.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        EtcdTls {
            ca_pem: ca_pem.into(),
            identity: None,
            domain: None,
        }
    }

    /// Present this client certificate (PEM chain) and key (PEM) to etcd.
    pub fn identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Check the members' certificates against this name instead of each URL's host.
    pub fn domain(mut self, name: impl Into<String>) -> Self {
        self.domain = Some(name.into());
        self
    }

    pub(crate) fn client_config(&self) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        config
    }
}

impl fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("client_identity", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}
