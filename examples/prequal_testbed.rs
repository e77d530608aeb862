//! The Prequal testbed of prequal-rs (`crates/prequal-testbed` in github.com/prequal-rs/prequal),
//! rebuilt on loopback with gRPC: 20 Echo servers of 4 slots each, half of them at half speed,
//! some with noisy neighbours, work exponential with mean 40 ms (sleeps), open-loop Poisson load
//! from 20 clients that each balance on their own, and a "sinkhole" scenario where 2 of the 20
//! servers fail every call at once while reporting no load. Every arm runs in the same process
//! run, interleaved: for each seed, for each scenario, every arm, so machine noise hits all arms
//! alike. Prints a markdown table: per scenario and arm, p50 and p99 of the successful calls
//! (each the mean over seeds), p99 relative to tower's p2c over PeakEwma in the same run, and
//! failed calls (an error or no answer within the deadline).
//!
//! The setup, as in the reference (BENCHMARKS.md, "Server-assisted balancing: the Prequal
//! testbed", lists what differs and why):
//!
//! * Servers `s0`..`s19`, each 4 calls at once, the rest queueing inside it. `s0`..`s9` run
//!   at speed 0.5 (a call takes twice its work). Each server draws, with probability 0.3 from
//!   the seed, whether it has a noisy neighbour: its speed is multiplied by a factor redrawn
//!   every 0.7-1.3 s, half the time 0.3-0.7 and half 0.9-1.3; a server without one gets 1.2-2.0
//!   (more than its nominal share of the host). The factor at a call's start holds for that
//!   call. Every run restarts the noise schedules, so every arm sees the same speeds at the
//!   same time into its run.
//! * Capacity is the reference's "nominal allocation": Σ speed × slots / mean work =
//!   (10 × 0.5 + 10 × 1) × 4 / 40 ms = 1,500 calls/s, noise not counted (it averages above 1, so
//!   the fleet can serve more than that).
//! * Each of 20 clients sends Poisson arrivals at load × 1,500 / 20 calls/s, each call with
//!   work exponential with mean 40 ms, drawn by the client from its seed (the same arrivals and
//!   work for every arm at a given load and seed) and sent in the request's metadata. Each
//!   client has its own balancer and its own connections to all 20 servers. Latency runs from
//!   the call's scheduled arrival to its answer, so a late send counts against it.
//! * Sinkhole: at load 0.8, `s18` and `s19` (fast servers) fail every call at once with
//!   `INTERNAL`, before taking a slot; their ORCA reports show nothing in flight. As in the
//!   reference: 3 s of warm-up, three seeds.
//!
//! Arms: tower's `p2c::Balance` over `PeakEwmaDiscover` (default RTT 30 ms, decay 10 s,
//! completion on response: the reference's settings) and over `PendingRequestsDiscover`, over
//! tonic `Channel`s; tower-lb's `Balancer` with p2c over PeakEWMA (default), p2c over requests
//! in flight, least loaded, and weighted round robin by the servers' ORCA reports (A58, with
//! a blackout period shortened to fit the runs). tower-lb's arms keep the builder's defaults,
//! outlier detection included.
//!
//! ```text
//! cargo run --release --example prequal_testbed                 # the full run, ~9 minutes
//! TESTBED_SEEDS=1 TESTBED_SECS=1 TESTBED_WARMUP_S=0.5 TESTBED_SINKHOLE_WARMUP_S=0.5 \
//!     TESTBED_SCENARIOS=0.9,sinkhole cargo run --example prequal_testbed   # CI's short form
//! ```
//!
//! Settings (environment): `TESTBED_SEEDS` (how many seeds, 1..=N; default 5), `TESTBED_SECS`
//! (measured seconds per arm and scenario; default 2), `TESTBED_WARMUP_S` (unmeasured seconds
//! before that in the load scenarios; default 1.5), `TESTBED_SINKHOLE_WARMUP_S` (the same in
//! the sinkhole; default 3, the reference's), `TESTBED_SINKHOLE_SEEDS` (the sinkhole runs for
//! the first this many seeds; default 3, as the reference's figures are three runs),
//! `TESTBED_DEADLINE_MS` (each call's deadline; default 10,000, the reference's),
//! `TESTBED_SCENARIOS` (a comma-separated subset of `0.7`, `0.9`, `1.05`, `sinkhole`),
//! `TESTBED_ARMS` (a comma-separated list of substrings of arm names; the baseline always
//! runs).
//!
//! Bounded: each run sends for warm-up + measured seconds, then waits at most the deadline
//! plus 1 s for its last calls; every call has the deadline; only 127.0.0.1.

