//! Adding the balancer to a tonic client: the builder form, the Tower `Layer` form, an
//! interceptor, a per-call deadline, and what a call returns when no backend can take it.
//!
//! ```text
//! cargo run --example tonic_client
//! ```
//!
//! It starts three embedded Echo backends on 127.0.0.1 and prints something like
//!
//! ```text
//! builder form: 300 calls answered by {"a": 97, "b": 104, "c": 99}
//! layer form:   300 calls answered by {"a": 101, "b": 96, "c": 103}
//! interceptor: the backend saw the caller's user-agent "checkout/1.0"
//! deadline 200ms on a call to a backend that takes 2 s: DeadlineExceeded after 201ms: tower-lb: deadline of 200ms for /echo.Echo/Unary exceeded waiting for the response from 127.0.0.1:40101
//! backends down: Unavailable after 300ms: tower-lb: no ready endpoint for /echo.Echo/Unary after waiting 300ms: all 2 endpoints unreachable or connecting (0 connecting); last connection error: 127.0.0.1:34565: Connection refused (os error 111)
//! ```
//!
//! and exits non-zero if the calls did not reach all three backends or the failures were not
//! the ones shown.

use std::collections::BTreeMap;
use std::error::Error;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tower::ServiceBuilder;
use tower_lb::transport::Http2Connector;
use tower_lb::{Balancer, discover};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

const CALLS: usize = 300;

/// A request with its own deadline: tonic sends it as `grpc-timeout`, the balancer waits no
/// longer than that for a ready endpoint, and the server gives up on the call after it.
fn request(deadline: Duration) -> tonic::Request<EchoRequest> {
    let mut request = tonic::Request::new(EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    });
    request.set_timeout(deadline);
    request
}

