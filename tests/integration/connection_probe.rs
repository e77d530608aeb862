//! The probe after a timed-out call (an HTTP/2 PING slipped in between hyper's frames): a busy
//! server answers it and keeps its connection, even with calls queued behind its stream limit;
//! a server that has gone silent loses its connection, with a reason that says so.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_lb::discover::Endpoint;
use tower_lb::transport::{Connector, EndpointChannel, Http2Channel, Http2Connector};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

const BOUND: Duration = Duration::from_secs(10);

/// A tonic client straight on one connection's channel.
fn client_on(
    channel: Http2Channel<tonic::body::Body>,
) -> EchoClient<
    impl tonic::client::GrpcService<tonic::body::Body, ResponseBody = hyper::body::Incoming>,
> {
    let service = tower::service_fn(move |request| {
        let mut channel = channel.clone();
        async move {
            channel.send(request).await.map_err(|e| match e {
                tower_lb::transport::SendError::Unsent { error, .. } => error,
                tower_lb::transport::SendError::Failed(error) => error,
            })
        }
    });
    EchoClient::new(service)
}

#[tokio::test]
async fn a_busy_server_answers_the_probe_and_keeps_its_connection() {
    // Two calls at a time per connection, each taking 0.6 s: the other calls queue in the
    // client, as a health-check request would — a PING does not.
    let server = TestServer::builder("busy")
        .max_concurrent_streams(2)
        .start()
        .unwrap();
    server.set_delay(Duration::from_millis(600));
    let connection = Http2Connector::new()
        .connect(&Endpoint::new(server.addr()).unwrap())
        .await
        .unwrap();
    let mut closed = connection.closed;
    let calls = futures::future::join_all((0..8).map(|i| {
        let mut client = client_on(connection.channel.clone());
        async move {
            let request = EchoRequest {
                message: format!("{i}"),
                stream_count: 0,
            };
            client.unary(request).await
        }
    }));
    let probe = async {
        // Wait until the server holds its two, so the rest are queued.
        let deadline = tokio::time::Instant::now() + BOUND;
        while server.in_flight() < 2 {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let probe = connection
            .channel
            .probe(Duration::from_millis(500))
            .expect("HTTP/2 channels probe");
        tokio::time::timeout(BOUND, probe).await.unwrap();
        // Answered: the connection is still open.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut closed)
                .await
                .is_err(),
            "a busy server's connection was closed by the probe"
        );
    };
    let (replies, ()) = tokio::time::timeout(BOUND, async { tokio::join!(calls, probe) })
        .await
        .unwrap();
    // Every call completes on it.
    for reply in replies {
        assert!(reply.is_ok(), "{reply:?}");
    }
    // The answer went to us, not to hyper: a second probe is answered as well.
    let probe = connection
        .channel
        .probe(Duration::from_millis(500))
        .unwrap();
    tokio::time::timeout(BOUND, probe).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut closed)
            .await
            .is_err()
    );
}

/// An HTTP/2 server that sends its settings, acknowledges the client's, then never speaks
/// again: a process whose network stack is alive and whose HTTP/2 layer is stuck.
async fn speaks_once() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            // Empty SETTINGS, then a SETTINGS ACK.
            let _ = stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
            let _ = stream.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).await;
            // Read and ignore whatever comes (so the client's writes never block).
            held.push(tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            }));
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_silent_server_loses_its_connection_to_the_probe() {
    let (addr, task) = speaks_once().await;
    let connection = Http2Connector::new()
        .connect(&Endpoint::new(addr).unwrap())
        .await
        .expect("it has spoken, so the connection counts");
    let probe = connection
        .channel
        .probe(Duration::from_millis(200))
        .unwrap();
    tokio::time::timeout(BOUND, probe).await.unwrap();
    let why = tokio::time::timeout(BOUND, connection.closed)
        .await
        .expect("the connection closes after an unanswered PING")
        .expect("with a reason");
    assert!(
        why.to_string().contains("did not answer an HTTP/2 PING"),
        "{why}"
    );
    task.abort();
}
