//! gRPC service config JSON (feature `service-config`, on by default): the load-balancing,
//! outlier-detection, health-check and per-method (timeouts, retries, hedging) parts of the
//! service config grpc-go, grpc-java and C-core read, mapped onto this crate's settings.
//!
//! ```
//! use tower_lb::{Balancer, service_config::ServiceConfig};
//! let config = ServiceConfig::from_json(r#"{
//!     "loadBalancingConfig": [
//!         { "some_policy_we_lack": {} },
//!         { "least_request_experimental": { "choiceCount": 3 } },
//!         { "round_robin": {} }
//!     ],
//!     "outlierDetection": {
//!         "interval": "5s",
//!         "failurePercentageEjection": { "threshold": 50, "requestVolume": 20 }
//!     }
//! }"#)?;
//! assert_eq!(config.policy_name(), Some("least_request_experimental"));
//! let builder = Balancer::builder().service_config(&config);
//! # Ok::<(), tower_lb::Error>(())
//! ```
//!
//! ## The mapping
//!
//! `loadBalancingConfig` is a list of one-key objects: the **first** whose policy is listed
//! below wins, unknown policies are skipped (as gRPC does), and a list with none we know is an
//! error. A known policy with an invalid config is an error, as gRPC then rejects the whole
//! config. Unknown fields are ignored, as in gRPC.
//!
//! | gRPC | tower-lb | notes |
//! |---|---|---|
//! | `pick_first` | [`Policy::pick_first`] | `shuffleAddressList: true` → [`Policy::pick_first_shuffled`] (a salt per balancer, not a reshuffle per resolution) |
//! | `round_robin` | [`Policy::round_robin`] | ours is smooth weighted round robin: with equal weights, gRPC's round robin |
//! | `weighted_round_robin` | [`Policy::weighted_round_robin`] | A58's parameters and defaults (`blackoutPeriod` 10 s, `weightExpirationPeriod` 3 min, `weightUpdatePeriod` 1 s, at least 100 ms, `errorUtilizationPenalty` 1.0); weights from the per-call ORCA trailers. `enableOobLoadReport` is accepted but out-of-band reports are not implemented yet: the trailers are read either way |
//! | `least_request_experimental` | [`Policy::least_request`] | `choiceCount` default 2 (= [`Policy::p2c_in_flight`]); below 2 is an error, above 10 is 10 (A48) |
//! | `ring_hash_experimental` | [`Policy::ring_hash`] + [`ring_size`](Policy::ring_size) | `minRingSize` 1,024, `maxRingSize` 4,096 by default (A42; 0 means the default), either capped at 8,388,608; `requestHashHeader` (A76) → [`HashKey::header`](crate::HashKey::header). Requests without that header — all of them when no header is set, since we have no xDS hash policy — are balanced by the ring-hash fallback, p2c over PeakEWMA, where gRPC hashes them randomly (Go fails them when no header is set). Binary (`-bin`) headers are refused, as A76 says |
//! | `outlier_detection_experimental` | outlier detection + its `childPolicy` | the A50 fields below, then `childPolicy`, itself a `loadBalancingConfig` list (required) |
//!
//! Top-level fields:
//!
//! | field | tower-lb | notes |
//! |---|---|---|
//! | `loadBalancingConfig` | [`Builder::policy`](crate::Builder::policy) | see above; absent: the builder's policy stays (p2c over PeakEWMA by default, where gRPC's default is pick first) |
//! | `loadBalancingPolicy` (deprecated) | `"round_robin"` / `"pick_first"` (any case) | only when `loadBalancingConfig` is absent; other names are ignored, as gRPC does |
//! | `outlierDetection` | [`Builder::outlier_detection`](crate::Builder::outlier_detection) | a tower-lb extension with A50's fields; not together with `outlier_detection_experimental` |
//! | `healthCheckConfig` | [`HealthCheck::grpc`][health-check-grpc]`.service(serviceName)` | needs the `health` feature: without it this field is an error, not silently dropped |
//! | `methodConfig` | [`Builder::method_config`](crate::Builder::method_config) per entry | see below |
//! | `retryThrottling` | [`Builder::retry_throttling`](crate::Builder::retry_throttling) | `maxTokens` 1 ..= 1000, `tokenRatio` ≥ 0.001, both required (A6) |
//! | anything else | ignored | |
//!
//! `methodConfig` entries (→ [`MethodConfig`]; what the policies do is in
//! [`method_config`](crate::method_config)):
//!
//! | field | tower-lb | notes |
//! |---|---|---|
//! | `name` | [`MethodName`](crate::method_config::MethodName)s | `{"service": "s", "method": "m"}`, `{"service": "s"}` (every method of `s`), `{}` (the default); a method without its service, or a name given twice, is an error |
//! | `timeout` | [`MethodConfig::timeout`] | replaces the builder's default timeout for these calls; the caller's shorter `grpc-timeout` still wins |
//! | `waitForReady` | [`MethodConfig::wait_for_ready`] | `true`: wait for a ready endpoint until the deadline, not the ready timeout |
//! | `maxRequestMessageBytes`, `maxResponseMessageBytes` | kept on [`MethodConfig`] | not enforced by the balancer (it sees HTTP/2 frames, not messages): apply them with tonic's `max_encoding_message_size` / `max_decoding_message_size` |
//! | `retryPolicy` | [`RetryPolicy`](crate::method_config::RetryPolicy) | all five fields required; `maxAttempts` ≥ 2 (above 5 is 5); backoffs and multiplier above 0; codes by name (any case) or number, not `OK` |
//! | `hedgingPolicy` | [`HedgingPolicy`](crate::method_config::HedgingPolicy) | `maxAttempts` required, ≥ 2 (above 5 is 5); `hedgingDelay` default 0; `nonFatalStatusCodes` default none |
//!
//! A `retryPolicy` and a `hedgingPolicy` on one entry is an error.
//!
//! Outlier detection (A50 field → [`OutlierDetection`]):
//!
//! | A50 | tower-lb | A50 default |
//! |---|---|---|
//! | `interval` | [`interval`](OutlierDetection::interval) (must be above 0) | 10 s |
//! | `baseEjectionTime` | [`base_ejection_time`](OutlierDetection::base_ejection_time) | 30 s |
//! | `maxEjectionTime` | [`max_ejection_time`](OutlierDetection::max_ejection_time) | 300 s |
//! | `maxEjectionPercent` | [`max_ejection_percent`](OutlierDetection::max_ejection_percent) (≤ 100) | 10 |
//! | `successRateEjection` | [`success_rate`](OutlierDetection::success_rate): `stdevFactor` in thousandths (1900 = 1.9), `enforcementPercentage`, `minimumHosts`, `requestVolume` | 1900, 100, 5, 100 |
//! | `failurePercentageEjection` | [`failure_percentage`](OutlierDetection::failure_percentage): `threshold`, `enforcementPercentage`, `minimumHosts`, `requestVolume` | 85, 100, 5, 50 |
//!
//! Mapped faithfully, which differs from our defaults: **a detector that is absent is off**
//! (ours has both on), so `{}` ejects nothing; and A50 has **no consecutive-failures
//! detector**, so ours (5 in a row by default) is **off** in a config from JSON. To have it
//! back, adjust the parsed value:
//!
//! ```
//! use tower_lb::{Balancer, service_config::ServiceConfig};
//! let config = ServiceConfig::from_json(r#"{"outlierDetection": {"failurePercentageEjection": {}}}"#)?;
//! let od = config.outlier_detection().unwrap().consecutive_failures(Some(5));
//! let builder = Balancer::builder().service_config(&config).outlier_detection(od);
//! # Ok::<(), tower_lb::Error>(())
//! ```
//!
//! Values: integers as numbers or strings (`1024` or `"1024"`), durations as proto-JSON
//! strings (`"10s"`, `"0.5s"`, `"1.000000001s"`; never negative), `null` as absent. A wrong
//! value is [`Error::InvalidConfig`] naming its path, e.g. `service config:
//! loadBalancingConfig[0].ring_hash_experimental.minRingSize: expected an unsigned integer,
//! got "abc"`. Duplicate keys in one object: the last wins (as Go's JSON decoder).
//!
//! Not supported: xDS policies (`xds_cluster_*`, `priority_experimental`,
//! `weighted_target_experimental`, ...; skipped as unknown), ORCA-driven weights.
//!
// Links to items behind a feature: the item when the feature is on, else its docs.rs page.
#![cfg_attr(
    feature = "health",
    doc = "[health-check-grpc]: crate::health::HealthCheck::grpc"
)]
#![cfg_attr(
    not(feature = "health"),
    doc = "[health-check-grpc]: https://docs.rs/tower-lb/latest/tower_lb/health/struct.HealthCheck.html#method.grpc"
)]

