//! `timeout_on_sleeping_server`: a full duplex call with a 1 ms timeout to a server that sends
//! nothing ends with `DEADLINE_EXCEEDED`.

use std::time::Duration;

use tonic::Code;
use tower_lb_testkit::interop::pb::StreamingOutputCallRequest;

use crate::common::{Interop, WAIT, against_both, drain, zeros};

async fn timeout_on_sleeping_server(it: Interop) {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    tx.unbounded_send(StreamingOutputCallRequest {
        payload: zeros(27_182),
        ..Default::default()
    })
    .expect("the call takes requests");
    let mut request = tonic::Request::new(rx);
    request.set_timeout(Duration::from_millis(1));
    let mut client = it.client();
    // The client waits (it never half-closes: `tx` lives on) until the call ends, which the
    // deadline must bring about; WAIT only bounds a call that never ends.
    let outcome = tokio::time::timeout(WAIT, async {
        match client.full_duplex_call(request).await {
            Ok(response) => drain(&mut response.into_inner()).await,
            Err(status) => Err(status),
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the call did not end within {WAIT:?} of its 1 ms deadline"));
    let status = outcome.expect_err("the call ends with an error");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    drop(tx);
}
// A tonic server enforces `grpc-timeout` only until its handler returns the response stream
// (at once, here): against it, the client-side deadline is what ends the call.
against_both!(timeout_on_sleeping_server);
