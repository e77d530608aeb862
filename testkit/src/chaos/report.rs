//! What a chaos run saw: every call's outcome, latency of the successful ones, the faults
//! injected, and the invariants that did not hold.

use std::fmt;
use std::time::Duration;

use super::faults::FaultLog;
use super::outcome::{MAX_EXAMPLES, Pending, Timed};
use super::{ChurnCounts, Config, Tally};

/// Every call of a run, by outcome. Each call is counted exactly once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Answered.
    pub ok: u64,
    /// The erroring server's own `UNAVAILABLE: injected failure` (allowed).
    pub server_error: u64,
    /// Failed by its connection (hyper/h2/I/O error) around a kill (allowed).
    pub killed_in_flight: u64,
    /// `NotSent` (every attempt handed back by a closing connection) around a kill (allowed).
    pub not_sent: u64,
    /// `NoReadyEndpoint` during the blackout, when nothing was ready (allowed).
    pub fail_fast: u64,
    /// `RESOURCE_EXHAUSTED` (a limit refused the call; counted apart).
    pub resource_exhausted: u64,
    /// Anything else (not allowed).
    pub unexpected: u64,
    /// No result within the call bound (not allowed).
    pub lost: u64,
}

impl Outcomes {
    /// Calls counted.
    pub fn total(&self) -> u64 {
        self.ok
            + self.server_error
            + self.killed_in_flight
            + self.not_sent
            + self.fail_fast
            + self.resource_exhausted
            + self.unexpected
            + self.lost
    }
}

/// The blackout as the run saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlackoutReport {
    /// Whether the balancer had nothing ready once every server was down.
    pub all_down: bool,
    /// From the restarts to the first ready endpoint (`None`: not within 10 s).
    pub recovered_after: Option<Duration>,
    /// From the first kill to recovery.
    pub lasted: Duration,
}

/// The result of a chaos run. [`Report::violations`] lists what broke the scenario's
/// promises; `Display` prints everything.
#[derive(Debug, Clone)]
pub struct Report {
    /// The run's label.
    pub label: String,
    /// Concurrent callers.
    pub callers: usize,
    /// From the first call to the last result.
    pub elapsed: Duration,
    /// Calls started.
    pub calls: u64,
    /// Every call's outcome.
    pub outcomes: Outcomes,
    /// Successful calls per server, by name.
    pub ok_by_server: Vec<(String, u64)>,
    /// Median latency of successful calls.
    pub p50: Option<Duration>,
    /// 99th percentile latency of successful calls.
    pub p99: Option<Duration>,
    /// 99.9th percentile latency of successful calls.
    pub p999: Option<Duration>,
    /// Slowest successful call.
    pub max: Option<Duration>,
    /// Servers killed (the blackout's included).
    pub kills: u64,
    /// Servers restarted.
    pub restarts: u64,
    /// Kills the balancer had not noticed (an endpoint on the address still ready) after 5 s.
    pub kills_missed: u64,
    /// The longest time from a kill to no endpoint on its address being ready.
    pub slowest_notice: Option<Duration>,
    /// Restarts that failed (e.g. the port was taken meanwhile).
    pub restart_errors: Vec<String>,
    /// The blackout, if there was one.
    pub blackout: Option<BlackoutReport>,
    /// Discovery changes sent.
    pub churn: ChurnCounts,
    /// Calls the balancer still counted in flight once every caller was done.
    pub in_flight_after: u64,
    /// How long the balancer took to connect to every server before traffic began.
    pub connected_after: Duration,
    /// Callers or scenario tasks that panicked.
    pub panics: Vec<String>,
    /// Up to 10 examples of unexpected or lost calls.
    pub examples: Vec<String>,
    blackout_configured: bool,
}

