//! What the ready set holds for a layer 4 endpoint: its address and whether the last dial to
//! it worked. A TCP connect probe stands in for the HTTP/2 connection of the layer 7 path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::discover::Endpoint;
use crate::error::BoxError;
use crate::transport::{ConnectFuture, Connection, Connector, NoRequests};

/// One reachable endpoint. Marked down when a dial to it fails: its connection task then backs
/// off and probes again before the endpoint returns to the ready set.
#[derive(Clone)]
pub(crate) struct TcpTarget {
    pub(crate) addr: SocketAddr,
    down: Arc<Down>,
}

#[derive(Default)]
struct Down {
    notify: Notify,
    error: std::sync::Mutex<Option<String>>,
}

impl TcpTarget {
    /// A dial failed: take the endpoint out until a probe succeeds again.
    pub(crate) fn mark_down(&self, error: String) {
        if let Ok(mut slot) = self.down.error.lock() {
            slot.get_or_insert(error);
        }
        self.down.notify.notify_one();
    }
}

/// Probes an endpoint with a TCP connect (closed at once) before it joins the ready set.
pub(crate) struct TcpProbe {
    pub(crate) connect_timeout: Duration,
}

impl Connector for TcpProbe {
    type Channel = NoRequests<TcpTarget>;

    fn connect(&self, endpoint: &Endpoint) -> ConnectFuture<NoRequests<TcpTarget>> {
        let addr = endpoint.addr();
        let timeout = self.connect_timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(_probe)) => {}
                Ok(Err(e)) => return Err(BoxError::from(e)),
                Err(_) => return Err(format!("connect timed out after {timeout:?}").into()),
            }
            let down = Arc::new(Down::default());
            let target = TcpTarget {
                addr,
                down: down.clone(),
            };
            Ok(Connection {
                channel: NoRequests(target),
                closed: Box::pin(async move {
                    down.notify.notified().await;
                    let error = down.error.lock().ok().and_then(|mut e| e.take());
                    Some(BoxError::from(
                        error.unwrap_or_else(|| "marked down".to_owned()),
                    ))
                }),
            })
        })
    }
}
