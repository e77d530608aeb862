//! The retry budget: how many transparent retries (a request handed back unsent, a failed
//! dial) the balancer may make, as a share of its calls plus a small floor, over a sliding
//! window. In an outage where every connection refuses requests, retries then add at most that
//! share to the load instead of multiplying it by the retry count. Finagle's `RetryBudget` and
//! Envoy's retry budgets work the same way; the defaults are Finagle's.
//!
//! Calls are counted per balancer clone and handed over in batches (see `Balancer::call`), so
//! the request path touches this shared state once per [`DEPOSIT_BATCH`] calls; a retry takes
//! its lock, which is fine: retries are the rare path.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// Calls a clone counts before handing them to the budget (and on drop).
pub(crate) const DEPOSIT_BATCH: u32 = 64;

/// Slots of the sliding window.
const SLOTS: usize = 10;

/// How many transparent retries a balancer may make. Set with
/// [`Builder::retry_budget`](crate::Builder::retry_budget).
///
/// Within any `window`, retries may number at most `ratio` × the calls made in it, plus
/// `min_per_second` × the window's length in seconds. A retry beyond the budget is not made:
/// the call fails with `UNAVAILABLE` ([`Error::RetryBudgetExhausted`]).
///
/// Default: 20 % of calls, 10 retries a second, over 10 s (Finagle's defaults).
///
/// ```
/// use std::time::Duration;
/// use tower_lb::{Balancer, RetryBudget};
/// let builder = Balancer::builder().retry_budget(
///     RetryBudget::default()
///         .ratio(0.1)
///         .min_per_second(5)
///         .window(Duration::from_secs(30)),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    ratio: f64,
    min_per_second: u32,
    window: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            ratio: 0.2,
            min_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

impl RetryBudget {
    /// Retries allowed per call made (0 ..= 10; default 0.2).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// Retries allowed every second whatever the call count, so a client making few calls
    /// can still retry (default 10).
    pub fn min_per_second(mut self, retries: u32) -> Self {
        self.min_per_second = retries;
        self
    }

    /// How far back calls and retries count (1 s ..= 1 h; default 10 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(0.0..=10.0).contains(&self.ratio) {
            return Err(Error::InvalidConfig(format!(
                "retry budget ratio must be within 0..=10 (retries per call), got {}",
                self.ratio
            )));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.window) {
            return Err(Error::InvalidConfig(format!(
                "retry budget window must be within 1 s ..= 1 h, got {:?}",
                self.window
            )));
        }
        Ok(())
    }
}

/// A balancer's budget at run time: calls and retries per slot of the window.
#[derive(Debug)]
pub(crate) struct Budget {
    config: RetryBudget,
    slot_len: Duration,
    origin: Instant,
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    slots: [Slot; SLOTS],
    retried: u64,
    refused: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    /// Which slot of time since `origin` this is.
    index: u64,
    calls: u64,
    retries: u64,
}

/// The budget's counters since the balancer was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BudgetTotals {
    pub(crate) retried: u64,
    pub(crate) refused: u64,
}

impl Budget {
    pub(crate) fn new(config: RetryBudget) -> Self {
        Budget {
            config,
            slot_len: config.window / SLOTS as u32,
            origin: Instant::now(),
            ring: Mutex::new(Ring::default()),
        }
    }

    /// Counts `calls` made.
    pub(crate) fn deposit(&self, calls: u32) {
        let now = self.slot_index(Instant::now());
        let mut ring = self.lock();
        ring.slot(now).calls += u64::from(calls);
    }

    /// Takes one retry from the budget; `false` if it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        let now = self.slot_index(Instant::now());
        let mut ring = self.lock();
        let (calls, retries) = ring
            .slots
            .iter()
            .filter(|s| s.index + (SLOTS as u64) > now && s.index <= now)
            .fold((0u64, 0u64), |(c, r), s| (c + s.calls, r + s.retries));
        let floor = f64::from(self.config.min_per_second) * self.config.window.as_secs_f64();
        let allowed = floor + self.config.ratio * calls as f64;
        if (retries as f64) < allowed {
            ring.slot(now).retries += 1;
            ring.retried += 1;
            true
        } else {
            ring.refused += 1;
            false
        }
    }

    pub(crate) fn totals(&self) -> BudgetTotals {
        let ring = self.lock();
        BudgetTotals {
            retried: ring.retried,
            refused: ring.refused,
        }
    }

    fn slot_index(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        u64::try_from(elapsed.as_nanos() / self.slot_len.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // The ring holds plain counters: a panic elsewhere cannot leave it inconsistent.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Ring {
    /// The slot for time `index`, emptied first if it last held an older time.
    fn slot(&mut self, index: u64) -> &mut Slot {
        let slot = &mut self.slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Slot {
                index,
                ..Slot::default()
            };
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, floor: u32) -> Budget {
        Budget::new(
            RetryBudget::default()
                .ratio(ratio)
                .min_per_second(floor)
                .window(Duration::from_secs(10)),
        )
    }

    fn retries_allowed(b: &Budget) -> u64 {
        (0..100_000).take_while(|_| b.withdraw()).count() as u64
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_alone_allows_its_rate_over_the_window() {
        let b = budget(0.2, 10);
        assert_eq!(retries_allowed(&b), 100, "10 a second over 10 s");
        assert_eq!(
            b.totals(),
            BudgetTotals {
                retried: 100,
                refused: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calls_add_their_share() {
        let b = budget(0.2, 0);
        b.deposit(1000);
        assert_eq!(retries_allowed(&b), 200);
        b.deposit(50);
        assert_eq!(retries_allowed(&b), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_and_retries_leave_the_window() {
        let b = budget(0.5, 0);
        b.deposit(100);
        assert_eq!(retries_allowed(&b), 50);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            retries_allowed(&b),
            0,
            "the calls still count, so do the retries"
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        b.deposit(10);
        assert_eq!(
            retries_allowed(&b),
            5,
            "the old calls and retries left the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_budget_allows_nothing() {
        let b = budget(0.0, 0);
        b.deposit(u32::MAX);
        assert!(!b.withdraw());
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(RetryBudget::default().validate().is_ok());
        assert!(RetryBudget::default().ratio(-0.1).validate().is_err());
        assert!(RetryBudget::default().ratio(f64::NAN).validate().is_err());
        assert!(RetryBudget::default().ratio(11.0).validate().is_err());
        assert!(
            RetryBudget::default()
                .window(Duration::from_millis(10))
                .validate()
                .is_err()
        );
        assert!(
            RetryBudget::default()
                .window(Duration::MAX)
                .validate()
                .is_err()
        );
    }
}
