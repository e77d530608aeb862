//! The discovery stream: resolve, publish the diff, sleep until the next resolution (or a
//! refresh), repeat.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use futures_util::task::AtomicWaker;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::time::{Instant, Sleep};

use super::error::{DnsError, DnsErrorKind};
use super::resolve::{Outcome, Resolver, Round, TargetAddresses};
use super::tracker::Tracker;
use crate::discover::Change;

/// Steps one `poll_next` takes before it yields to the executor; each step makes progress.
const MAX_STEPS_PER_POLL: usize = 8;

/// The stream made by [`Dns::build`](super::Dns::build): endpoint changes from DNS, and an
/// `Err` item for each resolution that changed nothing because it failed or found nothing.
///
/// It never ends. It is `Send`, `Unpin` and `'static`; pass it to
/// [`Builder::build`](crate::Builder::build). It must be polled inside a tokio runtime.
pub struct DnsDiscovery {
    resolver: Arc<Resolver>,
    tracker: Tracker,
    round_limit: Duration,
    targets: TargetAddresses,
    out: VecDeque<Result<Change, DnsError>>,
    round: Option<Pin<Box<dyn Future<Output = Round> + Send>>>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// When the next resolution is due (`None`: at once).
    next_at: Option<Instant>,
    backing_off: bool,
    last_start: Option<Instant>,
    signal: Arc<Signal>,
    rng: SmallRng,
}

impl fmt::Debug for DnsDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsDiscovery")
            .field("name", &self.tracker.name())
            .field("resolving", &self.round.is_some())
            .field("next_at", &self.next_at)
            .field("backing_off", &self.backing_off)
            .finish_non_exhaustive()
    }
}

/// A refresh request and the stream's waker.
#[derive(Debug, Default)]
struct Signal {
    requested: AtomicBool,
    waker: AtomicWaker,
}

/// Asks a [`DnsDiscovery`] stream to resolve now; cheap to clone.
///
/// Meant for "every endpoint has failed": the records may have moved. Requests are
/// rate-limited: a resolution asked for this way starts no sooner than the lower TTL bound
/// after the previous one started, also while the stream is backing off after failed or empty
/// resolutions — that is when every call is failing and a refresh matters most; the limit
/// keeps it to one query per lower bound however often it is asked. Many requests in between
/// make one resolution. A request after the stream is dropped does nothing.
///
/// ```no_run
/// use tower_lb::discover::dns::Dns;
/// let discovery = Dns::srv("_grpc._tcp.echo.default.svc.cluster.local.").build()?;
/// let refresher = discovery.refresher();
/// // ... later, when every endpoint has failed:
/// refresher.refresh();
/// # Ok::<(), tower_lb::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Refresher {
    signal: Arc<Signal>,
}

impl Refresher {
    /// Asks for a resolution now (rate-limited, see above).
    pub fn refresh(&self) {
        self.signal.requested.store(true, Ordering::Release);
        self.signal.waker.wake();
    }
}

impl DnsDiscovery {
    pub(crate) fn new(resolver: Arc<Resolver>, tracker: Tracker, round_limit: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (Arc::as_ptr(&resolver) as usize as u64);
        DnsDiscovery {
            resolver,
            tracker,
            round_limit,
            targets: TargetAddresses::new(),
            out: VecDeque::new(),
            round: None,
            sleep: None,
            next_at: None,
            backing_off: false,
            last_start: None,
            signal: Arc::default(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A handle that makes this stream resolve again now (rate-limited).
    pub fn refresher(&self) -> Refresher {
        Refresher {
            signal: self.signal.clone(),
        }
    }

    fn start(&mut self, now: Instant) {
        self.last_start = Some(now);
        let limit = self.round_limit;
        let resolve = self.resolver.clone().resolve(self.targets.clone());
        self.round = Some(Box::pin(async move {
            match tokio::time::timeout(limit, resolve).await {
                Ok(round) => round,
                Err(_) => Round {
                    outcome: Outcome::Failed {
                        kind: DnsErrorKind::Timeout,
                        detail: format!("the resolution took longer than {limit:?}"),
                    },
                    targets: None,
                },
            }
        }));
    }

    fn finish(&mut self, round: Round) {
        if let Some(targets) = round.targets {
            self.targets = targets;
        }
        let now = Instant::now();
        let next = self
            .tracker
            .on_round(round.outcome, now, self.rng.random::<f64>());
        self.out.extend(next.items);
        self.next_at = Some(now + next.wait);
        self.backing_off = next.backing_off;
    }

    /// Brings the next resolution forward if a refresh was asked for and may run.
    fn take_refresh(&mut self, now: Instant) {
        // Backing off or not: the lower TTL bound since the last start is the limit.
        if !self.signal.requested.swap(false, Ordering::AcqRel) {
            return;
        }
        let min_gap = self.tracker.schedule().min_ttl;
        let earliest = self
            .last_start
            .map_or(now, |start| start + min_gap)
            .max(now);
        self.next_at = Some(self.next_at.map_or(earliest, |at| at.min(earliest)));
    }
}

impl Stream for DnsDiscovery {
    type Item = Result<Change, DnsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.signal.waker.register(cx.waker());
        for _ in 0..MAX_STEPS_PER_POLL {
            if let Some(item) = this.out.pop_front() {
                return Poll::Ready(Some(item));
            }
            if let Some(round) = this.round.as_mut() {
                let round = ready!(round.as_mut().poll(cx));
                this.round = None;
                this.finish(round);
                continue;
            }
            let now = Instant::now();
            this.take_refresh(now);
            let due = this.next_at.unwrap_or(now);
            if due > now {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if sleep.deadline() != due {
                    sleep.as_mut().reset(due);
                }
                ready!(sleep.as_mut().poll(cx));
            }
            this.start(Instant::now());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_fits_the_balancer_and_the_refresher_travels() {
        fn stream<T: Stream + Send + Unpin + 'static>() {}
        fn handle<T: Clone + Send + Sync + 'static>() {}
        stream::<DnsDiscovery>();
        handle::<Refresher>();
    }
}
