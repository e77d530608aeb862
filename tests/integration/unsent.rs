//! A request that a connection hands back unsent goes to another endpoint, a bounded number of
//! times. In-process endpoints make "refuses before sending" deterministic.

use std::future::Ready;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tower::Service;
use tower_lb::discover::{Endpoint, fixed};
use tower_lb::transport::ServiceConnector;
use tower_lb::{Balancer, BoxError, Error};

use crate::common::wait_ready;

/// Answers with its port, or refuses every request at `poll_ready` when `refuse` is set.
#[derive(Clone)]
pub struct Backend {
    port: u16,
    refuse: bool,
}

impl Service<http::Request<String>> for Backend {
    type Response = http::Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Ready<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.refuse {
            Poll::Ready(Err("connection not ready".into()))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, _: http::Request<String>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(Full::from(self.port.to_string()))))
    }
}

pub type InProcess = tower_lb::transport::ServiceChannel<Backend, String>;

pub fn balancer(refusing: &[u16], ok: &[u16]) -> Balancer<InProcess> {
    balancer_with(tower_lb::Policy::default(), refusing, ok)
}

/// In-process backends answering with their port; those on `refusing` ports hand every
/// request back unsent.
pub fn connector(refusing: &[u16]) -> impl tower_lb::transport::Connector<Channel = InProcess> {
    let refusing = refusing.to_vec();
    ServiceConnector::new(move |e: &Endpoint| Backend {
        port: e.addr().port(),
        refuse: refusing.contains(&e.addr().port()),
    })
}

pub fn balancer_with(
    policy: tower_lb::Policy,
    refusing: &[u16],
    ok: &[u16],
) -> Balancer<InProcess> {
    let connector = connector(refusing);
    let endpoints = refusing
        .iter()
        .chain(ok)
        .map(|p| Endpoint::new(([127, 0, 0, 1], *p).into()).unwrap());
    crate::common::builder()
        .policy(policy)
        .ready_timeout(Duration::from_millis(200))
        // Room for a retry per call: these tests are about re-picking, not the budget.
        .retry_budget(tower_lb::RetryBudget::default().ratio(1.0))
        .build_with(connector, fixed(endpoints))
        .unwrap()
}

#[tokio::test]
async fn unsent_requests_are_re_picked_onto_another_endpoint() {
    let mut b = balancer(&[1], &[2]);
    wait_ready(&b, 2).await;
    for _ in 0..200 {
        let response = crate::common::call(&mut b)
            .await
            .expect("a refused request goes to the other endpoint");
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        assert_eq!(body.to_bytes(), "2");
    }
    // Refusals are not the endpoint's failures, and nothing stays counted in flight.
    for e in b.snapshot().endpoints {
        assert_eq!(e.in_flight, 0);
        assert_eq!(e.failures, 0);
    }
}

#[tokio::test]
async fn a_request_refused_everywhere_fails_with_a_bounded_number_of_attempts() {
    let mut b = balancer(&[1, 2, 3], &[]);
    wait_ready(&b, 3).await;
    let err = crate::common::call(&mut b).await.unwrap_err();
    let status = err.downcast::<tonic::Status>().expect("a Status");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let typed = crate::common::typed(&status).cloned();
    assert!(
        matches!(typed, Some(Error::NotSent { attempts: 4, .. })),
        "{typed:?}: {status}"
    );
}

#[test]
fn balancer_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Balancer>();
    check::<Balancer<InProcess>>();
}
