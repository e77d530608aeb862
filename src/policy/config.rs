//! The public face of a policy: [`Policy`], its constructors and settings, and the kinds it
//! dispatches on.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::consistent::{Hashing, TableConfig};
use super::hash_key::HashKey;
pub(crate) use super::p2c::LoadMetric;
use super::prequal::Prequal;
use super::weighted_round_robin::WeightedRoundRobin;
use super::{maglev, ring};
use crate::endpoint::{EndpointDefaults, Passive, PeakEwma};
use crate::error::Error;
use crate::time::now_ns;

/// How a [`Balancer`](crate::Balancer) chooses an endpoint. Every policy but pick first
/// respects the endpoints' weights.
///
/// | policy | pick cost | what it does |
/// |---|---|---|
/// | [`p2c_peak_ewma`](Policy::p2c_peak_ewma) (default) | O(1) | two random endpoints, the one with the lower latency estimate × (in-flight + 1) / weight |
/// | [`p2c_in_flight`](Policy::p2c_in_flight) | O(1) | two random endpoints, the one with fewer requests in flight per weight |
/// | [`least_request`](Policy::least_request) | O(k) | k (3 ..= 10) random endpoints, the one with the fewest in flight per weight (gRPC A48) |
/// | [`least_loaded`](Policy::least_loaded) | O(n) | the endpoint with the fewest in flight per weight ("least connections") |
/// | [`pick_first`](Policy::pick_first) | O(1) | every call to one endpoint, the first usable in a stable order, until it goes |
/// | [`round_robin`](Policy::round_robin) | O(1) | smooth weighted round robin (nginx): shares follow weights, no bursts |
/// | [`weighted_round_robin`](Policy::weighted_round_robin) | O(1) | smooth weighted round robin by the servers' ORCA load reports (gRPC A58) |
/// | [`prequal`](Policy::prequal) | O(16) | the servers' own answers to load probes: the lowest latency among those not hot (Prequal) |
/// | [`weighted_random`](Policy::weighted_random) | O(log n) | random, with probability weight / total |
/// | [`ring_hash`](Policy::ring_hash) | O(1) expected | the request's key on a hash ring (virtual nodes ∝ weight) |
/// | [`maglev`](Policy::maglev) | O(1) | the request's key in a Maglev table (slots ∝ weight) |
/// | [`bounded_load`](Policy::bounded_load) | O(1) expected | either of the two, no endpoint above `(1 + ε)` × its share |
///
/// Power of two choices: Mitzenmacher showed that a second random choice brings the maximum
/// load down from `ln n / ln ln n` to `ln ln n / ln 2` — nearly as good as asking every
/// endpoint, at a constant cost per call however many endpoints there are. PeakEWMA also
/// sees latency, so a slow endpoint gets less traffic, not just a busy one.
///
/// ```
/// use tower_lb::{Policy, PeakEwma};
/// let p = Policy::p2c_peak_ewma(PeakEwma::default());
/// assert_eq!(p, Policy::default());
/// assert_ne!(p, Policy::round_robin());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The policy, or for a hashing policy the one for requests without a key.
    pub(crate) kind: Kind,
    pub(crate) hashing: Option<Arc<Hashing>>,
    /// Weighted round robin's settings, beside the kind (as hashing is) so `Kind` stays
    /// small for every other policy's pick.
    pub(crate) wrr: Option<Arc<WeightedRoundRobin>>,
    /// Prequal's settings, beside the kind for the same reason.
    pub(crate) prequal: Option<Arc<Prequal>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    P2c(LoadMetric),
    /// k > 2 random choices by in-flight per weight (2 is `P2c(InFlight)`).
    LeastRequest(u8),
    LeastLoaded,
    /// `salt`: shuffled by `xxh64(key, salt)`, else key order.
    PickFirst {
        salt: Option<u64>,
    },
    RoundRobin,
    /// Round robin weighted by ORCA load reports (gRPC A58); settings in `Policy::wrr`.
    WeightedRoundRobin,
    WeightedRandom,
    /// Probing and the hot-cold rule; settings in `Policy::prequal`.
    Prequal,
}