use std::error::Error;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tower::balance::p2c;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwmaDiscover, PendingRequestsDiscover};
use tower::{BoxError, Service, ServiceExt};
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::{Balancer, PeakEwma, Policy, Prequal, WeightedRoundRobin};
use tower_lb_testkit::capacity::{CapacityServer, Noise, WORK_METADATA};
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;
use tower_lb_testkit::settings;

const SERVERS: usize = 20;
const SLOTS: u32 = 4;
const CLIENTS: usize = 20;
const MEAN_WORK: Duration = Duration::from_millis(40);
/// The first half of the servers run at this speed, the rest at 1.
const SLOW_SPEED: f64 = 0.5;
/// Each server has a noisy neighbour with this probability (a draw from the seed).
const NOISY_PROBABILITY: f64 = 0.3;
/// The sinkhole scenario's failing servers: the last ones, which are fast.
const SINKHOLE_FAILING: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Settings {
    /// Unmeasured time before the measured window: the load scenarios'.
    warmup: Duration,
    /// The sinkhole scenario's: the reference's 3 s, by default, as failed calls in the
    /// measured window depend on it (a balancer that ejects the failing servers has usually
    /// done so by then).
    sinkhole_warmup: Duration,
    /// The sinkhole runs for the first this many seeds only: 3 by default, as the reference's
    /// sinkhole figures are three runs (its load figures five).
    sinkhole_seeds: u64,
    measure: Duration,
    deadline: Duration,
}

#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    load: f64,
    failing: usize,
}

fn scenarios() -> Vec<Scenario> {
    let all = vec![
        Scenario {
            name: "0.7",
            load: 0.7,
            failing: 0,
        },
        Scenario {
            name: "0.9",
            load: 0.9,
            failing: 0,
        },
        Scenario {
            name: "1.05",
            load: 1.05,
            failing: 0,
        },
        Scenario {
            name: "sinkhole",
            load: 0.8,
            failing: SINKHOLE_FAILING,
        },
    ];
    match settings::list("TESTBED_SCENARIOS") {
        Some(wanted) => all
            .into_iter()
            .filter(|s| wanted.iter().any(|w| w == s.name))
            .collect(),
        None => all,
    }
}

/// tower's load measures for its p2c.
#[derive(Debug, Clone, Copy)]
enum TowerLoad {
    PeakEwma,
    PendingRequests,
}

#[derive(Debug, Clone)]
enum Kind {
    Tower(TowerLoad),
    TowerLb(Policy),
}

#[derive(Debug, Clone)]
struct Arm {
    name: &'static str,
    kind: Kind,
}

/// Prequal's settings: the defaults, unless `TESTBED_PQ_*` say otherwise (for tuning).
fn prequal() -> Prequal {
    let mut p = Prequal::default();
    if let Some(q) = settings::parsed::<f64>("TESTBED_PQ_Q") {
        p = p.hot_quantile(q).expect("quantile");
    }
    if let Some(r) = settings::parsed::<f64>("TESTBED_PQ_RATE") {
        p = p.probes_per_query(r).expect("rate");
    }
    if let Some(ms) = settings::parsed::<u64>("TESTBED_PQ_FRESH_MS") {
        p = p.fresh_report(Duration::from_millis(ms));
    }
    p
}

/// The arm every other is compared with.
const BASELINE: &str = "tower p2c PeakEwma";

