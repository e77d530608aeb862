//! The out-of-band load-report stream of one endpoint (gRPC A51, for weighted round robin
//! with `enableOobLoadReport`): `OpenRcaService/StreamCoreMetrics` over the endpoint's own
//! connection, each report recorded on the endpoint as a call's trailer would be.
//!
//! Started when the connection comes up and aborted when it goes. A stream that fails or ends
//! is opened again after a pause that doubles up to 30 s; a server that answers
//! `UNIMPLEMENTED` is not asked again on this connection (its calls' trailers are not read
//! either under out-of-band reporting, so it is scheduled at the mean weight).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;

use super::grpc_body::{carries_grpc, grpc_request};
use crate::endpoint::EndpointState;
use crate::orca::{self, LoadReport, Messages};
use crate::transport::{EndpointChannel, SendError};

/// Pause before the first reopening; doubled per failure, at most [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The stream's task for one endpoint, reporting every `interval` (run until aborted).
pub(super) async fn run<T: EndpointChannel>(
    mut channel: T,
    state: Arc<EndpointState>,
    interval: Duration,
) {
    if !carries_grpc::<T>() {
        tracing::warn!(endpoint = %state.key, "out-of-band load reports need a channel with tonic request bodies");
        return;
    }
    let mut pause = FIRST_PAUSE;
    loop {
        match stream_once(&mut channel, &state, interval).await {
            Ended::Unimplemented => {
                tracing::warn!(endpoint = %state.key, "the server does not serve out-of-band load reports (UNIMPLEMENTED); not asking again on this connection");
                return;
            }
            Ended::AfterReports => pause = FIRST_PAUSE,
            Ended::Failed(why) => {
                tracing::debug!(endpoint = %state.key, %why, "out-of-band load report stream ended");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

enum Ended {
    Unimplemented,
    /// It delivered at least one report before it ended.
    AfterReports,
    Failed(String),
}

/// Opens the stream and records its reports until it ends.
async fn stream_once<T: EndpointChannel>(
    channel: &mut T,
    state: &EndpointState,
    interval: Duration,
) -> Ended {
    let body = tonic::body::Body::new(OneMessage(Some(orca::oob_request(interval))));
    let Some(request) = grpc_request::<T>(orca::OUT_OF_BAND_PATH, body) else {
        return Ended::Failed("not a tonic channel".to_owned());
    };
    let response = match channel.send(request).await {
        Ok(response) => response,
        Err(SendError::Unsent { error, .. } | SendError::Failed(error)) => {
            return Ended::Failed(error.to_string());
        }
    };
    if let Some(status) = response.headers().get("grpc-status") {
        return match status.as_bytes() {
            b"12" => Ended::Unimplemented,
            code => Ended::Failed(format!("grpc-status {}", String::from_utf8_lossy(code))),
        };
    }
    let Some(reported) = state.reported.as_deref() else {
        return Ended::Failed("no load record".to_owned());
    };
    let mut body = std::pin::pin!(response.into_body());
    let mut messages = Messages::default();
    let mut reports = 0u64;
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return failed(reports, e.into().to_string()),
            None => return failed(reports, "the stream ended".to_owned()),
        };
        let frame = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                let code = frame
                    .trailers_ref()
                    .and_then(|t| t.get("grpc-status"))
                    .map(|v| v.as_bytes().to_vec());
                return match code.as_deref() {
                    Some(b"12") => Ended::Unimplemented,
                    _ => failed(reports, "the stream ended with trailers".to_owned()),
                };
            }
        };
        messages.push(&frame);
        while let Some(message) = messages.next() {
            let Ok(message) = message else {
                // A compressed or oversized message: the framing is lost past it.
                return failed(reports, "unreadable message".to_owned());
            };
            let report = LoadReport::decode(&message);
            reports += u64::from(report.is_ok());
            // One that does not decode is counted as rejected and skipped.
            reported.on_report(report, state.load.in_flight(), &state.key);
        }
    }
}

fn failed(reports: u64, why: String) -> Ended {
    match reports {
        0 => Ended::Failed(why),
        _ => Ended::AfterReports,
    }
}

/// A request body of one frame.
struct OneMessage(Option<Bytes>);

impl Body for OneMessage {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}
