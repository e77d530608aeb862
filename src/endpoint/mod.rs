//! One endpoint as both paths see it: the state the request path reads and writes per call
//! (load, gate, in-flight hold, passive outcome recording) and the control path creates,
//! watches and retires.
//!
//! * `state.rs`: [`EndpointState`], the shared record of one endpoint, its connection state,
//!   the balancer-wide [`Passive`] settings it is judged by and the [`Signal`]s it sends;
//! * `ready.rs`: [`ReadyEndpoint`], an endpoint as a ready set lists it (channel and weight);
//! * `load.rs`: calls in flight and the PeakEWMA latency estimate;
//! * `gate.rs`: whether the picker may give it a call (ejection, breaker, concurrency cap);
//! * `in_flight.rs`: [`InFlight`], a call's hold, from dispatch to the end of the body;
//! * `passive.rs`: what a finished call's outcome does to its endpoint (passive health);
//! * `counters.rs`: each endpoint's finished calls, and the balancer's ejection cap;
//! * `reported.rs`: what its server reports about its own load (ORCA), for the policies that
//!   read it.
//!
//! Everything here is atomics and plain data: the request path never locks.

mod counters;
mod gate;
mod in_flight;
mod load;
mod passive;
mod ready;
mod reported;
mod state;

pub(crate) use gate::Entry;
pub(crate) use in_flight::InFlight;
pub(crate) use load::EwmaClock;
pub use load::PeakEwma;
pub(crate) use ready::ReadyEndpoint;
pub(crate) use reported::{Probed, ReportedLoad};
pub use state::ConnectionState;
pub(crate) use state::{EndpointDefaults, EndpointState, Passive, Signal};
