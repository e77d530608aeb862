//! The tower-lb demo: five embedded gRPC backends, one of them slow, 32 concurrent callers,
//! one backend killed and restarted mid-run — watched live, one table per second.
//!
//! ```text
//! cargo run --release --example demo            # 30 s
//! DEMO_SECS=10 cargo run --release --example demo
//! ```
//!
//! Environment:
//!
//! * `DEMO_SECS` — run length in seconds (default 30, at least 5); the kill happens at 1/3 of
//!   it and the restart at 3/5.
//! * `DEMO_MAX_CALLS` — stop after this many calls even if time is left (default 5 000 000).
//! * `DEMO_STRICT=1` — exit with an error if one of the end-of-run checks fails (for CI).
//! * `DEMO_PLAIN=1` — never redraw in place, even on a terminal.
//! * `RUST_LOG` — log filter for tower-lb's own logs (default `warn`, on stderr).
//!
//! On a terminal the table is redrawn in place; piped into a file or a CI log it is printed as
//! plain lines.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tower_lb::{Balancer, ConnectionState, EndpointStatus, discover};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;
use tracing_subscriber::EnvFilter;

/// Number of backends.
const N: usize = 5;
/// Concurrent callers, each with one call outstanding at a time.
const WORKERS: usize = 32;
/// Per-call delay of the fast backends (enough to make load and in-flight counts visible).
const FAST_DELAY: Duration = Duration::from_millis(1);
/// Per-call delay of the slow backend.
const SLOW_DELAY: Duration = Duration::from_millis(20);
/// Index of the slow backend (backend-5).
const SLOW: usize = 4;
/// Index of the backend that is killed and restarted (backend-2).
const VICTIM: usize = 1;
/// How long a call waits for a ready endpoint before the balancer fails it.
const READY_TIMEOUT: Duration = Duration::from_millis(500);
/// A client-side bound on every call, so that the demo can never hang on one.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Latency samples kept per endpoint per one-second window (beyond that only counted).
const MAX_WINDOW_SAMPLES: usize = 200_000;
/// Errors are bucketed on a 100 ms timeline to tell when they happened.
const BUCKET: Duration = Duration::from_millis(100);
/// Errors this long after the kill (or the restart) count as "caused by" it.
const EVENT_WINDOW: Duration = Duration::from_secs(1);
/// At most this many distinct error messages are kept; the rest count as "other".
const MAX_ERROR_KINDS: usize = 16;

/// `print!` to stdout that ignores write errors (a closed pipe must not panic the demo).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` to stdout that ignores write errors.
macro_rules! outln {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

type DemoResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

struct Config {
    secs: u64,
    max_calls: u64,
    kill_at: Duration,
    restart_at: Duration,
    strict: bool,
    redraw: bool,
}

impl Config {
    fn from_env() -> DemoResult<Self> {
        let secs = env_u64("DEMO_SECS")?.unwrap_or(30).max(5);
        let max_calls = env_u64("DEMO_MAX_CALLS")?.unwrap_or(5_000_000).max(1);
        let total = Duration::from_secs(secs);
        Ok(Config {
            secs,
            max_calls,
            kill_at: total / 3,
            restart_at: total * 3 / 5,
            strict: env_flag("DEMO_STRICT"),
            redraw: std::io::stdout().is_terminal() && !env_flag("DEMO_PLAIN"),
        })
    }

    fn duration(&self) -> Duration {
        Duration::from_secs(self.secs)
    }
}

fn env_u64(name: &str) -> DemoResult<Option<u64>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("{name}={v:?} is not a whole number: {e}").into()),
        Err(_) => Ok(None),
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

// ---------------------------------------------------------------------------------------------
// What the callers record
// ---------------------------------------------------------------------------------------------

/// The calls that finished during the current one-second window.
#[derive(Default)]
struct Window {
    ok: [u64; N],
    latency_us: [Vec<u32>; N],
    errors: u64,
}