fn arms() -> Vec<Arm> {
    // A58's blackout is 10 s; the runs are shorter than that, so it is cut to 0.5 s (weights
    // from about 1 s into the warm-up, with the default 1 s update period).
    let wrr = WeightedRoundRobin::default().blackout_period(Duration::from_millis(500));
    let all = vec![
        Arm {
            name: BASELINE,
            kind: Kind::Tower(TowerLoad::PeakEwma),
        },
        Arm {
            name: "tower p2c pending requests",
            kind: Kind::Tower(TowerLoad::PendingRequests),
        },
        Arm {
            name: "tower-lb p2c PeakEWMA",
            kind: Kind::TowerLb(Policy::p2c_peak_ewma(PeakEwma::default())),
        },
        Arm {
            name: "tower-lb p2c in-flight",
            kind: Kind::TowerLb(Policy::p2c_in_flight()),
        },
        Arm {
            name: "tower-lb least loaded",
            kind: Kind::TowerLb(Policy::least_loaded()),
        },
        Arm {
            name: "tower-lb WRR (ORCA)",
            kind: Kind::TowerLb(Policy::weighted_round_robin(wrr)),
        },
        // Each arm adds about a sixth to the default run (~85 s on the shared 2-core VM).
        Arm {
            name: "tower-lb Prequal",
            kind: Kind::TowerLb(Policy::prequal(prequal())),
        },
    ];
    match settings::list("TESTBED_ARMS") {
        // The baseline always runs: every ratio needs it.
        Some(wanted) => all
            .into_iter()
            .filter(|a| a.name == BASELINE || wanted.iter().any(|w| a.name.contains(w.as_str())))
            .collect(),
        None => all,
    }
}

/// One seed's fleet.
struct Fleet {
    servers: Vec<CapacityServer>,
    noisy: Vec<bool>,
}

impl Fleet {
    fn start(seed: u64) -> std::io::Result<Fleet> {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5EED_F1EE7);
        let mut servers = Vec::with_capacity(SERVERS);
        let mut noisy = Vec::with_capacity(SERVERS);
        for i in 0..SERVERS {
            let speed = if i < SERVERS / 2 { SLOW_SPEED } else { 1.0 };
            let has_neighbour = rng.random_bool(NOISY_PROBABILITY);
            let noise_seed: u64 = rng.random();
            let noise = if has_neighbour {
                Noise::noisy_neighbour(noise_seed)
            } else {
                Noise::uncontended(noise_seed)
            };
            servers.push(
                CapacityServer::builder(&format!("s{i}"), SLOTS)
                    .speed(speed)
                    .noise(noise)
                    .start()?,
            );
            noisy.push(has_neighbour);
        }
        Ok(Fleet { servers, noisy })
    }

    /// The reference's capacity: the nominal allocation, noise not counted.
    fn capacity(&self) -> f64 {
        let speeds: f64 = (0..SERVERS)
            .map(|i| if i < SERVERS / 2 { SLOW_SPEED } else { 1.0 })
            .sum();
        speeds * f64::from(SLOTS) / MEAN_WORK.as_secs_f64()
    }

    fn set_failing(&self, failing: usize) {
        for (i, server) in self.servers.iter().enumerate() {
            server.set_failing(i >= SERVERS - failing);
        }
    }

    /// Waits (at most `within`) until no server has a call in a slot.
    async fn settle(&self, within: Duration) {
        let until = Instant::now() + within;
        while Instant::now() < until && self.servers.iter().any(|s| s.slots_in_use() > 0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One call a client makes: when, after the run's start, and its work in µs at speed 1.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Duration,
    work_us: u64,
}

fn exponential(rng: &mut SmallRng) -> f64 {
    -(1.0 - rng.random::<f64>()).ln()
}

/// Client `client`'s arrivals for a run: Poisson at `rate` calls/s until `until`, each with
/// exponential work. A function of the seed, client and load only, so every arm gets the same.
fn schedule(seed: u64, client: usize, rate: f64, until: Duration) -> Vec<Arrival> {
    let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(1_000).wrapping_add(client as u64));
    let mut at = Duration::ZERO;
    let mut arrivals = Vec::new();
    loop {
        at += Duration::from_secs_f64(exponential(&mut rng) / rate);
        let work_us = (exponential(&mut rng) * MEAN_WORK.as_secs_f64() * 1e6) as u64;
        if at >= until {
            return arrivals;
        }
        arrivals.push(Arrival { at, work_us });
    }
}

/// What one client saw in one run.
#[derive(Debug, Default)]
struct Tally {
    /// Latencies of the measured calls answered OK.
    ok: Vec<Duration>,
    /// Measured calls that failed or missed their deadline.
    failed: usize,
    /// Calls sent, warm-up included.
    sent_all: usize,
    /// Calls that failed, warm-up included.
    failed_all: usize,
    /// How late each send was against its schedule (all sends, warm-up included).
    lateness: Vec<Duration>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok.extend(other.ok);
        self.failed += other.failed;
        self.sent_all += other.sent_all;
        self.failed_all += other.failed_all;
        self.lateness.extend(other.lateness);
    }

    /// Notes a send, `measured` or not.
    fn sent(&mut self, measured: bool, pending: &mut Pending) {
        self.sent_all += 1;
        pending.all += 1;
        pending.measured += usize::from(measured);
    }
}

