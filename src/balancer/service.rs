//! [`Balancer`]: the `Service` a client calls. `call` counts the call, picks from the current
//! snapshot and sends; everything rarer is in the response future.

use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rand::{RngCore, rngs::SmallRng};
use tokio::time::Instant;
use tower::Service;

use super::body::ResponseBody;
use super::configured::{configured_call, limited_call};
use super::deadline::Deadline;
use super::future::{Handle, ResponseFuture, call_span};
use super::pick::{fresh_seed, pick};
use crate::error::{BoxError, CallStage, Error};
use crate::policy::{Call, PickState};
use crate::ready_set::Shared;
use crate::retry_budget::DEPOSIT_BATCH;
use crate::status::Snapshot;
use crate::transport::{EndpointChannel, Http2Channel};

/// A client-side load balancer for HTTP/2 and gRPC calls.
///
/// `Balancer` is a [`tower::Service`](https://docs.rs/tower/0.5/tower/trait.Service.html) over `http::Request`s: give it to a tonic generated
/// client (`EchoClient::new(balancer)`) or wrap it in more Tower layers. Each call picks one
/// ready endpoint with the configured [`Policy`](crate::Policy) and goes out on that
/// endpoint's own HTTP/2 connection.
///
/// * **Clone is cheap** and every clone shares one endpoint set; clones pick independently, in
///   the caller's task, with no lock, no channel and no task in between.
/// * **`poll_ready` is always ready.** Waiting for an endpoint happens inside the call, bounded
///   by the ready timeout (and the call's `grpc-timeout`), after which the call fails with
///   `UNAVAILABLE` saying why — it never hangs.
/// * A background control task follows discovery, keeps connections up and publishes the
///   ready set; it stops when the last clone is dropped.
///
/// See [`Balancer::builder`] for an example.
pub struct Balancer<T: EndpointChannel = Http2Channel<tonic::body::Body>> {
    /// A handle of this clone's own: calls in flight hold a reference to it, so clones
    /// running on different cores never bump the same reference count.
    shared: Handle<T>,
    pick: PickState<SmallRng>,
    /// Calls made through this clone not yet handed to the retry budget.
    calls: u32,
}

impl<T: EndpointChannel> Balancer<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        Balancer {
            shared: Arc::new(shared),
            pick: PickState::new(fresh_seed()),
            calls: 0,
        }
    }

    /// A call begins outside `Service::call` (the layer 4 balancer's): it is counted, and
    /// gets the shared state and a seed for its random choices.
    pub(crate) fn begin_call(&mut self) -> (Arc<Shared<T>>, u64) {
        self.count_call();
        (Arc::clone(&*self.shared), self.pick.rng.next_u64())
    }

    /// Counts a call for the retry budget: in this clone, handed over in batches so the
    /// request path touches the shared budget once per `DEPOSIT_BATCH` calls.
    #[inline]
    fn count_call(&mut self) {
        self.calls += 1;
        if self.calls == DEPOSIT_BATCH {
            self.shared.budget.deposit(DEPOSIT_BATCH);
            self.calls = 0;
        }
    }

    /// A point-in-time view of the balancer: every endpoint's address, tier, weight,
    /// connection, health, breaker, calls in flight, latency estimate and counters; which
    /// endpoints take calls; the tier in use; panic mode; and why nothing is ready when
    /// nothing is. For dashboards and tests; the request path is not slowed by it.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), tower_lb::Error> {
    /// use tower_lb::{Balancer, discover};
    ///
    /// let endpoints = vec!["127.0.0.1:50051".parse::<discover::Endpoint>()?];
    /// let balancer = Balancer::builder().build(discover::fixed(endpoints))?;
    /// for e in balancer.snapshot().endpoints {
    ///     println!("{} tier {} ready {} in flight {} latency {:?}",
    ///         e.addr, e.priority, e.ready, e.in_flight, e.rtt_estimate);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.shared)
    }

    /// Waits until at least `at_least` endpoints can take calls, for at most `within`; returns
    /// how many can. For start-up code and tests: a balancer starts with nothing ready (its
    /// control task connects in the background), so a call made at once waits up to the
    /// [ready timeout](crate::Builder::ready_timeout) — or, with a ready timeout of zero,
    /// fails. Fails with [`Error::NotReady`] saying what the endpoint set looked like.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), tower_lb::Error> {
    /// use std::time::Duration;
    /// use tower_lb::{Balancer, discover};
    /// let endpoints = vec!["127.0.0.1:50051".parse::<discover::Endpoint>()?];
    /// let balancer = Balancer::builder().build(discover::fixed(endpoints))?;
    /// balancer.wait_ready(1, Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_ready(&self, at_least: usize, within: Duration) -> Result<usize, Error> {
        let began = Instant::now();
        let deadline = began.checked_add(within);
        loop {
            // Registered before the look, so a set published in between still wakes us.
            let mut changed = pin!(self.shared.changed.notified());
            changed.as_mut().enable();
            let set = self.shared.set.load();
            let ready = set.ready.len();
            if ready >= at_least {
                return Ok(ready);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::NotReady {
                    wanted: at_least,
                    ready,
                    waited: began.elapsed(),
                    why: set.why.clone(),
                });
            }
            drop(set);
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(d) => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// How many endpoints can take calls right now.
    pub fn ready_len(&self) -> usize {
        self.shared.set.load().ready.len()
    }
}