impl Policy {
    /// p2c over PeakEWMA cost (the default).
    ///
    /// The cost is `latency × (in flight + 1)`, where the latency is the larger of the decayed
    /// estimate and how long the oldest call still waiting for its answer has waited: an
    /// endpoint that stops answering costs more than its peers within about one of their
    /// latencies. A call given up without an answer (its deadline passed) raises the estimate
    /// to how long it waited. The first answer replaces the initial estimate, and an endpoint
    /// that joins later starts at its peers' median estimate. Details in [`PeakEwma`].
    pub fn p2c_peak_ewma(config: PeakEwma) -> Self {
        Policy::of(Kind::P2c(LoadMetric::PeakEwma(config)))
    }

    /// p2c over requests in flight.
    ///
    /// Reads no clock per call. A stuck call counts for as long as it is held; a call given up
    /// without an answer (its deadline passed, its caller cancelled) counts on as if still in
    /// flight until the endpoint answers any call, halving every second without one, so an
    /// endpoint that stopped answering is not refilled each time its callers' deadlines
    /// expire. The same holds for [`least_request`](Self::least_request) and
    /// [`least_loaded`](Self::least_loaded).
    pub fn p2c_in_flight() -> Self {
        Policy::of(Kind::P2c(LoadMetric::InFlight))
    }

    /// Least request over `choices` random endpoints (gRPC A48's `least_request_experimental`):
    /// `choices` distinct random endpoints, the one with the fewest requests in flight per unit
    /// of weight wins. More choices balance harder and cost more per pick, O(choices); 2 is
    /// exactly [`p2c_in_flight`](Self::p2c_in_flight).
    ///
    /// Fails unless 2 ≤ `choices` ≤ 10 (A48's range; a service config's larger `choiceCount` is
    /// clamped to 10 there, as gRPC does, but an explicit argument is not second-guessed).
    ///
    /// ```
    /// use tower_lb::Policy;
    /// let three = Policy::least_request(3)?;
    /// assert_eq!(Policy::least_request(2)?, Policy::p2c_in_flight());
    /// assert!(Policy::least_request(1).is_err());
    /// assert!(Policy::least_request(11).is_err());
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn least_request(choices: u32) -> Result<Self, Error> {
        match choices {
            2 => Ok(Policy::p2c_in_flight()),
            3..=10 => Ok(Policy::of(Kind::LeastRequest(choices as u8))),
            _ => Err(Error::InvalidConfig(format!(
                "least request: choices must be 2..=10, got {choices}"
            ))),
        }
    }

    /// Pick first: every call goes to one endpoint — the first usable one in key order — and
    /// stays there while it is usable (connected, healthy, not at its concurrency cap); when it
    /// goes, calls move to the next one in the order, and stay there even after the first one
    /// comes back. Weights play no part. Like gRPC's `pick_first`, for a backend that wants
    /// one client on one server (session state, caches), or a primary with standbys.
    ///
    /// Unlike gRPC, every endpoint keeps its connection (the standbys are warm), and a call
    /// that finds the current endpoint just gone goes to the next one at once.
    ///
    /// ```
    /// use tower_lb::Policy;
    /// let primary_first = Policy::pick_first();
    /// assert_eq!(primary_first, Policy::pick_first());
    /// ```
    pub fn pick_first() -> Self {
        Policy::of(Kind::PickFirst { salt: None })
    }

