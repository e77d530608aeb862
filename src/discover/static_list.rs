//! A fixed list of endpoints, inserted once.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::change::Change;
use super::endpoint::{Endpoint, Key};

/// Discovery from a fixed list: each endpoint is inserted under its address as key.
///
/// Duplicate addresses collapse into one endpoint (the last one's weight wins).
///
/// ```
/// use tower_lb::discover::{fixed, Endpoint};
/// let endpoints: Vec<Endpoint> = ["127.0.0.1:50051", "127.0.0.1:50052"]
///     .iter()
///     .map(|a| a.parse())
///     .collect::<Result<_, _>>()?;
/// let discovery = fixed(endpoints);
/// # Ok::<(), tower_lb::Error>(())
/// ```
pub fn fixed<I>(endpoints: I) -> Fixed
where
    I: IntoIterator<Item = Endpoint>,
{
    let changes: Vec<Change> = endpoints
        .into_iter()
        .map(|e| Change::Insert(Key::from(e.addr()), e))
        .collect();
    Fixed {
        changes: changes.into_iter(),
    }
}

/// The stream made by [`fixed`]. It yields one insert per endpoint, then ends (the balancer
/// keeps the set).
#[derive(Debug, Clone)]
pub struct Fixed {
    changes: std::vec::IntoIter<Change>,
}

impl Stream for Fixed {
    type Item = Result<Change, Infallible>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.get_mut().changes.next().map(Ok))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.changes.size_hint()
    }
}
