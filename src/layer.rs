//! The Tower `Layer` form of the balancer.

use futures_core::Stream;
use tower::Layer;

use crate::balancer::Balancer;
use crate::builder::Builder;
use crate::discover::Change;
use crate::error::BoxError;
use crate::transport::Connector;

/// Turns a [`Connector`] into a [`Balancer`] over a clone of the discovery stream.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_lb::Error> {
/// use tower::ServiceBuilder;
/// use tower_lb::{Balancer, discover, transport::Http2Connector};
///
/// let endpoints = vec!["127.0.0.1:50051".parse::<discover::Endpoint>()?];
/// let balancer = ServiceBuilder::new()
///     .layer(Balancer::builder().layer(discover::fixed(endpoints)))
///     .service(Http2Connector::<tonic::body::Body>::new());
/// # drop(balancer); Ok(()) }
/// ```
///
/// Applied outside a tokio runtime, or with a builder that cannot build (such as one with
/// `Builder::tls`, whose TLS belongs to `build`), the balancer it makes fails every call with
/// `UNAVAILABLE` (and logs the error) instead of panicking.
#[derive(Debug, Clone)]
pub struct BalanceLayer<D> {
    builder: Builder,
    discovery: D,
}

// Here, beside the type it makes, so that `builder` does not import the layer that imports it.
impl Builder {
    /// The [`tower::Layer`](https://docs.rs/tower/0.5/tower/trait.Layer.html) form: wraps a [`Connector`] into a balancer over a clone of
    /// `discovery` (which must be `Clone`; use [`build`](Self::build) for one-shot streams).
    pub fn layer<D>(self, discovery: D) -> BalanceLayer<D> {
        BalanceLayer {
            builder: self,
            discovery,
        }
    }
}

impl<C, D, E> Layer<C> for BalanceLayer<D>
where
    C: Connector,
    D: Stream<Item = Result<Change, E>> + Clone + Send + 'static,
    E: Into<BoxError> + 'static,
{
    type Service = Balancer<C::Channel>;

    fn layer(&self, connector: C) -> Self::Service {
        match self
            .builder
            .clone()
            .build_with(connector, self.discovery.clone())
        {
            Ok(balancer) => balancer,
            Err(e) => {
                tracing::error!(error = %e, "balancer layer could not build its balancer; every call will fail");
                self.builder.closed::<C>()
            }
        }
    }
}
