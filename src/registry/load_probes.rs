//! Prequal's probe task: sends load probes to random ready endpoints in proportion to the
//! balancer's picks, records each answer on its endpoint, files it in the probe pool, and
//! keeps the pool's hot threshold (a quantile of recent answers' calls in flight).
//!
//! It runs beside the control loop, reads only published snapshots, and holds the shared
//! state only between awaits, so it never keeps a dropped balancer alive.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::grpc_body::{carries_grpc, grpc_request};
use crate::endpoint::{EndpointState, Probed};
use crate::orca::{self, LoadReport, ProbeAnswer};
use crate::policy::{PROBE_SLOTS, Prequal, ProbePool, ProbeSlot, index};
use crate::ready_set::Shared;
use crate::time::now_ns;
use crate::transport::{EndpointChannel, SendError};

/// While picks come, the task looks for new ones this often.
const BUSY_TICK: Duration = Duration::from_millis(1);

/// After this long without a pick, it looks less often.
const IDLE_AFTER: Duration = Duration::from_millis(100);
const IDLE_TICK: Duration = Duration::from_millis(20);

/// Most probes under way at once, and most owed (picks beyond it are not made up later).
const MAX_PROBES: usize = 256;

/// Recent answers' calls in flight the hot threshold is the quantile of.
const HISTORY: usize = 64;