mod method;
mod outlier;
mod policy;
mod value;

use serde_json::Value;

use crate::error::Error;
#[cfg(feature = "health")]
use crate::health::HealthCheck;
use crate::health::OutlierDetection;
use crate::method_config::{MethodConfig, RetryThrottling};
use crate::policy::Policy;
use value::{error, field, object, show, string};

/// The parts of a gRPC service config this crate applies: a policy, outlier detection and a
/// health check, each present only if the config says so. Apply it with
/// [`Builder::service_config`](crate::Builder::service_config); the
/// [module docs](crate::service_config) give the mapping.
///
/// ```
/// use tower_lb::{Policy, service_config::ServiceConfig};
/// let config: ServiceConfig = r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#.parse()?;
/// assert_eq!(config.policy(), Some(&Policy::round_robin()));
/// assert!(config.outlier_detection().is_none());
/// # Ok::<(), tower_lb::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceConfig {
    policy: Option<(Policy, &'static str)>,
    outlier: Option<OutlierDetection>,
    #[cfg(feature = "health")]
    health_check: Option<HealthCheck>,
    methods: Vec<MethodConfig>,
    throttling: Option<RetryThrottling>,
}

impl ServiceConfig {
    /// Parses a service config. Fails with [`Error::InvalidConfig`] naming the field for
    /// invalid JSON, a value of the wrong type or range, or a `loadBalancingConfig` without a
    /// policy we support.
    ///
    /// ```
    /// use tower_lb::service_config::ServiceConfig;
    /// let e = ServiceConfig::from_json(
    ///     r#"{"loadBalancingConfig": [{"ring_hash_experimental": {"minRingSize": "abc"}}]}"#,
    /// ).unwrap_err();
    /// assert!(e.to_string().contains(
    ///     r#"loadBalancingConfig[0].ring_hash_experimental.minRingSize: expected an unsigned integer, got "abc""#
    /// ));
    /// ```
    pub fn from_json(json: &str) -> Result<ServiceConfig, Error> {
        let doc: Value = serde_json::from_str(json)
            .map_err(|e| Error::InvalidConfig(format!("service config: invalid JSON: {e}")))?;
        Self::from_value(&doc)
    }

