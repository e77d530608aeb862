//! ORCA load reports (gRPC A51): what a server says about its own load, per call in the
//! `endpoint-load-metrics-bin` trailer.
//!
//! * `report.rs`: [`LoadReport`], `xds.data.orca.v3.OrcaLoadReport` encoded and decoded by
//!   hand (the handful of fields balancing reads; no protobuf runtime needed);
//! * `trailer.rs`: the trailer's name and its base64 form, as gRPC sends `-bin` metadata;
//! * `out_of_band.rs`: the out-of-band stream (`OpenRcaService/StreamCoreMetrics`): its
//!   request and gRPC message framing;
//! * `probe.rs`: the load probe, a call that asks a server for its report now (for
//!   [`Policy::prequal`](crate::Policy::prequal)).
//!
//! The server side that writes the trailer is the `server` feature's
//! [`OrcaLayer`](https://docs.rs/tower-lb/latest/tower_lb/server/struct.OrcaLayer.html); the client side that reads it is
//! [`Policy::weighted_round_robin`](crate::Policy::weighted_round_robin).

mod out_of_band;
mod probe;
mod report;
mod trailer;

pub use out_of_band::OUT_OF_BAND_PATH;
pub(crate) use out_of_band::{MAX_MESSAGE, Messages, request as oob_request};
#[cfg(feature = "server")]
pub(crate) use out_of_band::{decode_request as decode_oob_request, frame as grpc_frame};
pub use probe::PROBE_PATH;
pub(crate) use probe::{ProbeAnswer, answer as probe_answer};
pub use report::{DecodeError, LoadReport};
#[cfg(feature = "server")]
pub(crate) use trailer::to_header_value;
pub use trailer::{TRAILER, from_trailers};
