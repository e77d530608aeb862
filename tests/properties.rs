//! Property tests (proptest) of every policy, through [`Picker`] (the balancer's own pick
//! code) and through a [`Balancer`] over in-process endpoints under discovery churn.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use proptest::prelude::*;
use tower::{Service, ServiceExt};
use tower_lb::discover::{Change, Endpoint, Key};
use tower_lb::transport::{ServiceChannel, ServiceConnector};
use tower_lb::{Balancer, HashKey, Picker, Policy};

/// Share of the weights a policy must keep to, over 600 picks that hold their load:
/// `Exact` within one call per unit of weight; otherwise a relative deviation.
#[derive(Clone, Copy)]
enum Tolerance {
    Exact,
    Relative(f64),
}

fn policies_with_tolerance() -> Vec<(Policy, Tolerance)> {
    let key = || HashKey::header("x-key").unwrap();
    // Rings of at most 65,536 points: extreme weight ratios (1 beside u32::MAX) fill a ring to
    // its maximum, which a debug build sorts slowly at the default size.
    let ring = || Policy::ring_hash(key()).ring_size(1024, 1 << 16).unwrap();
    vec![
        (Policy::default(), Tolerance::Relative(0.35)),
        (Policy::p2c_in_flight(), Tolerance::Relative(0.35)),
        (Policy::least_loaded(), Tolerance::Exact),
        (Policy::round_robin(), Tolerance::Exact),
        (Policy::weighted_random(), Tolerance::Relative(0.35)),
        // A ring of a few hundred points splits keys less evenly than its weights.
        (ring(), Tolerance::Relative(0.5)),
        (Policy::maglev(key()), Tolerance::Relative(0.35)),
        (
            ring().bounded_load(0.25).unwrap(),
            Tolerance::Relative(0.35),
        ),
        (
            Policy::maglev(key()).bounded_load(0.01).unwrap(),
            Tolerance::Relative(0.35),
        ),
    ]
}

fn policies() -> Vec<Policy> {
    policies_with_tolerance()
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

fn weight() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(1u32),
        Just(u32::MAX),
        1u32..=10,
        any::<u32>().prop_map(|w| w.max(1))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any set (empty, one, many; any weights), any hashes, calls begun and ended in any order:
    /// a pick is a valid index exactly when there are endpoints, nothing panics, and in-flight
    /// counts return to zero.
    #[test]
    fn picks_are_valid_for_any_set_and_any_calls(
        weights in proptest::collection::vec(weight(), 0..12),
        ops in proptest::collection::vec((any::<Option<u64>>(), any::<bool>()), 1..200),
        seed in any::<u64>(),
    ) {
        for policy in policies() {
            let endpoints = weights.iter().enumerate().map(|(i, &w)| (Key::from(format!("e{i}")), w));
            let mut picker = Picker::new(policy.clone(), endpoints, seed).unwrap();
            let mut open = Vec::new();
            for (t, &(hash, finish)) in ops.iter().enumerate() {
                let now = Duration::from_micros(t as u64 * 100);
                match picker.pick(hash, now) {
                    Some(i) => {
                        prop_assert!(i < weights.len(), "{policy:?}");
                        picker.begin(i);
                        open.push(i);
                    }
                    None => prop_assert!(weights.is_empty(), "{policy:?}: no pick from {weights:?}"),
                }
                if finish && !open.is_empty() {
                    let i = open.swap_remove(t % open.len());
                    picker.end(i, Duration::from_millis(1), now);
                }
            }
            for i in open.drain(..) {
                picker.end(i, Duration::from_millis(1), Duration::from_secs(1));
            }
            for i in 0..picker.len() {
                prop_assert_eq!(picker.in_flight(i), 0);
            }
        }
    }

    /// Shares follow weights: picks that hold their load (the static model) end up in
    /// proportion to the weights for every load-aware or weighted policy, and hashing spreads
    /// uniform keys by weight.
    #[test]
    fn shares_follow_weights(
        weights in proptest::collection::vec(1u32..=4, 2..6),
        seed in any::<u64>(),
    ) {
        let total: u32 = weights.iter().sum();
        let rounds = 600 / total;
        let calls = (rounds * total) as usize;
        for (policy, tolerance) in policies_with_tolerance() {
            let endpoints = weights.iter().enumerate().map(|(i, &w)| (Key::from(format!("e{i}")), w));
            let mut picker = Picker::new(policy.clone(), endpoints, seed).unwrap();
            let mut counts = vec![0usize; weights.len()];
            let mut keys = seed;
            for t in 0..calls {
                keys = keys.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let i = picker.pick(Some(keys), Duration::from_micros(t as u64)).unwrap();
                picker.begin(i);
                counts[i] += 1;
            }
            for (i, (&c, &w)) in counts.iter().zip(&weights).enumerate() {
                let expected = calls as f64 * f64::from(w) / f64::from(total);
                let off = (c as f64 - expected).abs();
                let limit = match tolerance {
                    Tolerance::Exact => f64::from(w),
                    // Random policies also get five binomial standard deviations.
                    Tolerance::Relative(r) => {
                        let p = f64::from(w) / f64::from(total);
                        (expected * r).max(5.0 * (calls as f64 * p * (1.0 - p)).sqrt())
                    }
                };
                prop_assert!(off <= limit.max(1.0), "{policy:?}: endpoint {i} (weight {w}) got {c}, expected {expected:.0}: {counts:?}");
            }
        }
    }
}