/// Calls sent and not yet collected.
#[derive(Debug, Default)]
struct Pending {
    all: usize,
    measured: usize,
}

/// A call's outcome, from its task.
struct Outcome {
    measured: bool,
    ok: bool,
    latency: Duration,
}

/// Waits for a client's calls until `until`; those still out then (or whose task panicked)
/// count as failed.
async fn collect(
    mut calls: JoinSet<Outcome>,
    mut pending: Pending,
    until: Instant,
    tally: &mut Tally,
) {
    let _ = tokio::time::timeout_at(until.into(), async {
        while let Some(done) = calls.join_next().await {
            let Ok(outcome) = done else { continue };
            pending.all -= 1;
            tally.failed_all += usize::from(!outcome.ok);
            if outcome.measured {
                pending.measured -= 1;
                if outcome.ok {
                    tally.ok.push(outcome.latency);
                } else {
                    tally.failed += 1;
                }
            }
        }
    })
    .await;
    calls.abort_all();
    tally.failed += pending.measured;
    tally.failed_all += pending.all;
}

/// A unary `echo.Echo/Unary` request with an empty `EchoRequest` (a 5-byte gRPC frame) and
/// the work in metadata, for tower's balancers, which take `http::Request`s.
fn raw_request(work_us: u64) -> http::Request<tonic::body::Body> {
    let frame = Bytes::from_static(&[0, 0, 0, 0, 0]);
    http::Request::builder()
        .method(http::Method::POST)
        .uri("/echo.Echo/Unary")
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(WORK_METADATA, work_us)
        .body(tonic::body::Body::new(http_body_util::Full::new(frame)))
        .expect("valid request")
}

/// Whether a raw gRPC response says OK (`grpc-status: 0` in its headers or trailers).
async fn grpc_ok(response: http::Response<tonic::body::Body>) -> bool {
    use http_body_util::BodyExt;
    if response.status() != http::StatusCode::OK {
        return false;
    }
    if let Some(status) = response.headers().get("grpc-status") {
        return status == "0";
    }
    match response.into_body().collect().await {
        Ok(collected) => collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .is_some_and(|s| s == "0"),
        Err(_) => false,
    }
}

/// A call as a client places it: it says whether it succeeded.
type Call = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// How one client places a call.
trait Caller: Send {
    /// Places a call of `work_us`, due by `deadline`: waits for what must come first, then
    /// returns the call, which runs in its own task; `None` if it could not be placed in time.
    fn place(
        &mut self,
        work_us: u64,
        deadline: Instant,
    ) -> impl std::future::Future<Output = Option<Call>> + Send;
}

/// A client over a tower `p2c::Balance`: it owns the balancer and waits for it to be ready
/// before each call, as the reference's clients do.
struct TowerCaller<S>(S);

impl<S> Caller for TowerCaller<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>
        + Send,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    async fn place(&mut self, work_us: u64, deadline: Instant) -> Option<Call> {
        // Not ready within the deadline, or the balancer failed: not placed.
        let ready = tokio::time::timeout_at(deadline.into(), self.0.ready())
            .await
            .ok()?
            .ok()?;
        let future = ready.call(raw_request(work_us));
        Some(Box::pin(async move {
            // `ok()` at once: the error need not be `Send` across the next await.
            match future.await.ok() {
                Some(response) => grpc_ok(response).await,
                None => false,
            }
        }))
    }
}

/// A client over its own tower-lb `Balancer`: each call is a tonic `EchoClient` call on a clone
/// of it (the balancer's own timeout is the deadline).
impl Caller for Balancer {
    async fn place(&mut self, work_us: u64, _deadline: Instant) -> Option<Call> {
        let mut client = EchoClient::new(self.clone());
        Some(Box::pin(async move {
            let mut request = tonic::Request::new(EchoRequest {
                message: String::new(),
                stream_count: 0,
            });
            request.metadata_mut().insert(WORK_METADATA, work_us.into());
            client.unary(request).await.is_ok()
        }))
    }
}

