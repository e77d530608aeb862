//! Gray failures measured against real tonic servers on 127.0.0.1: the targets of the gray
//! failures issue, printed as markdown tables (`RELIABILITY.md`, "Gray failures").
//!
//! 1. **Frozen backend.** 3 Echo servers, each its own process (this binary run again with
//!    `GRAY_FAILURES_CHILD` set); 32 callers in a closed loop, every call with a 500 ms
//!    deadline (`grpc-timeout`, which the balancer enforces). A warm-up, then one server is
//!    stopped with SIGSTOP (its kernel still accepts and buffers), then continued with SIGCONT.
//!    One balancer (and three fresh processes) per row: the default policy (p2c over
//!    PeakEWMA), p2c over requests in flight, and the default with grpc.health.v1 checks on.
//! 2. **Slow backend.** 3 in-process Echo servers, one answering 10 ms later than the others;
//!    a fresh balancer per row, 8 and 64 callers in a closed loop: the default policy, p2c in
//!    flight, round robin, and tonic's `Channel::balance_list` (tower's p2c over PeakEwma
//!    behind a `Buffer`) as the peer baseline.
//!
//! ```text
//! cargo run --release --example gray_failures -j 1
//! GRAY_SECS=1 GRAY_WARMUP_SECS=0.5 GRAY_AFTER_SECS=0.5 cargo run --example gray_failures
//! ```
//!
//! Environment (seconds may be fractions): `GRAY_SECS` (the freeze, and each slow-backend
//! run; default 5), `GRAY_WARMUP_SECS` (before the freeze; 2), `GRAY_AFTER_SECS` (after
//! SIGCONT; 3), `GRAY_MAX_CALLS` (a call budget per row; 2 000 000). Targets are printed
//! beside the figures, never checked: the program fails only if a call outlived its deadline
//! by seconds (it is bounded from outside at 5 s) or a run could not start.

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::Channel;
use tower::ServiceExt;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwma};
use tower::util::BoxCloneSyncService;
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::health::HealthCheck;
use tower_lb::{Balancer, Policy};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::echo_client::EchoClient;
use tower_lb_testkit::pb::{EchoReply, EchoRequest};

/// Set in a child process: serve Echo under this name, print the address, run until stdin ends.
const CHILD: &str = "GRAY_FAILURES_CHILD";
/// Every call's deadline in the frozen-backend runs.
const DEADLINE: Duration = Duration::from_millis(500);
/// A call still running this long is counted as hung (and fails the program).
const BOUND: Duration = Duration::from_secs(5);
const FROZEN_CALLERS: usize = 32;
/// The slow backend's extra latency.
const SLOW_BY: Duration = Duration::from_millis(10);
/// The window in which the slow backend's share is measured.
const SHARE_WINDOW: Duration = Duration::from_secs(2);
/// How long a child serves if its parent never closes its stdin.
const CHILD_LIFETIME: Duration = Duration::from_secs(600);

fn main() -> Result<ExitCode, Box<dyn Error>> {
    if let Some(name) = std::env::var_os(CHILD) {
        return serve_child(&name.to_string_lossy());
    }
    let timing = Timing::from_env()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(timing))
}

/// The child: an Echo server (with grpc.health.v1) until the parent closes our stdin.
fn serve_child(name: &str) -> Result<ExitCode, Box<dyn Error>> {
    let server = TestServer::start_with_health(name)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "addr={}", server.addr())?;
    stdout.flush()?;
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIFETIME);
        std::process::exit(0);
    });
    // EOF when the parent drops the pipe or dies.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    server.kill();
    Ok(ExitCode::SUCCESS)
}

struct Timing {
    warmup: Duration,
    freeze: Duration,
    after: Duration,
    slow_run: Duration,
    max_calls: u64,
}

