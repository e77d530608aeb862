//! The process's CPU utilisation from Linux `/proc/self/stat`: CPU time used (user + system,
//! all threads) over wall time, as a fraction of the CPUs the process may run on.

use std::time::Instant;

/// `/proc` counts CPU time in USER_HZ ticks, which Linux fixes at 100 per second for user
/// space on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's CPU time.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuSample {
    at: Instant,
    ticks: u64,
}

impl CpuSample {
    /// Reads it now; `None` where `/proc/self/stat` is missing or unreadable (not Linux).
    pub(super) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        Some(CpuSample {
            at: Instant::now(),
            ticks: parse_ticks(&stat)?,
        })
    }

    /// The utilisation between `self` and a later sample.
    pub(super) fn utilization_until(&self, later: &CpuSample) -> f64 {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if wall <= 0.0 {
            return 0.0;
        }
        later.ticks.saturating_sub(self.ticks) as f64 / TICKS_PER_SECOND / wall / cpus
    }
}

/// `utime + stime`, fields 14 and 15; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // Field 3 (state) is the first after the name: utime is 11 further on.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime() {
        let stat = "1234 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_ticks(stat), Some(300));
        assert_eq!(parse_ticks("garbage"), None);
        if cfg!(target_os = "linux") {
            assert!(CpuSample::now().is_some());
        }
    }
}
