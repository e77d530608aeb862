//! The health-check task of one endpoint: `grpc.health.v1` over the endpoint's own connection,
//! reporting each changed [`Verdict`] to the control task. What it does, step by step, is
//! documented with its configuration, [`HealthCheck`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::grpc_body::{carries_grpc, channel_body};
use crate::discover::Key;
use crate::error::BoxError;
use crate::health::{HealthCheck, Verdict};
use crate::policy::hash_bytes;
use crate::time::{Backoff, now_ns};
use crate::transport::{EndpointChannel, SendError};

/// Runs until aborted: watches one endpoint's health over its own connection (`channel`) and
/// calls `report` with each verdict that differs from the previous one (the first verdict is
/// always reported).
///
/// With a channel that cannot carry health checks (see [`carries_grpc`]) it reports
/// `NotServing` once and ends: the caller should have refused the configuration.
pub(crate) fn spawn_health_check<T: EndpointChannel>(
    channel: T,
    config: HealthCheck,
    key: Key,
    report: impl Fn(Verdict) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(channel, config, key, report))
}

async fn run<T: EndpointChannel>(
    channel: T,
    config: HealthCheck,
    key: Key,
    report: impl Fn(Verdict) + Send + Sync + 'static,
) {
    let mut reporter = Reporter {
        last: None,
        report,
        key,
    };
    if !carries_grpc::<T>() {
        tracing::warn!(endpoint = %reporter.key, "health check needs a channel with tonic request bodies");
        reporter.set(Verdict::NotServing(UNSUPPORTED.to_owned()));
        return;
    }
    // Seeded per endpoint, so checks that fail together do not retry together.
    let seed = hash_bytes(reporter.key.as_str().as_bytes()) ^ now_ns();
    let mut checker = Checker {
        client: HealthClient::new(GrpcChannel { channel }),
        backoff: config.backoff(),
        rng: SmallRng::seed_from_u64(seed),
        config,
        reporter,
    };
    checker.watch_until_unimplemented().await;
    checker.poll_check().await;
}

/// One endpoint's health check task state.
struct Checker<T, F> {
    client: HealthClient<GrpcChannel<T>>,
    config: HealthCheck,
    reporter: Reporter<F>,
    backoff: Backoff,
    rng: SmallRng,
}

impl<T: EndpointChannel, F: Fn(Verdict)> Checker<T, F> {
    /// Watches, and watches again after each failure, until Watch is UNIMPLEMENTED.
    async fn watch_until_unimplemented(&mut self) {
        let mut failures: u32 = 0;
        loop {
            let mut answered = false;
            let verdict = match self.watch(&mut answered).await {
                WatchEnd::Unimplemented => return,
                WatchEnd::Failed(verdict) => verdict,
            };
            if answered {
                failures = 0;
            }
            failures = failures.saturating_add(1);
            self.reporter.set(verdict);
            let delay = self.backoff.delay(failures, self.rng.random::<f64>());
            tokio::time::sleep(delay).await;
        }
    }

    /// Runs one Watch call to its end, reporting each answer. Sets `answered` once a message
    /// came.
    async fn watch(&mut self, answered: &mut bool) -> WatchEnd {
        let request = HealthCheckRequest {
            service: self.config.service.clone(),
        };
        // The timeout covers the response headers and the first message: the server sends the
        // current status at once. Later messages come only on changes, so they have no
        // deadline (a dead peer is noticed by the connection's keep-alive).
        let client = &mut self.client;
        let first = tokio::time::timeout(self.config.timeout, async {
            let mut stream = client.watch(request).await?.into_inner();
            let first = stream.message().await?;
            Ok::<_, Status>((stream, first))
        })
        .await;
        let (mut stream, mut next) = match first {
            Ok(Ok(started)) => started,
            Ok(Err(status)) => return watch_failed(&status),
            Err(_) => {
                return WatchEnd::Failed(Verdict::NotServing(format!(
                    "no Watch answer within {:?}",
                    self.config.timeout
                )));
            }
        };
        loop {
            match next {
                Some(response) => {
                    *answered = true;
                    self.reporter.set(verdict_of(response));
                }
                None => {
                    return WatchEnd::Failed(Verdict::NotServing(
                        "Watch stream ended by the server".to_owned(),
                    ));
                }
            }
            next = match stream.message().await {
                Ok(next) => next,
                Err(status) => return watch_failed(&status),
            };
        }
    }

