//! The "nothing ready" row of the README's comparison, measured: what a call does when there is
//! no endpoint to send it to, through tonic's `Channel::balance_list`, tower's
//! `p2c::Balance`, and tower-lb, against real tonic servers on 127.0.0.1.
//!
//! Two situations: an empty endpoint list, and two endpoints that are both down (their ports
//! closed). Each call carries a 300 ms `grpc-timeout` and is bounded from outside at 3 s; a
//! call still waiting then counts as hanging.
//!
//! ```text
//! cargo run --example alternatives
//! ```

use std::convert::Infallible;
use std::error::Error;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower_lb::{Balancer, discover};
use tower_lb_testkit::TestServer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

const DEADLINE: Duration = Duration::from_millis(300);
const BOUND: Duration = Duration::from_secs(3);

fn request() -> tonic::Request<EchoRequest> {
    let mut request = tonic::Request::new(EchoRequest {
        message: "hi".into(),
        stream_count: 0,
    });
    request.set_timeout(DEADLINE);
    request
}

/// One call, bounded at `BOUND`: what it ended with, and after how long.
async fn outcome<F, T>(call: F) -> String
where
    F: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let started = Instant::now();
    match tokio::time::timeout(BOUND, call).await {
        Err(_) => format!("still waiting after {BOUND:?} (hangs)"),
        Ok(Ok(_)) => format!("answered after {:.0?}", started.elapsed()),
        Ok(Err(status)) => format!("{:?} after {:.0?}", status.code(), started.elapsed()),
    }
}

/// Two endpoints whose ports are closed.
fn down() -> Result<Vec<std::net::SocketAddr>, Box<dyn Error>> {
    let servers = [TestServer::start("gone-1")?, TestServer::start("gone-2")?];
    let addrs = servers.iter().map(TestServer::addr).collect();
    servers.into_iter().for_each(TestServer::kill);
    Ok(addrs)
}

async fn tonic_balance_list(addrs: &[std::net::SocketAddr]) -> String {
    let endpoints: Vec<Endpoint> = addrs
        .iter()
        .map(|a| Endpoint::from_shared(format!("http://{a}")).expect("endpoint"))
        .collect();
    let channel = Channel::balance_list(endpoints.into_iter());
    outcome(EchoClient::new(channel).unary(request())).await
}

/// tower's p2c over an empty list: with nothing ready, `poll_ready` is where a call waits.
async fn tower_p2c_empty() -> String {
    type Answer = fn(()) -> std::future::Ready<Result<(), Infallible>>;
    let services: Vec<tower::load::Constant<tower::util::ServiceFn<Answer>, u32>> = Vec::new();
    let mut balance: Balance<_, ()> = Balance::new(ServiceList::new(services));
    let started = Instant::now();
    match tokio::time::timeout(BOUND, balance.ready()).await {
        Err(_) => format!("`poll_ready` still pending after {BOUND:?} (hangs)"),
        Ok(Ok(_)) => format!("ready after {:.0?}", started.elapsed()),
        Ok(Err(e)) => format!("error after {:.0?}: {e}", started.elapsed()),
    }
}

async fn tower_lb(addrs: &[std::net::SocketAddr]) -> Result<String, Box<dyn Error>> {
    let endpoints = addrs
        .iter()
        .map(|a| discover::Endpoint::new(*a))
        .collect::<Result<Vec<_>, _>>()?;
    let balancer = Balancer::builder().build(discover::fixed(endpoints))?;
    Ok(outcome(EchoClient::new(balancer).unary(request())).await)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let gone = down()?;
    println!("| situation | tonic `balance_list` | tower `p2c::Balance` | tower-lb (defaults) |");
    println!("|---|---|---|---|");
    for (name, addrs) in [("empty list", Vec::new()), ("2 endpoints, both down", gone)] {
        let tonic = tonic_balance_list(&addrs).await;
        // tower's p2c takes ready services only: "down" is an empty list to it.
        let tower = match addrs.is_empty() {
            true => tower_p2c_empty().await,
            false => "as the empty list: services that are not ready are not in it".to_owned(),
        };
        let ours = tower_lb(&addrs).await?;
        println!("| {name} | {tonic} | {tower} | {ours} |");
    }
    Ok(())
}
