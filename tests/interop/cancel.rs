//! `cancel_after_begin` and `cancel_after_first_response`: a call the client cancels (with
//! tonic's `Request::cancellation_handle`, which resets the HTTP/2 stream with `CANCEL`)
//! completes with `CANCELLED` on the client, through the balancer. The tests also check
//! that the server saw the call cancelled before it finished it (the servers note it in
//! their events) and, after every case, that the balancer let go of the call.
//!
//! The request stream stays open until the end, so that the call cannot end by a half-close
//! instead. (Dropping a tonic call is no cancel here: once the response headers are in,
//! hyper resets the stream only when the request stream ends.)

use tonic::Code;
use tower_lb_testkit::interop::pb::{StreamingInputCallRequest, StreamingOutputCallRequest};
use tower_lb_testkit::interop::{BEGAN, CANCELLED};

use crate::common::{Interop, WAIT, against_both, respond, zero_body_len, zeros};

async fn cancel_after_begin(it: Interop) {
    const METHOD: &str = "StreamingInputCall";
    let (tx, rx) = futures::channel::mpsc::unbounded::<StreamingInputCallRequest>();
    let mut request = tonic::Request::new(rx);
    let cancel = request.cancellation_handle();
    let mut client = it.client();
    let mut call = Box::pin(client.streaming_input_call(request));
    // Drive the call until the server has its headers (and no message: none was sent).
    tokio::select! {
        ended = &mut call => panic!("the call ended before it was cancelled: {ended:?}"),
        began = it.events.wait_for(BEGAN, METHOD, 1, WAIT) => {
            assert!(began, "the server never saw the call begin");
        }
    }
    cancel.cancel();
    let status = tokio::time::timeout(WAIT, call)
        .await
        .expect("the cancelled call ends in time")
        .expect_err("a cancelled call fails");
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(
        it.events.wait_for(CANCELLED, METHOD, 1, WAIT).await,
        "the server never saw the call cancelled"
    );
    drop(tx);
}
// Before the response head, the cancel is a reset this side sent: CANCELLED, not a broken
// connection (the balancer tells the two apart in hyper's error).
against_both!(cancel_after_begin);

async fn cancel_after_first_response(it: Interop) {
    const METHOD: &str = "FullDuplexCall";
    let (tx, rx) = futures::channel::mpsc::unbounded();
    tx.unbounded_send(StreamingOutputCallRequest {
        response_parameters: respond(31_415),
        payload: zeros(27_182),
        ..Default::default()
    })
    .expect("the call takes requests");
    let mut request = tonic::Request::new(rx);
    let cancel = request.cancellation_handle();
    let mut client = it.client();
    let mut stream = tokio::time::timeout(WAIT, client.full_duplex_call(request))
        .await
        .expect("FullDuplexCall starts in time")
        .expect("FullDuplexCall starts")
        .into_inner();
    let first = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a response in time")
        .expect("the call goes on")
        .expect("a response before the end");
    assert_eq!(zero_body_len(first.payload.as_ref()), 31_415);
    cancel.cancel();
    let status = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("the cancelled call ends in time")
        .expect_err("a cancelled call fails");
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(
        it.events.wait_for(CANCELLED, METHOD, 1, WAIT).await,
        "the server never saw the call cancelled"
    );
    assert_eq!(it.events.count(BEGAN, METHOD), 1);
    drop(tx);
}
against_both!(cancel_after_first_response);