    fn from_value(doc: &Value) -> Result<ServiceConfig, Error> {
        let top = doc.as_object().ok_or_else(|| {
            Error::InvalidConfig(format!(
                "service config: expected a JSON object, got {}",
                show(doc)
            ))
        })?;
        let mut config = ServiceConfig::default();
        if let Some(list) = field(top, "loadBalancingConfig") {
            let chosen = policy::parse_list(list, "loadBalancingConfig", false)?;
            config.policy = Some((chosen.policy, chosen.name));
            config.outlier = chosen.outlier;
        } else if let Some(v) = field(top, "loadBalancingPolicy") {
            let name = string(v, "loadBalancingPolicy")?.to_ascii_lowercase();
            config.policy = match name.as_str() {
                "round_robin" => Some((Policy::round_robin(), "round_robin")),
                "pick_first" => Some((Policy::pick_first(), "pick_first")),
                _ => None,
            };
        }
        if let Some(v) = field(top, "outlierDetection") {
            if config.outlier.is_some() {
                return Err(error(
                    "outlierDetection",
                    "given twice: here and as outlier_detection_experimental in loadBalancingConfig",
                ));
            }
            config.outlier = Some(outlier::parse(v, "outlierDetection")?);
        }
        if let Some(v) = field(top, "healthCheckConfig") {
            let obj = object(v, "healthCheckConfig")?;
            let service = match field(obj, "serviceName") {
                Some(v) => string(v, "healthCheckConfig.serviceName")?,
                None => "",
            };
            #[cfg(feature = "health")]
            {
                config.health_check = Some(HealthCheck::grpc().service(service));
            }
            #[cfg(not(feature = "health"))]
            {
                let _ = service;
                return Err(error(
                    "healthCheckConfig",
                    "health checks need tower-lb's `health` feature",
                ));
            }
        }
        if let Some(v) = field(top, "methodConfig") {
            config.methods = method::parse_list(v, "methodConfig")?;
            // Names given twice.
            crate::method_config::MethodTable::new(&config.methods).map_err(|e| match e {
                Error::InvalidConfig(m) => Error::InvalidConfig(format!("service config: {m}")),
                e => e,
            })?;
        }
        if let Some(v) = field(top, "retryThrottling") {
            config.throttling = Some(method::throttling(v, "retryThrottling")?);
        }
        Ok(config)
    }

