//! The gRPC interoperability test cases (from the public description of them in grpc/grpc's
//! `doc/interop-test-descriptions.md`), each run through a `tower_lb::Balancer` over three
//! servers on 127.0.0.1, against two server implementations: tonic (`testkit::interop`) and
//! Python grpcio (`testkit/interop/server.py`, started as child processes).
//!
//! Every case is two tests, `<case>::tonic` and `<case>::python`. Without Python grpcio the
//! Python ones print a notice and pass, unless `CI=true` (`.ci/run` installs grpcio in a
//! virtual environment and names its interpreter in `TOWER_LB_PYTHON`). A separate test
//! binary, so it links once.

mod common;

mod cancel;
mod compression;
mod deadline;
mod metadata;
mod status;
mod streaming;
mod unary;