impl<T: EndpointChannel> Clone for Balancer<T> {
    fn clone(&self) -> Self {
        Balancer::from_shared(Arc::clone(&*self.shared))
    }
}

impl<T: EndpointChannel> Drop for Balancer<T> {
    fn drop(&mut self) {
        if self.calls > 0 {
            self.shared.budget.deposit(self.calls);
        }
    }
}

impl<T: EndpointChannel> fmt::Debug for Balancer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.shared.set.load();
        f.debug_struct("Balancer")
            .field("ready", &set.ready.len())
            .field("discovered", &set.all.len())
            .field("policy", &self.shared.config.policy)
            .finish()
    }
}

impl<T: EndpointChannel> Service<http::Request<T::RequestBody>> for Balancer<T> {
    type Response = http::Response<ResponseBody<T::ResponseBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<T>;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, mut request: http::Request<T::RequestBody>) -> Self::Future {
        self.count_call();
        let config = &self.shared.config;
        // One check for balancers without method configs; the rest only for those with.
        let method = match config.methods.is_empty() {
            true => None,
            false => config.methods.find(request.uri().path()),
        };
        let timeout = method.and_then(|m| m.get_timeout()).or(config.timeout);
        let wait_for_ready = method.is_some_and(|m| m.waits_for_ready());
        let policy = method.and_then(|m| m.policy);
        let mut deadline = Deadline::of(&mut request, timeout);
        if let Some(d) = deadline.as_ref().filter(|d| d.passed_at_once()) {
            let error = d.exceeded_boxed(CallStage::Dispatch);
            return ResponseFuture::failed(error, tracing::Span::none());
        }
        if let Some(method) = method.filter(|m| m.has_message_limits()) {
            let seed = self.pick.rng.next_u64();
            return limited_call(&self.shared, method, request, seed, deadline);
        }
        if let Some(policy) = policy {
            let seed = self.pick.rng.next_u64();
            match configured_call(
                &self.shared,
                policy,
                request,
                seed,
                deadline,
                wait_for_ready,
            ) {
                Ok(future) => return future,
                Err((back, d)) => (request, deadline) = (back, d),
            }
        }
        let policy = &self.shared.config.policy;
        let call = Call::new(policy, policy.request_hash(&request), None);
        let picked = pick(&self.shared.set.load(), policy, call, &mut self.pick);
        let policy = policy.name();
        match picked {
            Some((mut channel, mut in_flight)) => {
                let span = call_span(policy, Some(in_flight.endpoint()));
                if let Some(d) = &deadline {
                    in_flight.note_deadline(d.timeout());
                }
                let future = {
                    let _entered = span.enter();
                    channel.send(request)
                };
                let shared = self.shared.clone();
                ResponseFuture::sending(future, in_flight, shared, deadline, span)
            }
            None => {
                let span = call_span(policy, None);
                let shared = Arc::clone(&*self.shared);
                let seed = self.pick.rng.next_u64();
                ResponseFuture::waiting(shared, request, seed, deadline, wait_for_ready, span)
            }
        }
    }
}
