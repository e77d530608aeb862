//! Balancing policies: how one endpoint is chosen from the ready set for each call.
//!
//! Every policy picks from an immutable snapshot of ready endpoints, in the caller's task, with
//! no lock and no allocation.

mod p2c;

pub(crate) use p2c::pick as pick_p2c;

use crate::endpoint::load::PeakEwma;

/// How a [`Balancer`](crate::Balancer) chooses an endpoint.
///
/// Power of two choices (p2c): pick two ready endpoints at random and send to the less
/// loaded one. Mitzenmacher showed that this second choice brings the maximum load down from
/// `ln n / ln ln n` to `ln ln n / ln 2` — nearly as good as asking every endpoint, at a constant
/// cost per call however many endpoints there are.
///
/// "Load" is one of:
/// * [`Policy::p2c_peak_ewma`] (the default): latency estimate × (in-flight + 1), so slow
///   endpoints get less traffic, not just busy ones;
/// * [`Policy::p2c_in_flight`]: requests in flight only.
///
/// ```
/// use tower_lb::{Policy, PeakEwma};
/// let p = Policy::p2c_peak_ewma(PeakEwma::default());
/// let q = Policy::p2c_in_flight();
/// assert_ne!(p, q);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub(crate) load: LoadMetric,
}

/// The load measure of p2c.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LoadMetric {
    InFlight,
    PeakEwma(PeakEwma),
}

impl Policy {
    /// p2c over PeakEWMA cost (the default).
    pub fn p2c_peak_ewma(config: PeakEwma) -> Self {
        Policy {
            load: LoadMetric::PeakEwma(config),
        }
    }

    /// p2c over requests in flight.
    pub fn p2c_in_flight() -> Self {
        Policy {
            load: LoadMetric::InFlight,
        }
    }

    /// The PeakEWMA settings (the defaults if the policy does not use PeakEWMA).
    pub(crate) fn peak_ewma(&self) -> PeakEwma {
        match self.load {
            LoadMetric::PeakEwma(c) => c,
            LoadMetric::InFlight => PeakEwma::default(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::p2c_peak_ewma(PeakEwma::default())
    }
}
