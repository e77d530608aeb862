//! The server side of ORCA (feature `server`): a Tower layer a tonic server adds with one line
//! to report its load to its clients, per call, in the `endpoint-load-metrics-bin` trailer
//! (gRPC A51; the message is `xds.data.orca.v3.OrcaLoadReport`, so gRPC clients in any
//! language read it too).
//!
//! ```no_run
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_lb::server::OrcaLayer;
//! # let router = tonic::service::Routes::default();
//! tonic::transport::Server::builder()
//!     .layer(OrcaLayer::new().cpu_utilization())
//!     .add_routes(router)
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! * `layer.rs`: [`OrcaLayer`] and the service and future it makes;
//! * `tracker.rs`: what the layer measures (calls in flight, rate, errors, latency, utilisation),
//!   in windows;
//! * `body.rs`: the response body that adds the trailer;
//! * `cpu.rs`: the process's CPU utilisation from Linux `/proc`.

mod body;
mod cpu;
mod layer;
mod tracker;

pub use body::ReportingBody;
pub use layer::{OrcaLayer, OrcaService, ReportingFuture};
