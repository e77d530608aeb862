//! In-process endpoints: any cloneable Tower service stands in for a connection.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tower::Service;

use super::channel::{EndpointChannel, SendError};
use super::connector::{ConnectFuture, Connection, Connector};
use crate::discover::Endpoint;
use crate::error::BoxError;

/// Makes one in-process service per endpoint with a closure. The "connection" is up at once
/// and never closes. For tests and for benchmarks that measure the balancer alone.
///
/// ```
/// use std::convert::Infallible;
/// use tower_lb::transport::ServiceConnector;
/// // In-process services taking `http::Request<String>` stand in for connections.
/// let connector: ServiceConnector<_, String> = ServiceConnector::new(|_endpoint| {
///     tower::service_fn(|_req: http::Request<String>| async {
///         Ok::<_, Infallible>(http::Response::new(String::from("hi")))
///     })
/// });
/// ```
pub struct ServiceConnector<F, B> {
    make: Arc<F>,
    _body: PhantomData<fn(B)>,
}

impl<F, B> ServiceConnector<F, B> {
    /// A connector that calls `make` once per connection.
    pub fn new<S>(make: F) -> Self
    where
        F: Fn(&Endpoint) -> S,
    {
        ServiceConnector {
            make: Arc::new(make),
            _body: PhantomData,
        }
    }
}

impl<F, S, B> Connector for ServiceConnector<F, B>
where
    F: Fn(&Endpoint) -> S + Send + Sync + 'static,
    S: Service<http::Request<B>> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Channel = ServiceChannel<S, B>;

    fn connect(&self, endpoint: &Endpoint) -> ConnectFuture<Self::Channel> {
        let channel = ServiceChannel::new((self.make)(endpoint));
        Box::pin(async move {
            Ok(Connection {
                channel,
                closed: Box::pin(std::future::pending()),
            })
        })
    }
}

/// Helper bound: the response of an in-process service.
pub trait IntoResponse: Send + 'static {
    /// The response body.
    type Body: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
    /// The response as `http::Response`.
    fn into_response(self) -> http::Response<Self::Body>;
}

impl<RB> IntoResponse for http::Response<RB>
where
    RB: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    type Body = RB;
    fn into_response(self) -> http::Response<RB> {
        self
    }
}

/// A cloneable Tower service used as a channel: always ready; each call clones the service,
/// waits for its `poll_ready` and calls it.
pub struct ServiceChannel<S, B> {
    service: S,
    _body: PhantomData<fn(B)>,
}

impl<S, B> ServiceChannel<S, B> {
    /// Wraps a service.
    pub fn new(service: S) -> Self {
        ServiceChannel {
            service,
            _body: PhantomData,
        }
    }
}

impl<S: Clone, B> Clone for ServiceChannel<S, B> {
    fn clone(&self) -> Self {
        ServiceChannel::new(self.service.clone())
    }
}

impl<S, B> EndpointChannel for ServiceChannel<S, B>
where
    S: Service<http::Request<B>> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type RequestBody = B;
    type ResponseBody = <S::Response as IntoResponse>::Body;
    type Future = ServiceFuture<S, B>;

    #[inline]
    fn is_ready(&self) -> bool {
        true
    }

    #[inline]
    fn send(&mut self, request: http::Request<B>) -> Self::Future {
        // Try readiness at once (with a no-op waker; it is polled again with the real one if
        // not ready), so the common future holds only the service's own future, not the
        // request: a smaller future is cheaper to move on every call.
        let mut service = self.service.clone();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let state = match service.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => State::Called {
                future: service.call(request),
            },
            Poll::Ready(Err(e)) => State::Done {
                result: Some(Box::new(SendError::Unsent {
                    request,
                    error: e.into(),
                })),
            },
            Poll::Pending => State::Waiting {
                parked: Some(Box::new((service, request))),
            },
        };
        ServiceFuture { state }
    }
}

pin_project_lite::pin_project! {
    /// The future of one call on a [`ServiceChannel`].
    pub struct ServiceFuture<S: Service<http::Request<B>>, B> {
        #[pin]
        state: State<S, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<S: Service<http::Request<B>>, B> {
        Called { #[pin] future: S::Future },
        // Rare paths keep their data boxed, out of the common future's size.
        Waiting { parked: Option<Box<(S, http::Request<B>)>> },
        Done { result: Option<Box<SendError<B>>> },
    }
}

impl<S, B> Future for ServiceFuture<S, B>
where
    S: Service<http::Request<B>>,
    S::Response: IntoResponse,
    S::Error: Into<BoxError>,
{
    type Output = Result<http::Response<<S::Response as IntoResponse>::Body>, SendError<B>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Called { future } => {
                    return Poll::Ready(match ready!(future.poll(cx)) {
                        Ok(response) => Ok(response.into_response()),
                        Err(e) => Err(SendError::Failed(e.into())),
                    });
                }
                StateProj::Waiting { parked } => {
                    let Some((service, _)) = parked.as_mut().map(|b| &mut **b) else {
                        return Poll::Ready(Err(SendError::Failed(
                            "polled after completion".into(),
                        )));
                    };
                    let ready = ready!(service.poll_ready(cx));
                    let Some(boxed) = parked.take() else {
                        return Poll::Ready(Err(SendError::Failed(
                            "polled after completion".into(),
                        )));
                    };
                    let (mut service, request) = *boxed;
                    match ready {
                        Ok(()) => {
                            let future = service.call(request);
                            state.set(State::Called { future });
                        }
                        Err(e) => {
                            return Poll::Ready(Err(SendError::Unsent {
                                request,
                                error: e.into(),
                            }));
                        }
                    }
                }
                StateProj::Done { result } => {
                    return Poll::Ready(Err(match result.take() {
                        Some(e) => *e,
                        None => SendError::Failed("polled after completion".into()),
                    }));
                }
            }
        }
    }
}
