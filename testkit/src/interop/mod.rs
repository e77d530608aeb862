//! The gRPC interoperability test service (`grpc.testing.TestService`), served two ways for
//! the interop tests in `tests/interop/`: by a tonic server ([`InteropService`]) and by a
//! Python grpcio server (`testkit/interop/server.py`, a child process). [`Fleet`] starts
//! several of either kind on 127.0.0.1.
//!
//! Both implement, from the public description of the interop server features: EmptyCall,
//! UnaryCall (sized payloads, an echoed status, compressed responses on request),
//! StreamingInputCall, StreamingOutputCall, FullDuplexCall, HalfDuplexCall, and the echo of
//! the `x-grpc-test-echo-initial` / `x-grpc-test-echo-trailing-bin` metadata. Both answer
//! UnimplementedCall with `UNIMPLEMENTED`, and neither serves
//! `grpc.testing.UnimplementedService`. Only the tonic server checks `expect_compressed`
//! (a grpcio handler cannot tell whether its request came compressed).

mod call_events;
mod echo_metadata;
mod events;
mod fleet;
mod message_flags;
mod python;
mod service;

pub use call_events::{CallEvents, CallEventsLayer};
pub use echo_metadata::{ECHO_INITIAL, ECHO_TRAILING, EchoMetadata, EchoMetadataLayer};
pub use events::{BEGAN, CANCELLED, Events};
pub use fleet::{Fleet, ServerKind};
pub use message_flags::{MessageFlags, MessageFlagsLayer, ReadMessageFlags};
pub use python::{PYTHON_ENV, PythonServer, available as python_available, interpreter};
pub use service::InteropService;

/// Generated code for the `grpc.testing` protobuf package (messages, clients, servers).
#[allow(missing_docs)]
pub mod pb {
    tonic::include_proto!("grpc.testing");
}
