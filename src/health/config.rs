//! Every health setting of one balancer, gathered for the control task.

use super::breaker::CircuitBreaker;
#[cfg(feature = "health")]
use super::check::HealthCheck;
use super::outcome::Failures;
use super::outlier::OutlierDetection;
use super::slow_start::SlowStart;

/// All health settings of one balancer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HealthConfig {
    pub(crate) failures: Failures,
    pub(crate) outlier: OutlierDetection,
    pub(crate) breaker: CircuitBreaker,
    #[cfg(feature = "health")]
    pub(crate) check: Option<HealthCheck>,
    pub(crate) slow_start: Option<SlowStart>,
    /// Panic below this healthy share of a tier (`None`: never).
    pub(crate) panic_threshold: Option<f64>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            failures: Failures::default(),
            outlier: OutlierDetection::default(),
            breaker: CircuitBreaker::default(),
            #[cfg(feature = "health")]
            check: None,
            slow_start: None,
            panic_threshold: Some(0.5),
        }
    }
}