    /// Pick first over a shuffled order (gRPC's `shuffleAddressList`): endpoints ordered by
    /// the hash of their key with a random salt, so the clients of one service spread over its
    /// endpoints instead of all landing on the first. Each balancer built draws its own salt
    /// (clones of one balancer share it); its order stays the same across discovery changes,
    /// where gRPC reshuffles on every resolver update.
    ///
    /// ```
    /// use tower_lb::Policy;
    /// let spread = Policy::pick_first_shuffled();
    /// assert_ne!(spread, Policy::pick_first());
    /// ```
    pub fn pick_first_shuffled() -> Self {
        Policy::of(Kind::PickFirst {
            salt: Some(random_salt()),
        })
    }

    /// The fewest requests in flight per unit of weight, by a full scan (O(n)).
    pub fn least_loaded() -> Self {
        Policy::of(Kind::LeastLoaded)
    }

    /// Smooth weighted round robin.
    pub fn round_robin() -> Self {
        Policy::of(Kind::RoundRobin)
    }

    /// Weighted round robin by the servers' own load reports, as gRPC A58's
    /// `weighted_round_robin`: each endpoint's weight is `qps / (utilization + eps/qps ×
    /// penalty)` from the ORCA report (`endpoint-load-metrics-bin`) in its calls' trailers —
    /// what a server with [`OrcaLayer`](https://docs.rs/tower-lb/latest/tower_lb/server/struct.OrcaLayer.html)
    /// (feature `server`) or any gRPC server with ORCA sends. The weights are recomputed every
    /// [`weight_update_period`](WeightedRoundRobin::weight_update_period) by the control task,
    /// so a pick costs what a round-robin pick costs. Endpoints without a usable weight (no
    /// report yet, within the blackout period, expired) are scheduled at the mean weight;
    /// with fewer than two weights known, this is plain round robin. Discovery's weights are
    /// not used (as in A58).
    ///
    /// Only this policy reads the trailers: with any other, calls do not look for reports.
    pub fn weighted_round_robin(config: WeightedRoundRobin) -> Self {
        Policy {
            wrr: Some(Arc::new(config)),
            ..Policy::of(Kind::WeightedRoundRobin)
        }
    }

    /// Prequal: each call goes where the servers themselves say it will be served soonest
    /// (Wydrowski et al., "Load is not what you should balance", NSDI 2024; Google runs it
    /// for YouTube).
    ///
    /// A background task sends load probes to random ready endpoints — a few per call, in
    /// proportion to the calls — and keeps the last 16 answers in a pool; each answer says
    /// how many calls the server has in flight and what latency a new call can expect. A pick
    /// reads the pool: answers whose calls in flight are above the
    /// [`hot_quantile`](Prequal::hot_quantile) of recent answers are hot; the cold answer
    /// with the lowest latency wins, and when all are hot, the one with the fewest in flight.
    /// An endpoint whose last call failed counts as hot (a server that fails fast looks idle
    /// and fast), and outlier detection ejects one that keeps failing. With no usable answer
    /// (the first calls, servers that do not answer probes) the pick is p2c over this
    /// client's own calls in flight. The pick reads 16 atomic words and allocates nothing.
    ///
    /// The servers must answer the probe: tonic servers add
    /// [`OrcaLayer`](https://docs.rs/tower-lb/latest/tower_lb/server/struct.OrcaLayer.html)
    /// (feature `server`); the wire is documented at [`PROBE_PATH`](crate::orca::PROBE_PATH).
    /// Servers should set `TCP_NODELAY` (tonic: `Server::builder().tcp_nodelay(true)`, or
    /// `TcpIncoming::with_nodelay`): a probe's answer is one small frame, and behind Nagle's
    /// algorithm it waits for an ACK — measured, a CPU-bound fleet ran 60 % idle.
    /// Discovery's weights are not used: the servers' answers say what they can take.
    ///
    /// Where it pays: on the Prequal testbed (servers of unequal and changing speed) its p99
    /// was about half of p2c over PeakEWMA's at loads 0.7–1.05 and it kept a fleet with two
    /// failing servers at 0 failed calls; on a homogeneous CPU-bound fleet it made 0.96× the
    /// calls (BENCHMARKS.md). Without servers that answer probes it is p2c over calls in
    /// flight, which is why it is not the default.
    pub fn prequal(config: Prequal) -> Self {
        Policy {
            prequal: Some(Arc::new(config)),
            ..Policy::of(Kind::Prequal)
        }
    }

