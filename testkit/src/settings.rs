//! Settings the examples read from the environment (`CHURN_N=2000`, `TESTBED_ARMS=Prequal`):
//! a value that is missing or does not parse leaves the default.

use std::str::FromStr;

/// `name` parsed, or `default`.
pub fn or<T: FromStr>(name: &str, default: T) -> T {
    parsed(name).unwrap_or(default)
}

/// `name` parsed, if set and valid.
pub fn parsed<T: FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// `name` as a comma-separated list (items trimmed, empty ones dropped), if set.
pub fn list(name: &str) -> Option<Vec<String>> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}
