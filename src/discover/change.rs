//! The unit of discovery: one change to the endpoint set.

use super::endpoint::{Endpoint, Key};

/// One change to the set of endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add the endpoint under this key, or update the endpoint that has it.
    Insert(Key, Endpoint),
    /// Remove the endpoint under this key (its in-flight calls drain first).
    Remove(Key),
}
