//! A chaos scenario for `tower-lb`, shared by `tests/chaos.rs` and the `chaos` and `soak`
//! examples: real tonic servers, many concurrent callers, servers killed and restarted,
//! discovery churn, one slow server and one answering errors — and every call's outcome
//! counted and accounted for.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tower_lb_testkit::chaos::{self, Config};
//!
//! let config = Config::default();
//! let healthy = chaos::run(config.healthy()).await?;
//! let faulty = chaos::run(config).await?;
//! println!("{}", chaos::compare(&healthy, &faulty));
//! assert!(faulty.violations().is_empty(), "{faulty}");
//! # Ok(()) }
//! ```
//!
//! # The scenario
//!
//! * [`Config::servers`] Echo servers (a [`Fleet`]), each answering after
//!   [`Config::base_delay`]; the last one after [`Config::slow_delay`] instead, the one before
//!   it failing a [`Config::error_rate`] share of calls with `UNAVAILABLE: injected failure`.
//! * A balancer over a discovery stream the scenario feeds: every server's own key, then
//!   every [`Config::churn_every`] one change — a weight change, a server's key removed and
//!   re-inserted a few ticks later (at most one out at a time), an extra key on an address
//!   already discovered inserted or removed.
//! * Every [`Config::kill_every`] one server (never the last one up) is killed hard and
//!   restarted on the same address [`Config::down_for`] later. Optionally one
//!   [`Config::blackout`]: every server killed at once, restarted after a hold — the only
//!   time nothing is ready, so the only time a call may fail fast.
//! * [`Config::callers`] tasks, each making unary calls back to back until
//!   [`Config::duration`] has passed or [`Config::max_calls`] calls have been made, each call
//!   bounded by [`Config::call_bound`] (a call that hits it is *lost*).
//!
//! # The balancer's settings, and why
//!
//! * `ready_timeout` = [`Config::ready_timeout`] (200 ms): outside the blackout something is
//!   always ready, so no call waits; in the blackout a call waits at most this long and then
//!   fails with `UNAVAILABLE` (`NoReadyEndpoint`). Shorter than the blackout's hold, so the
//!   fail-fast path really runs; long enough that an endpoint coming back mid-wait is taken.
//! * `unsent_retries` = [`Config::unsent_retries`] (3, the default, set explicitly): a request
//!   a closing connection hands back unsent is picked again onto another endpoint. At most one
//!   server is down outside the blackout, with at most three keys on it (its own and two
//!   extra), so three re-picks, each avoiding the endpoint that just refused, nearly always
//!   find a live one; a request refused on every attempt fails with `NotSent`, allowed only
//!   around a kill. Retries draw on the retry budget; with 256 callers and a kill every
//!   400 ms, a burst of refusals can spend it, and the call fails with `RetryBudgetExhausted`,
//!   allowed on the same terms.
//! * A fast reconnect backoff (20 ms, capped at 250 ms), so a restarted server is back within
//!   the scenario's short down times. Outlier detection stays at its defaults (it may eject
//!   the erroring server; killed servers' connection errors do not count against them).
//!
//! # Which failures are allowed
//!
//! A failed call is sorted by its status, then, for the kinds that depend on when they
//! happened, against the fault log:
//!
//! | the status | class | allowed when |
//! |---|---|---|
//! | `UNAVAILABLE: injected failure`, no source | server error | always: the erroring server's answer |
//! | `RESOURCE_EXHAUSTED` | resource exhausted | always (a limit said no; counted apart) |
//! | source chain holds a `hyper::Error`, `h2::Error` or `io::Error` (tonic built it from the connection's failure) | killed in flight | a kill began before the call ended, and the call began before the balancer stopped offering that server |
//! | source is `tower_lb::Error::NotSent`, or `RetryBudgetExhausted` (handed back unsent, and the retry budget said no to another attempt) | not sent | as "killed in flight": only a closing connection hands a request back |
//! | source is `tower_lb::Error::NoReadyEndpoint` | fail-fast | the call overlapped the blackout (first kill to first ready endpoint after the restarts) |
//! | anything else, or one of the above outside its window | unexpected | never |
//!
//! The windows are exact, not padded: a call can only go to a server the balancer still
//! offers, it picks after it began, and the fault task notes the first moment no endpoint on
//! the killed address is ready — nor ejected with its connection still up, since an ejection
//! can end at any moment (it expires, or churn lowers the cap on ejections) and put the dead
//! connection back before the balancer has seen it close; so a call that failed on a dead
//! connection began before that moment and ended after the kill began.