impl Timing {
    fn from_env() -> Result<Timing, Box<dyn Error>> {
        let secs = |name: &str, default: f64| -> Result<Duration, Box<dyn Error>> {
            let value = match std::env::var(name) {
                Ok(v) => v.parse::<f64>().map_err(|e| format!("{name}={v}: {e}"))?,
                Err(_) => default,
            };
            Ok(Duration::from_secs_f64(value.clamp(0.1, 3600.0)))
        };
        let max_calls = match std::env::var("GRAY_MAX_CALLS") {
            Ok(v) => v
                .parse::<u64>()
                .map_err(|e| format!("GRAY_MAX_CALLS={v}: {e}"))?,
            Err(_) => 2_000_000,
        };
        let run = secs("GRAY_SECS", 5.0)?;
        Ok(Timing {
            warmup: secs("GRAY_WARMUP_SECS", 2.0)?,
            freeze: run,
            after: secs("GRAY_AFTER_SECS", 3.0)?,
            slow_run: run,
            max_calls: max_calls.max(1),
        })
    }
}

/// An Echo server in its own process; continued, then killed, when dropped.
struct ChildServer {
    process: std::process::Child,
    addr: SocketAddr,
}

impl ChildServer {
    fn start(name: &str) -> Result<ChildServer, Box<dyn Error>> {
        let mut process = Command::new(std::env::current_exe()?)
            .env(CHILD, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        let addr = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("addr=").and_then(|a| a.parse().ok()));
        match addr {
            Some(addr) => Ok(ChildServer { process, addr }),
            None => {
                let _ = process.kill();
                let _ = process.wait();
                Err(format!("child server {name} printed no address").into())
            }
        }
    }

