//! The retry budget bounds transparent retries across the whole balancer: once spent, a
//! request handed back unsent fails instead of going to yet another endpoint.

use std::time::Duration;

use tower_lb::discover::{Endpoint, fixed};
use tower_lb::{Error, RetryBudget};

use crate::common::{builder, wait_ready};
use crate::unsent::connector;

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent() {
    // Every connection refuses every request unsent; the budget allows 10 retries in all
    // (1 a second over 10 s, no share of calls), each call up to 3.
    let endpoints = (1..=3).map(|p| Endpoint::new(([127, 0, 0, 1], p).into()).unwrap());
    let mut balancer = builder()
        .ready_timeout(Duration::from_millis(200))
        .unsent_retries(3)
        .retry_budget(
            RetryBudget::default()
                .ratio(0.0)
                .min_per_second(1)
                .window(Duration::from_secs(10)),
        )
        .build_with(connector(&[1, 2, 3]), fixed(endpoints))
        .unwrap();
    wait_ready(&balancer, 3).await;

    let (mut not_sent, mut budget_spent) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let err = crate::common::call(&mut balancer).await.unwrap_err();
        let status = err.downcast::<tonic::Status>().expect("a Status");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
        match crate::common::typed(&status) {
            Some(Error::NotSent { attempts, .. }) => not_sent.push(*attempts),
            Some(Error::RetryBudgetExhausted { attempts, .. }) => budget_spent.push(*attempts),
            other => panic!("unexpected {other:?}: {status}"),
        }
    }
    // Three calls take 3 retries each (4 attempts), the fourth takes the tenth retry and is
    // then refused one; every later call is refused its first retry.
    assert_eq!(not_sent, [4, 4, 4]);
    assert_eq!(budget_spent.len(), 17);
    assert_eq!(budget_spent[0], 2);
    assert!(
        budget_spent[1..].iter().all(|&a| a == 1),
        "{budget_spent:?}"
    );
    let snapshot = balancer.snapshot();
    assert_eq!(snapshot.retries, 10);
    assert_eq!(snapshot.retries_refused, 17);
}

#[tokio::test]
async fn calls_earn_retries() {
    // No floor: only the share of calls made pays for retries. One endpoint of two refuses.
    let endpoints = (1..=2).map(|p| Endpoint::new(([127, 0, 0, 1], p).into()).unwrap());
    let mut balancer = builder()
        .policy(tower_lb::Policy::round_robin())
        .retry_budget(RetryBudget::default().ratio(0.5).min_per_second(0))
        .build_with(connector(&[1]), fixed(endpoints))
        .unwrap();
    wait_ready(&balancer, 2).await;
    let mut ok = 0;
    for _ in 0..1000 {
        let call = crate::common::call(&mut balancer);
        ok += usize::from(call.await.is_ok());
    }
    let snapshot = balancer.snapshot();
    // Deposits arrive 64 calls at a time: the budget lags the calls by at most one batch.
    assert!(
        (436..=500).contains(&snapshot.retries),
        "{} retries for 1000 calls at a ratio of 0.5",
        snapshot.retries
    );
    // Round robin sends 500 calls to each; every retry of a refused one succeeds elsewhere.
    assert_eq!(ok as u64, 500 + snapshot.retries);
    assert_eq!(snapshot.retries_refused, 500 - snapshot.retries);
}