    /// Calls Check every interval (longer while it fails) until it is UNIMPLEMENTED.
    async fn poll_check(&mut self) {
        tracing::debug!(
            endpoint = %self.reporter.key,
            service = %self.config.service,
            every = ?self.config.check_interval,
            "Watch is UNIMPLEMENTED; polling Check"
        );
        let mut failures: u32 = 0;
        loop {
            let request = HealthCheckRequest {
                service: self.config.service.clone(),
            };
            let answer =
                tokio::time::timeout(self.config.timeout, self.client.check(request)).await;
            let (verdict, failed) = match answer {
                Ok(Ok(response)) => (verdict_of(response.into_inner()), false),
                Ok(Err(status)) if status.code() == Code::Unimplemented => {
                    tracing::info!(
                        endpoint = %self.reporter.key,
                        "no health service (Watch and Check are UNIMPLEMENTED): counted healthy, no longer checked"
                    );
                    self.reporter.set(Verdict::NoHealthService);
                    return;
                }
                Ok(Err(status)) if status.code() == Code::NotFound => (
                    Verdict::ServiceUnknown(service_unknown("Check", &status)),
                    false,
                ),
                Ok(Err(status)) => (
                    Verdict::NotServing(format!("Check failed: {}", status_text(&status))),
                    true,
                ),
                Err(_) => (
                    Verdict::NotServing(format!(
                        "no Check answer within {:?}",
                        self.config.timeout
                    )),
                    true,
                ),
            };
            self.reporter.set(verdict);
            let wait = if failed {
                failures = failures.saturating_add(1);
                let delay = self.backoff.delay(failures, self.rng.random::<f64>());
                self.config.check_interval.max(delay)
            } else {
                failures = 0;
                self.config.check_interval
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// How one Watch call ended.
enum WatchEnd {
    /// The server does not implement Watch.
    Unimplemented,
    /// Anything else: the verdict it amounts to.
    Failed(Verdict),
}

fn watch_failed(status: &Status) -> WatchEnd {
    match status.code() {
        Code::Unimplemented => WatchEnd::Unimplemented,
        // grpc.health.v1 says Watch answers SERVICE_UNKNOWN; tonic-health fails it instead.
        Code::NotFound => {
            WatchEnd::Failed(Verdict::ServiceUnknown(service_unknown("Watch", status)))
        }
        _ => WatchEnd::Failed(Verdict::NotServing(format!(
            "Watch failed: {}",
            status_text(status)
        ))),
    }
}

/// The verdict of one health answer; any status number is accepted.
fn verdict_of(response: HealthCheckResponse) -> Verdict {
    match ServingStatus::try_from(response.status) {
        Ok(ServingStatus::Serving) => Verdict::Serving,
        Ok(ServingStatus::ServiceUnknown) => Verdict::ServiceUnknown("SERVICE_UNKNOWN".to_owned()),
        Ok(status) => Verdict::NotServing(status.as_str_name().to_owned()),
        Err(_) => Verdict::NotServing(format!("status {}", response.status)),
    }
}

fn service_unknown(call: &str, status: &Status) -> String {
    format!("SERVICE_UNKNOWN ({call}: {})", status_text(status))
}

fn status_text(status: &Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {}", status.code(), status.message())
    }
}

const UNSUPPORTED: &str =
    "health checks need a channel whose request body is tonic::body::Body; this one's is not";

/// Reports verdicts that differ from the last one.
struct Reporter<F> {
    last: Option<Verdict>,
    report: F,
    key: Key,
}

impl<F: Fn(Verdict)> Reporter<F> {
    fn set(&mut self, verdict: Verdict) {
        if self.last.as_ref() == Some(&verdict) {
            return;
        }
        tracing::debug!(endpoint = %self.key, ?verdict, "health verdict changed");
        (self.report)(verdict.clone());
        self.last = Some(verdict);
    }
}

/// Lets tonic's generated client send over one of our channels.
///
/// tonic sends path-only URIs; the channel fills in the origin, as it does for the calls the
/// balancer routes to it. The response body is boxed into tonic's own body type, whose error
/// type (`Status`) meets the client's bounds whatever the channel's is.
struct GrpcChannel<T> {
    channel: T,
}

type GrpcFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, BoxError>> + Send>>;

impl<T: EndpointChannel> tower::Service<http::Request<tonic::body::Body>> for GrpcChannel<T> {
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = GrpcFuture;

    // Always ready, like the balancer: a connection that cannot take the call hands it back
    // unsent, which fails the check.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> GrpcFuture {
        let (parts, body) = request.into_parts();
        // Succeeds exactly when `T::RequestBody` is `tonic::body::Body` (see `carries_grpc`).
        let Some(body) = channel_body::<T>(body) else {
            return Box::pin(std::future::ready(Err(UNSUPPORTED.into())));
        };
        let sent = self.channel.send(http::Request::from_parts(parts, body));
        Box::pin(async move {
            match sent.await {
                Ok(response) => Ok(response.map(tonic::body::Body::new)),
                Err(SendError::Unsent { error, .. } | SendError::Failed(error)) => Err(error),
            }
        })
    }
}

#[cfg(test)]
mod tests;