#[derive(Default)]
struct Recorded {
    window: Window,
    /// Errors per 100 ms since the start of traffic.
    error_timeline: Vec<u64>,
    error_kinds: BTreeMap<String, u64>,
}

/// Shared between the callers (which record) and the reporter (which takes a window a second).
struct Stats {
    traffic_start: Instant,
    names: [String; N],
    recorded: Mutex<Recorded>,
}

impl Stats {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        // A poisoned lock only means a caller panicked mid-update of plain counters.
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record_ok(&self, server: &str, latency: Duration) {
        let Some(i) = self.names.iter().position(|n| n == server) else {
            self.record_error(format!("reply from unknown server {server:?}"));
            return;
        };
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut r = self.lock();
        r.window.ok[i] += 1;
        if r.window.latency_us[i].len() < MAX_WINDOW_SAMPLES {
            r.window.latency_us[i].push(us);
        }
    }

    fn record_error(&self, kind: String) {
        let bucket = (self.traffic_start.elapsed().as_millis() / BUCKET.as_millis()) as usize;
        let mut r = self.lock();
        r.window.errors += 1;
        if r.error_timeline.len() <= bucket {
            r.error_timeline.resize(bucket + 1, 0);
        }
        r.error_timeline[bucket] += 1;
        let kind = if r.error_kinds.len() < MAX_ERROR_KINDS || r.error_kinds.contains_key(&kind) {
            kind
        } else {
            "other".to_owned()
        };
        *r.error_kinds.entry(kind).or_default() += 1;
    }

    fn take_window(&self) -> Window {
        std::mem::take(&mut self.lock().window)
    }
}

/// One caller: unary calls back to back until the deadline or the global call budget is spent.
async fn caller(
    mut client: EchoClient<Balancer>,
    stats: Arc<Stats>,
    issued: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    max_calls: u64,
) {
    while !stop.load(Relaxed) && issued.fetch_add(1, Relaxed) < max_calls {
        let request = EchoRequest {
            message: "ping".to_owned(),
            stream_count: 0,
        };
        let started = Instant::now();
        let result = tokio::time::timeout(CALL_TIMEOUT, client.unary(request)).await;
        let latency = started.elapsed();
        match result {
            Ok(Ok(reply)) => stats.record_ok(&reply.into_inner().server, latency),
            Ok(Err(status)) => stats.record_error(describe(&status)),
            Err(_) => stats.record_error(format!("client timeout after {CALL_TIMEOUT:?}")),
        }
    }
}

/// A short, stable description of a failed call, for the error breakdown.
fn describe(status: &tonic::Status) -> String {
    let mut message: String = status.message().chars().take(90).collect();
    if message.is_empty() {
        message = "(no message)".to_owned();
    }
    format!("{:?}: {message}", status.code())
}

// ---------------------------------------------------------------------------------------------
// Events: the kill and the restart
// ---------------------------------------------------------------------------------------------

