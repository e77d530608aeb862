//! Property test over arbitrary interleavings of discovery changes, health-check changes,
//! ejections, calls and time, on a real [`Balancer`] (real connector code, real control task,
//! real grpc.health.v1 checks) over in-process backends.
//!
//! The step model: over a universe of 6 keys, each key a backend reachable at one of two
//! addresses (an address change is a reconnect, a new endpoint instance):
//!
//! * `Insert(key, address, weight, priority)`, `Remove(key)`, `Reweight(key, weight)`:
//!   discovery changes, through a stream the test feeds;
//! * `SetFailing(key, bool)`: the key's backend answers `UNAVAILABLE` (a failure by the default
//!   [`Failures`](tower_lb::health::Failures)) or `OK`, from the moment a response is made;
//! * `SetServing(key, bool)`: the key's grpc.health.v1 service says `SERVING` / `NOT_SERVING`;
//!   the balancer's own health check (`Watch`, over the endpoint's in-process channel) sees it;
//! * `Calls(n, hold)`: `n` calls dispatched back to back; each is answered at once, or held at
//!   its response headers, or held in its body (its status in trailers), until a later
//!   `Finish(i)` releases it or `Cancel(i)` drops it;
//! * `Tick(ms)`: time advances (the runtime's clock is paused, so the control task's timers —
//!   the outlier interval, the end of an ejection — fire exactly when the test says).
//!
//! Outlier detection: 2 consecutive failures eject; base ejection 100 ms, max 300 ms; up to
//! 100 % (the crate caps at all but one); interval 50 ms with the success-rate and
//! failure-percentage detectors at a request volume of 2. Panic threshold: the default 0.5.
//! Circuit breaker: off (its backoff runs on the wall clock, which the test does not drive).
//!
//! After every step the test waits, bounded in scheduler turns and not in time, until the
//! control task has caught up, then checks from [`Balancer::snapshot`] and the calls:
//!
//! * the snapshot lists exactly the discovered endpoints, as discovery described them;
//! * the ready set is exactly what the model says: of the best tier with a healthy endpoint,
//!   those connected, not ejected and serving — or, in panic mode, connected and not ejected;
//!   an ejected endpoint is never ready, panic or not (panic mode keeps ejections);
//! * never every discovered endpoint ejected at once (the cap keeps one);
//! * every call lands on an endpoint ready at its dispatch (never a removed or ejected one),
//!   and fails only when none was ready;
//! * every endpoint's in-flight count is the number of its calls still open;
//! * every call that landed returns its response, including calls on an endpoint removed
//!   meanwhile (the drain);
//!
//! and at the end, once every call is released: in-flight counts are zero, every call task
//! ended without a panic within a bound, nothing panicked anywhere (a panic hook counts), and
//! once the longest ejection has passed, no endpoint is still ejected.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use proptest::prelude::*;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tower::Service;
use tower_lb::discover::{Change, Endpoint, Key};
use tower_lb::health::{FailurePercentage, Health, HealthCheck, OutlierDetection, SuccessRate};
use tower_lb::transport::{ServiceChannel, ServiceConnector};
use tower_lb::{Balancer, ConnectionState, HashKey, Policy, Snapshot};

const KEYS: u8 = 6;
/// Scheduler turns the test gives the control task to catch up after a step.
const SETTLE_TURNS: usize = 2_000;
const MAX_EJECTION: Duration = Duration::from_millis(300);
const INTERVAL: Duration = Duration::from_millis(50);

fn addr(key: u8, alt: bool) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 30_000 + u16::from(key) * 2 + u16::from(alt)))
}

fn key_of(addr: SocketAddr) -> (u8, bool) {
    let n = addr.port() - 30_000;
    ((n / 2) as u8, n % 2 == 1)
}

fn key(k: u8) -> Key {
    Key::from(format!("k{k}"))
}

// ---------------------------------------------------------------------------------------------
// The backends.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Answered at once.
    No,
    /// Held before its response headers.
    Headers,
    /// Headers at once; the body (and its trailers) held.
    Body,
}

