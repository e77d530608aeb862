//! The fault schedule: one server killed hard at a time and restarted on its address a bit
//! later, and optionally one blackout (every server down at once) to exercise fail-fast.
//!
//! Every kill is logged with when it began and when the balancer had stopped offering the
//! server (no endpoint on its address ready any more, nor ejected with its connection up): the
//! window in which a call can fail on the dead connection. See [`super::outcome`] for how failures are attributed to it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tower_lb::Balancer;

use super::clock::Clock;
use super::fleet::Fleet;
use super::rng::Rng;

/// How long a kill may take to be noticed by the balancer before it counts as missed.
const NOTICE_BOUND: Duration = Duration::from_secs(5);
/// How long after a blackout ends the balancer may take to have a ready endpoint again.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);
/// How often the balancer's view is polled while waiting.
const POLL: Duration = Duration::from_millis(1);

/// One kill: from when it began (µs on the run's clock) to when no endpoint on the server's
/// address was ready any more (`None`: not within 5 s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KillWindow {
    pub(crate) start_us: u64,
    pub(crate) noticed_us: Option<u64>,
    pub(crate) gave_up_us: u64,
}

impl KillWindow {
    /// The last moment a call could have picked the dead server.
    pub(crate) fn end_us(&self) -> u64 {
        self.noticed_us.unwrap_or(self.gave_up_us)
    }
}

/// The blackout: from the first kill to the first ready endpoint after the restarts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlackoutWindow {
    pub(crate) start_us: u64,
    pub(crate) end_us: u64,
    /// When every server was down and the balancer had nothing ready.
    pub(crate) all_down_us: Option<u64>,
    /// When a ready endpoint was seen again (`None`: not within 10 s of the restarts).
    pub(crate) recovered_us: Option<u64>,
    /// When the servers were started again.
    pub(crate) restarted_us: u64,
}

#[derive(Debug, Default)]
pub(crate) struct FaultLog {
    pub(crate) kills: Vec<KillWindow>,
    pub(crate) restarts: u64,
    pub(crate) restart_errors: Vec<String>,
    pub(crate) blackout: Option<BlackoutWindow>,
}

pub(crate) struct Plan {
    pub(crate) kill_every: Option<Duration>,
    pub(crate) down_for: Duration,
    /// When the blackout begins (on the run's clock) and how long every server stays down.
    pub(crate) blackout: Option<(Duration, Duration)>,
    pub(crate) seed: u64,
    /// The schedule ends here at the latest.
    pub(crate) until: Instant,
}

