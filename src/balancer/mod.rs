//! The request path: everything a call runs, in the caller's task, read top-down.
//!
//! * `service.rs`: [`Balancer`], the `tower::Service`. `call` counts the call, loads the
//!   snapshot, picks, and sends on the endpoint's channel — the whole fast path;
//! * `future.rs`: [`ResponseFuture`]: the endpoint's own future on the fast path, a boxed slow
//!   path for the rare call that waits or is re-picked;
//! * `attempts.rs`: the one retry loop's state — wait, avoid the endpoint that refused, draw on
//!   the retry budget, give up after `unsent_retries` — used here and by the layer 4 balancer;
//! * `pick.rs`: the pick (snapshot → policy → gate → in-flight hold) and the bounded wait for
//!   a ready endpoint when the snapshot has none;
//! * `body.rs`: [`ResponseBody`], which holds the call's load until the body ends;
//! * `deadline.rs`: a call's deadline, from its `grpc-timeout` or the default timeout;
//! * calls whose method has a configuration (gRPC A6 `methodConfig`), off the fast path:
//!   `configured.rs` (their entry, and that of calls with message size limits), `replay.rs` (the request kept for further attempts),
//!   `retry.rs` and `hedge.rs` (the two attempt loops), `attempt.rs` (one attempt and its
//!   verdict), `peeked.rs` (a response read ahead to its first frame), `message_size.rs`
//!   (`maxRequestMessageBytes` and `maxResponseMessageBytes`).
//!
//! Imports run one way: each file uses only those below it in this list, and the path meets
//! the control task only in the ready set.

mod attempt;
mod attempts;
mod body;
mod configured;
mod deadline;
mod future;
mod hedge;
mod message_size;
mod peeked;
mod pick;
mod replay;
mod retry;
mod service;

pub(crate) use attempts::Attempts;
pub use body::ResponseBody;
pub use future::{CallResult, ResponseFuture};
pub use service::Balancer;
