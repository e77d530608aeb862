//! DNS discovery tests against a real DNS server: Knot DNS (`knotd`) on 127.0.0.1, started by
//! the tests, with its zone rewritten while they run; plus an in-process server for fault
//! shapes Knot does not give on demand. A separate test binary, so it links once.
//!
//! Without `knotd` the Knot tests print a notice and pass, unless `CI=true`.

mod common;
mod fault_server;
mod knot;
mod load;

mod balancer;
mod faults;
mod gray;
mod host;
mod hostile;
mod refresh;
mod srv;
