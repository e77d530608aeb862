//! The discovery stream of a subset: [`subset`] wraps any discovery stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::config::Subsetting;
use super::selection::Selection;
use crate::discover::Change;

/// Passes on only this client's subset of what `discovery` lists; see the
/// [module docs](super).
///
/// ```
/// use tower_lb::discover::{fixed, subset::{subset, Subsetting}, Endpoint};
/// let fleet: Vec<Endpoint> = (0..100)
///     .map(|i| format!("127.0.0.1:{}", 50_000 + i).parse())
///     .collect::<Result<_, _>>()?;
/// // Client 3 of 20 connects to 10 of the 100.
/// let discovery = subset(fixed(fleet), Subsetting::aperture(10, 3, 20)?);
/// # Ok::<(), tower_lb::Error>(())
/// ```
pub fn subset<S, E>(discovery: S, subsetting: Subsetting) -> Subset<S, E>
where
    S: Stream<Item = Result<Change, E>>,
{
    Subset {
        discovery,
        selection: Selection::new(subsetting),
        ready: VecDeque::new(),
        after: None,
    }
}

/// Most changes of the fleet taken before the subset is chosen again.
const BATCH: usize = 4096;

pin_project_lite::pin_project! {
    /// The stream made by [`subset`]. Errors of the wrapped stream pass through; when it ends,
    /// this ends too (the balancer keeps the last set).
    #[derive(Debug)]
    pub struct Subset<S, E> {
        #[pin]
        discovery: S,
        selection: Selection,
        // Changes of the subset not yet passed on.
        ready: VecDeque<Change>,
        // What the wrapped stream said after the last batch (an error, its end), passed on
        // after the batch's changes.
        after: Option<Option<Result<Change, E>>>,
    }
}

impl<S, E> Stream for Subset<S, E>
where
    S: Stream<Item = Result<Change, E>>,
{
    type Item = Result<Change, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(change) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(change)));
            }
            if let Some(after) = this.after.take() {
                return Poll::Ready(after);
            }
            // Take what the wrapped stream has ready (up to a batch), then choose once.
            let mut pending = false;
            for _ in 0..BATCH {
                match this.discovery.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(change))) => this.selection.apply(change, this.ready),
                    Poll::Ready(other) => {
                        *this.after = Some(other);
                        break;
                    }
                    Poll::Pending => {
                        pending = true;
                        break;
                    }
                }
            }
            this.selection.reselect(this.ready);
            if pending && this.ready.is_empty() {
                return Poll::Pending;
            }
        }
    }
}