impl Report {
    /// Calls per second over the run.
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// What broke the scenario's promises: a panic, a lost or unexpected call, a call not
    /// counted, a kill the balancer never noticed, a blackout without fail-fast or without
    /// recovery, calls still counted in flight at the end. Empty when all held.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let o = &self.outcomes;
        for p in &self.panics {
            v.push(format!("panic: {p}"));
        }
        if o.lost > 0 {
            v.push(format!(
                "{} call(s) lost (no result within the call bound)",
                o.lost
            ));
        }
        if o.unexpected > 0 {
            v.push(format!("{} unexpected failure(s)", o.unexpected));
        }
        if o.total() != self.calls {
            v.push(format!(
                "{} calls started but {} outcomes counted",
                self.calls,
                o.total()
            ));
        }
        if self.kills_missed > 0 {
            v.push(format!(
                "{} kill(s) not noticed by the balancer within 5 s",
                self.kills_missed
            ));
        }
        if self.blackout_configured && self.panics.is_empty() {
            match &self.blackout {
                Some(b) if !b.all_down => v.push(
                    "blackout: the balancer still had a ready endpoint with every server down"
                        .into(),
                ),
                Some(b) if b.recovered_after.is_none() => {
                    v.push("blackout: no endpoint ready within 10 s of the restarts".into())
                }
                Some(_) if o.fail_fast == 0 => {
                    v.push("blackout: no call failed fast while nothing was ready".into())
                }
                _ => {}
            }
        }
        if self.in_flight_after > 0 {
            v.push(format!(
                "{} call(s) still counted in flight after every caller finished",
                self.in_flight_after
            ));
        }
        v
    }
}

pub(super) struct Parts<'a> {
    pub(super) config: &'a Config,
    pub(super) names: Vec<String>,
    pub(super) tally: &'a Tally,
    pub(super) issued: u64,
    pub(super) finished: u64,
    pub(super) pending: &'a [Pending],
    pub(super) overflow: u64,
    pub(super) examples: &'a mut Vec<String>,
    pub(super) log: &'a FaultLog,
    pub(super) churn: ChurnCounts,
    pub(super) panics: Vec<String>,
    pub(super) elapsed: Duration,
    pub(super) in_flight_after: u64,
    pub(super) connected_after: Duration,
}

