//! Resource limits, each reached on purpose: endpoints beyond the limit wait on standby,
//! calls beyond the waiting limit fail at once with RESOURCE_EXHAUSTED, and connection
//! attempts beyond the limit queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use tower_lb::discover::{Change, Endpoint, fixed};
use tower_lb::transport::{ConnectFuture, Connector};
use tower_lb::{ConnectionState, Error, Limits};

use crate::common::{
    Client, builder, channel_discovery, echo, endpoint, eventually, key, servers, wait_ready,
};
use crate::unsent::InProcess;

#[tokio::test]
async fn calls_beyond_the_waiting_limit_fail_at_once_with_resource_exhausted() {
    let (tx, discovery) = channel_discovery();
    let balancer = builder()
        .ready_timeout(Duration::from_secs(20))
        .limits(Limits::default().max_waiting_calls(3))
        .build(discovery)
        .unwrap();
    // Nothing discovered yet: three calls wait.
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let mut client = Client::new(balancer.clone());
            tokio::spawn(async move { echo(&mut client).await })
        })
        .collect();
    eventually("three calls wait", || balancer.snapshot().waiting == 3).await;

    let mut client = Client::new(balancer.clone());
    let status = echo(&mut client).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
    let typed = crate::common::typed(&status).cloned();
    assert!(
        matches!(typed, Some(Error::TooManyWaiting { limit: 3, .. })),
        "{typed:?}"
    );
    assert!(status.message().contains("max_waiting_calls"), "{status}");

    // An endpoint arrives: the waiting calls go out, and their places are given back.
    let server = &servers(1, "limits-wait")[0];
    tx.send(Change::Insert(key(server), endpoint(server)))
        .unwrap();
    for call in waiting {
        assert_eq!(call.await.unwrap().unwrap(), server.name());
    }
    assert_eq!(balancer.snapshot().waiting, 0);
    echo(&mut client)
        .await
        .expect("with an endpoint ready nothing waits");
}

#[tokio::test]
async fn endpoints_beyond_the_limit_wait_on_standby_and_join_in_key_order() {
    let servers = servers(5, "limits-endpoints");
    let mut sorted: Vec<_> = servers.iter().collect();
    sorted.sort_by_key(|s| key(s));
    let (tx, discovery) = channel_discovery();
    let balancer = builder()
        .limits(Limits::default().max_endpoints(3))
        .build(discovery)
        .unwrap();
    for s in &sorted {
        tx.send(Change::Insert(key(s), endpoint(s))).unwrap();
    }
    wait_ready(&balancer, 3).await;
    let snapshot = balancer.snapshot();
    assert_eq!(snapshot.endpoints.len(), 3);
    assert_eq!(snapshot.standby, 2);

    // Calls go to the three admitted endpoints only.
    let mut client = Client::new(balancer.clone());
    for _ in 0..60 {
        echo(&mut client).await.unwrap();
    }
    assert_eq!(sorted[3].calls() + sorted[4].calls(), 0);

    // One leaves: the first on standby (key order) joins.
    tx.send(Change::Remove(key(sorted[0]))).unwrap();
    eventually("the first standby endpoint joins", || {
        let s = balancer.snapshot();
        s.standby == 1 && s.ready == 3 && s.endpoints.iter().any(|e| e.key == key(sorted[3]))
    })
    .await;
    // A standby endpoint that discovery removes is simply forgotten.
    tx.send(Change::Remove(key(sorted[4]))).unwrap();
    eventually("standby empties", || balancer.snapshot().standby == 0).await;
    assert_eq!(balancer.snapshot().endpoints.len(), 3);
}

/// Dials in-process backends slowly, counting attempts under way.
struct SlowDials<C> {
    inner: C,
    under_way: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl<C: Connector<Channel = InProcess>> Connector for SlowDials<C> {
    type Channel = InProcess;

    fn connect(&self, endpoint: &Endpoint) -> ConnectFuture<InProcess> {
        let dial = self.inner.connect(endpoint);
        let (under_way, most) = (self.under_way.clone(), self.most.clone());
        Box::pin(async move {
            let now = under_way.fetch_add(1, SeqCst) + 1;
            most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            under_way.fetch_sub(1, SeqCst);
            dial.await
        })
    }
}

#[tokio::test]
async fn connection_attempts_beyond_the_limit_queue() {
    let most = Arc::new(AtomicUsize::new(0));
    let connector = SlowDials {
        inner: crate::unsent::connector(&[]),
        under_way: Arc::new(AtomicUsize::new(0)),
        most: most.clone(),
    };
    let endpoints = (1..=8).map(|p| Endpoint::new(([127, 0, 0, 1], p).into()).unwrap());
    let balancer = builder()
        .limits(Limits::default().max_connecting(2))
        .build_with(connector, fixed(endpoints))
        .unwrap();
    let mut saw_queued = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while balancer.ready_len() < 8 {
        assert!(tokio::time::Instant::now() < deadline, "never all ready");
        saw_queued |= balancer
            .snapshot()
            .endpoints
            .iter()
            .any(|e| e.state == ConnectionState::Queued);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(saw_queued, "six of eight endpoints must queue for a slot");
    let most = most.load(SeqCst);
    assert!(
        (1..=2).contains(&most),
        "{most} attempts ran at once, over the limit of 2"
    );
}

#[tokio::test]
async fn limits_that_cannot_work_are_refused() {
    for limits in [
        Limits::default().max_endpoints(0),
        Limits::default().max_connecting(0),
    ] {
        let err = builder().limits(limits).build(fixed(vec![])).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    }
}