/// Event lines, printed at once and (on a terminal) repeated under every redrawn table.
#[derive(Clone)]
struct Events {
    start: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Events {
    fn push(&self, text: impl Into<String>) {
        let line = format!(
            ">>> t={:5.2}s  {}",
            self.start.elapsed().as_secs_f64(),
            text.into()
        );
        outln!("{line}");
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    fn all(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn status_of(balancer: &Balancer, addr: SocketAddr) -> Option<EndpointStatus> {
    balancer
        .snapshot()
        .endpoints
        .into_iter()
        .find(|s| s.addr == addr)
}

/// Polls the balancer's view of `addr` until `done` holds. Returns how long that took, and
/// the most calls seen in flight on the endpoint meanwhile.
async fn wait_for_state(
    balancer: &Balancer,
    addr: SocketAddr,
    poll: Duration,
    limit: Duration,
    done: impl Fn(ConnectionState) -> bool,
) -> (Option<Duration>, u32) {
    let since = Instant::now();
    let mut peak_in_flight = 0;
    while since.elapsed() < limit {
        if let Some(s) = status_of(balancer, addr) {
            peak_in_flight = peak_in_flight.max(s.in_flight);
            if done(s.state) {
                return (Some(since.elapsed()), peak_in_flight);
            }
        }
        tokio::time::sleep(poll).await;
    }
    (None, peak_in_flight)
}

struct KillReport {
    /// Calls the balancer had in flight on the victim just before the kill.
    in_flight: u32,
    /// The most calls in flight on the victim between the kill and the balancer noticing it
    /// (calls picked in that instant fail too).
    peak_in_flight: u32,
    /// How long after the kill began the balancer took the victim out of `Ready`.
    noticed_after: Option<Duration>,
}

/// Kills `server` hard and watches the balancer notice.
async fn kill_now(
    server: TestServer,
    balancer: Balancer,
    events: Events,
    live: &AtomicBool,
) -> KillReport {
    let (name, addr) = (server.name().to_owned(), server.addr());
    let watcher = {
        let balancer = balancer.clone();
        tokio::spawn(async move {
            wait_for_state(
                &balancer,
                addr,
                Duration::from_millis(1),
                Duration::from_secs(10),
                |s| s != ConnectionState::Ready,
            )
            .await
        })
    };
    let in_flight = status_of(&balancer, addr).map_or(0, |s| s.in_flight);
    let on_server = server.in_flight();
    // `kill` joins the server's thread: keep it off the runtime's workers.
    let killed = tokio::task::spawn_blocking(move || server.kill()).await;
    live.store(false, Relaxed);
    if let Err(e) = killed {
        events.push(format!("killing {name} failed: {e}"));
    }
    events.push(format!(
        "KILL {name} ({addr}) hard, with {in_flight} calls in flight ({on_server} inside the server)"
    ));
    let (noticed_after, peak) = watcher.await.unwrap_or((None, 0));
    let peak_in_flight = peak.max(in_flight);
    match noticed_after {
        Some(d) => events.push(format!(
            "balancer took {name} out of the ready set {:.1} ms after the kill \
             (at most {peak_in_flight} calls were in flight on it meanwhile)",
            ms(d)
        )),
        None => events.push(format!(
            "balancer still shows {name} Ready 10 s after the kill!"
        )),
    }
    KillReport {
        in_flight,
        peak_in_flight,
        noticed_after,
    }
}

struct RestartReport {
    server: Option<TestServer>,
    /// How long after the restart the balancer showed the endpoint `Ready` again.
    ready_after: Option<Duration>,
}

/// Restarts the killed backend on its old address at `at` and watches the balancer reconnect.
async fn restart_at(
    name: String,
    addr: SocketAddr,
    at: Instant,
    deadline: Instant,
    balancer: Balancer,
    events: Events,
) -> RestartReport {
    tokio::time::sleep_until(at).await;
    let started = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || TestServer::start_on(&name, addr)).await
    };
    let server = match started {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => {
            events.push(format!("RESTART of {name} on {addr} failed: {e}"));
            return RestartReport {
                server: None,
                ready_after: None,
            };
        }
        Err(e) => {
            events.push(format!("RESTART of {name} on {addr} panicked: {e}"));
            return RestartReport {
                server: None,
                ready_after: None,
            };
        }
    };
    server.set_delay(FAST_DELAY);
    events.push(format!("RESTART {name} on the same address {addr}"));
    let limit = deadline.saturating_duration_since(Instant::now());
    let (ready_after, _) = wait_for_state(&balancer, addr, Duration::from_millis(2), limit, |s| {
        s == ConnectionState::Ready
    })
    .await;
    match ready_after {
        Some(d) => events.push(format!(
            "balancer reconnected to {name}: Ready {:.0} ms after the restart",
            ms(d)
        )),
        None => events.push(format!(
            "balancer has not reconnected to {name} by the end of the run"
        )),
    }
    RestartReport {
        server: Some(server),
        ready_after,
    }
}

// ---------------------------------------------------------------------------------------------
// The reporter: one table per second
// ---------------------------------------------------------------------------------------------

struct Totals {
    ok: [u64; N],
    latency_us: [Vec<u32>; N],
    errors: u64,
    /// Balancer failure counters at the previous tick, to attribute errors per second.
    prev_failures: [u64; N],
    attributed: [u64; N],
    unattributed: u64,
    /// Calls per endpoint in the last full window (for "share after restart").
    last_window_ok: [u64; N],
}

impl Totals {
    fn new() -> Self {
        Totals {
            ok: [0; N],
            latency_us: Default::default(),
            errors: 0,
            prev_failures: [0; N],
            attributed: [0; N],
            unattributed: 0,
            last_window_ok: [0; N],
        }
    }

    fn calls(&self) -> u64 {
        self.ok.iter().sum::<u64>() + self.errors
    }

    /// Folds one window in; returns the per-endpoint errors and unattributed errors of it.
    fn absorb(&mut self, mut window: Window, statuses: &[Option<EndpointStatus>; N]) -> Absorbed {
        let mut errors = [0u64; N];
        for (i, status) in statuses.iter().enumerate() {
            if let Some(s) = status {
                errors[i] = s.failures.saturating_sub(self.prev_failures[i]);
                self.prev_failures[i] = s.failures;
                self.attributed[i] += errors[i];
            }
        }
        let unattributed = window.errors.saturating_sub(errors.iter().sum());
        self.unattributed += unattributed;
        self.errors += window.errors;
        let mut p50 = [None; N];
        let mut p99 = [None; N];
        for i in 0..N {
            self.ok[i] += window.ok[i];
            let samples = &mut window.latency_us[i];
            samples.sort_unstable();
            p50[i] = percentile(samples, 0.50);
            p99[i] = percentile(samples, 0.99);
            self.latency_us[i].extend_from_slice(samples);
        }
        self.last_window_ok = window.ok;
        Absorbed {
            ok: window.ok,
            errors,
            unattributed,
            client_errors: window.errors,
            p50,
            p99,
        }
    }
}

struct Absorbed {
    ok: [u64; N],
    errors: [u64; N],
    unattributed: u64,
    client_errors: u64,
    p50: [Option<u32>; N],
    p99: [Option<u32>; N],
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn fmt_us(us: Option<u32>) -> String {
    match us {
        None => "-".to_owned(),
        Some(us) => fmt_ms(f64::from(us) / 1e3),
    }
}

fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}ms")
    } else if v < 100.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.0}ms")
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn state_name(status: Option<&EndpointStatus>) -> String {
    match status.map(|s| s.state) {
        None => "absent".to_owned(),
        Some(ConnectionState::Ready) => "Ready".to_owned(),
        Some(ConnectionState::Connecting) => "Connecting".to_owned(),
        Some(ConnectionState::Backoff) => "Backoff".to_owned(),
        Some(other) => format!("{other:?}"),
    }
}

