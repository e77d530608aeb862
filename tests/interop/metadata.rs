//! `custom_metadata`: an ASCII and a binary header sent with the call come back, the first
//! among the response headers and the second among the trailers, for a unary and a full
//! duplex call.

use tonic::metadata::{MetadataMap, MetadataValue};
use tower_lb_testkit::interop::pb::{SimpleRequest, StreamingOutputCallRequest};
use tower_lb_testkit::interop::{ECHO_INITIAL, ECHO_TRAILING};

use crate::common::{Interop, WAIT, against_both, drain, raw_unary, respond, zeros};

const INITIAL_VALUE: &str = "test_initial_metadata_value";
const TRAILING_VALUE: [u8; 3] = [0xab, 0xab, 0xab];

/// Asserts the two echoed values: the ASCII one in `headers`, the binary one in `trailers`.
fn assert_echoed(headers: &MetadataMap, trailers: &MetadataMap) {
    assert_eq!(
        headers.get(ECHO_INITIAL).and_then(|v| v.to_str().ok()),
        Some(INITIAL_VALUE),
        "the initial metadata: {headers:?}"
    );
    let trailing = trailers
        .get_bin(ECHO_TRAILING)
        .map(|v| v.to_bytes().expect("valid base64"));
    assert_eq!(
        trailing.as_deref(),
        Some(&TRAILING_VALUE[..]),
        "the trailing metadata: {trailers:?}"
    );
}

async fn custom_metadata(it: Interop) {
    // Step 1, UnaryCall. By hand, because tonic's unary client merges the trailers into the
    // headers, and the case asks for each value in its own place.
    let trailing_b64 = "q6ur"; // 0xababab, unpadded base64 as binary metadata is sent
    let response = raw_unary(
        &it.balancer,
        "/grpc.testing.TestService/UnaryCall",
        &SimpleRequest {
            response_size: 314_159,
            payload: zeros(271_828),
            ..Default::default()
        },
        &[(ECHO_INITIAL, INITIAL_VALUE), (ECHO_TRAILING, trailing_b64)],
    )
    .await;
    assert_eq!(response.grpc_status(), Some("0"), "UnaryCall succeeds");
    assert_echoed(
        &MetadataMap::from_headers(response.headers.clone()),
        &MetadataMap::from_headers(response.trailers.clone()),
    );

    // Step 2, FullDuplexCall, through the generated client.
    let request = StreamingOutputCallRequest {
        response_parameters: respond(314_159),
        payload: zeros(271_828),
        ..Default::default()
    };
    let mut call = tonic::Request::new(futures::stream::iter([request]));
    call.metadata_mut()
        .insert(ECHO_INITIAL, MetadataValue::from_static(INITIAL_VALUE));
    call.metadata_mut().insert_bin(
        ECHO_TRAILING,
        MetadataValue::from_bytes(&TRAILING_VALUE[..]),
    );
    let response = it
        .client()
        .full_duplex_call(call)
        .await
        .expect("FullDuplexCall starts");
    let headers = response.metadata().clone();
    let mut stream = response.into_inner();
    let sizes = drain(&mut stream).await.expect("FullDuplexCall succeeds");
    assert_eq!(sizes, [314_159]);
    let trailers = tokio::time::timeout(WAIT, stream.trailers())
        .await
        .expect("the trailers in time")
        .expect("the call succeeded")
        .expect("the call has trailers");
    assert_echoed(&headers, &trailers);
}
against_both!(custom_metadata);
