//! What a tonic user expects of a `Channel` without reading docs, through the balancer:
//! interceptors, the request's origin and user agent, waiting until endpoints are ready, a
//! layer that reports a bad configuration, and settings that refuse bad values.

use std::time::Duration;

use tonic::Code;
use tower_lb::discover::fixed;
use tower_lb::transport::Http2Connector;
use tower_lb::{Balancer, Error};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

use crate::common::*;

const BOUND: Duration = Duration::from_secs(10);

fn hello() -> EchoRequest {
    EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    }
}

async fn ready_balancer(connector: Http2Connector, server: &TestServer) -> Balancer {
    let balancer = builder()
        .build_with(connector, fixed([endpoint(server)]))
        .unwrap();
    balancer.wait_ready(1, BOUND).await.unwrap();
    balancer
}

#[tokio::test]
async fn interceptors_work_through_the_balancer() {
    let server = TestServer::start("intercepted").unwrap();
    let balancer = ready_balancer(Http2Connector::new(), &server).await;
    let mut client =
        EchoClient::with_interceptor(balancer.clone(), |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("user-agent", "checkout/1.0".parse().unwrap());
            Ok(request)
        });
    let reply = client.unary(hello()).await.unwrap().into_inner();
    // The caller's user agent is kept as it is.
    assert_eq!(reply.seen["user-agent"], "checkout/1.0");

    // An interceptor that refuses answers without a call reaching the balancer.
    let mut refusing = EchoClient::with_interceptor(balancer.clone(), |_: tonic::Request<()>| {
        Err(tonic::Status::permission_denied("no token"))
    });
    let before = server.calls();
    let status = refusing.unary(hello()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(server.calls(), before);
}

#[tokio::test]
async fn origin_and_user_agent_follow_the_caller_then_the_builder_then_the_endpoint() {
    let server = TestServer::start("origin").unwrap();
    let balancer = ready_balancer(Http2Connector::new(), &server).await;
    // Nothing set: the endpoint's address, and this crate's name and version.
    let reply = Client::new(balancer.clone())
        .unary(hello())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.seen[":authority"], server.addr().to_string());
    assert!(
        reply.seen["user-agent"].starts_with("tower-lb/"),
        "{:?}",
        reply.seen
    );
    // The caller's origin (tonic's `with_origin`) is honoured.
    let origin: http::Uri = "http://echo.example:8080".parse().unwrap();
    let reply = EchoClient::with_origin(balancer.clone(), origin.clone())
        .unary(hello())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.seen[":authority"], "echo.example:8080");

    // A configured authority and user agent apply to every request and every endpoint.
    let configured = ready_balancer(
        Http2Connector::new()
            .authority("vhost.internal:1234")
            .user_agent("checkout/2.0"),
        &server,
    )
    .await;
    for reply in [
        Client::new(configured.clone()).unary(hello()).await,
        EchoClient::with_origin(configured.clone(), origin)
            .unary(hello())
            .await,
    ] {
        let seen = reply.unwrap().into_inner().seen;
        assert_eq!(seen[":authority"], "vhost.internal:1234");
        assert!(
            seen["user-agent"].starts_with("checkout/2.0 tower-lb/"),
            "{seen:?}"
        );
    }
}

#[tokio::test]
async fn wait_ready_waits_for_k_endpoints_and_says_why_not() {
    let servers = servers(3, "wait-ready");
    let balancer = builder()
        .ready_timeout(Duration::ZERO)
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    let ready = balancer.wait_ready(3, BOUND).await.unwrap();
    assert_eq!(ready, 3);
    // With ready endpoints known, a zero ready timeout serves at once.
    echo(&mut Client::new(balancer.clone())).await.unwrap();

    let nowhere = builder().build(fixed([])).unwrap();
    let error = nowhere
        .wait_ready(1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::NotReady {
                wanted: 1,
                ready: 0,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("no endpoints discovered"),
        "{error}"
    );
}

#[tokio::test]
async fn try_layer_reports_what_layer_would_only_log() {
    let server = TestServer::start("layered").unwrap();
    let layer = builder().try_layer(fixed([endpoint(&server)])).unwrap();
    let balancer = tower::ServiceBuilder::new()
        .layer(layer)
        .service(Http2Connector::<tonic::body::Body>::new());
    balancer.wait_ready(1, BOUND).await.unwrap();
    echo(&mut Client::new(balancer)).await.unwrap();

    let refused = builder()
        .panic_threshold(Some(2.0))
        .try_layer(fixed([endpoint(&server)]));
    let error = refused.unwrap_err().to_string();
    assert!(error.contains("panic threshold"), "{error}");
    // Outside a runtime: refused, not a balancer that fails every call.
    let outside = std::thread::spawn(|| builder().try_layer(fixed([])).map(|_| ()))
        .join()
        .unwrap();
    assert!(outside.unwrap_err().to_string().contains("tokio runtime"));
}

#[tokio::test]
async fn connection_settings_are_applied_and_bad_ones_refused() {
    let server = TestServer::start("settings").unwrap();
    let tuned = Http2Connector::new()
        .connect_timeout(Duration::from_secs(2))
        .keep_alive(Some(Duration::from_secs(5)), Duration::from_secs(2))
        .keep_alive_while_idle(false)
        .tcp_nodelay(true)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .tcp_keepalive_interval(Some(Duration::from_secs(5)))
        .tcp_keepalive_retries(Some(3))
        .tcp_user_timeout(Some(Duration::from_secs(10)))
        .initial_stream_window_size(Some(1 << 20))
        .initial_connection_window_size(Some(4 << 20))
        .max_frame_size(Some(1 << 16))
        .max_header_list_size(Some(32 << 10));
    let balancer = ready_balancer(tuned, &server).await;
    echo(&mut Client::new(balancer)).await.unwrap();
    let adaptive = ready_balancer(Http2Connector::new().adaptive_window(true), &server).await;
    echo(&mut Client::new(adaptive)).await.unwrap();

    let bad: [(Http2Connector, &str); 5] = [
        (
            Http2Connector::new().max_frame_size(Some(10)),
            "max_frame_size",
        ),
        (
            Http2Connector::new().initial_stream_window_size(Some(u32::MAX)),
            "initial_stream_window_size",
        ),
        (
            Http2Connector::new().authority("not an authority"),
            "authority",
        ),
        (Http2Connector::new().user_agent("bad\nagent"), "user agent"),
        (
            Http2Connector::new().connect_timeout(Duration::ZERO),
            "connect_timeout",
        ),
    ];
    for (connector, word) in bad {
        let error = builder()
            .build_with(connector, fixed([endpoint(&server)]))
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidConfig(_)) && error.to_string().contains(word),
            "{word}: {error}"
        );
    }
}
