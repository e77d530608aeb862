//! Layer 7 routing: requests go to different services (typically balancers over different
//! pools) by path prefix — a gRPC service (`/package.Service`) or method
//! (`/package.Service/Method`).

use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, ErrInto, TryFutureExt};
use tower::Service;

use crate::error::{BoxError, Error};

/// Routes each request to the service whose path prefix matches longest.
///
/// A prefix matches whole path segments: `/echo.Echo` matches `/echo.Echo/Unary` but not
/// `/echo.EchoV2/Unary`. A request that matches no route goes to the [fallback](Self::fallback) service, or
/// fails with gRPC `UNIMPLEMENTED` naming the path when there is none.
///
/// `poll_ready` waits for every route's service, as `tower::steer` does: a
/// [`Balancer`](crate::Balancer) is always ready, so with balancers behind it this costs
/// nothing.
///
/// ```
/// # async fn example() -> Result<(), tower_lb::Error> {
/// use tower_lb::{Balancer, Router, discover};
/// let users = Balancer::builder().build(discover::fixed(["127.0.0.1:50051".parse()?]))?;
/// let search = Balancer::builder().build(discover::fixed(["127.0.0.1:50061".parse()?]))?;
/// let router = Router::new()
///     .route("/acme.Users", users)?
///     .route("/acme.Search/Query", search.clone())?
///     .fallback(search);
/// // let client = SearchClient::new(router);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Router<S> {
    /// Longest prefix first; the index is into `services`.
    prefixes: Arc<[(Box<str>, usize)]>,
    services: Vec<S>,
    default: Option<usize>,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Router::new()
    }
}

impl<S> Router<S> {
    /// A router with no routes.
    pub fn new() -> Self {
        Router {
            prefixes: Arc::new([]),
            services: Vec::new(),
            default: None,
        }
    }

    /// Sends requests whose path starts with `prefix` (whole segments) to `service`.
    ///
    /// Fails if the prefix does not start with `/` or is already routed.
    pub fn route(mut self, prefix: &str, service: S) -> Result<Self, Error> {
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        if !prefix.starts_with('/') && !prefix.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "route prefix {prefix:?} must start with '/' (e.g. \"/package.Service\")"
            )));
        }
        if self.prefixes.iter().any(|(p, _)| &**p == prefix) {
            return Err(Error::InvalidConfig(format!(
                "route prefix {prefix:?} is given twice"
            )));
        }
        self.services.push(service);
        let mut prefixes = self.prefixes.to_vec();
        prefixes.push((prefix.into(), self.services.len() - 1));
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        self.prefixes = prefixes.into();
        Ok(self)
    }

    /// Sends requests that match no route to `service`.
    pub fn fallback(mut self, service: S) -> Self {
        self.services.push(service);
        self.default = Some(self.services.len() - 1);
        self
    }

    fn find(&self, path: &str) -> Option<usize> {
        self.prefixes
            .iter()
            .find(|(prefix, _)| {
                path.strip_prefix(&**prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .map(|(_, i)| *i)
            .or(self.default)
    }
}

impl<S, B> Service<http::Request<B>> for Router<S>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Either<ErrInto<S::Future, BoxError>, Ready<Result<S::Response, BoxError>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let mut pending = false;
        for service in &mut self.services {
            match service.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.find(request.uri().path()) {
            Some(i) => Either::Left(self.services[i].call(request).err_into()),
            None => Either::Right(ready(Err(Box::new(tonic::Status::unimplemented(format!(
                "no route for {}",
                request.uri().path()
            )))))),
        }
    }
}
