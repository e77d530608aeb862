//! Endpoint health: active checks with the standard `grpc.health.v1` service (feature `health`).

#[cfg(feature = "health")]
pub(crate) mod check;

#[cfg(feature = "health")]
pub use check::HealthCheck;
