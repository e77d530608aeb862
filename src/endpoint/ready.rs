//! An endpoint as a ready set lists it.

use std::sync::Arc;

use super::state::EndpointState;

/// One endpoint that can take calls now: the channel calls go out on, the shared state they
/// count on, and the weight the policy balances by (slow start may have lowered it).
#[derive(Clone)]
pub(crate) struct ReadyEndpoint<T> {
    pub(crate) channel: T,
    pub(crate) state: Arc<EndpointState>,
    pub(crate) weight: u32,
}
