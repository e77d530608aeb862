//! The settings of HTTP/2 connections and of what every request on them carries: kept by
//! [`Http2Connector`](super::Http2Connector), and by the builder for the connector `build()`
//! makes. Validated before anything is dialled, so a bad value is a clear error, not a panic
//! deep in the HTTP/2 stack.

use std::time::Duration;

use http::HeaderValue;
use http::uri::Authority;

use crate::error::Error;

/// How long a dial may take before it counts as failed.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2's bounds on a frame's payload (RFC 9113 §6.5.2).
const FRAME_SIZES: std::ops::RangeInclusive<u32> = 16_384..=16_777_215;
/// HTTP/2's bound on a flow-control window (RFC 9113 §6.9.1).
const MAX_WINDOW: u32 = (1 << 31) - 1;

/// The user agent sent when the caller sets none: this crate and its version.
pub(crate) const USER_AGENT: &str = concat!("tower-lb/", env!("CARGO_PKG_VERSION"));

/// Every setting of an HTTP/2 connection to an endpoint, with tonic's `Endpoint` defaults
/// where tonic has one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Http2Settings {
    pub(crate) connect_timeout: Duration,
    pub(crate) keep_alive_interval: Option<Duration>,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) keep_alive_while_idle: bool,
    pub(crate) tcp_nodelay: bool,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) tcp_keepalive_interval: Option<Duration>,
    pub(crate) tcp_keepalive_retries: Option<u32>,
    pub(crate) tcp_user_timeout: Option<Duration>,
    pub(crate) initial_stream_window_size: Option<u32>,
    pub(crate) initial_connection_window_size: Option<u32>,
    pub(crate) adaptive_window: bool,
    pub(crate) max_frame_size: Option<u32>,
    pub(crate) max_header_list_size: Option<u32>,
    /// The `:authority` of every request, over whatever the request or the endpoint says.
    pub(crate) authority: Option<String>,
    /// Put before this crate's name in the `user-agent` of requests that carry none.
    pub(crate) user_agent: Option<String>,
}

/// The default keep-alive interval: the shortest gRPC servers accept by default.
pub(crate) const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(300);

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            // What gRPC servers permit by default (grpc-core, grpc-go, grpc-java): a PING at
            // most every 5 minutes unless they send something, none on a connection without
            // calls. More often, they answer with GOAWAY "too_many_pings" after the third.
            keep_alive_interval: Some(DEFAULT_KEEP_ALIVE_INTERVAL),
            keep_alive_timeout: Duration::from_secs(20),
            keep_alive_while_idle: false,
            tcp_nodelay: true,
            tcp_keepalive: None,
            tcp_keepalive_interval: None,
            tcp_keepalive_retries: None,
            tcp_user_timeout: None,
            initial_stream_window_size: None,
            initial_connection_window_size: None,
            adaptive_window: false,
            max_frame_size: None,
            max_header_list_size: None,
            authority: None,
            user_agent: None,
        }
    }
}

/// What [`Http2Settings`] put on each request, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct RequestSettings {
    pub(crate) authority: Option<Authority>,
    pub(crate) user_agent: HeaderValue,
}

impl Http2Settings {
    /// Refuses values HTTP/2 does not allow, naming the setting.
    pub(crate) fn validate(&self) -> Result<RequestSettings, Error> {
        let refuse = |what: &str| Err(Error::InvalidConfig(what.to_owned()));
        if let Some(size) = self.max_frame_size
            && !FRAME_SIZES.contains(&size)
        {
            return refuse(&format!(
                "max_frame_size must be within {}..={} (RFC 9113), got {size}",
                FRAME_SIZES.start(),
                FRAME_SIZES.end()
            ));
        }
        for (name, window) in [
            (
                "initial_stream_window_size",
                self.initial_stream_window_size,
            ),
            (
                "initial_connection_window_size",
                self.initial_connection_window_size,
            ),
        ] {
            if let Some(size) = window
                && size > MAX_WINDOW
            {
                return refuse(&format!("{name} must be at most 2^31 - 1, got {size}"));
            }
        }
        if self.connect_timeout.is_zero() {
            return refuse("connect_timeout must be above zero");
        }
        let authority = match &self.authority {
            Some(a) => Some(Authority::try_from(a.as_str()).map_err(|e| {
                Error::InvalidConfig(format!("authority {a:?} is not a valid authority: {e}"))
            })?),
            None => None,
        };
        let user_agent = match &self.user_agent {
            Some(ua) => HeaderValue::try_from(format!("{ua} {USER_AGENT}")).map_err(|_| {
                Error::InvalidConfig(format!(
                    "user agent {ua:?} is not a valid header value (visible ASCII and spaces only)"
                ))
            })?,
            None => HeaderValue::from_static(USER_AGENT),
        };
        Ok(RequestSettings {
            authority,
            user_agent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let ok = Http2Settings::default().validate().unwrap();
        assert_eq!(ok.user_agent, USER_AGENT);
        assert!(ok.authority.is_none());
        let bad = [
            Http2Settings {
                max_frame_size: Some(1),
                ..Default::default()
            },
            Http2Settings {
                initial_stream_window_size: Some(u32::MAX),
                ..Default::default()
            },
            Http2Settings {
                authority: Some("no spaces allowed".into()),
                ..Default::default()
            },
            Http2Settings {
                user_agent: Some("line\nbreak".into()),
                ..Default::default()
            },
            Http2Settings {
                connect_timeout: Duration::ZERO,
                ..Default::default()
            },
        ];
        for (settings, word) in bad.iter().zip([
            "max_frame_size",
            "initial_stream_window_size",
            "authority",
            "user agent",
            "connect_timeout",
        ]) {
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains(word), "{error}");
        }
        let mine = Http2Settings {
            user_agent: Some("checkout/2.1".into()),
            authority: Some("echo.internal:8443".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(
            mine.user_agent,
            format!("checkout/2.1 {USER_AGENT}").as_str()
        );
        assert_eq!(mine.authority.unwrap(), "echo.internal:8443");
    }
}