pub(super) fn build(p: Parts<'_>) -> Report {
    let t = p.tally;
    let mut o = Outcomes {
        ok: t.ok_by_server.iter().sum(),
        server_error: t.server_errors,
        resource_exhausted: t.resource_exhausted,
        unexpected: t.unexpected + p.overflow,
        lost: t.lost,
        ..Outcomes::default()
    };
    for f in p.pending {
        if f.allowed(p.log) {
            match f.kind {
                Timed::Transport => o.killed_in_flight += 1,
                Timed::NotSent => o.not_sent += 1,
                Timed::NoReady => o.fail_fast += 1,
            }
        } else {
            o.unexpected += 1;
            if p.examples.len() < MAX_EXAMPLES {
                p.examples.push(f.example());
            }
        }
    }
    // A caller that panicked took its calls' outcomes with it: they show as uncounted.
    debug_assert!(p.finished >= t.calls);
    let us = |v: u64| Duration::from_micros(v);
    Report {
        label: p.config.label.clone(),
        callers: p.config.callers,
        elapsed: p.elapsed,
        calls: p.issued,
        outcomes: o,
        ok_by_server: p
            .names
            .into_iter()
            .zip(t.ok_by_server.iter().copied())
            .collect(),
        p50: t.latency.quantile(0.50),
        p99: t.latency.quantile(0.99),
        p999: t.latency.quantile(0.999),
        max: t.latency.max(),
        kills: p.log.kills.len() as u64,
        restarts: p.log.restarts,
        kills_missed: p
            .log
            .kills
            .iter()
            .filter(|k| k.noticed_us.is_none())
            .count() as u64,
        slowest_notice: p
            .log
            .kills
            .iter()
            .filter_map(|k| k.noticed_us.map(|n| us(n.saturating_sub(k.start_us))))
            .max(),
        restart_errors: p.log.restart_errors.clone(),
        blackout: p.log.blackout.map(|b| BlackoutReport {
            all_down: b.all_down_us.is_some(),
            recovered_after: b.recovered_us.map(|r| us(r.saturating_sub(b.restarted_us))),
            lasted: us(b.end_us.saturating_sub(b.start_us)),
        }),
        churn: p.churn,
        in_flight_after: p.in_flight_after,
        connected_after: p.connected_after,
        panics: p.panics,
        examples: std::mem::take(p.examples),
        blackout_configured: p.config.blackout.is_some(),
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.2}ms", d.as_secs_f64() * 1e3))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.outcomes;
        writeln!(
            f,
            "{}: {} calls in {:.2} s ({:.0} calls/s) from {} callers",
            self.label,
            self.calls,
            self.elapsed.as_secs_f64(),
            self.calls_per_sec(),
            self.callers
        )?;
        writeln!(
            f,
            "  outcomes: ok {}, server error {}, killed in flight {}, not sent {}, fail-fast {}, \
             resource exhausted {}, unexpected {}, lost {}",
            o.ok,
            o.server_error,
            o.killed_in_flight,
            o.not_sent,
            o.fail_fast,
            o.resource_exhausted,
            o.unexpected,
            o.lost
        )?;
        writeln!(
            f,
            "  latency of successful calls: p50 {}  p99 {}  p99.9 {}  max {}",
            ms(self.p50),
            ms(self.p99),
            ms(self.p999),
            ms(self.max)
        )?;
        let shares: Vec<String> = self
            .ok_by_server
            .iter()
            .map(|(name, n)| format!("{name} {:.1}%", 100.0 * *n as f64 / o.ok.max(1) as f64))
            .collect();
        writeln!(f, "  ok by server: {}", shares.join(", "))?;
        writeln!(
            f,
            "  faults: {} kills ({} missed; slowest noticed {}), {} restarts; churn: {} weight \
             changes, {} removes, {} inserts",
            self.kills,
            self.kills_missed,
            ms(self.slowest_notice),
            self.restarts,
            self.churn.weight_changes,
            self.churn.removes,
            self.churn.inserts
        )?;
        if let Some(b) = &self.blackout {
            writeln!(
                f,
                "  blackout: nothing ready {}, lasted {}, ready again {} after the restarts",
                b.all_down,
                ms(Some(b.lasted)),
                ms(b.recovered_after)
            )?;
        }
        for e in &self.restart_errors {
            writeln!(f, "  {e}")?;
        }
        for e in &self.examples {
            writeln!(f, "  example: {e}")?;
        }
        for v in self.violations() {
            writeln!(f, "  VIOLATION: {v}")?;
        }
        Ok(())
    }
}

/// A table of a healthy run against a chaos run: calls, outcomes, latency and the ratios.
pub fn compare(healthy: &Report, chaos: &Report) -> String {
    let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if !a.is_zero() => format!("{:.2}x", b.as_secs_f64() / a.as_secs_f64()),
        _ => "-".into(),
    };
    let row = |r: &Report| {
        let o = &r.outcomes;
        format!(
            "| {:<8} | {:>8} | {:>7.0} | {:>8} | {:>6} | {:>6} | {:>5} | {:>5} | {:>5} | {:>4} | {:>4} | {:>9} | {:>9} | {:>9} |",
            r.label,
            r.calls,
            r.calls_per_sec(),
            o.ok,
            o.server_error,
            o.killed_in_flight,
            o.not_sent,
            o.fail_fast,
            o.resource_exhausted,
            o.unexpected,
            o.lost,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
        )
    };
    let mut out = String::new();
    out.push_str("| run      |    calls | calls/s |       ok | server | killed | unsnt | ffast | exhst | unex | lost |       p50 |       p99 |       max |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    out.push_str(&row(healthy));
    out.push('\n');
    out.push_str(&row(chaos));
    out.push('\n');
    out.push_str(&format!(
        "{} / {}: p50 {}, p99 {}, max {}, throughput {:.2}x\n",
        chaos.label,
        healthy.label,
        ratio(healthy.p50, chaos.p50),
        ratio(healthy.p99, chaos.p99),
        ratio(healthy.max, chaos.max),
        chaos.calls_per_sec() / healthy.calls_per_sec().max(1e-9),
    ));
    out
}