mod churn;
mod clock;
mod faults;
mod fleet;
mod histogram;
mod outcome;
mod report;
mod rng;

use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tower_lb::{Backoff, Balancer};

pub use churn::ChurnCounts;
pub use fleet::{Behaviour, Fleet};
pub use report::{BlackoutReport, Outcomes, Report, compare};

use crate::pb::EchoRequest;
use crate::pb::echo_client::EchoClient;
use clock::Clock;
use histogram::Histogram;
use outcome::{Pending, Sorted};

/// Failures kept for attribution at the end of a run; beyond it they count as unexpected.
const MAX_PENDING: usize = 100_000;
/// How long the servers may take to be connected before traffic starts.
const CONNECT_BOUND: Duration = Duration::from_secs(10);

/// A blackout: every server killed at once, restarted after `hold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blackout {
    /// When it begins, as a share (0 ..= 1) of [`Config::duration`].
    pub at: f64,
    /// How long every server stays down.
    pub hold: Duration,
}

/// What a chaos run does. [`Config::default`] is the short form CI runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// A name for the report.
    pub label: String,
    /// Servers (at least 3 when one is slow and one erroring).
    pub servers: usize,
    /// Concurrent callers, each with one call outstanding.
    pub callers: usize,
    /// Callers stop starting calls after this long.
    pub duration: Duration,
    /// Callers stop after this many calls in all.
    pub max_calls: u64,
    /// Every server's delay per call.
    pub base_delay: Duration,
    /// The last server's delay instead, if any.
    pub slow_delay: Option<Duration>,
    /// The share of calls the second-to-last server fails (0: none).
    pub error_rate: f64,
    /// One server killed this often, if at all.
    pub kill_every: Option<Duration>,
    /// How long a killed server stays down.
    pub down_for: Duration,
    /// One discovery change this often, if at all.
    pub churn_every: Option<Duration>,
    /// Every server down at once, once.
    pub blackout: Option<Blackout>,
    /// The balancer's ready timeout.
    pub ready_timeout: Duration,
    /// The balancer's unsent retries.
    pub unsent_retries: u32,
    /// A call that has not finished after this long is lost.
    pub call_bound: Duration,
    /// Seed of the fault and churn choices.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            label: "chaos".into(),
            servers: 5,
            callers: 64,
            duration: Duration::from_secs(5),
            max_calls: 2_000_000,
            base_delay: Duration::from_millis(1),
            slow_delay: Some(Duration::from_millis(20)),
            error_rate: 0.3,
            kill_every: Some(Duration::from_millis(400)),
            down_for: Duration::from_millis(150),
            churn_every: Some(Duration::from_millis(10)),
            blackout: Some(Blackout {
                at: 0.6,
                hold: Duration::from_millis(500),
            }),
            ready_timeout: Duration::from_millis(200),
            unsent_retries: 3,
            call_bound: Duration::from_secs(10),
            seed: 0x5EED_C4A0_5EED_C4A0,
        }
    }
}

impl Config {
    /// The same servers, callers, duration and call budget, with no fault at all: every
    /// server at the base delay, no errors, kills, churn or blackout.
    pub fn healthy(&self) -> Config {
        Config {
            label: "healthy".into(),
            slow_delay: None,
            error_rate: 0.0,
            kill_every: None,
            churn_every: None,
            blackout: None,
            ..self.clone()
        }
    }