    /// The entries of `methodConfig`, in order (see [`method_config`](crate::method_config)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_lb::service_config::ServiceConfig;
    /// let config = ServiceConfig::from_json(r#"{"methodConfig": [{
    ///     "name": [{"service": "echo.Echo", "method": "Unary"}],
    ///     "timeout": "0.5s",
    ///     "retryPolicy": {
    ///         "maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.1s",
    ///         "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]
    ///     }
    /// }]}"#)?;
    /// let method = &config.method_configs()[0];
    /// assert_eq!(method.get_timeout(), Some(Duration::from_millis(500)));
    /// assert_eq!(method.get_retry_policy().unwrap().max_attempts(), 3);
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn method_configs(&self) -> &[MethodConfig] {
        &self.methods
    }

    /// `retryThrottling`, if set.
    ///
    /// ```
    /// use tower_lb::service_config::ServiceConfig;
    /// let config = ServiceConfig::from_json(
    ///     r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
    /// )?;
    /// assert_eq!(config.retry_throttling().unwrap().max_tokens(), 10);
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn retry_throttling(&self) -> Option<RetryThrottling> {
        self.throttling
    }

    /// The policy of `loadBalancingConfig` (or of the deprecated `loadBalancingPolicy`), if
    /// the config chose one.
    ///
    /// ```
    /// use tower_lb::{Policy, service_config::ServiceConfig};
    /// let config = ServiceConfig::from_json(r#"{"loadBalancingConfig": [{"pick_first": {}}]}"#)?;
    /// assert_eq!(config.policy(), Some(&Policy::pick_first()));
    /// assert_eq!(ServiceConfig::from_json("{}")?.policy(), None);
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref().map(|(p, _)| p)
    }

    /// The gRPC name of the chosen policy (for `outlier_detection_experimental`, its child's).
    ///
    /// ```
    /// use tower_lb::service_config::ServiceConfig;
    /// let config = ServiceConfig::from_json(
    ///     r#"{"loadBalancingConfig": [{"weighted_round_robin": {}}]}"#,
    /// )?;
    /// assert_eq!(config.policy_name(), Some("weighted_round_robin"));
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn policy_name(&self) -> Option<&str> {
        self.policy.as_ref().map(|(_, name)| *name)
    }

    /// Outlier detection, from `outlierDetection` or `outlier_detection_experimental`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_lb::{health::OutlierDetection, service_config::ServiceConfig};
    /// let config = ServiceConfig::from_json(r#"{"outlierDetection": {"interval": "0.5s"}}"#)?;
    /// let expected = OutlierDetection::default()
    ///     .interval(Duration::from_millis(500))
    ///     .consecutive_failures(None)
    ///     .success_rate(None)
    ///     .failure_percentage(None);
    /// assert_eq!(config.outlier_detection(), Some(expected));
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn outlier_detection(&self) -> Option<OutlierDetection> {
        self.outlier
    }

    /// The health check of `healthCheckConfig` (feature `health`).
    ///
    /// ```
    /// use tower_lb::service_config::ServiceConfig;
    /// let config = ServiceConfig::from_json(
    ///     r#"{"healthCheckConfig": {"serviceName": "echo.Echo"}}"#,
    /// )?;
    /// assert_eq!(config.health_check().unwrap().service_name(), "echo.Echo");
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    #[cfg(feature = "health")]
    pub fn health_check(&self) -> Option<&HealthCheck> {
        self.health_check.as_ref()
    }
}

impl std::str::FromStr for ServiceConfig {
    type Err = Error;

    /// [`ServiceConfig::from_json`].
    fn from_str(json: &str) -> Result<Self, Error> {
        ServiceConfig::from_json(json)
    }
}

#[cfg(test)]
mod tests;