/// What all backends share with the test.
#[derive(Default)]
struct World {
    failing: [AtomicBool; KEYS as usize],
    /// Call id → the address that served it, written when the request arrives.
    landed: Mutex<HashMap<u64, SocketAddr>>,
    /// Call id → how it is held and what releases it.
    holds: Mutex<HashMap<u64, (Hold, oneshot::Receiver<()>)>>,
}

type BoxBody = tonic::body::Body;
type BoxFut = Pin<Box<dyn Future<Output = Result<http::Response<BoxBody>, Infallible>> + Send>>;

#[derive(Clone)]
struct Backend {
    addr: SocketAddr,
    world: Arc<World>,
    health: HealthServer<HealthService>,
}

fn grpc_status(failing: bool) -> &'static str {
    if failing { "14" } else { "0" }
}

impl Service<http::Request<BoxBody>> for Backend {
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<BoxBody>) -> BoxFut {
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            return Box::pin(self.health.call(request));
        }
        let id: u64 = request.headers()["x-call"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let previous = self.world.landed.lock().unwrap().insert(id, self.addr);
        assert!(previous.is_none(), "call {id} served twice");
        let hold = self.world.holds.lock().unwrap().remove(&id);
        let world = self.world.clone();
        let k = key_of(self.addr).0 as usize;
        let failing = move || world.failing[k].load(Ordering::SeqCst);
        Box::pin(async move {
            let trailers_only = |failing: bool| {
                http::Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", grpc_status(failing))
                    .body(BoxBody::empty())
                    .unwrap()
            };
            match hold {
                None => Ok(trailers_only(failing())),
                Some((Hold::No, _)) => unreachable!("unheld calls register no hold"),
                Some((Hold::Headers, release)) => {
                    let _ = release.await;
                    Ok(trailers_only(failing()))
                }
                Some((Hold::Body, release)) => {
                    let frames = futures::stream::once(async move {
                        let _ = release.await;
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", grpc_status(failing()).parse().unwrap());
                        Ok::<_, Infallible>(Frame::<Bytes>::trailers(trailers))
                    });
                    let body = BoxBody::new(StreamBody::new(Box::pin(frames)));
                    Ok(http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
                        .unwrap())
                }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Steps.

#[derive(Debug, Clone)]
enum Step {
    Insert {
        key: u8,
        alt: bool,
        weight: u32,
        priority: u32,
    },
    Remove(u8),
    Reweight(u8, u32),
    SetFailing(u8, bool),
    SetServing(u8, bool),
    Calls(u8, Hold),
    Finish(u16),
    Cancel(u16),
    Tick(u16),
}

fn step() -> impl Strategy<Value = Step> {
    let k = 0..KEYS;
    prop_oneof![
        4 => (k.clone(), any::<bool>(), 1u32..=4, prop_oneof![4 => Just(0u32), 1 => Just(1u32)])
            .prop_map(|(key, alt, weight, priority)| Step::Insert { key, alt, weight, priority }),
        2 => k.clone().prop_map(Step::Remove),
        1 => (k.clone(), 1u32..=4).prop_map(|(k, w)| Step::Reweight(k, w)),
        2 => (k.clone(), any::<bool>()).prop_map(|(k, f)| Step::SetFailing(k, f)),
        2 => (k, any::<bool>()).prop_map(|(k, s)| Step::SetServing(k, s)),
        5 => (1u8..=4, prop_oneof![Just(Hold::No), Just(Hold::Headers), Just(Hold::Body)])
            .prop_map(|(n, h)| Step::Calls(n, h)),
        2 => any::<u16>().prop_map(Step::Finish),
        1 => any::<u16>().prop_map(Step::Cancel),
        2 => (1u16..=400).prop_map(Step::Tick),
    ]
}

fn policies() -> Vec<Policy> {
    let key = || HashKey::header("x-key").unwrap();
    vec![
        Policy::default(),
        Policy::p2c_in_flight(),
        Policy::least_request(3).unwrap(),
        Policy::least_loaded(),
        Policy::round_robin(),
        Policy::weighted_random(),
        Policy::pick_first(),
        Policy::ring_hash(key()).ring_size(64, 1024).unwrap(),
        Policy::maglev(key()),
        Policy::ring_hash(key())
            .ring_size(64, 1024)
            .unwrap()
            .bounded_load(0.25)
            .unwrap(),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model and the checks.

#[derive(Debug, Clone, Copy, PartialEq)]
struct Discovered {
    alt: bool,
    weight: u32,
    priority: u32,
    /// Which instance of the key (a new one per insert of a new key or a new address).
    instance: u64,
}

struct Call {
    id: u64,
    /// Where it landed: key and instance.
    on: Option<(u8, u64)>,
    hold: Hold,
    release: Option<oneshot::Sender<()>>,
    cancelled: bool,
    task: JoinHandle<Result<(), String>>,
}

#[derive(Default)]
struct Model {
    discovered: BTreeMap<u8, Discovered>,
    serving: [bool; KEYS as usize],
    next_instance: u64,
    next_call: u64,
    /// Calls whose task has not been reaped yet.
    open: Vec<Call>,
}

impl Model {
    /// The ready set the snapshot must show: of the best tier with a healthy endpoint, the
    /// healthy ones (or in panic mode, every one connected and not ejected), and whether it is
    /// panic mode. Ejection is the crate's decision (read from the snapshot); everything else
    /// is the model's.
    fn expected_ready(&self, snap: &Snapshot) -> (BTreeSet<u8>, Option<u32>, bool) {
        let ejected = |k: u8| {
            snap.endpoints
                .iter()
                .any(|e| e.key == key(k) && e.health == Health::Ejected)
        };
        let usable: Vec<(u8, u32)> = self
            .discovered
            .iter()
            .filter(|(k, _)| !ejected(**k))
            .map(|(k, d)| (*k, d.priority))
            .collect();
        let healthy = |k: u8| self.serving[k as usize];
        let best_healthy = usable
            .iter()
            .filter(|(k, _)| healthy(*k))
            .map(|(_, p)| *p)
            .min();
        let (tier, panic) = match best_healthy {
            Some(tier) => {
                let total = self
                    .discovered
                    .values()
                    .filter(|d| d.priority == tier)
                    .count();
                let healthy_n = usable
                    .iter()
                    .filter(|(k, p)| *p == tier && healthy(*k))
                    .count();
                (Some(tier), (healthy_n as f64) < 0.5 * total as f64)
            }
            None => {
                let tier = usable.iter().map(|(_, p)| *p).min();
                (tier, tier.is_some())
            }
        };
        let ready = usable
            .iter()
            .filter(|(k, p)| Some(*p) == tier && (panic || healthy(*k)))
            .map(|(k, _)| *k)
            .collect();
        (ready, tier, panic)
    }

    /// Why the snapshot does not (yet) agree with the model, if it does not.
    fn disagreement(&self, snap: &Snapshot) -> Option<String> {
        let listed: BTreeMap<u8, (SocketAddr, u32, u32)> = snap
            .endpoints
            .iter()
            .map(|e| {
                let k: u8 = e.key.as_str()[1..].parse().unwrap();
                (k, (e.addr, e.weight, e.priority))
            })
            .collect();
        let want: BTreeMap<u8, (SocketAddr, u32, u32)> = self
            .discovered
            .iter()
            .map(|(&k, d)| (k, (addr(k, d.alt), d.weight, d.priority)))
            .collect();
        if listed != want {
            return Some(format!("endpoints {listed:?}, discovered {want:?}"));
        }
        for e in &snap.endpoints {
            let k: u8 = e.key.as_str()[1..].parse().unwrap();
            if e.state != ConnectionState::Ready {
                return Some(format!("k{k} is {:?}", e.state));
            }
            let health_ok = match e.health {
                Health::Ejected => true,
                Health::Healthy => self.serving[k as usize],
                Health::NotServing => !self.serving[k as usize],
                _ => false,
            };
            if !health_ok {
                return Some(format!(
                    "k{k} health {:?}, serving {}",
                    e.health, self.serving[k as usize]
                ));
            }
        }
        let (ready, tier, panic) = self.expected_ready(snap);
        let seen = ready_keys(snap);
        if (seen.clone(), snap.tier, snap.panic) != (ready.clone(), tier, panic) {
            return Some(format!(
                "ready {seen:?} tier {:?} panic {}, expected ready {ready:?} tier {tier:?} panic {panic}",
                snap.tier, snap.panic
            ));
        }
        for e in &snap.endpoints {
            let k: u8 = e.key.as_str()[1..].parse().unwrap();
            let instance = self.discovered[&k].instance;
            let open = self
                .open
                .iter()
                .filter(|c| c.on == Some((k, instance)) && !c.task.is_finished())
                .count();
            if e.in_flight as usize != open {
                return Some(format!("k{k}: {} in flight, {open} open", e.in_flight));
            }
        }
        // Calls answered at once, released or cancelled have ended.
        if let Some(c) = self
            .open
            .iter()
            .find(|c| (c.release.is_none() || c.cancelled) && !c.task.is_finished())
        {
            return Some(format!("call {} ({:?}) has not ended", c.id, c.hold));
        }
        None
    }
}

fn ready_keys(snap: &Snapshot) -> BTreeSet<u8> {
    snap.endpoints
        .iter()
        .filter(|e| e.ready)
        .map(|e| e.key.as_str()[1..].parse().unwrap())
        .collect()
}

/// Invariants that hold at any instant, caught up or not.
fn always(snap: &Snapshot, model: &Model) -> Result<(), TestCaseError> {
    for e in snap.endpoints.iter().filter(|e| e.ready) {
        let k: u8 = e.key.as_str()[1..].parse().unwrap();
        prop_assert!(
            model.discovered.contains_key(&k),
            "removed k{k} is ready: {snap:?}"
        );
        prop_assert!(
            e.health != Health::Ejected,
            "ejected k{k} is ready: {snap:?}"
        );
        prop_assert!(
            snap.panic || e.health == Health::Healthy,
            "k{k} is ready with health {:?} outside panic mode: {snap:?}",
            e.health
        );
    }
    let ejected = snap
        .endpoints
        .iter()
        .filter(|e| e.health == Health::Ejected)
        .count();
    prop_assert!(
        ejected == 0 || ejected < snap.endpoints.len(),
        "every endpoint ejected: {snap:?}"
    );
    Ok(())
}

/// What the cases exercised, printed with `INTERLEAVINGS_STATS=1` (so a run shows that
/// ejections, panic mode, drains and fail-fast calls actually happen).
static STATS: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];
const STAT_NAMES: [&str; 6] = [
    "calls landed",
    "calls failed fast",
    "steps with an ejection",
    "steps in panic mode",
    "steps with a not-serving endpoint",
    "calls drained from a removed endpoint",
];

fn print_stats_after_the_last_case() {
    static CASES: AtomicUsize = AtomicUsize::new(0);
    let n = CASES.fetch_add(1, Ordering::Relaxed) + 1;
    if n == cases() as usize && std::env::var_os("INTERLEAVINGS_STATS").is_some() {
        eprintln!("{n} cases:");
        for (name, count) in STAT_NAMES.iter().zip(&STATS) {
            eprintln!("  {name}: {}", count.load(Ordering::Relaxed));
        }
    }
}

fn stat(i: usize) {
    STATS[i].fetch_add(1, Ordering::Relaxed);
}

/// Panics anywhere in the process (tokio catches a task's panic; the hook still sees it).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

// ---------------------------------------------------------------------------------------------
// The run.

struct Run {
    balancer: Balancer<ServiceChannel<Backend, BoxBody>>,
    discovery: tokio::sync::mpsc::UnboundedSender<Change>,
    world: Arc<World>,
    reporters: Vec<HealthReporter>,
    model: Model,
}

impl Run {
    /// Waits, bounded in scheduler turns, until the snapshot agrees with the model; then
    /// checks it and reaps the calls that ended.
    async fn settle(&mut self, after: &Step) -> Result<(), TestCaseError> {
        let mut why = None;
        for _ in 0..SETTLE_TURNS {
            tokio::task::yield_now().await;
            let snap = self.balancer.snapshot();
            always(&snap, &self.model)?;
            why = self.model.disagreement(&snap);
            if why.is_none() {
                break;
            }
        }
        let snap = self.balancer.snapshot();
        if snap.endpoints.iter().any(|e| e.health == Health::Ejected) {
            stat(2);
        }
        if snap.panic {
            stat(3);
        }
        if snap
            .endpoints
            .iter()
            .any(|e| e.health == Health::NotServing)
        {
            stat(4);
        }
        if let Some(why) = why {
            return Err(TestCaseError::fail(format!(
                "after {after:?}, the balancer did not catch up: {why}\n{:?}",
                self.balancer.snapshot()
            )));
        }
        self.reap().await
    }

    /// Joins the calls that ended: no panic, and a call that landed got its response.
    async fn reap(&mut self) -> Result<(), TestCaseError> {
        let mut i = 0;
        while i < self.model.open.len() {
            if !self.model.open[i].task.is_finished() {
                i += 1;
                continue;
            }
            let call = self.model.open.swap_remove(i);
            if let Some((k, instance)) = call.on
                && self
                    .model
                    .discovered
                    .get(&k)
                    .is_none_or(|d| d.instance != instance)
            {
                stat(5);
            }
            match call.task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => prop_assert!(
                    call.on.is_none() || call.cancelled,
                    "call {} landed on {:?} and failed: {e}",
                    call.id,
                    call.on
                ),
                Err(e) if e.is_cancelled() => prop_assert!(call.cancelled),
                Err(e) => return Err(TestCaseError::fail(format!("call task panicked: {e}"))),
            }
        }
        Ok(())
    }

    async fn apply(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match *step {
            Step::Insert {
                key: k,
                alt,
                weight,
                priority,
            } => {
                let instance = match self.model.discovered.get(&k) {
                    Some(d) if d.alt == alt => d.instance,
                    _ => {
                        self.model.next_instance += 1;
                        self.model.next_instance
                    }
                };
                self.insert(
                    k,
                    Discovered {
                        alt,
                        weight,
                        priority,
                        instance,
                    },
                );
            }
            Step::Remove(k) => {
                self.model.discovered.remove(&k);
                self.discovery.send(Change::Remove(key(k))).unwrap();
            }
            Step::Reweight(k, weight) => {
                if let Some(&d) = self.model.discovered.get(&k) {
                    self.insert(k, Discovered { weight, ..d });
                }
            }
            Step::SetFailing(k, failing) => {
                self.world.failing[k as usize].store(failing, Ordering::SeqCst);
            }
            Step::SetServing(k, serving) => {
                self.model.serving[k as usize] = serving;
                let status = if serving {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                self.reporters[k as usize]
                    .set_service_status("", status)
                    .await;
            }
            Step::Calls(n, hold) => {
                for _ in 0..n {
                    self.call(hold).await?;
                }
            }
            Step::Finish(i) => {
                let held: Vec<usize> = (0..self.model.open.len())
                    .filter(|&j| {
                        self.model.open[j].release.is_some() && !self.model.open[j].cancelled
                    })
                    .collect();
                if !held.is_empty() {
                    let call = &mut self.model.open[held[i as usize % held.len()]];
                    let _ = call.release.take().unwrap().send(());
                }
            }
            Step::Cancel(i) => {
                let open: Vec<usize> = (0..self.model.open.len())
                    .filter(|&j| {
                        !self.model.open[j].cancelled && !self.model.open[j].task.is_finished()
                    })
                    .collect();
                if !open.is_empty() {
                    let call = &mut self.model.open[open[i as usize % open.len()]];
                    call.task.abort();
                    call.cancelled = true;
                }
            }
            Step::Tick(ms) => tokio::time::advance(Duration::from_millis(u64::from(ms))).await,
        }
        Ok(())
    }

    fn insert(&mut self, k: u8, d: Discovered) {
        self.model.discovered.insert(k, d);
        let e = Endpoint::new(addr(k, d.alt))
            .unwrap()
            .with_weight(d.weight)
            .unwrap()
            .with_priority(d.priority);
        self.discovery.send(Change::Insert(key(k), e)).unwrap();
    }

    /// Dispatches one call: it must land on an endpoint ready at that instant, or fail at
    /// once when none is.
    async fn call(&mut self, hold: Hold) -> Result<(), TestCaseError> {
        self.model.next_call += 1;
        let id = self.model.next_call;
        let release = (hold != Hold::No).then(|| {
            let (tx, rx) = oneshot::channel();
            self.world.holds.lock().unwrap().insert(id, (hold, rx));
            tx
        });
        let request = http::Request::builder()
            .uri("http://lb/test.Svc/Call")
            .header("x-call", id.to_string())
            .header(
                "x-key",
                (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40).to_string(),
            )
            .body(BoxBody::empty())
            .unwrap();
        let snap = self.balancer.snapshot();
        always(&snap, &self.model)?;
        let ready = ready_keys(&snap);
        let mut future = Box::pin(self.balancer.call(request));
        // The pick happens in `call` (or, on the slow path, at the first poll).
        let first = futures::poll!(future.as_mut());
        let landed = self.world.landed.lock().unwrap().get(&id).copied();
        let on = match landed {
            Some(a) => {
                let (k, alt) = key_of(a);
                let d = self.model.discovered.get(&k);
                prop_assert!(
                    d.is_some_and(|d| d.alt == alt),
                    "call {id} landed on {a} (k{k}), not discovered: {:?}",
                    self.model.discovered
                );
                prop_assert!(
                    ready.contains(&k),
                    "call {id} landed on k{k}, not ready at dispatch: {snap:?}"
                );
                stat(0);
                Some((k, d.unwrap().instance))
            }
            None => {
                let failed = matches!(first, Poll::Ready(Err(_)));
                prop_assert!(
                    failed,
                    "call {id} neither landed nor failed at its first poll"
                );
                prop_assert!(
                    ready.is_empty(),
                    "call {id} failed with {ready:?} ready: {snap:?}"
                );
                self.world.holds.lock().unwrap().remove(&id);
                stat(1);
                None
            }
        };
        let task = tokio::spawn(async move {
            let result = match first {
                Poll::Ready(r) => r,
                Poll::Pending => future.await,
            };
            let response = result.map_err(|e| e.to_string())?;
            // The status is in the headers or the trailers; either is an answer.
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            drop(body);
            Ok(())
        });
        self.model.open.push(Call {
            id,
            on,
            hold,
            release: if on.is_some() { release } else { None },
            cancelled: false,
            task,
        });
        Ok(())
    }

    /// Releases every call, waits for all of them, and checks the end state.
    async fn finish(mut self) -> Result<(), TestCaseError> {
        for call in &mut self.model.open {
            if let Some(tx) = call.release.take() {
                let _ = tx.send(());
            }
        }
        let end = Step::Finish(u16::MAX);
        self.settle(&end).await?;
        prop_assert!(self.model.open.is_empty(), "calls still open after release");
        for e in self.balancer.snapshot().endpoints {
            prop_assert_eq!(e.in_flight, 0, "{:?}", e);
        }
        // Every ejection ends (the interval may eject once more: wait out two of the longest).
        for _ in 0..2 {
            tokio::time::advance(MAX_EJECTION + INTERVAL).await;
            self.settle(&Step::Tick(0)).await?;
        }
        let snap = self.balancer.snapshot();
        let ejected: Vec<_> = snap
            .endpoints
            .iter()
            .filter(|e| e.health == Health::Ejected)
            .collect();
        prop_assert!(
            ejected.len() <= 1,
            "ejections outlive the longest ejection time: {snap:?}"
        );
        drop(self.discovery);
        Ok(())
    }
}

fn run_case(steps: Vec<Step>, policy: Policy) -> Result<(), TestCaseError> {
    count_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        let world = Arc::new(World::default());
        let mut reporters = Vec::new();
        let mut servers = HashMap::new();
        for k in 0..KEYS {
            let reporter = HealthReporter::new();
            reporter
                .set_service_status("", ServingStatus::Serving)
                .await;
            let server = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
            for alt in [false, true] {
                servers.insert(addr(k, alt), server.clone());
            }
            reporters.push(reporter);
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Change>();
        let discovery = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|c| (Ok::<_, Infallible>(c), rx))
        });
        let connector_world = world.clone();
        let connector = ServiceConnector::new(move |e: &Endpoint| Backend {
            addr: e.addr(),
            world: connector_world.clone(),
            health: servers[&e.addr()].clone(),
        });
        let outlier = OutlierDetection::default()
            .consecutive_failures(Some(2))
            .base_ejection_time(Duration::from_millis(100))
            .max_ejection_time(MAX_EJECTION)
            .max_ejection_percent(100)
            .interval(INTERVAL)
            .success_rate(Some(
                SuccessRate::default().request_volume(2).minimum_hosts(2),
            ))
            .failure_percentage(Some(
                FailurePercentage::default()
                    .request_volume(2)
                    .minimum_hosts(2),
            ));
        let balancer = Balancer::builder()
            .policy(policy)
            .ready_timeout(Duration::ZERO)
            .outlier_detection(outlier)
            .health_check(HealthCheck::grpc())
            .build_with(connector, discovery)
            .unwrap();
        let mut run = Run {
            balancer,
            discovery: tx,
            world,
            reporters,
            model: Model {
                serving: [true; KEYS as usize],
                ..Model::default()
            },
        };
        for step in &steps {
            run.apply(step).await?;
            run.settle(step).await?;
        }
        // Every call returns: bounded (the clock is paused, so a hang shows as the clock
        // running far ahead with nothing to do, not as a slow test).
        match tokio::time::timeout(Duration::from_secs(60), run.finish()).await {
            Ok(r) => r,
            Err(_) => Err(TestCaseError::fail("calls did not return")),
        }
    });
    drop(runtime);
    result?;
    prop_assert_eq!(
        PANICS.load(Ordering::SeqCst),
        panics_before,
        "something panicked"
    );
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Any interleaving of discovery changes, health changes, failures (hence ejections),
    /// calls held across steps, cancellations and time: see the module docs for the checks.
    #[test]
    fn the_ready_set_follows_discovery_health_and_ejections(
        steps in proptest::collection::vec(step(), 1..60),
        policy_index in 0usize..10,
    ) {
        let result = run_case(steps, policies()[policy_index].clone());
        print_stats_after_the_last_case();
        result?;
    }
}

/// The first finding, kept by name: two endpoints, the failing one ejected (the cap allows one
/// of two), then discovery removes the other. The cap is now zero; the ejection used to stay
/// until it ran out (30 s by default), every call failing with nothing ready. Now the
/// ejection ends when the set shrinks below what it allows.
#[test]
fn removing_the_last_healthy_endpoint_lifts_an_ejection_the_cap_no_longer_allows() {
    let insert = |key| Step::Insert {
        key,
        alt: false,
        weight: 1,
        priority: 0,
    };
    let steps = vec![
        Step::SetFailing(2, true),
        insert(2),
        insert(4),
        // Pick first, in key order: both calls to k2, which the second one ejects.
        Step::Calls(2, Hold::No),
        Step::Remove(4),
        Step::Calls(1, Hold::No),
    ];
    run_case(steps, Policy::pick_first()).unwrap();
}
