//! A fixed-size latency histogram: recording never allocates, so a soak run's own
//! bookkeeping does not grow with the number of calls.

use std::time::Duration;

/// Values below this many microseconds get a bucket each.
const LINEAR: u64 = 256;
/// Sub-buckets per power of two above [`LINEAR`]: a bucket is at most 1/128 (0.8 %) wide.
const SUB: u64 = 128;
/// Powers of two covered above [`LINEAR`]: up to 2^25 µs (33 s), beyond every call bound.
const OCTAVES: u64 = 17;
const BUCKETS: usize = (LINEAR + SUB * OCTAVES) as usize;

/// Latencies in microseconds, to within 0.8 %.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    pub(crate) fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[index(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The `q` quantile (0 ..= 1), as the lower bound of its bucket; `None` when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_micros(lower_bound(i).min(self.max_us)));
            }
        }
        Some(Duration::from_micros(self.max_us))
    }

    pub(crate) fn max(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_micros(self.max_us))
    }
}

fn index(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    // `us >> shift` falls in [SUB, 2 * SUB).
    let shift = u64::from(63 - us.leading_zeros()) - SUB.trailing_zeros() as u64;
    let octave = shift - 1; // LINEAR = 2 * SUB: the first octave above it has shift 1
    if octave >= OCTAVES {
        return BUCKETS - 1;
    }
    (LINEAR + octave * SUB + ((us >> shift) - SUB)) as usize
}

fn lower_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let octave = (index - LINEAR) / SUB;
    let sub = (index - LINEAR) % SUB;
    (SUB + sub) << (octave + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for us in [
            0,
            1,
            255,
            256,
            257,
            511,
            512,
            1000,
            20_000,
            1 << 24,
            (1 << 25) - 1,
        ] {
            let i = index(us);
            assert!(i >= last, "{us}");
            last = i;
            let low = lower_bound(i);
            assert!(low <= us && us - low <= us / 128 + 1, "{us} -> {low}");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=1000 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).unwrap().as_micros() as i64;
        let p99 = h.quantile(0.99).unwrap().as_micros() as i64;
        assert!((p50 - 500).abs() <= 4, "{p50}");
        assert!((p99 - 990).abs() <= 8, "{p99}");
        assert_eq!(h.max(), Some(Duration::from_micros(1000)));
    }
}
