//! Time, at the bottom of the house: the clock calls and latency samples read, the backoff
//! between retries, and the caller's own deadline (`grpc-timeout`). Nothing here imports
//! another module of the crate.

mod backoff;
mod clock;
mod deadline;

pub use backoff::Backoff;
pub(crate) use clock::now_ns;
pub(crate) use deadline::{cap_grpc_timeout, grpc_timeout};