    /// Weighted random.
    pub fn weighted_random() -> Self {
        Policy::of(Kind::WeightedRandom)
    }

    /// Consistent hashing on a ring: a request's key goes to the first point at or after its
    /// hash, every endpoint owning points in proportion to its weight: 128 points for the
    /// lightest, more when there are fewer than 8 endpoints so the ring has at least 1,024
    /// points (gRPC A42's minimum), at most 1,048,576 in all (12 MiB; A42's 8,388,608 can be
    /// set with [`ring_size`](Self::ring_size)). With equal weights adding or removing one of N
    /// endpoints moves only the keys it takes or gives back, about 1/N; a change of the
    /// lightest weight re-scales every endpoint's points. Balance is that of 128 points per
    /// endpoint: the busiest gets about 1.2–1.3 × the mean share (see `SIMULATION.md`); use
    /// Maglev when balance matters more than movement.
    ///
    /// Requests without the key are balanced by p2c over PeakEWMA unless another
    /// [`fallback`](Self::fallback) is set.
    ///
    /// ```
    /// use tower_lb::{HashKey, Policy};
    /// let sticky = Policy::ring_hash(HashKey::header("x-user-id")?)
    ///     .ring_size(4096, 65_536)?
    ///     .fallback(Policy::round_robin());
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn ring_hash(key: HashKey) -> Self {
        Policy::hashing(
            key,
            TableConfig::Ring {
                min: ring::MIN_RING_SIZE,
                max: ring::DEFAULT_MAX_RING_SIZE,
            },
        )
    }

    /// Consistent hashing through a Maglev lookup table of a prime size (65,537 by default;
    /// see [`table_size`](Self::table_size)), endpoints claiming slots in proportion to their
    /// weights. A pick is one table read; balance is within one slot of each endpoint's share;
    /// a change moves more keys than a ring would (about 1.6 × the ideal 1/N at N = 100, see
    /// `SIMULATION.md`).
    ///
    /// ```
    /// use tower_lb::{HashKey, Policy};
    /// let by_method = Policy::maglev(HashKey::path());
    /// assert!(Policy::maglev(HashKey::path()).table_size(65_536).is_err()); // not prime
    /// ```
    pub fn maglev(key: HashKey) -> Self {
        Policy::hashing(
            key,
            TableConfig::Maglev {
                size: maglev::DEFAULT_TABLE_SIZE,
            },
        )
    }

