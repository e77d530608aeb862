//! Discovery that a test or an example drives itself.

use std::convert::Infallible;
use std::net::SocketAddr;

use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tower_lb::discover::{Change, Endpoint, Key};

/// A discovery stream that delivers whatever is sent on the returned sender, and ends when
/// the sender is dropped.
pub fn channel() -> (
    mpsc::UnboundedSender<Change>,
    impl Stream<Item = Result<Change, Infallible>> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, UnboundedReceiverStream::new(rx).map(Ok))
}

/// Endpoint `i` of a fleet that is never dialled (behind an in-process connector): distinct
/// addresses over 127.0.0.0/8, port 50,000, each its own key.
pub fn numbered(i: usize) -> (Key, Endpoint) {
    let addr = SocketAddr::from(([127, (i >> 16) as u8, (i >> 8) as u8, i as u8], 50_000));
    (Key::from(addr), Endpoint::new(addr).expect("valid"))
}