/// One client's open loop: each arrival placed at its time by `caller`, each call in its own
/// task, bounded by its deadline.
async fn drive(
    mut caller: impl Caller,
    arrivals: Vec<Arrival>,
    t0: Instant,
    settings: Settings,
) -> Tally {
    let mut tally = Tally::default();
    let mut calls = JoinSet::new();
    let mut pending = Pending::default();
    for arrival in arrivals {
        let due = t0 + arrival.at;
        tokio::time::sleep_until(due.into()).await;
        tally.lateness.push(due.elapsed());
        let measured = arrival.at >= settings.warmup;
        let deadline = due + settings.deadline;
        tally.sent(measured, &mut pending);
        let call = caller.place(arrival.work_us, deadline).await;
        calls.spawn(async move {
            let ok = match call {
                // For tower-lb the deadline is a backstop behind the balancer's own timeout.
                Some(call) => tokio::time::timeout_at(deadline.into(), call)
                    .await
                    .unwrap_or(false),
                None => false,
            };
            Outcome {
                measured,
                ok,
                latency: due.elapsed(),
            }
        });
    }
    drop(caller);
    collect(
        calls,
        pending,
        Instant::now() + settings.deadline + Duration::from_secs(1),
        &mut tally,
    )
    .await;
    tally
}

/// tonic channels to every server, connected.
async fn channels(fleet: &Fleet) -> Result<Vec<Channel>, Box<dyn Error>> {
    let mut channels = Vec::with_capacity(SERVERS);
    for server in &fleet.servers {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr()))?;
        channels.push(endpoint.connect().await?);
    }
    Ok(channels)
}

/// A client, built and connected before the run starts.
enum Client {
    Tower(TowerLoad, Vec<Channel>),
    TowerLb(Balancer),
}

async fn client(arm: &Arm, fleet: &Fleet, settings: Settings) -> Result<Client, Box<dyn Error>> {
    Ok(match &arm.kind {
        Kind::Tower(load) => Client::Tower(*load, channels(fleet).await?),
        Kind::TowerLb(policy) => {
            let endpoints = fleet
                .servers
                .iter()
                .map(|s| Endpoint::new(s.addr()))
                .collect::<Result<Vec<_>, _>>()?;
            let balancer = Balancer::builder()
                .policy(policy.clone())
                .timeout(settings.deadline)
                .build(fixed(endpoints))?;
            balancer
                .wait_ready(SERVERS, Duration::from_secs(10))
                .await?;
            Client::TowerLb(balancer)
        }
    })
}

fn spawn_client(
    client: Client,
    arrivals: Vec<Arrival>,
    t0: Instant,
    settings: Settings,
) -> tokio::task::JoinHandle<Tally> {
    match client {
        Client::Tower(TowerLoad::PeakEwma, channels) => {
            // The reference's tower settings: default RTT 30 ms, decay 10 s, a call complete
            // when its response (headers) arrives.
            let discover = PeakEwmaDiscover::new(
                ServiceList::new(channels),
                Duration::from_millis(30),
                Duration::from_secs(10),
                CompleteOnResponse::default(),
            );
            let balance = p2c::Balance::new(discover);
            tokio::spawn(drive(TowerCaller(balance), arrivals, t0, settings))
        }
        Client::Tower(TowerLoad::PendingRequests, channels) => {
            let discover = PendingRequestsDiscover::new(
                ServiceList::new(channels),
                CompleteOnResponse::default(),
            );
            let balance = p2c::Balance::new(discover);
            tokio::spawn(drive(TowerCaller(balance), arrivals, t0, settings))
        }
        Client::TowerLb(balancer) => tokio::spawn(drive(balancer, arrivals, t0, settings)),
    }
}

/// CPU time of this process's threads but the servers' (which run on their own threads,
/// named `capacity-server-..`): the client side, from /proc (Linux; 10 ms ticks). `None`
/// elsewhere.
fn client_cpu() -> Option<Duration> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.starts_with("capacity-server") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    Some(Duration::from_millis(ticks * 10))
}

/// One arm × scenario × seed.
#[derive(Debug, Clone, Copy)]
struct RunResult {
    p50: Duration,
    p99: Duration,
    calls: usize,
    failed: usize,
    calls_all: usize,
    failed_all: usize,
    lateness_p99: Duration,
    lateness_max: Duration,
    /// The client side's CPU over the run's wall time, in cores.
    client_cores: f64,
    /// Building and connecting the clients.
    setup: Duration,
    /// From the last scheduled send to the last answer.
    drain: Duration,
}

