//! The settings a discovery stream or a registration runs with, checked and shared.

use std::time::Duration;

use super::tls::EtcdTls;
use crate::time::Backoff;

/// The settings a discovery stream or a registration runs with.
#[derive(Clone)]
pub(crate) struct Settings {
    /// The members' URLs, `http://` or `https://`.
    pub(crate) endpoints: Vec<String>,
    /// The prefix, ending in `/`.
    pub(crate) prefix: String,
    pub(crate) auth: Option<(String, String)>,
    pub(crate) tls: Option<EtcdTls>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) backoff: Backoff,
}