    fn behaviours(&self) -> Vec<Behaviour> {
        let n = self.servers;
        (0..n)
            .map(|i| {
                let mut b = Behaviour::healthy(self.base_delay);
                if let Some(slow) = self.slow_delay
                    && i + 1 == n
                {
                    b.delay = slow;
                }
                if self.error_rate > 0.0 && i + 2 == n {
                    b.failure_rate = self.error_rate;
                }
                b
            })
            .collect()
    }

    fn validate(&self) -> io::Result<()> {
        let bad = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()));
        if self.servers < 3 {
            return bad("a chaos run needs at least 3 servers");
        }
        if self.callers == 0 || self.max_calls == 0 || self.duration.is_zero() {
            return bad("a chaos run needs callers, calls and time");
        }
        if self.churn_every.is_some_and(|d| d.is_zero())
            || self.kill_every.is_some_and(|d| d.is_zero())
        {
            return bad("fault periods must not be zero");
        }
        Ok(())
    }
}

/// Runs `config` to the end and reports.
pub async fn run(config: Config) -> io::Result<Report> {
    Ok(Run::start(config).await?.finish().await)
}

/// What one caller counted.
#[derive(Default)]
struct Tally {
    ok_by_server: Vec<u64>,
    latency: Histogram,
    server_errors: u64,
    resource_exhausted: u64,
    unexpected: u64,
    lost: u64,
    calls: u64,
}

/// Shared by the callers.
struct Shared {
    clock: Clock,
    fleet: Arc<Fleet>,
    issued: AtomicU64,
    finished: AtomicU64,
    max_calls: u64,
    deadline: Instant,
    call_bound: Duration,
    pending: Mutex<Vec<Pending>>,
    overflow: AtomicU64,
    examples: Mutex<Vec<String>>,
}

impl Shared {
    fn example(&self, text: String) {
        let mut examples = self.examples.lock().unwrap_or_else(|e| e.into_inner());
        if examples.len() < outcome::MAX_EXAMPLES {
            examples.push(text);
        }
    }
}

/// A chaos run in progress: started by [`Run::start`], ended by [`Run::finish`]. For
/// measuring while it runs (the soak example); [`run`] does both.
pub struct Run {
    config: Config,
    shared: Arc<Shared>,
    balancer: Balancer,
    callers: Vec<JoinHandle<Tally>>,
    faults: Option<JoinHandle<faults::FaultLog>>,
    churn: Option<JoinHandle<ChurnCounts>>,
    stop: watch::Sender<bool>,
    connected_after: Duration,
}

impl Run {
    /// Starts the servers and the balancer, waits (up to 10 s) until every server is
    /// connected, then starts the callers, the churn and the faults.
    pub async fn start(config: Config) -> io::Result<Run> {
        config.validate()?;
        let behaviours = config.behaviours();
        let fleet = {
            let label = config.label.clone();
            tokio::task::spawn_blocking(move || Fleet::start(&label, &behaviours))
                .await
                .map_err(io::Error::other)??
        };
        let fleet = Arc::new(fleet);
        let addrs: Vec<_> = (0..fleet.len()).map(|i| fleet.addr(i)).collect();
        let (changes, discovery) = churn::discovery(&addrs);
        let balancer = Balancer::builder()
            .ready_timeout(config.ready_timeout)
            .unsent_retries(config.unsent_retries)
            .backoff(
                Backoff::default()
                    .initial(Duration::from_millis(20))
                    .max(Duration::from_millis(250)),
            )
            .build(discovery)
            .map_err(io::Error::other)?;

        let connecting = Instant::now();
        while balancer.ready_len() < fleet.len() && connecting.elapsed() < CONNECT_BOUND {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if balancer.ready_len() < fleet.len() {
            return Err(io::Error::other(format!(
                "only {} of {} servers connected within {CONNECT_BOUND:?}",
                balancer.ready_len(),
                fleet.len()
            )));
        }
        let connected_after = connecting.elapsed();

        let clock = Clock::start();
        let deadline = clock.instant(config.duration);
        let shared = Arc::new(Shared {
            clock,
            fleet: Arc::clone(&fleet),
            issued: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            max_calls: config.max_calls,
            deadline,
            call_bound: config.call_bound,
            pending: Mutex::new(Vec::new()),
            overflow: AtomicU64::new(0),
            examples: Mutex::new(Vec::new()),
        });
        let (stop, stop_rx) = watch::channel(false);

        let churn = config.churn_every.map(|every| {
            let mut churn = churn::Churn::new(changes.clone(), addrs.clone(), config.seed);
            let mut stop = stop_rx.clone();
            // Bounded by the stop signal, and by the ticks that fit in the run (twice over).
            let max_ticks = 2 * (config.duration.as_nanos() / every.as_nanos()).max(1) + 10;
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                for _ in 0..max_ticks {
                    tokio::select! {
                        _ = ticks.tick() => churn.tick(),
                        _ = stop.changed() => break,
                    }
                }
                churn.counts
            })
        });
        // Keep the discovery stream open for the balancer's whole life.
        drop(changes);

