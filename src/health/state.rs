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
    /// Its health check says the server does not know the checked service (`SERVICE_UNKNOWN`,
    /// or `NOT_FOUND` as tonic-health answers): a configuration error — the service name is
    /// likely wrong — rather than a server that is down. Not eligible for calls, except in
    /// panic mode.
    ServiceUnknown,
}