struct Backend {
    name: String,
    addr: SocketAddr,
    delay: Duration,
}

/// Which backends are up, as the demo (not the balancer) knows it.
struct Liveness([AtomicBool; N]);

#[allow(clippy::too_many_arguments)]
fn render_table(
    out: &mut String,
    t: u64,
    window_secs: f64,
    backends: &[Backend; N],
    live: &Liveness,
    statuses: &[Option<EndpointStatus>; N],
    a: &Absorbed,
    totals: &Totals,
    ready: usize,
) {
    let window_ok: u64 = a.ok.iter().sum();
    let total_ok: u64 = totals.ok.iter().sum();
    let window_calls = window_ok + a.client_errors;
    let _ = writeln!(
        out,
        "t={t:>3}s  {:>6.0} calls/s  errors {} (last 1s) / {} total  ready {ready}/{N}  calls so far {}",
        window_calls as f64 / window_secs,
        a.client_errors,
        totals.errors,
        totals.calls(),
    );
    let _ = writeln!(
        out,
        "  {:<10} {:<16} {:<6} {:<10} {:>7} {:>7} {:>9} {:>8} {:>8} {:>9} {:>8}",
        "endpoint",
        "address",
        "delay",
        "state",
        "1s",
        "total",
        "in-flight",
        "p50 1s",
        "p99 1s",
        "errors",
        "rtt-est"
    );
    for (i, b) in backends.iter().enumerate() {
        let status = statuses[i].as_ref();
        let delay = if live.0[i].load(Relaxed) {
            format!("{}ms", b.delay.as_millis())
        } else {
            "DOWN".to_owned()
        };
        let _ = writeln!(
            out,
            "  {:<10} {:<16} {:<6} {:<10} {:>6.1}% {:>6.1}% {:>9} {:>8} {:>8} {:>9} {:>8}",
            b.name,
            b.addr.to_string(),
            delay,
            state_name(status),
            pct(a.ok[i], window_ok),
            pct(totals.ok[i], total_ok),
            status.map_or_else(|| "-".to_owned(), |s| s.in_flight.to_string()),
            fmt_us(a.p50[i]),
            fmt_us(a.p99[i]),
            format!("{}/{}", a.errors[i], totals.attributed[i]),
            status.map_or_else(|| "-".to_owned(), |s| fmt_ms(ms(s.rtt_estimate))),
        );
    }
    if a.unattributed > 0 || totals.unattributed > 0 {
        let _ = writeln!(
            out,
            "  unattributed errors (no endpoint counted them): {} (last 1s) / {} total",
            a.unattributed, totals.unattributed
        );
    }
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> DemoResult<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::from_env()?;

    // --- the backends ---
    let mut servers = Vec::with_capacity(N);
    for i in 0..N {
        let name = format!("backend-{}", i + 1);
        let server = TestServer::start(&name)
            .map_err(|e| format!("cannot start test server {name} on 127.0.0.1: {e}"))?;
        server.set_delay(if i == SLOW { SLOW_DELAY } else { FAST_DELAY });
        servers.push(server);
    }
    let backends: [Backend; N] = std::array::from_fn(|i| Backend {
        name: servers[i].name().to_owned(),
        addr: servers[i].addr(),
        delay: if i == SLOW { SLOW_DELAY } else { FAST_DELAY },
    });
    let live = Arc::new(Liveness(std::array::from_fn(|_| AtomicBool::new(true))));

    // --- the balancer ---
    let endpoints = backends
        .iter()
        .map(|b| discover::Endpoint::new(b.addr))
        .collect::<Result<Vec<_>, _>>()?;
    let connect_start = Instant::now();
    let balancer = Balancer::builder()
        .ready_timeout(READY_TIMEOUT)
        .build(discover::fixed(endpoints))?;
    let client = EchoClient::new(balancer.clone());

    let mut header =
        format!("tower-lb demo: client-side load balancing of gRPC calls over {N} backends\n");
    for (i, b) in backends.iter().enumerate() {
        let note = match i {
            SLOW => "  <- slow",
            VICTIM => "  <- will be killed and restarted",
            _ => "",
        };
        let _ = writeln!(
            header,
            "  {:<10} {:<16} answers after {:>2} ms{note}",
            b.name,
            b.addr.to_string(),
            b.delay.as_millis()
        );
    }
    let _ = writeln!(
        header,
        "policy: p2c over PeakEWMA (default), ready timeout {READY_TIMEOUT:?}; {WORKERS} callers for {} s \
         (at most {} calls); kill {} at {:.1} s, restart at {:.1} s",
        config.secs,
        config.max_calls,
        backends[VICTIM].name,
        config.kill_at.as_secs_f64(),
        config.restart_at.as_secs_f64(),
    );
    out!("{header}");

    while balancer.ready_len() < N && connect_start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    outln!(
        "{}/{N} endpoints connected after {:.1} ms; starting traffic",
        balancer.ready_len(),
        ms(connect_start.elapsed())
    );
    outln!();

    // --- traffic ---
    let start = Instant::now();
    let deadline = start + config.duration();
    let events = Events {
        start,
        lines: Arc::default(),
    };
    let stats = Arc::new(Stats {
        traffic_start: start,
        names: std::array::from_fn(|i| backends[i].name.clone()),
        recorded: Mutex::default(),
    });
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(caller(
                client.clone(),
                stats.clone(),
                issued.clone(),
                stop.clone(),
                config.max_calls,
            ))
        })
        .collect();

    let victim = servers.remove(VICTIM);
    let kill = {
        let live = live.clone();
        let (balancer, events) = (balancer.clone(), events.clone());
        let at = start + config.kill_at;
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            kill_now(victim, balancer, events, &live.0[VICTIM]).await
        })
    };
    let restart = {
        let live = live.clone();
        let (balancer, events) = (balancer.clone(), events.clone());
        let (name, addr) = (backends[VICTIM].name.clone(), backends[VICTIM].addr);
        let at = start + config.restart_at;
        tokio::spawn(async move {
            let report = restart_at(name, addr, at, deadline, balancer, events).await;
            if report.server.is_some() {
                live.0[VICTIM].store(true, Relaxed);
            }
            report
        })
    };

    // --- one table a second ---
    let mut totals = Totals::new();
    let mut ticks =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_tick = start;
    let mut out = String::new();
    for t in 1..=config.secs {
        ticks.tick().await;
        let window = stats.take_window();
        let statuses = statuses_by_backend(&balancer, &backends);
        let now = Instant::now();
        let window_secs = (now - last_tick).as_secs_f64().max(1e-3);
        last_tick = now;
        let absorbed = totals.absorb(window, &statuses);
        out.clear();
        if config.redraw {
            out.push_str("\x1b[H\x1b[2J");
            out.push_str(&header);
            out.push('\n');
        }
        render_table(
            &mut out,
            t,
            window_secs,
            &backends,
            &live,
            &statuses,
            &absorbed,
            &totals,
            balancer.ready_len(),
        );
        if config.redraw {
            for line in events.all() {
                let _ = writeln!(out, "{line}");
            }
        }
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{out}");
        let _ = stdout.flush();
        if issued.load(Relaxed) >= config.max_calls {
            events.push(format!(
                "call budget of {} spent; stopping early",
                config.max_calls
            ));
            break;
        }
    }

    // --- wind down ---
    stop.store(true, Relaxed);
    for c in callers {
        c.await?;
    }
    let elapsed = start.elapsed();
    // Calls that finished after the last table still count.
    let statuses = statuses_by_backend(&balancer, &backends);
    let last_window_ok = totals.last_window_ok;
    totals.absorb(stats.take_window(), &statuses);
    totals.last_window_ok = last_window_ok;
    // After an early stop (call budget spent) the kill or restart may still be pending.
    kill.abort();
    restart.abort();
    let kill_report = finished(kill.await)?;
    let restart_report = finished(restart.await)?;

    let recorded = std::mem::take(&mut *stats.lock());
    let summary = Summary {
        config: &config,
        backends: &backends,
        totals: &totals,
        elapsed,
        error_timeline: &recorded.error_timeline,
        error_kinds: &recorded.error_kinds,
        kill: kill_report.as_ref(),
        restart: restart_report.as_ref(),
    };
    let failed_checks = summary.print();

    // Stop the servers off the runtime's workers (each kill joins a thread).
    drop(client);
    drop(balancer);
    let mut leftovers = servers;
    leftovers.extend(restart_report.and_then(|r| r.server));
    tokio::task::spawn_blocking(move || drop(leftovers)).await?;

    if config.strict && failed_checks > 0 {
        eprintln!("demo: {failed_checks} check(s) failed (DEMO_STRICT is set)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The output of a task that may have been aborted (`None`), or its panic.
fn finished<T>(joined: Result<T, tokio::task::JoinError>) -> DemoResult<Option<T>> {
    match joined {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_cancelled() => Ok(None),
        Err(e) => Err(format!("a demo task panicked: {e}").into()),
    }
}

fn statuses_by_backend(
    balancer: &Balancer,
    backends: &[Backend; N],
) -> [Option<EndpointStatus>; N] {
    let all = balancer.snapshot().endpoints;
    std::array::from_fn(|i| all.iter().find(|s| s.addr == backends[i].addr).cloned())
}

// ---------------------------------------------------------------------------------------------
// The final summary
// ---------------------------------------------------------------------------------------------

struct Summary<'a> {
    config: &'a Config,
    backends: &'a [Backend; N],
    totals: &'a Totals,
    elapsed: Duration,
    error_timeline: &'a [u64],
    error_kinds: &'a BTreeMap<String, u64>,
    /// `None` when the run stopped (call budget) before the event.
    kill: Option<&'a KillReport>,
    restart: Option<&'a RestartReport>,
}

impl Summary<'_> {
    fn errors_between(&self, from: Duration, to: Duration) -> u64 {
        let first = (from.as_millis() / BUCKET.as_millis()) as usize;
        let last = (to.as_millis() / BUCKET.as_millis()) as usize;
        self.error_timeline
            .iter()
            .enumerate()
            .filter(|(i, _)| (first..last).contains(i))
            .map(|(_, n)| n)
            .sum()
    }

    /// Prints the summary; returns how many checks failed.
    fn print(&self) -> usize {
        let t = self.totals;
        let calls = t.calls();
        let ok: u64 = t.ok.iter().sum();
        let mut all: Vec<u32> = t.latency_us.iter().flatten().copied().collect();
        all.sort_unstable();
        let secs = self.elapsed.as_secs_f64();

        outln!("==================================== summary ====================================");
        outln!(
            "{calls} calls in {secs:.1} s = {:.0} calls/s from {WORKERS} concurrent callers; {ok} ok, {} failed",
            calls as f64 / secs,
            t.errors
        );
        outln!(
            "latency of successful calls: p50 {}  p99 {}  p999 {}  max {}",
            fmt_us(percentile(&all, 0.50)),
            fmt_us(percentile(&all, 0.99)),
            fmt_us(percentile(&all, 0.999)),
            fmt_us(all.last().copied()),
        );
        outln!(
            "  {:<10} {:<6} {:>9} {:>7} {:>8} {:>8} {:>7}",
            "endpoint",
            "delay",
            "calls ok",
            "share",
            "p50",
            "p99",
            "errors"
        );
        for (i, b) in self.backends.iter().enumerate() {
            let mut samples = t.latency_us[i].clone();
            samples.sort_unstable();
            outln!(
                "  {:<10} {:<6} {:>9} {:>6.1}% {:>8} {:>8} {:>7}",
                b.name,
                format!("{}ms", b.delay.as_millis()),
                t.ok[i],
                pct(t.ok[i], ok),
                fmt_us(percentile(&samples, 0.50)),
                fmt_us(percentile(&samples, 0.99)),
                t.attributed[i],
            );
        }

        let kill_at = self.config.kill_at;
        let restart_at = self.config.restart_at;
        let after_kill = self.errors_between(kill_at, kill_at + EVENT_WINDOW);
        let after_restart = self.errors_between(restart_at, restart_at + EVENT_WINDOW);
        let elsewhere = t.errors.saturating_sub(after_kill + after_restart);
        let victim = &self.backends[VICTIM].name;
        let window = EVENT_WINDOW.as_secs_f64();
        match self.kill {
            Some(k) => outln!(
                "errors: {} total — {after_kill} in the {window:.0} s after the kill of {victim} (it had {} calls \
                 in flight, at most {} until the balancer noticed), {after_restart} in the {window:.0} s after its \
                 restart, {elsewhere} at other times; {} unattributed",
                t.errors,
                k.in_flight,
                k.peak_in_flight,
                t.unattributed,
            ),
            None => outln!(
                "errors: {} total ({} unattributed); the run stopped before the kill",
                t.errors,
                t.unattributed
            ),
        }
        for (kind, n) in self.error_kinds {
            outln!("  {n:>6} x {kind}");
        }
        match self.kill.map(|k| k.noticed_after) {
            Some(Some(d)) => outln!(
                "the balancer dropped {victim} from the ready set {:.1} ms after the kill",
                ms(d)
            ),
            Some(None) => outln!("the balancer never dropped {victim} from the ready set"),
            None => {}
        }
        match self.restart.map(|r| r.ready_after) {
            Some(Some(d)) => outln!(
                "the balancer reconnected to {victim} {:.0} ms after its restart",
                ms(d)
            ),
            Some(None) => outln!("the balancer did not reconnect to {victim} after its restart"),
            None => {}
        }

        // --- checks (None: skipped, the run stopped before the event) ---
        let fair = 100.0 / N as f64;
        let slow_share = pct(t.ok[SLOW], ok);
        let slow_name = &self.backends[SLOW].name;
        let last_window: u64 = t.last_window_ok.iter().sum();
        let victim_last_share = pct(t.last_window_ok[VICTIM], last_window);
        // Calls on the wire to the victim fail with it. The in-flight peak is sampled every
        // millisecond, so it can miss a call picked and failed in between: allow one more per
        // caller.
        let kill_budget = self
            .kill
            .map_or(0, |k| u64::from(k.peak_in_flight) + WORKERS as u64);
        let checks = [
            (
                Some(slow_share < fair / 2.0),
                format!(
                    "slow {slow_name} got {slow_share:.1}% of calls (fair share {fair:.0}%, want < {:.0}%)",
                    fair / 2.0
                ),
            ),
            (
                self.kill.map(|_| after_kill <= kill_budget),
                format!(
                    "the kill failed {after_kill} calls (want <= peak in flight on it + one per caller = {kill_budget})"
                ),
            ),
            (
                self.restart.map(|_| elsewhere == 0),
                format!("{elsewhere} errors away from the kill and the restart (want 0)"),
            ),
            (
                self.restart
                    .map(|r| r.ready_after.is_some() && victim_last_share >= fair / 2.0),
                format!(
                    "{victim} back after the restart: {victim_last_share:.1}% of calls in the last second \
                     (want >= {:.0}%)",
                    fair / 2.0
                ),
            ),
        ];
        let mut failed = 0;
        for (verdict, text) in &checks {
            let mark = match verdict {
                Some(true) => " ok ",
                Some(false) => "FAIL",
                None => "skip",
            };
            outln!("  [{mark}] {text}");
            if *verdict == Some(false) {
                failed += 1;
            }
        }

        outln!();
        let mut story = format!(
            "What you saw: p2c over PeakEWMA weighed each backend's latency x in-flight load, so the 20 ms \
             {slow_name} got only {slow_share:.1}% of the calls while the fast ones shared the rest"
        );
        if let Some(k) = self.kill {
            let _ = write!(
                story,
                "; killing {victim} failed {after_kill} call(s) ({} were in flight on it) and traffic moved to \
                 the survivors at once",
                k.peak_in_flight
            );
        }
        if let Some(r) = self.restart {
            match r.ready_after {
                Some(d) => {
                    let _ = write!(
                        story,
                        "; {:.0} ms after its restart the balancer had reconnected, and {victim} took \
                         {victim_last_share:.1}% of the calls in the last second",
                        ms(d)
                    );
                }
                None => story.push_str("; after its restart the balancer did NOT reconnect"),
            }
        }
        outln!("{story}.");
        failed
    }
}