/// The reference's percentile: sorted, index ⌊(n − 1) × q⌋.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

async fn run(
    arm: &Arm,
    fleet: &Fleet,
    scenario: &Scenario,
    seed: u64,
    settings: Settings,
) -> Result<RunResult, Box<dyn Error>> {
    let warmup = match scenario.failing {
        0 => settings.warmup,
        _ => settings.sinkhole_warmup,
    };
    let settings = Settings { warmup, ..settings };
    let until = settings.warmup + settings.measure;
    let rate = scenario.load * fleet.capacity() / CLIENTS as f64;
    let setup = Instant::now();
    let clients =
        futures::future::try_join_all((0..CLIENTS).map(|_| client(arm, fleet, settings))).await?;
    fleet.settle(Duration::from_secs(2)).await;
    let setup = setup.elapsed();
    let cpu_before = client_cpu();
    for server in &fleet.servers {
        server.restart_noise();
    }
    let t0 = Instant::now();
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, client)| spawn_client(client, schedule(seed, c, rate, until), t0, settings))
        .collect();
    let mut tally = Tally::default();
    for handle in handles {
        tally.merge(handle.await?);
    }
    let wall = t0.elapsed();
    let drain = wall.saturating_sub(until);
    let client_cores = match (cpu_before, client_cpu()) {
        (Some(a), Some(b)) => (b - a).as_secs_f64() / wall.as_secs_f64(),
        _ => f64::NAN,
    };
    tally.ok.sort_unstable();
    tally.lateness.sort_unstable();
    Ok(RunResult {
        p50: percentile(&tally.ok, 0.50),
        p99: percentile(&tally.ok, 0.99),
        calls: tally.ok.len() + tally.failed,
        failed: tally.failed,
        calls_all: tally.sent_all,
        failed_all: tally.failed_all,
        lateness_p99: percentile(&tally.lateness, 0.99),
        lateness_max: tally.lateness.last().copied().unwrap_or_default(),
        client_cores,
        setup,
        drain,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

fn main() -> Result<(), Box<dyn Error>> {
    // The client: a 2-worker runtime; the servers run on their own threads.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("testbed-client")
        .enable_all()
        .build()?
        .block_on(testbed())
}

async fn testbed() -> Result<(), Box<dyn Error>> {
    let seeds: u64 = settings::or("TESTBED_SEEDS", 5).max(1);
    let settings = Settings {
        warmup: Duration::from_secs_f64(settings::or("TESTBED_WARMUP_S", 1.5)),
        sinkhole_warmup: Duration::from_secs_f64(settings::or("TESTBED_SINKHOLE_WARMUP_S", 3.0)),
        sinkhole_seeds: settings::or("TESTBED_SINKHOLE_SEEDS", 3).max(1),
        measure: Duration::from_secs_f64(settings::or("TESTBED_SECS", 2.0)),
        deadline: Duration::from_millis(settings::or("TESTBED_DEADLINE_MS", 10_000)),
    };
    let scenarios = scenarios();
    let arms = arms();
    let began = Instant::now();
    println!(
        "{SERVERS} servers × {SLOTS} slots, half at speed {SLOW_SPEED}, noisy neighbours with \
         probability {NOISY_PROBABILITY}, work exponential with mean {} ms; {CLIENTS} clients, \
         Poisson arrivals; {seeds} seeds ({} in the sinkhole); per run {:.1} s warm-up ({:.1} s \
         in the sinkhole) + {:.1} s measured; deadline {:.1} s",
        MEAN_WORK.as_millis(),
        settings.sinkhole_seeds.min(seeds),
        settings.warmup.as_secs_f64(),
        settings.sinkhole_warmup.as_secs_f64(),
        settings.measure.as_secs_f64(),
        settings.deadline.as_secs_f64(),
    );
    // results[scenario][arm] = one result per seed.
    let mut results = vec![vec![Vec::<RunResult>::new(); arms.len()]; scenarios.len()];
    let mut capacity = 0.0;
    for seed in 1..=seeds {
        let fleet = Fleet::start(seed)?;
        capacity = fleet.capacity();
        let noisy: Vec<String> = (0..SERVERS)
            .filter(|&i| fleet.noisy[i])
            .map(|i| format!("s{i}"))
            .collect();
        eprintln!(
            "seed {seed}: {} noisy servers ({})",
            noisy.len(),
            noisy.join(" ")
        );
        for (s, scenario) in scenarios.iter().enumerate() {
            if scenario.failing > 0 && seed > settings.sinkhole_seeds {
                continue;
            }
            fleet.set_failing(scenario.failing);
            // A different arm goes first in each scenario and seed, so no arm always runs
            // right after the same one.
            let offset = (seed as usize + s) % arms.len();
            for k in 0..arms.len() {
                let a = (offset + k) % arms.len();
                let r = run(&arms[a], &fleet, scenario, seed, settings).await?;
                eprintln!(
                    "  seed {seed} {:>8} {:<28} p50 {:7.1} ms  p99 {:7.1} ms  failed {:5} / {:6}  \
                     late p99 {:.1} ms max {:.1} ms  client {:.2} cores  setup {:.0} ms \
                     drain {:.0} ms",
                    scenario.name,
                    arms[a].name,
                    ms(r.p50),
                    ms(r.p99),
                    r.failed,
                    r.calls,
                    ms(r.lateness_p99),
                    ms(r.lateness_max),
                    r.client_cores,
                    ms(r.setup),
                    ms(r.drain),
                );
                if r.calls == r.failed {
                    return Err(format!(
                        "seed {seed}, {}, {}: no call answered in the measured window",
                        scenario.name, arms[a].name
                    )
                    .into());
                }
                results[s][a].push(r);
            }
        }
        fleet.set_failing(0);
    }
    println!(
        "capacity (nominal allocation, Σ speed × slots / mean work) {capacity:.0} calls/s; \
         wall time {:.0} s",
        began.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "| scenario | arm | p50 ms | p99 ms | p99 min–max over seeds | p99 ÷ {BASELINE} | failed | failed, warm-up included |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let baseline = arms.iter().position(|a| a.name == BASELINE);
    for (s, scenario) in scenarios.iter().enumerate() {
        let label = match scenario.failing {
            0 => format!("load {}", scenario.load),
            n => {
                let seeds = results[s][0].len();
                let plural = if seeds == 1 { "" } else { "s" };
                format!(
                    "{n} of {SERVERS} failing, load {} ({seeds} seed{plural})",
                    scenario.load
                )
            }
        };
        let base_p99 = baseline.map(|b| mean(results[s][b].iter().map(|r| ms(r.p99))));
        for (a, arm) in arms.iter().enumerate() {
            let runs = &results[s][a];
            let p50 = mean(runs.iter().map(|r| ms(r.p50)));
            let p99 = mean(runs.iter().map(|r| ms(r.p99)));
            let lo = runs.iter().map(|r| ms(r.p99)).fold(f64::INFINITY, f64::min);
            let hi = runs.iter().map(|r| ms(r.p99)).fold(0.0, f64::max);
            let calls: usize = runs.iter().map(|r| r.calls).sum();
            let failed: usize = runs.iter().map(|r| r.failed).sum();
            let calls_all: usize = runs.iter().map(|r| r.calls_all).sum();
            let failed_all: usize = runs.iter().map(|r| r.failed_all).sum();
            let ratio = base_p99.map_or(f64::NAN, |b| p99 / b);
            println!(
                "| {label} | {} | {p50:.1} | {p99:.0} | {lo:.0}–{hi:.0} | {ratio:.2}× | {:.1} % ({failed} / {calls}) | {:.1} % |",
                arm.name,
                100.0 * failed as f64 / calls.max(1) as f64,
                100.0 * failed_all as f64 / calls_all.max(1) as f64,
            );
        }
    }
    println!();
    println!("Harness: how late sends were against their schedule, and the client's CPU");
    println!();
    println!(
        "| scenario | worst send-lateness p99 | worst send lateness | client CPU, cores (of 2), max |"
    );
    println!("|---|---:|---:|---:|");
    for (s, scenario) in scenarios.iter().enumerate() {
        let all = results[s].iter().flatten();
        let late_p99 = all
            .clone()
            .map(|r| r.lateness_p99)
            .max()
            .unwrap_or_default();
        let late_max = all
            .clone()
            .map(|r| r.lateness_max)
            .max()
            .unwrap_or_default();
        let cores = all.map(|r| r.client_cores).fold(0.0, f64::max);
        println!(
            "| {} | {:.1} ms | {:.1} ms | {cores:.2} |",
            scenario.name,
            ms(late_p99),
            ms(late_max),
        );
    }
    Ok(())
}