    /// Consistent hashing with bounded loads: a ring-hash or Maglev policy where no endpoint
    /// takes more than `ceil((1 + ε) × its weighted share of all calls in flight)`. A key whose
    /// endpoint is full goes on along the table to the next endpoint that is not, so a hot key
    /// spreads instead of overloading one endpoint. ε = 0.25 is a good start (Vimeo's choice);
    /// smaller ε balances harder and moves more keys.
    ///
    /// Fails unless the policy hashes and ε is a finite number above 0.
    ///
    /// ```
    /// use tower_lb::{HashKey, Policy};
    /// let policy = Policy::ring_hash(HashKey::header("x-user-id")?).bounded_load(0.25)?;
    /// assert!(Policy::round_robin().bounded_load(0.25).is_err());
    /// # Ok::<(), tower_lb::Error>(())
    /// ```
    pub fn bounded_load(self, epsilon: f64) -> Result<Self, Error> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "bounded load: epsilon must be a finite number above 0, got {epsilon}"
            )));
        }
        self.map_hashing("bounded_load", |h| {
            h.bound = Some(epsilon);
            Ok(())
        })
    }

    /// The ring size of a ring-hash policy: at least `min` points, and `min / 8` points for the
    /// lightest endpoint (more points, better balance, more memory: 12 bytes each); at most
    /// `max`; 1 ≤ min ≤ max ≤ 8,388,608.
    pub fn ring_size(self, min: u64, max: u64) -> Result<Self, Error> {
        if !(1..=ring::MAX_RING_SIZE).contains(&min) || !(min..=ring::MAX_RING_SIZE).contains(&max)
        {
            return Err(Error::InvalidConfig(format!(
                "ring size: need 1 <= min <= max <= {}, got min {min}, max {max}",
                ring::MAX_RING_SIZE
            )));
        }
        self.map_hashing("ring_size", |h| match &mut h.table {
            TableConfig::Ring { min: lo, max: hi } => {
                (*lo, *hi) = (min, max);
                Ok(())
            }
            TableConfig::Maglev { .. } => Err("ring_size applies to ring_hash, not maglev"),
        })
    }

    /// The table size of a Maglev policy: a prime up to 16,777,259. Below 100 slots per
    /// endpoint the table grows to the next prime above 100 × N by itself, which keeps balance
    /// within about 1 %.
    pub fn table_size(self, size: u64) -> Result<Self, Error> {
        if !maglev::is_prime(size) || size > maglev::MAX_TABLE_SIZE {
            return Err(Error::InvalidConfig(format!(
                "maglev table size must be a prime up to {}, got {size}",
                maglev::MAX_TABLE_SIZE
            )));
        }
        self.map_hashing("table_size", |h| match &mut h.table {
            TableConfig::Maglev { size: s } => {
                *s = size;
                Ok(())
            }
            TableConfig::Ring { .. } => Err("table_size applies to maglev, not ring_hash"),
        })
    }

    /// For a hashing policy, how requests without a key are balanced (by default p2c over
    /// PeakEWMA). A hashing `fallback` contributes its own fallback. For other policies this
    /// replaces the policy.
    pub fn fallback(mut self, fallback: Policy) -> Self {
        self.kind = fallback.kind;
        self.wrr = fallback.wrr;
        self.prequal = fallback.prequal;
        self
    }

    fn of(kind: Kind) -> Self {
        Policy {
            kind,
            hashing: None,
            wrr: None,
            prequal: None,
        }
    }

    fn hashing(key: HashKey, table: TableConfig) -> Self {
        Policy {
            kind: Policy::default().kind,
            wrr: None,
            prequal: None,
            hashing: Some(Arc::new(Hashing {
                key,
                table,
                bound: None,
            })),
        }
    }

    fn map_hashing(
        mut self,
        what: &str,
        f: impl FnOnce(&mut Hashing) -> Result<(), &'static str>,
    ) -> Result<Self, Error> {
        let Some(hashing) = self.hashing.as_mut() else {
            return Err(Error::InvalidConfig(format!(
                "{what} applies to ring_hash and maglev policies only"
            )));
        };
        f(Arc::make_mut(hashing)).map_err(|e| Error::InvalidConfig(e.into()))?;
        Ok(self)
    }

    /// The policy's name, as the call spans and metrics show it: `p2c_peak_ewma`,
    /// `p2c_in_flight`, `least_request` (k > 2), `least_loaded`, `pick_first`, `round_robin`,
    /// `weighted_round_robin`, `weighted_random`, `ring_hash` or
    /// `maglev` (a hashing policy is named after its table, with or without bounded loads).
    ///
    /// ```
    /// use tower_lb::{HashKey, Policy};
    /// assert_eq!(Policy::default().name(), "p2c_peak_ewma");
    /// assert_eq!(Policy::maglev(HashKey::path()).name(), "maglev");
    /// ```
    pub fn name(&self) -> &'static str {
        match (&self.hashing, self.kind) {
            (Some(h), _) => match h.table {
                TableConfig::Ring { .. } => "ring_hash",
                TableConfig::Maglev { .. } => "maglev",
            },
            (None, Kind::P2c(LoadMetric::PeakEwma(_))) => "p2c_peak_ewma",
            (None, Kind::P2c(LoadMetric::InFlight)) => "p2c_in_flight",
            (None, Kind::LeastRequest(_)) => "least_request",
            (None, Kind::LeastLoaded) => "least_loaded",
            (None, Kind::PickFirst { .. }) => "pick_first",
            (None, Kind::RoundRobin) => "round_robin",
            (None, Kind::WeightedRoundRobin) => "weighted_round_robin",
            (None, Kind::WeightedRandom) => "weighted_random",
            (None, Kind::Prequal) => "prequal",
        }
    }

    /// What every endpoint balanced by this policy is created with: the latency estimate it
    /// starts from and, for bounded loads (the only policy that reads it), a new
    /// balancer-wide count of calls in flight — other policies skip that shared counter.
    pub(crate) fn endpoint_defaults(
        &self,
        max_in_flight: Option<u32>,
        passive: Arc<Passive>,
    ) -> EndpointDefaults {
        let bounded = self.hashing.as_ref().is_some_and(|h| h.bound.is_some());
        EndpointDefaults {
            initial_rtt: self.peak_ewma().unwrap_or_default().initial_rtt(),
            total_in_flight: bounded.then(|| Arc::new(AtomicU64::new(0))),
            max_in_flight,
            passive,
            reported_penalty: match self.kind {
                // Prequal reads the reports' calls in flight and latency, not the weight.
                Kind::Prequal => Some(0.0),
                _ => self.wrr_settings().map(|w| w.penalty),
            },
            // A58: with out-of-band reports, calls' trailers are not read.
            reports_in_trailers: self.out_of_band_interval().is_none(),
        }
    }

    /// The weighted-round-robin settings, if the policy reads ORCA load reports.
    pub(crate) fn wrr_settings(&self) -> Option<WeightedRoundRobin> {
        match self.kind {
            Kind::WeightedRoundRobin => self.wrr.as_deref().copied(),
            _ => None,
        }
    }

    /// The interval to ask out-of-band load reports at, when the policy reads them from the
    /// out-of-band stream rather than calls' trailers (weighted round robin with
    /// [`out_of_band`](WeightedRoundRobin::out_of_band)).
    pub(crate) fn out_of_band_interval(&self) -> Option<std::time::Duration> {
        self.wrr_settings().filter(|w| w.oob).map(|w| w.oob_period)
    }

    /// Prequal's settings, if the policy probes.
    pub(crate) fn prequal_settings(&self) -> Option<Prequal> {
        match self.kind {
            Kind::Prequal => self.prequal.as_deref().copied(),
            _ => None,
        }
    }

    /// The hash of a request's key, for a hashing policy and a request that has the key.
    #[inline]
    pub(crate) fn request_hash<B>(&self, request: &http::Request<B>) -> Option<u64> {
        self.hashing.as_ref()?.key.hash(request)
    }

    /// This policy for one new balancer: a shuffled pick-first draws its own salt, so
    /// balancers built from one configuration spread over the endpoints.
    pub(crate) fn for_balancer(mut self) -> Self {
        if let Kind::PickFirst { salt: Some(_) } = self.kind {
            self.kind = Kind::PickFirst {
                salt: Some(random_salt()),
            };
        }
        self
    }

    /// The PeakEWMA settings, if the policy tracks latency.
    pub(crate) fn peak_ewma(&self) -> Option<PeakEwma> {
        match self.kind {
            Kind::P2c(LoadMetric::PeakEwma(c)) => Some(c),
            _ => None,
        }
    }
}

/// A random 64-bit number from the standard library's per-process random hash keys (which
/// differ per call too), without an OS-randomness feature of `rand`.
fn random_salt() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ns());
    h.finish()
}

impl Default for Policy {
    fn default() -> Self {
        Policy::p2c_peak_ewma(PeakEwma::default())
    }
}
