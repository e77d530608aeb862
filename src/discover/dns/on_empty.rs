//! What an empty answer does to the endpoint set.

use std::time::Duration;

/// What to do with the endpoint set when DNS answers `NXDOMAIN`, no records, or only unusable
/// records.
///
/// ```
/// use std::time::Duration;
/// use tower_lb::discover::dns::OnEmpty;
/// assert_eq!(OnEmpty::default(), OnEmpty::KeepFor(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEmpty {
    /// Remove every endpoint at the first empty answer.
    Clear,
    /// Keep the last good set until an empty answer comes this long after the first one (a
    /// non-empty answer in between starts over). The default, with 60 s.
    KeepFor(Duration),
    /// Keep the last good set until a non-empty answer replaces it.
    Keep,
}

impl Default for OnEmpty {
    fn default() -> Self {
        OnEmpty::KeepFor(Duration::from_secs(60))
    }
}