    fn signal(&self, signal: &str) -> Result<(), Box<dyn Error>> {
        let status = Command::new("kill")
            .args([signal, &self.process.id().to_string()])
            .status()?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("kill {signal} {} failed", self.process.id()).into()),
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.signal("-CONT");
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

type HttpRequest = http::Request<tonic::body::Body>;
/// tower's p2c over PeakEwma over one tonic `Channel` per server, behind a `Buffer` to share it.
type TowerP2c = Balance<ServiceList<Vec<PeakEwma<Channel>>>, HttpRequest>;
/// Its errors as a `Status`, boxed: with the `Buffer`'s own boxed error type, the callers'
/// futures are not provably `Send` (rustc's "implementation of `From` is not general enough").
type TowerClient =
    EchoClient<BoxCloneSyncService<HttpRequest, http::Response<tonic::body::Body>, tonic::Status>>;

/// The client a row calls through.
#[derive(Clone)]
enum Client {
    Lb(EchoClient<Balancer>),
    Tonic(EchoClient<Channel>),
    Tower(TowerClient),
}

impl Client {
    async fn unary(
        &mut self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, tonic::Status> {
        match self {
            Client::Lb(c) => c.unary(request).await,
            Client::Tonic(c) => c.unary(request).await,
            Client::Tower(c) => c.unary(request).await,
        }
    }
}

/// How a call ended.
#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    /// Answered by the server with this index in the row's names (`u8::MAX`: unknown).
    Answered(u8),
    DeadlineExceeded,
    Other(Code),
    Hung,
}

/// One call: start and end since the row's start.
#[derive(Clone, Copy)]
struct Call {
    start: Duration,
    end: Duration,
    outcome: Outcome,
}

impl Call {
    fn latency(&self) -> Duration {
        self.end - self.start
    }
}

/// Runs `callers` closed-loop callers from `t0` until `until` (or the shared call budget runs
/// out), every call with `deadline` if any; every call's record.
async fn drive(
    client: Client,
    callers: usize,
    deadline: Option<Duration>,
    names: Arc<Vec<String>>,
    t0: Instant,
    until: Instant,
    max_calls: u64,
) -> Vec<Call> {
    let budget = Arc::new(AtomicU64::new(max_calls));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let mut client = client.clone();
            let names = names.clone();
            let budget = budget.clone();
            tokio::spawn(async move {
                let mut calls = Vec::new();
                while Instant::now() < until
                    && budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                {
                    let mut request = tonic::Request::new(EchoRequest {
                        message: "gray".into(),
                        stream_count: 0,
                    });
                    if let Some(deadline) = deadline {
                        request.set_timeout(deadline);
                    }
                    let start = t0.elapsed();
                    let result = tokio::time::timeout(BOUND, client.unary(request)).await;
                    let end = t0.elapsed();
                    let outcome = match result {
                        Err(_) => Outcome::Hung,
                        Ok(Ok(reply)) => {
                            let server = &reply.get_ref().server;
                            let index = names.iter().position(|n| n == server);
                            Outcome::Answered(index.map_or(u8::MAX, |i| i as u8))
                        }
                        Ok(Err(status)) if status.code() == Code::DeadlineExceeded => {
                            Outcome::DeadlineExceeded
                        }
                        Ok(Err(status)) => Outcome::Other(status.code()),
                    };
                    calls.push(Call {
                        start,
                        end,
                        outcome,
                    });
                }
                calls
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a caller panicked"));
    }
    all.sort_by_key(|c| c.start);
    all
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    latencies.sort_unstable();
    let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn pct(part: usize, whole: usize) -> String {
    match whole {
        0 => "–".to_owned(),
        _ => format!("{:.2} %", 100.0 * part as f64 / whole as f64),
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn run(timing: Timing) -> Result<ExitCode, Box<dyn Error>> {
    print_header(&timing);
    let mut hung = 0;

    println!("## 1. Frozen backend\n");
    println!(
        "3 Echo servers, each its own process; {FROZEN_CALLERS} callers, closed loop, \
         {DEADLINE:?} deadline on every call; phases: warm-up {:?}, backend 0 stopped \
         (SIGSTOP) {:?}, continued (SIGCONT) {:?}. Calls are counted in the phase they \
         started in (a warm-up call that ended at its deadline was caught on backend 0 by the \
         freeze); a call went to backend 0 if it ended at its deadline or backend 0 answered \
         it. Fresh processes and balancer per row.\n",
        timing.warmup, timing.freeze, timing.after
    );
    let rows: [(&str, Policy, bool); 3] = [
        ("p2c PeakEWMA (default)", Policy::default(), false),
        ("p2c in-flight", Policy::p2c_in_flight(), false),
        ("p2c PeakEWMA + health checks", Policy::default(), true),
    ];
    let mut frozen = Vec::new();
    for (label, policy, health) in rows {
        let result = frozen_row(policy, health, &timing).await?;
        hung += result.phases.iter().map(|p| p.hung).sum::<usize>();
        frozen.push((label, result));
    }
    println!(
        "| balancer | phase | calls | calls/s | ok | DEADLINE_EXCEEDED | other failures | to backend \
         0 (the one frozen) | max lateness at the deadline |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, result) in &frozen {
        for phase in &result.phases {
            let other = match phase.other.is_empty() && phase.hung == 0 {
                true => "0".to_owned(),
                false => {
                    let mut kinds: Vec<String> = phase
                        .other
                        .iter()
                        .map(|(code, n)| format!("{n} {code:?}"))
                        .collect();
                    if phase.hung > 0 {
                        kinds.push(format!("{} hung", phase.hung));
                    }
                    kinds.join(", ")
                }
            };
            println!(
                "| {label} | {} | {} | {:.0} | {} | {} | {other} | {} | {} |",
                phase.name,
                thousands(phase.calls),
                phase.calls as f64 / phase.length.as_secs_f64(),
                thousands(phase.ok),
                thousands(phase.deadline),
                thousands(phase.to_frozen),
                phase.max_lateness.map_or("–".to_owned(), ms),
            );
        }
    }
    println!();
    println!(
        "| balancer | to the frozen backend after the first 500 ms of the freeze (target ≤ 1 %) \
         | by the balancer's count | throughput frozen ÷ before (target ≥ 0.6×) | max lateness \
         (target ≤ 50 ms) | frozen backend ready again after SIGCONT | first answer from it \
         after SIGCONT | its share after SIGCONT | backend 0 at SIGCONT → at the end |"
    );
    println!("|---|---:|---:|---:|---:|---|---|---:|---|");
    for (label, r) in &frozen {
        let [before, during, after] = &r.phases;
        let ratio = (during.calls as f64 / during.length.as_secs_f64())
            / (before.calls as f64 / before.length.as_secs_f64()).max(1e-9);
        let lateness = r.phases.iter().filter_map(|p| p.max_lateness).max();
        println!(
            "| {label} | {} of {} ({}) | {} | {ratio:.2}× | {} | {} | {} | {} | {} → {} |",
            thousands(r.to_frozen_late),
            thousands(during.calls),
            pct(r.to_frozen_late, during.calls),
            r.balancer_count_late
                .map_or("–".to_owned(), |n| thousands(n as usize)),
            lateness.map_or("–".to_owned(), ms),
            r.ready_again
                .map_or_else(|| format!("not within {}", secs(after.length)), ms),
            r.first_answer
                .map_or_else(|| format!("none within {}", secs(after.length)), ms),
            pct(after.to_frozen, after.calls),
            r.state_at_thaw,
            r.state_at_end,
        );
    }
    println!();

    println!("## 2. Slow backend\n");
    println!(
        "3 in-process Echo servers, one {SLOW_BY:?} slower; a fresh balancer per row (tower-lb: \
         after all 3 are connected, before any call); closed loop for {:?}, no deadline. Slow \
         share: calls started in the first {:?} that the slow server answered. p99: every call \
         of the run; fast p99: the calls the fast servers answered.\n",
        timing.slow_run,
        SHARE_WINDOW.min(timing.slow_run),
    );
    println!(
        "| balancer | callers | calls/s | slow share, first {:?} (target ≤ 1 %) | slow share, \
         whole run | p50 | p99 | fast p99 | p99 ÷ fast p99 (target ≤ 2×) | latency estimates at the end, \
         fast / slow |",
        SHARE_WINDOW.min(timing.slow_run)
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let kinds: [(&str, Contender); 5] = [
        ("p2c PeakEWMA (default)", Contender::Lb(Policy::default())),
        ("p2c in-flight", Contender::Lb(Policy::p2c_in_flight())),
        ("round robin", Contender::Lb(Policy::round_robin())),
        (
            "tower p2c PeakEwma over tonic `Channel`s",
            Contender::TowerP2c,
        ),
        ("tonic `balance_list`", Contender::TonicBalanceList),
    ];
    for callers in [8, 64] {
        for (label, policy) in &kinds {
            let r = slow_row(policy.clone(), callers, &timing).await?;
            hung += r.hung;
            println!(
                "| {label} | {callers} | {:.0} | {} | {} | {} | {} | {} | {:.1}× | {} |",
                r.calls as f64 / timing.slow_run.as_secs_f64(),
                pct(r.slow_early, r.calls_early),
                pct(r.slow_all, r.calls),
                ms(r.p50),
                ms(r.p99),
                ms(r.fast_p99),
                r.p99.as_secs_f64() / r.fast_p99.as_secs_f64().max(1e-9),
                r.estimates
                    .map_or("–".to_owned(), |(f, s)| format!("{} / {}", ms(f), ms(s))),
            );
        }
    }
    println!();
    if hung > 0 {
        println!("gray_failures: FAIL: {hung} calls outlived their deadline by {BOUND:?}");
        return Ok(ExitCode::FAILURE);
    }
    println!("gray_failures: ok (targets are reported, not checked)");
    Ok(ExitCode::SUCCESS)
}

fn print_header(timing: &Timing) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let knobs: Vec<String> = [
        "GRAY_SECS",
        "GRAY_WARMUP_SECS",
        "GRAY_AFTER_SECS",
        "GRAY_MAX_CALLS",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v} ")))
    .collect();
    let profile = match cfg!(debug_assertions) {
        true => "",
        false => "--release ",
    };
    println!("# Gray failures\n");
    println!(
        "- machine: {cores} cores available ({cpu}), {}",
        std::env::consts::OS
    );
    println!(
        "- command: `{}cargo run {profile}--example gray_failures`",
        knobs.concat()
    );
    println!(
        "- warm-up {:?}, freeze {:?}, after {:?}, slow-backend runs {:?}, at most {} calls per row\n",
        timing.warmup, timing.freeze, timing.after, timing.slow_run, timing.max_calls
    );
}

struct Phase {
    name: &'static str,
    length: Duration,
    calls: usize,
    ok: usize,
    deadline: usize,
    other: Vec<(Code, usize)>,
    hung: usize,
    to_frozen: usize,
    max_lateness: Option<Duration>,
}

struct FrozenResult {
    phases: [Phase; 3],
    /// Calls to the frozen backend started after the first deadline's worth of the freeze.
    to_frozen_late: usize,
    /// The same by the balancer's snapshot: calls given to it between then and SIGCONT.
    balancer_count_late: Option<u64>,
    /// After SIGCONT: when the snapshot first showed it ready, and its first answer.
    ready_again: Option<Duration>,
    first_answer: Option<Duration>,
    /// Backend 0 in the balancer's snapshot just before SIGCONT and at the end.
    state_at_thaw: String,
    state_at_end: String,
}

async fn frozen_row(
    policy: Policy,
    health: bool,
    timing: &Timing,
) -> Result<FrozenResult, Box<dyn Error>> {
    let names: Vec<String> = (0..3).map(|i| format!("backend-{i}")).collect();
    let children = names
        .iter()
        .map(|n| ChildServer::start(n))
        .collect::<Result<Vec<_>, _>>()?;
    let frozen_addr = children[0].addr;
    let endpoints = children
        .iter()
        .map(|c| Endpoint::new(c.addr))
        .collect::<Result<Vec<_>, _>>()?;
    let builder = Balancer::builder().policy(policy);
    let builder = match health {
        true => builder.health_check(HealthCheck::grpc()),
        false => builder,
    };
    let balancer = builder.build(fixed(endpoints))?;
    balancer.wait_ready(3, Duration::from_secs(10)).await?;
    // Calls given to the frozen backend so far: finished plus in flight.
    let given = |b: &Balancer| {
        b.snapshot()
            .endpoints
            .into_iter()
            .find(|e| e.addr == frozen_addr)
            .map(|e| (e.requests + u64::from(e.in_flight), e.ready))
    };

    let t0 = Instant::now();
    let stop = t0 + timing.warmup + timing.freeze + timing.after;
    let calls = tokio::spawn(drive(
        Client::Lb(EchoClient::new(balancer.clone())),
        FROZEN_CALLERS,
        Some(DEADLINE),
        Arc::new(names),
        t0,
        stop,
        timing.max_calls,
    ));

    tokio::time::sleep_until((t0 + timing.warmup).into()).await;
    children[0].signal("-STOP")?;
    let frozen_at = t0.elapsed();
    tokio::time::sleep_until((t0 + frozen_at + DEADLINE).into()).await;
    let at_first_deadline = given(&balancer).map(|g| g.0);
    tokio::time::sleep_until((t0 + frozen_at + timing.freeze).into()).await;
    let at_thaw = given(&balancer).map(|g| g.0);
    let state_at_thaw = state_of(&balancer, frozen_addr);
    children[0].signal("-CONT")?;
    let thawed_at = t0.elapsed();
    let mut ready_again = None;
    while Instant::now() < stop {
        if ready_again.is_none() && given(&balancer).is_some_and(|g| g.1) {
            ready_again = Some(t0.elapsed() - thawed_at);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = calls.await?;
    let state_at_end = state_of(&balancer, frozen_addr);
    drop(children);

    let to_frozen = |c: &Call| {
        matches!(
            c.outcome,
            Outcome::Answered(0) | Outcome::DeadlineExceeded | Outcome::Hung
        )
    };
    let phase = |name, from: Duration, to: Duration| {
        let in_phase: Vec<&Call> = calls
            .iter()
            .filter(|c| c.start >= from && c.start < to)
            .collect();
        let mut other: Vec<(Code, usize)> = Vec::new();
        for call in &in_phase {
            if let Outcome::Other(code) = call.outcome {
                match other.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, n)) => *n += 1,
                    None => other.push((code, 1)),
                }
            }
        }
        let count = |f: &dyn Fn(&Call) -> bool| in_phase.iter().filter(|c| f(c)).count();
        Phase {
            name,
            length: to - from,
            calls: in_phase.len(),
            ok: count(&|c| matches!(c.outcome, Outcome::Answered(_))),
            deadline: count(&|c| c.outcome == Outcome::DeadlineExceeded),
            other,
            hung: count(&|c| c.outcome == Outcome::Hung),
            to_frozen: count(&to_frozen),
            max_lateness: in_phase
                .iter()
                .filter(|c| c.outcome == Outcome::DeadlineExceeded)
                .map(|c| c.latency().saturating_sub(DEADLINE))
                .max(),
        }
    };
    let stopped_for = timing.warmup + timing.freeze + timing.after;
    let phases = [
        phase("warm-up", Duration::ZERO, frozen_at),
        phase("frozen", frozen_at, thawed_at),
        phase("after SIGCONT", thawed_at, stopped_for),
    ];
    let to_frozen_late = calls
        .iter()
        .filter(|c| c.start >= frozen_at + DEADLINE && c.start < thawed_at && to_frozen(c))
        .count();
    let first_answer = calls
        .iter()
        .filter(|c| c.start >= thawed_at && c.outcome == Outcome::Answered(0))
        .map(|c| c.end - thawed_at)
        .min();
    Ok(FrozenResult {
        phases,
        to_frozen_late,
        balancer_count_late: at_thaw.zip(at_first_deadline).map(|(b, a)| b - a),
        ready_again,
        first_answer,
        state_at_thaw,
        state_at_end,
    })
}

/// An endpoint as the balancer's snapshot shows it: connection, health, ejections so far.
fn state_of(balancer: &Balancer, addr: SocketAddr) -> String {
    match balancer
        .snapshot()
        .endpoints
        .iter()
        .find(|e| e.addr == addr)
    {
        None => "gone".to_owned(),
        Some(e) => format!(
            "{:?}, {:?}, {} ejection{}",
            e.state,
            e.health,
            e.ejections,
            if e.ejections == 1 { "" } else { "s" }
        ),
    }
}

struct SlowResult {
    calls: usize,
    calls_early: usize,
    slow_early: usize,
    slow_all: usize,
    p50: Duration,
    p99: Duration,
    fast_p99: Duration,
    hung: usize,
    /// tower-lb's PeakEWMA only: the estimates at the end, the fast servers' mean and the slow
    /// one's.
    estimates: Option<(Duration, Duration)>,
}

/// What a slow-backend row balances with.
#[derive(Clone)]
enum Contender {
    /// A tower-lb balancer with this policy.
    Lb(Policy),
    /// tower's `p2c::Balance` over `PeakEwma` (30 ms initial estimate, 10 s decay, as tower's
    /// own defaults in its docs) over one lazily connected tonic `Channel` per server.
    TowerP2c,
    /// tonic's `Channel::balance_list`: tower's p2c over tonic's `Connection`, whose `Load` is
    /// a constant 0, so both candidates always tie.
    TonicBalanceList,
}

/// One slow-backend row.
async fn slow_row(
    policy: Contender,
    callers: usize,
    timing: &Timing,
) -> Result<SlowResult, Box<dyn Error>> {
    let names: Vec<String> = ["fast-0", "fast-1", "slow"].map(String::from).to_vec();
    let servers = names
        .iter()
        .map(|n| TestServer::start(n))
        .collect::<Result<Vec<_>, _>>()?;
    servers[2].set_delay(SLOW_BY);
    let channels = || {
        servers
            .iter()
            .map(|s| tonic::transport::Endpoint::from_shared(s.url()))
            .collect::<Result<Vec<_>, _>>()
    };
    let mut lb = None;
    let client = match policy {
        Contender::Lb(policy) => {
            let endpoints = servers
                .iter()
                .map(|s| Endpoint::new(s.addr()))
                .collect::<Result<Vec<_>, _>>()?;
            let balancer = Balancer::builder()
                .policy(policy.clone())
                .build(fixed(endpoints))?;
            balancer.wait_ready(3, Duration::from_secs(10)).await?;
            // The estimates PeakEWMA ranks by (other policies leave the initial guess).
            if policy == Policy::default() {
                lb = Some(balancer.clone());
            }
            Client::Lb(EchoClient::new(balancer))
        }
        Contender::TowerP2c => {
            // Dialled now; each Channel's first call waits for its connection.
            let services = channels()?
                .into_iter()
                .map(|endpoint| {
                    PeakEwma::new(
                        endpoint.connect_lazy(),
                        Duration::from_millis(30),
                        Duration::from_secs(10).as_nanos() as f64,
                        CompleteOnResponse::default(),
                    )
                })
                .collect();
            let balance: TowerP2c = Balance::new(ServiceList::new(services));
            let buffered = Buffer::new(balance, 1024).map_err(tonic::Status::from_error);
            Client::Tower(EchoClient::new(BoxCloneSyncService::new(buffered)))
        }
        Contender::TonicBalanceList => {
            // It dials when the first call arrives: no warm-up call, so it starts as fresh.
            Client::Tonic(EchoClient::new(Channel::balance_list(
                channels()?.into_iter(),
            )))
        }
    };
    let t0 = Instant::now();
    let calls = drive(
        client,
        callers,
        None,
        Arc::new(names),
        t0,
        t0 + timing.slow_run,
        timing.max_calls,
    )
    .await;
    let estimates = lb.map(|balancer| {
        let snapshot = balancer.snapshot();
        let estimate = |s: &TestServer| {
            snapshot
                .endpoints
                .iter()
                .find(|e| e.addr == s.addr())
                .map_or(Duration::ZERO, |e| e.rtt_estimate)
        };
        (
            (estimate(&servers[0]) + estimate(&servers[1])) / 2,
            estimate(&servers[2]),
        )
    });
    drop(servers);
    let window = SHARE_WINDOW.min(timing.slow_run);
    let slow = |c: &Call| c.outcome == Outcome::Answered(2);
    let early: Vec<&Call> = calls.iter().filter(|c| c.start < window).collect();
    let mut all: Vec<Duration> = calls.iter().map(Call::latency).collect();
    let mut fast: Vec<Duration> = calls
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Answered(0 | 1)))
        .map(Call::latency)
        .collect();
    Ok(SlowResult {
        calls: calls.len(),
        calls_early: early.len(),
        slow_early: early.iter().filter(|c| slow(c)).count(),
        slow_all: calls.iter().filter(|c| slow(c)).count(),
        p50: percentile(&mut all, 0.50),
        p99: percentile(&mut all, 0.99),
        fast_p99: percentile(&mut fast, 0.99),
        hung: calls.iter().filter(|c| c.outcome == Outcome::Hung).count(),
        estimates,
    })
}