/// `CALLS` calls, 16 at a time (the client is cloned per call, as tonic clients are meant to
/// be: clones share the balancer); returns who answered how many.
async fn spread(client: EchoClient<Balancer>) -> Result<BTreeMap<String, usize>, Box<dyn Error>> {
    let replies: Vec<_> = futures::stream::iter(0..CALLS)
        .map(|_| {
            let mut client = client.clone();
            async move { client.unary(request(Duration::from_secs(5))).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut answered = BTreeMap::new();
    for reply in replies {
        *answered.entry(reply?.into_inner().server).or_default() += 1;
    }
    Ok(answered)
}

fn check(form: &str, answered: &BTreeMap<String, usize>) -> Result<(), Box<dyn Error>> {
    println!("{form} {CALLS} calls answered by {answered:?}");
    if answered.len() != 3 || answered.values().sum::<usize>() != CALLS {
        return Err(format!("{form} expected all three backends to answer").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let servers = [
        TestServer::start("a")?,
        TestServer::start("b")?,
        TestServer::start("c")?,
    ];
    // In production these come from your config; any `ip:port` parses into an Endpoint.
    let endpoints: Vec<discover::Endpoint> = servers
        .iter()
        .map(|s| discover::Endpoint::new(s.addr()))
        .collect::<Result<_, _>>()?;

    // 1. The smallest path: build a balancer and hand it to the generated client. The balancer
    //    connects to every endpoint in the background; the default policy is p2c over PeakEWMA.
    let balancer = Balancer::builder().build(discover::fixed(endpoints.clone()))?;
    let client = EchoClient::new(balancer);
    check("builder form:", &spread(client).await?)?;

    // 2. The Tower layer form, for a stack built with ServiceBuilder: the balancer layer goes
    //    above a connector, which dials each endpoint; your own layers (metrics, auth, rate
    //    limits) go around the balancer. `try_layer` checks the configuration now.
    let balancer = ServiceBuilder::new()
        .layer(Balancer::builder().try_layer(discover::fixed(endpoints.clone()))?)
        .service(Http2Connector::<tonic::body::Body>::new());
    check("layer form:  ", &spread(EchoClient::new(balancer)).await?)?;

    // 2b. An interceptor, as with tonic's own Channel: it adds metadata to every call (here a
    //     user agent of the caller's, which the balancer keeps, and a token).
    let balancer = Balancer::builder().build(discover::fixed(endpoints.clone()))?;
    let mut intercepted =
        EchoClient::with_interceptor(balancer, |mut request: tonic::Request<()>| {
            let metadata = request.metadata_mut();
            metadata.insert(
                "user-agent",
                tonic::metadata::MetadataValue::from_static("checkout/1.0"),
            );
            metadata.insert(
                "authorization",
                tonic::metadata::MetadataValue::from_static("Bearer t0ken"),
            );
            Ok(request)
        });
    let seen = intercepted
        .unary(request(Duration::from_secs(5)))
        .await?
        .into_inner()
        .seen;
    match seen.get("user-agent").map(String::as_str) {
        Some("checkout/1.0") => {
            println!("interceptor: the backend saw the caller's user-agent \"checkout/1.0\"")
        }
        other => {
            return Err(format!("the interceptor's user agent did not arrive: {other:?}").into());
        }
    }

    // 3. A per-call deadline. Backend `a` now takes 2 s per call; the balancer ends the call
    //    at its 200 ms deadline with DEADLINE_EXCEEDED and resets the stream (the deadline also
    //    travels as grpc-timeout, so the server knows it too).
    //    (A balancer over `a` alone, so that the call surely goes there: p2c over PeakEWMA
    //    would rightly avoid a slow backend.)
    servers[0].set_delay(Duration::from_secs(2));
    let only_a = Balancer::builder().build(discover::fixed(vec![endpoints[0].clone()]))?;
    let started = Instant::now();
    let result = EchoClient::new(only_a)
        .unary(request(Duration::from_millis(200)))
        .await;
    match result {
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => println!(
            "deadline 200ms on a call to a backend that takes 2 s: {:?} after {:?}: {}",
            status.code(),
            started.elapsed(),
            status.message()
        ),
        Err(status) => return Err(format!("expected DEADLINE_EXCEEDED, got {status:?}").into()),
        Ok(_) => return Err("the call to the 2 s backend beat its 200 ms deadline".into()),
    }

    // 4. Nothing ready: two backends that are down. A call waits at most `ready_timeout` (or
    //    its own deadline, if shorter) for an endpoint to connect, then fails UNAVAILABLE with
    //    a message that says why — it never hangs.
    let down = [TestServer::start("gone-1")?, TestServer::start("gone-2")?];
    let down_endpoints: Vec<discover::Endpoint> = down
        .iter()
        .map(|s| discover::Endpoint::new(s.addr()))
        .collect::<Result<_, _>>()?;
    down.into_iter().for_each(TestServer::kill); // the ports are closed from now on
    let balancer = Balancer::builder()
        .ready_timeout(Duration::from_millis(300))
        .build(discover::fixed(down_endpoints))?;
    let started = Instant::now();
    let result = EchoClient::new(balancer)
        .unary(request(Duration::from_secs(5)))
        .await;
    let status = match result {
        Ok(_) => return Err("a call over backends that are down succeeded".into()),
        Err(status) => status,
    };
    println!(
        "backends down: {:?} after {:.0?}: {}",
        status.code(),
        started.elapsed(),
        status.message()
    );
    if status.code() != tonic::Code::Unavailable {
        return Err(format!("expected UNAVAILABLE, got {:?}", status.code()).into());
    }
    // The detail is also there as a typed error, for code that wants it.
    let typed =
        std::error::Error::source(&status).and_then(|e| e.downcast_ref::<tower_lb::Error>());
    if !matches!(typed, Some(tower_lb::Error::NoReadyEndpoint { .. })) {
        return Err("expected a tower_lb::Error::NoReadyEndpoint as the status's source".into());
    }
    println!("ok");
    Ok(())
}