/// Runs until the balancer is dropped.
pub(super) async fn run<T: EndpointChannel>(
    shared: Weak<Shared<T>>,
    pool: Arc<ProbePool>,
    config: Prequal,
) {
    if !carries_grpc::<T>() {
        tracing::warn!(
            "prequal: this channel's request body is not tonic's, so it cannot send load probes; picks fall back to p2c over calls in flight"
        );
        return;
    }
    let mut task = ProbeTask {
        pool,
        config,
        rng: SmallRng::seed_from_u64(now_ns()),
        owed: 0.0,
        picks: 0,
        last_pick: Instant::now(),
        history: [0; HISTORY],
        recorded: 0,
        filed_at: [0; PROBE_SLOTS],
        ranks: [(0, 0); PROBE_SLOTS],
        evict_oldest: true,
        unsupported_warned: false,
        fresh_ns: u64::try_from(config.fresh_report.as_nanos()).unwrap_or(u64::MAX),
    };
    let mut probes = FuturesUnordered::new();
    loop {
        let tick = match task.last_pick.elapsed() < IDLE_AFTER {
            true => BUSY_TICK,
            false => IDLE_TICK,
        };
        tokio::select! {
            Some(done) = probes.next(), if !probes.is_empty() => task.on_answer(done),
            _ = tokio::time::sleep(tick) => {}
        }
        while let Some(Some(done)) = probes.next().now_or_never() {
            task.on_answer(done);
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let set = shared.set.load();
        let Some(epoch) = set.plan.probe_epoch() else {
            continue;
        };
        task.owe();
        let n = set.ready.len();
        while task.owed >= 1.0 && probes.len() < MAX_PROBES && n > 0 {
            task.owed -= 1.0;
            let i = index(&mut task.rng, n);
            let e = &set.ready[i];
            if !e.channel.is_ready() {
                continue;
            }
            let target = Target {
                state: e.state.clone(),
                index: i as u32,
                epoch,
                budget: config.reuse_budget(n),
                own_at_send: e.state.load.in_flight(),
            };
            // A report this young (a call's trailer, most often) says what a probe would:
            // filed as it is, without the probe's cost to both sides.
            let fresh = e
                .state
                .reported
                .as_deref()
                .and_then(|r| r.probed(now_ns(), task.fresh_ns));
            match fresh {
                Some(report) => task.take(&target, report),
                None => probes.push(probe(e.channel.clone(), target, config.probe_timeout)),
            }
        }
    }
}

/// Where a probe went, for filing its answer.
struct Target {
    state: Arc<EndpointState>,
    index: u32,
    epoch: u16,
    budget: u16,
    /// This client's calls in flight to the endpoint when the probe left. The answer counts
    /// those the server had by then; calls sent since are added at pick time (some twice,
    /// which errs towards a busier estimate, never an idler one).
    own_at_send: u32,
}

struct ProbeTask {
    pool: Arc<ProbePool>,
    config: Prequal,
    rng: SmallRng,
    /// Probes owed for the picks seen.
    owed: f64,
    picks: u64,
    last_pick: Instant,
    history: [u32; HISTORY],
    recorded: usize,
    /// When each slot was filed (`now_ns()`), for evicting the oldest.
    filed_at: [u64; PROBE_SLOTS],
    /// What each slot's answer said when filed (calls in flight, latency in µs), for
    /// evicting the worst.
    ranks: [(u32, u32); PROBE_SLOTS],
    /// Whether the next eviction takes the oldest entry (else the worst): they alternate.
    evict_oldest: bool,
    unsupported_warned: bool,
    /// Reports younger than this are filed without a probe.
    fresh_ns: u64,
}

impl ProbeTask {
    /// Adds the probes owed for the picks made since the last look.
    fn owe(&mut self) {
        let picks = self.pool.picks();
        let new = picks.wrapping_sub(self.picks);
        self.picks = picks;
        if new > 0 {
            self.last_pick = Instant::now();
            self.owed =
                (self.owed + new as f64 * self.config.probes_per_query).min(MAX_PROBES as f64);
        }
    }

    fn on_answer(&mut self, (target, answer): (Target, Option<ProbeAnswer>)) {
        let Some(reported) = target.state.reported.as_deref() else {
            return;
        };
        let report: LoadReport = match answer {
            Some(ProbeAnswer::Report(Ok(report))) => report,
            Some(ProbeAnswer::Report(Err(e))) => {
                reported.on_report(Err(e), 0, &target.state.key);
                return;
            }
            Some(ProbeAnswer::Unsupported) => {
                if !std::mem::replace(&mut self.unsupported_warned, true) {
                    tracing::warn!(
                        endpoint = %target.state.key,
                        "prequal: the endpoint does not answer load probes (add tower_lb::server::OrcaLayer to the server); picks fall back to p2c over calls in flight where no answers come"
                    );
                }
                return;
            }
            Some(ProbeAnswer::Failed(why)) => {
                tracing::debug!(endpoint = %target.state.key, %why, "load probe failed");
                return;
            }
            // Timed out or not sent: no answer is an answer of sorts, but nothing to file.
            None => return,
        };
        let Some(probed) = Probed::of(&report, target.own_at_send) else {
            return;
        };
        reported.on_report(Ok(report), target.own_at_send, &target.state.key);
        self.take(&target, probed);
    }

    /// Takes a report into the hot threshold's history and the pool.
    fn take(&mut self, target: &Target, report: Probed) {
        self.history[self.recorded % HISTORY] = report.in_flight;
        self.recorded += 1;
        self.update_hot_threshold();
        // An unknown latency ranks as the worst.
        let latency = match report.latency_us {
            0 => u32::MAX,
            l => l,
        };
        self.file(target, (report.in_flight, latency));
    }

    /// The pool's hot threshold: the configured quantile of recent answers' calls in flight.
    fn update_hot_threshold(&self) {
        let n = self.recorded.min(HISTORY);
        let mut recent = self.history;
        let recent = &mut recent[..n];
        recent.sort_unstable();
        let at = ((n as f64 * self.config.q_rif).ceil() as usize).clamp(1, n) - 1;
        self.pool.set_hot_above(recent[at]);
    }

    /// Files an answer: in the slot its endpoint already has, else an empty or dead one, else
    /// in place of the oldest or the worst entry, by turns (the paper's removals).
    fn file(&mut self, target: &Target, rank: (u32, u32)) {
        let now = now_ns();
        let slot = ProbeSlot {
            epoch: target.epoch,
            uses: target.budget,
            index: target.index,
        };
        let held: [ProbeSlot; PROBE_SLOTS] = std::array::from_fn(|i| self.pool.get(i));
        let live = |s: &ProbeSlot| s.epoch == target.epoch && s.uses > 0;
        let at = held
            .iter()
            .position(|s| live(s) && s.index == target.index)
            .or_else(|| held.iter().position(|s| !live(s)))
            .unwrap_or_else(|| {
                self.evict_oldest = !self.evict_oldest;
                match !self.evict_oldest {
                    true => (0..PROBE_SLOTS)
                        .min_by_key(|&i| self.filed_at[i])
                        .unwrap_or(0),
                    // The most calls in flight, then the highest latency, when filed.
                    false => (0..PROBE_SLOTS).max_by_key(|&i| self.ranks[i]).unwrap_or(0),
                }
            });
        self.pool.put(at, slot);
        self.filed_at[at] = now;
        self.ranks[at] = rank;
    }
}

/// Sends one probe on `channel`; `None` when it was not answered within `timeout`.
async fn probe<T: EndpointChannel>(
    mut channel: T,
    target: Target,
    timeout: Duration,
) -> (Target, Option<ProbeAnswer>) {
    let request = match grpc_request::<T>(orca::PROBE_PATH, tonic::body::Body::empty()) {
        Some(r) => r,
        None => return (target, None),
    };
    let sent = channel.send(request);
    let answer = match tokio::time::timeout(timeout, sent).await {
        Ok(Ok(response)) => Some(orca::probe_answer(response.status(), response.headers())),
        Ok(Err(SendError::Unsent { .. } | SendError::Failed(_))) | Err(_) => None,
    };
    (target, answer)
}
