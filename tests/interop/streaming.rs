//! The streaming cases: `client_streaming`, `server_streaming`, `ping_pong` (full duplex, one
//! request answered before the next is sent) and `empty_stream` (no message either way).

use futures::StreamExt;
use tower_lb_testkit::interop::pb::{
    ResponseParameters, StreamingInputCallRequest, StreamingOutputCallRequest,
};

use crate::common::{Interop, WAIT, against_both, drain, respond, zero_body_len, zeros};

async fn client_streaming(it: Interop) {
    let requests = [27_182, 8, 1_828, 45_904].map(|len| StreamingInputCallRequest {
        payload: zeros(len),
        ..Default::default()
    });
    let response = it
        .client()
        .streaming_input_call(futures::stream::iter(requests))
        .await
        .expect("StreamingInputCall succeeds")
        .into_inner();
    assert_eq!(response.aggregated_payload_size, 74_922);
}
against_both!(client_streaming);

async fn server_streaming(it: Interop) {
    let sizes = [31_415, 9, 2_653, 58_979];
    let request = StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut stream = it
        .client()
        .streaming_output_call(request)
        .await
        .expect("StreamingOutputCall starts")
        .into_inner();
    let got = drain(&mut stream)
        .await
        .expect("StreamingOutputCall succeeds");
    assert_eq!(got, [31_415, 9, 2_653, 58_979]);
}
against_both!(server_streaming);

async fn ping_pong(it: Interop) {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let mut rx = Some(rx);
    let mut client = it.client();
    let mut stream = None;
    for (response_size, request_size) in
        [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)]
    {
        tx.unbounded_send(StreamingOutputCallRequest {
            response_parameters: respond(response_size),
            payload: zeros(request_size),
            ..Default::default()
        })
        .expect("the call takes requests");
        if let Some(rx) = rx.take() {
            // The call starts once its first request is queued.
            let started = tokio::time::timeout(WAIT, client.full_duplex_call(rx))
                .await
                .expect("FullDuplexCall starts in time");
            stream = Some(started.expect("FullDuplexCall starts").into_inner());
        }
        let Some(stream) = stream.as_mut() else {
            unreachable!()
        };
        let reply = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("a reply in time")
            .expect("the call goes on")
            .expect("a reply before the end");
        assert_eq!(
            zero_body_len(reply.payload.as_ref()),
            usize::try_from(response_size).unwrap()
        );
    }
    drop(tx); // half-close
    let mut stream = stream.expect("the call started");
    let rest = drain(&mut stream).await.expect("FullDuplexCall succeeds");
    assert!(rest.is_empty(), "replies after the fourth: {rest:?}");
}
against_both!(ping_pong);

async fn empty_stream(it: Interop) {
    let mut stream = it
        .client()
        .full_duplex_call(futures::stream::empty::<StreamingOutputCallRequest>())
        .await
        .expect("FullDuplexCall starts")
        .into_inner();
    let got = drain(&mut stream).await.expect("FullDuplexCall succeeds");
    assert!(got.is_empty(), "replies to no request: {got:?}");
    assert!(stream.next().await.is_none());
}
against_both!(empty_stream);