        let faults = (config.kill_every.is_some() || config.blackout.is_some()).then(|| {
            let plan = faults::Plan {
                kill_every: config.kill_every,
                down_for: config.down_for,
                blackout: config
                    .blackout
                    .map(|b| (config.duration.mul_f64(b.at.clamp(0.0, 1.0)), b.hold)),
                seed: config.seed ^ 0xFA17,
                until: deadline,
            };
            tokio::spawn(faults::run(
                plan,
                Arc::clone(&fleet),
                balancer.clone(),
                clock,
                stop_rx.clone(),
            ))
        });

        let client = EchoClient::new(balancer.clone());
        let callers = (0..config.callers)
            .map(|_| tokio::spawn(caller(client.clone(), Arc::clone(&shared))))
            .collect();

        Ok(Run {
            config,
            shared,
            balancer,
            callers,
            faults,
            churn,
            stop,
            connected_after,
        })
    }

    /// Calls finished so far.
    pub fn finished_calls(&self) -> u64 {
        self.shared.finished.load(Relaxed)
    }

    /// Whether every caller has stopped (duration over or call budget spent).
    pub fn callers_done(&self) -> bool {
        self.callers.iter().all(JoinHandle::is_finished)
    }

    /// The balancer under test.
    pub fn balancer(&self) -> &Balancer {
        &self.balancer
    }

    /// The servers.
    pub fn fleet(&self) -> &Fleet {
        &self.shared.fleet
    }

    /// Waits for the callers (each stops after the duration or the call budget, and its last
    /// call is bounded), stops the faults and the churn, and reports. The servers are stopped
    /// and the balancer dropped.
    pub async fn finish(self) -> Report {
        let Run {
            config,
            shared,
            balancer,
            callers,
            faults,
            churn,
            stop,
            connected_after,
        } = self;
        let mut tally = Tally {
            ok_by_server: vec![0; shared.fleet.len()],
            ..Tally::default()
        };
        let mut panics = Vec::new();
        for caller in callers {
            match caller.await {
                Ok(t) => tally.absorb(t),
                Err(e) => panics.push(e.to_string()),
            }
        }
        let elapsed = shared.clock.elapsed();
        let _ = stop.send(true);
        let log = match faults {
            Some(f) => f.await.unwrap_or_else(|e| {
                panics.push(format!("fault task: {e}"));
                faults::FaultLog::default()
            }),
            None => faults::FaultLog::default(),
        };
        let churn = match churn {
            Some(c) => c.await.unwrap_or_else(|e| {
                panics.push(format!("churn task: {e}"));
                ChurnCounts::default()
            }),
            None => ChurnCounts::default(),
        };
        // Every caller is done: nothing may still be counted in flight.
        let in_flight_after: u64 = balancer
            .snapshot()
            .endpoints
            .iter()
            .map(|e| u64::from(e.in_flight))
            .sum();
        drop(balancer);

        let pending =
            std::mem::take(&mut *shared.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut examples =
            std::mem::take(&mut *shared.examples.lock().unwrap_or_else(|e| e.into_inner()));
        let report = report::build(report::Parts {
            config: &config,
            names: (0..shared.fleet.len())
                .map(|i| shared.fleet.name(i).to_owned())
                .collect(),
            tally: &tally,
            issued: shared.issued.load(Relaxed).min(config.max_calls),
            finished: shared.finished.load(Relaxed),
            pending: &pending,
            overflow: shared.overflow.load(Relaxed),
            examples: &mut examples,
            log: &log,
            churn,
            panics,
            elapsed,
            in_flight_after,
            connected_after,
        });

        let fleet = Arc::clone(&shared.fleet);
        drop(shared);
        // Killing the servers joins their threads: off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || drop(fleet)).await;
        report
    }
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        for (a, b) in self.ok_by_server.iter_mut().zip(&other.ok_by_server) {
            *a += b;
        }
        self.latency.merge(&other.latency);
        self.server_errors += other.server_errors;
        self.resource_exhausted += other.resource_exhausted;
        self.unexpected += other.unexpected;
        self.lost += other.lost;
        self.calls += other.calls;
    }
}

