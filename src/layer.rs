//! The Tower `Layer` form of the balancer.

use futures_core::Stream;
use tower::Layer;

use crate::balancer::Balancer;
use crate::builder::{Builder, current_runtime};
use crate::discover::Change;
use crate::error::{BoxError, Error};
use crate::transport::Connector;

/// Turns a [`Connector`] into a [`Balancer`] over a clone of the discovery stream: the layer
/// goes *above* a connector (the balancer dials through it), and other layers can go around
/// the balancer as around any service.
///
/// Made with [`Builder::try_layer`], the configuration is checked and the runtime captured
/// when the layer is made, so applying it cannot fail but for one case: a health check over a
/// connector whose request body is not `tonic::body::Body`. Made with [`Builder::layer`],
/// nothing is checked until the layer is applied; applied outside a tokio runtime, or with a
/// builder that cannot build, the balancer it makes fails every call with `UNAVAILABLE` (and logs the error) instead of
/// panicking.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_lb::Error> {
/// use tower::ServiceBuilder;
/// use tower_lb::{Balancer, discover, transport::Http2Connector};
///
/// let endpoints = vec!["127.0.0.1:50051".parse::<discover::Endpoint>()?];
/// let balancer = ServiceBuilder::new()
///     .layer(Balancer::builder().try_layer(discover::fixed(endpoints))?)
///     .service(Http2Connector::<tonic::body::Body>::new());
/// # drop(balancer); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BalanceLayer<D> {
    builder: Builder,
    discovery: D,
    /// Captured by `try_layer`: where the control task goes, wherever the layer is applied.
    runtime: Option<tokio::runtime::Handle>,
}

// Here, beside the type it makes, so that `builder` does not import the layer that imports it.
impl Builder {
    /// The [`tower::Layer`](https://docs.rs/tower/0.5/tower/trait.Layer.html) form: wraps a [`Connector`] into a balancer over a clone of
    /// `discovery` (which must be `Clone`; use [`build`](Self::build) for one-shot streams).
    /// Prefer [`try_layer`](Self::try_layer), which reports a bad configuration at once.
    pub fn layer<D>(self, discovery: D) -> BalanceLayer<D> {
        BalanceLayer {
            builder: self,
            discovery,
            runtime: None,
        }
    }

    /// The [`tower::Layer`] form, checked now: fails if the configuration cannot build, or if
    /// it is not called inside a tokio runtime, whose handle the layer keeps for the balancers
    /// it makes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower_lb::{Balancer, discover};
    /// let refused = Balancer::builder()
    ///     .panic_threshold(Some(2.0)) // a share of endpoints: 0 ..= 1
    ///     .try_layer(discover::fixed([]));
    /// assert!(refused.is_err());
    /// # }
    /// ```
    pub fn try_layer<D>(self, discovery: D) -> Result<BalanceLayer<D>, Error> {
        self.validate_for_any_connector()?;
        let runtime = current_runtime()?;
        Ok(BalanceLayer {
            builder: self,
            discovery,
            runtime: Some(runtime),
        })
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
        let builder = self.builder.clone();
        let discovery = self.discovery.clone();
        let built = match &self.runtime {
            Some(runtime) => builder.build_on(runtime, connector, discovery),
            None => builder.build_with(connector, discovery),
        };
        match built {
            Ok(balancer) => balancer,
            Err(e) => {
                tracing::error!(error = %e, "balancer layer could not build its balancer; every call will fail");
                self.builder.closed::<C>()
            }
        }
    }
}
