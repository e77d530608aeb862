//! Statuses through the balancer: `status_code_and_message` and `special_status_message`
//! (a status the server is asked to end with comes back as sent, whitespace and Unicode
//! included), `unimplemented_method` and `unimplemented_service`.

use tonic::Code;
use tower_lb_testkit::interop::pb::unimplemented_service_client::UnimplementedServiceClient;
use tower_lb_testkit::interop::pb::{EchoStatus, Empty, SimpleRequest, StreamingOutputCallRequest};

use crate::common::{Interop, against_both, drain};

/// Asks UnaryCall, then FullDuplexCall (one request, then half-close), to end with code 2
/// and `message`; each must come back as sent.
async fn echo_status(it: &Interop, message: &str, full_duplex: bool) {
    let asked = EchoStatus {
        code: 2,
        message: message.to_owned(),
    };
    let status = it
        .client()
        .unary_call(SimpleRequest {
            response_status: Some(asked.clone()),
            ..Default::default()
        })
        .await
        .expect_err("UnaryCall ends with the status asked for");
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(status.message(), message);
    if !full_duplex {
        return;
    }
    let request = StreamingOutputCallRequest {
        response_status: Some(asked),
        ..Default::default()
    };
    let outcome = match it
        .client()
        .full_duplex_call(futures::stream::iter([request]))
        .await
    {
        Ok(response) => drain(&mut response.into_inner()).await,
        Err(status) => Err(status),
    };
    let status = outcome.expect_err("FullDuplexCall ends with the status asked for");
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(status.message(), message);
}

async fn status_code_and_message(it: Interop) {
    echo_status(&it, "test status message", true).await;
}
against_both!(status_code_and_message);

async fn special_status_message(it: Interop) {
    echo_status(
        &it,
        "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n",
        false,
    )
    .await;
}
against_both!(special_status_message);

async fn unimplemented_method(it: Interop) {
    let status = it
        .client()
        .unimplemented_call(Empty {})
        .await
        .expect_err("UnimplementedCall is implemented by no server");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}
against_both!(unimplemented_method);

async fn unimplemented_service(it: Interop) {
    let status = UnimplementedServiceClient::new(it.balancer.clone())
        .unimplemented_call(Empty {})
        .await
        .expect_err("UnimplementedService is served by no server");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}
against_both!(unimplemented_service);
