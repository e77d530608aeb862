//! The interop `TestService` for the tonic server, written from the public description of
//! the server features: empty and sized payloads, echoed status, the request compression
//! check, and streaming in all three shapes. (What needs the HTTP level is in layers:
//! `echo_metadata.rs`, `call_events.rs`, `message_flags.rs`.)

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Extensions, Request, Response, Status, Streaming};

use super::message_flags::MessageFlags;
use super::pb::test_service_server::TestService;
use super::pb::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// A stream of responses, as the generated server trait wants it.
type Responses = Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

/// The tonic implementation of `grpc.testing.TestService`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InteropService;

fn zeros(size: i32) -> Payload {
    Payload {
        r#type: 0,
        body: vec![0; usize::try_from(size).unwrap_or(0)],
    }
}

fn status_of(echo: &EchoStatus) -> Status {
    Status::new(Code::from_i32(echo.code), echo.message.clone())
}

fn body_len(payload: Option<&Payload>) -> i32 {
    payload.map_or(0, |p| i32::try_from(p.body.len()).unwrap_or(i32::MAX))
}

/// The compressed flags of the request's messages, read on the wire by
/// [`MessageFlagsLayer`](super::message_flags::MessageFlagsLayer).
fn flags(extensions: &Extensions) -> Result<MessageFlags, Status> {
    extensions
        .get::<MessageFlags>()
        .cloned()
        .ok_or_else(|| Status::internal("the server runs without MessageFlagsLayer"))
}

/// The CompressedRequest check: a message that expects to have come compressed and did not
/// fails the call with `INVALID_ARGUMENT`.
fn check_compressed(expect: Option<&BoolValue>, compressed: Option<bool>) -> Result<(), Status> {
    if expect.is_some_and(|b| b.value) && compressed != Some(true) {
        return Err(Status::invalid_argument(
            "expected a compressed request message",
        ));
    }
    Ok(())
}

/// Sends one response per parameter set, each after its interval; `false` once the client is
/// gone.
async fn answer(
    tx: &mpsc::Sender<Result<StreamingOutputCallResponse, Status>>,
    parameters: &[ResponseParameters],
) -> bool {
    for p in parameters {
        if p.interval_us > 0 {
            tokio::time::sleep(Duration::from_micros(p.interval_us.unsigned_abs().into())).await;
        }
        let response = StreamingOutputCallResponse {
            payload: Some(zeros(p.size)),
        };
        if tx.send(Ok(response)).await.is_err() {
            return false;
        }
    }
    true
}

#[tonic::async_trait]
impl TestService for InteropService {
    async fn empty_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let flags = flags(request.extensions())?;
        let request = request.into_inner();
        if let Some(echo) = &request.response_status {
            return Err(status_of(echo));
        }
        check_compressed(request.expect_compressed.as_ref(), flags.compressed(0))?;
        let mut response = Response::new(SimpleResponse {
            payload: Some(zeros(request.response_size)),
        });
        if !request.response_compressed.is_some_and(|b| b.value) {
            response.disable_compression();
        }
        Ok(response)
    }

    type StreamingOutputCallStream = Responses;

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Responses>, Status> {
        let request = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            if answer(&tx, &request.response_parameters).await
                && let Some(echo) = &request.response_status
            {
                let _ = tx.send(Err(status_of(echo))).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let flags = flags(request.extensions())?;
        let mut inbound = request.into_inner();
        let mut total = 0i32;
        let mut index = 0;
        while let Some(message) = inbound.message().await? {
            check_compressed(message.expect_compressed.as_ref(), flags.compressed(index))?;
            index += 1;
            total = total.saturating_add(body_len(message.payload.as_ref()));
        }
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size: total,
        }))
    }

    type FullDuplexCallStream = Responses;

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Responses>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(message)) => {
                        if let Some(echo) = &message.response_status {
                            let _ = tx.send(Err(status_of(echo))).await;
                            return;
                        }
                        if !answer(&tx, &message.response_parameters).await {
                            return; // the client is gone
                        }
                    }
                    // The end of the requests, or an error reading them (tonic ends a reset
                    // request stream as a plain end).
                    Ok(None) | Err(_) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type HalfDuplexCallStream = Responses;

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Responses>, Status> {
        let mut inbound = request.into_inner();
        let mut parameters = Vec::new();
        while let Some(message) = inbound.message().await? {
            parameters.extend(message.response_parameters);
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move { answer(&tx, &parameters).await });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "grpc.testing.TestService/UnimplementedCall is not implemented",
        ))
    }
}
