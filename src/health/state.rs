//! An endpoint's health as the snapshot shows it.

/// An endpoint's health as the control task sees it, for [`EndpointStatus`](crate::EndpointStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Eligible for calls (when connected).
    Healthy,
    /// Ejected by outlier detection until its ejection ends.
    Ejected,
    /// Its health check said something other than `SERVING` (or failed).
    NotServing,
    /// Health checks are on and the first answer has not come yet.
    Checking,
}
