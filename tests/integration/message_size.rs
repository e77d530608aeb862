//! A method's `maxRequestMessageBytes` and `maxResponseMessageBytes`: a request over the limit
//! fails with `RESOURCE_EXHAUSTED` before it is sent; a response over it fails as it is read.

use tonic::Code;
use tower_lb::discover::fixed;
use tower_lb::method_config::{MethodConfig, MethodName};
use tower_lb_testkit::pb::EchoRequest;

use crate::common::*;

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        stream_count: 0,
    }
}

#[tokio::test]
async fn messages_over_the_method_limits_fail_with_resource_exhausted() {
    let servers = servers(1, "sized");
    let limits = MethodConfig::new([MethodName::method("echo.Echo", "Unary")])
        .max_request_message_bytes(100)
        .max_response_message_bytes(120);
    let balancer = builder()
        .method_config(limits)
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 1).await;
    let mut client = Client::new(balancer);

    // Within both limits.
    let reply = client.unary(request("short")).await.unwrap();
    assert_eq!(reply.into_inner().message, "short");
    assert_eq!(servers[0].calls(), 1);

    // The request is over 100 bytes: refused before it is sent.
    let status = client.unary(request(&"x".repeat(150))).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("trying to send message larger than max"),
        "{status:?}"
    );
    assert_eq!(servers[0].calls(), 1, "the server never saw it");

    // The request fits (92 bytes), the reply (the message echoed, the server's name and the
    // headers it saw: about 170) does not.
    let status = client.unary(request(&"y".repeat(90))).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("received message larger than max"),
        "{status:?}"
    );
    assert_eq!(servers[0].calls(), 2);

    // Other methods have no limit.
    let mut long = client
        .server_stream(EchoRequest {
            message: "z".repeat(200),
            stream_count: 2,
        })
        .await
        .unwrap()
        .into_inner();
    let mut replies = 0;
    while let Some(reply) = long.message().await.unwrap() {
        assert_eq!(reply.message.len(), 200);
        replies += 1;
    }
    assert_eq!(replies, 2);
}
