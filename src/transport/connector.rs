//! The control path's side of a connection: [`Connector`] dials, a [`Connection`] is what a
//! dial gives.

use std::future::Future;
use std::pin::Pin;

use super::channel::EndpointChannel;
use crate::discover::Endpoint;
use crate::error::{BoxError, Error};

/// An established connection: the channel for requests, and a future that resolves when the
/// connection has closed (with the error, if it broke).
pub struct Connection<T> {
    /// The request handle.
    pub channel: T,
    /// Resolves once the connection is closed.
    pub closed: Pin<Box<dyn Future<Output = Option<BoxError>> + Send>>,
}

/// The future of one connection attempt.
pub type ConnectFuture<T> = Pin<Box<dyn Future<Output = Result<Connection<T>, BoxError>> + Send>>;

/// Dials endpoints. Runs on the control path only (once per connection attempt), so it may
/// allocate freely.
pub trait Connector: Send + Sync + 'static {
    /// The channel type of its connections.
    type Channel: EndpointChannel;

    /// Opens a connection to the endpoint.
    fn connect(&self, endpoint: &Endpoint) -> ConnectFuture<Self::Channel>;

    /// Refuses settings that cannot work, before a balancer starts with this connector (by
    /// default, nothing is refused).
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
}