/// One caller: unary calls back to back until the deadline or the call budget.
async fn caller(mut client: EchoClient<Balancer>, shared: Arc<Shared>) -> Tally {
    let mut tally = Tally {
        ok_by_server: vec![0; shared.fleet.len()],
        ..Tally::default()
    };
    // Bounded by the call budget and by the deadline.
    while Instant::now() < shared.deadline && shared.issued.fetch_add(1, Relaxed) < shared.max_calls
    {
        let request = EchoRequest {
            message: "chaos".into(),
            stream_count: 0,
        };
        let start_us = shared.clock.now_us();
        let started = Instant::now();
        let result = tokio::time::timeout(shared.call_bound, client.unary(request)).await;
        let latency = started.elapsed();
        let end_us = shared.clock.now_us();
        tally.calls += 1;
        match result {
            Ok(Ok(reply)) => match shared.fleet.position(&reply.get_ref().server) {
                Some(i) => {
                    tally.ok_by_server[i] += 1;
                    tally.latency.record(latency);
                }
                None => {
                    tally.unexpected += 1;
                    shared.example(format!(
                        "reply from unknown server {:?}",
                        reply.get_ref().server
                    ));
                }
            },
            Ok(Err(status)) => match outcome::sort(&status) {
                Sorted::ServerError => tally.server_errors += 1,
                Sorted::ResourceExhausted => tally.resource_exhausted += 1,
                Sorted::Unexpected => {
                    tally.unexpected += 1;
                    shared.example(outcome::describe(&status));
                }
                Sorted::Timed(kind) => {
                    let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
                    if pending.len() < MAX_PENDING {
                        let what = (pending.len() < outcome::KEPT_DESCRIPTIONS)
                            .then(|| outcome::describe(&status).into());
                        pending.push(Pending {
                            kind,
                            start_us,
                            end_us,
                            what,
                        });
                    } else {
                        shared.overflow.fetch_add(1, Relaxed);
                    }
                }
            },
            Err(_) => {
                tally.lost += 1;
                shared.example(format!(
                    "lost: no result within {:?} (call began at {:.3} s)",
                    shared.call_bound,
                    start_us as f64 / 1e6
                ));
            }
        }
        shared.finished.fetch_add(1, Relaxed);
    }
    tally
}

/// A whole number from the environment variable `name` (`_` separators allowed), `default`
/// when it is unset or empty; an error naming the variable when it is not a number. For the
/// examples' knobs (`CHAOS_SECS`, `SOAK_CALLS`, ...).
pub fn env_u64(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|e| format!("{name}={v:?} is not a whole number: {e}")),
        _ => Ok(default),
    }
}
