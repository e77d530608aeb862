//! `empty_unary` and `large_unary`: a zero-size message each way, and a large one each way
//! (which needs HTTP/2 flow control through the balancer's connections).

use tower_lb_testkit::interop::pb::{Empty, SimpleRequest};

use crate::common::{Interop, against_both, zero_body_len, zeros};

async fn empty_unary(it: Interop) {
    let response = it
        .client()
        .empty_call(Empty {})
        .await
        .expect("EmptyCall succeeds");
    assert_eq!(response.into_inner(), Empty {});
}
against_both!(empty_unary);

async fn large_unary(it: Interop) {
    let response = it
        .client()
        .unary_call(SimpleRequest {
            response_size: 314_159,
            payload: zeros(271_828),
            ..Default::default()
        })
        .await
        .expect("UnaryCall succeeds")
        .into_inner();
    assert_eq!(zero_body_len(response.payload.as_ref()), 314_159);
}
against_both!(large_unary);