pub(crate) async fn run(
    plan: Plan,
    fleet: Arc<Fleet>,
    balancer: Balancer,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) -> FaultLog {
    let mut log = FaultLog::default();
    let mut rng = Rng::new(plan.seed);
    let mut blackout_at = plan.blackout.map(|(at, hold)| (clock.instant(at), hold));
    let mut next_kill = plan.kill_every.map(|every| Instant::now() + every);
    // Each round kills at least one server and waits at least `POLL`; bounded by the plan's
    // end and by this count.
    for _ in 0..1_000_000 {
        let next = match (next_kill, blackout_at) {
            (Some(k), Some((b, _))) => k.min(b),
            (Some(k), None) => k,
            (None, Some((b, _))) => b,
            (None, None) => break,
        };
        if next >= plan.until {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        // Bring back anything a failed restart left down.
        restart_down(&fleet, &mut log).await;
        match blackout_at {
            Some((at, hold)) if at <= next => {
                blackout_at = None;
                log.blackout = Some(blackout(&fleet, &balancer, &clock, hold, &mut log).await);
            }
            _ => {
                let up: Vec<usize> = (0..fleet.len()).filter(|&i| fleet.is_up(i)).collect();
                if up.len() > 1 {
                    let i = up[rng.below(up.len())];
                    let started = Instant::now();
                    let window = kill(&fleet, &balancer, &clock, &[i]).await;
                    log.kills.extend(window);
                    tokio::time::sleep_until(started + plan.down_for).await;
                    restart(&fleet, i, &mut log).await;
                }
            }
        }
        if let (Some(k), Some(every)) = (next_kill.as_mut(), plan.kill_every) {
            *k = (*k + every).max(Instant::now());
        }
    }
    log
}

/// Kills `slots` at once and waits (bounded) until the balancer offers none of them.
async fn kill(
    fleet: &Arc<Fleet>,
    balancer: &Balancer,
    clock: &Clock,
    slots: &[usize],
) -> Vec<KillWindow> {
    let start_us = clock.now_us();
    let kills: Vec<_> = slots
        .iter()
        .map(|&i| {
            let fleet = Arc::clone(fleet);
            tokio::task::spawn_blocking(move || fleet.kill(i))
        })
        .collect();
    for k in kills {
        // A panicking kill leaves the server to the fleet's drop.
        let _ = k.await;
    }
    let addrs: Vec<_> = slots.iter().map(|&i| fleet.addr(i)).collect();
    let mut windows: Vec<KillWindow> = slots
        .iter()
        .map(|_| KillWindow {
            start_us,
            noticed_us: None,
            gave_up_us: 0,
        })
        .collect();
    let deadline = Instant::now() + NOTICE_BOUND;
    loop {
        let endpoints = balancer.snapshot().endpoints;
        let now = clock.now_us();
        for (w, addr) in windows.iter_mut().zip(&addrs) {
            if w.noticed_us.is_none() && !endpoints.iter().any(|e| e.addr == *addr && offered(e)) {
                w.noticed_us = Some(now);
            }
        }
        if windows.iter().all(|w| w.noticed_us.is_some()) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let now = clock.now_us();
    for w in &mut windows {
        w.gave_up_us = now;
    }
    windows
}

/// Whether calls may still be sent to `e`'s connection: it is ready, or ejected with its
/// connection still up. An ejection can end at any moment — it expires, or the cap on
/// ejections falls as the churn removes keys and the soonest to end ends at once — and then
/// calls go to that connection until the balancer sees it closed. So a killed server that was
/// ejected is noticed only when its connection is seen to be down.
fn offered(e: &tower_lb::EndpointStatus) -> bool {
    e.ready
        || (e.health == tower_lb::health::Health::Ejected
            && e.state == tower_lb::ConnectionState::Ready)
}

async fn restart(fleet: &Arc<Fleet>, i: usize, log: &mut FaultLog) {
    let restarted = {
        let fleet = Arc::clone(fleet);
        tokio::task::spawn_blocking(move || fleet.restart(i)).await
    };
    match restarted {
        Ok(Ok(())) => log.restarts += 1,
        Ok(Err(e)) => log
            .restart_errors
            .push(format!("restart of {} failed: {e}", fleet.name(i))),
        Err(e) => log
            .restart_errors
            .push(format!("restart of {} panicked: {e}", fleet.name(i))),
    }
}

async fn restart_down(fleet: &Arc<Fleet>, log: &mut FaultLog) {
    for i in 0..fleet.len() {
        if !fleet.is_up(i) {
            restart(fleet, i, log).await;
        }
    }
}

/// Every server down for `hold`, then all restarted; returns the window in which calls may
/// fail fast.
async fn blackout(
    fleet: &Arc<Fleet>,
    balancer: &Balancer,
    clock: &Clock,
    hold: Duration,
    log: &mut FaultLog,
) -> BlackoutWindow {
    let start_us = clock.now_us();
    let up: Vec<usize> = (0..fleet.len()).filter(|&i| fleet.is_up(i)).collect();
    log.kills.extend(kill(fleet, balancer, clock, &up).await);
    let all_down_us = (balancer.ready_len() == 0).then(|| clock.now_us());
    tokio::time::sleep(hold).await;
    let restarted_us = clock.now_us();
    for &i in &up {
        restart(fleet, i, log).await;
    }
    let deadline = Instant::now() + RECOVERY_BOUND;
    while balancer.ready_len() == 0 && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    let recovered_us = (balancer.ready_len() > 0).then(|| clock.now_us());
    BlackoutWindow {
        start_us,
        end_us: clock.now_us(),
        all_down_us,
        recovered_us,
        restarted_us,
    }
}