/// An in-process backend that answers with its port.
#[derive(Clone)]
struct Backend {
    port: u16,
}

impl Service<http::Request<String>> for Backend {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<String>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(Full::from(self.port.to_string()))))
    }
}

#[derive(Debug, Clone)]
enum Step {
    Insert(u8, u32),
    Remove(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..8, 1u32..=5).prop_map(|(k, w)| Step::Insert(k, w)),
        (0u8..8).prop_map(Step::Remove),
    ]
}

fn addr(k: u8) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 20_000 + u16::from(k)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A balancer under any sequence of inserts, removals and weight changes: once the
    /// snapshot has caught up, every call lands on an endpoint of the current set, and a set
    /// emptied by discovery fails calls instead of hanging.
    #[test]
    fn calls_land_on_the_current_set_under_churn(
        steps in proptest::collection::vec(step(), 1..16),
        policy_index in 0usize..9,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Change>();
            let discovery = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|c| (Ok::<_, Infallible>(c), rx))
            });
            let mut balancer: Balancer<ServiceChannel<Backend, String>> = Balancer::builder()
                .policy(policies()[policy_index].clone())
                .ready_timeout(Duration::ZERO)
                .build_with(ServiceConnector::new(|e: &Endpoint| Backend { port: e.addr().port() }), discovery)
                .unwrap();
            let mut set: BTreeMap<u8, u32> = BTreeMap::new();
            for step in steps {
                match step {
                    Step::Insert(k, w) => {
                        set.insert(k, w);
                        let e = Endpoint::new(addr(k)).unwrap().with_weight(w).unwrap();
                        tx.send(Change::Insert(Key::from(addr(k)), e)).unwrap();
                    }
                    Step::Remove(k) => {
                        set.remove(&k);
                        tx.send(Change::Remove(Key::from(addr(k)))).unwrap();
                    }
                }
                // Wait (bounded) until the balancer's view matches the set.
                let want: HashMap<String, u32> = set.iter().map(|(&k, &w)| (addr(k).to_string(), w)).collect();
                for _ in 0..1000 {
                    let seen: HashMap<String, u32> = balancer.snapshot().endpoints.into_iter().map(|e| (e.addr.to_string(), e.weight)).collect();
                    if seen == want && balancer.ready_len() == want.len() { break; }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                prop_assert_eq!(balancer.ready_len(), set.len());
                for c in 0..20u32 {
                    let request = http::Request::builder()
                        .header("x-key", c.to_string())
                        .body(String::new())
                        .unwrap();
                    let result = balancer.ready().await.unwrap().call(request).await;
                    match result {
                        Ok(response) => {
                            let body = response.into_body().collect().await.unwrap().to_bytes();
                            let port: u16 = std::str::from_utf8(&body).unwrap().parse().unwrap();
                            prop_assert!(set.contains_key(&((port - 20_000) as u8)), "port {port} answered; set {set:?}");
                        }
                        Err(e) => prop_assert!(set.is_empty(), "call failed with endpoints ready: {e}"),
                    }
                }
                for s in balancer.snapshot().endpoints {
                    prop_assert_eq!(s.in_flight, 0);
                }
            }
            Ok(())
        })?;
    }
}
