//! Reading a call's own deadline from its `grpc-timeout` header, so a call never waits for an
//! endpoint longer than its caller allowed.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The `grpc-timeout` of the request (`1..=8` ASCII digits and a unit `H M S m u n`), or `None`
/// if it is absent or malformed.
pub(crate) fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(&GRPC_TIMEOUT)?.as_bytes();
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n.checked_mul(3600)?),
        b"M" => Duration::from_secs(n.checked_mul(60)?),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `timeout` as a `grpc-timeout` value: at most 8 digits, in the finest unit that fits,
/// rounded up so the server's deadline is never before the client's.
pub(crate) fn encode_grpc_timeout(timeout: Duration) -> http::HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let units: [(u128, &str); 6] = [
        (1, "n"),
        (1_000, "u"),
        (1_000_000, "m"),
        (1_000_000_000, "S"),
        (60_000_000_000, "M"),
        (3_600_000_000_000, "H"),
    ];
    let (value, unit) = units
        .iter()
        .map(|&(per, unit)| (nanos.div_ceil(per), unit))
        .find(|&(value, _)| value <= MAX)
        .unwrap_or((MAX, "H"));
    let text = format!("{value}{unit}");
    // Digits and one ASCII letter: always a valid header value.
    http::HeaderValue::from_str(&text).unwrap_or(http::HeaderValue::from_static("99999999H"))
}

/// Gives the request a `grpc-timeout` no longer than `timeout`: servers see the deadline the
/// client enforces. `own`, the request's `grpc-timeout` as already read, is kept if shorter.
pub(crate) fn cap_grpc_timeout(headers: &mut HeaderMap, own: Option<Duration>, timeout: Duration) {
    if own.is_none_or(|own| own > timeout) {
        headers.insert(GRPC_TIMEOUT.clone(), encode_grpc_timeout(timeout));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", v.parse().unwrap());
        grpc_timeout(&h)
    }

    #[test]
    fn units_and_garbage() {
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "m", "123456789m", "12x", "-1S", "1.5S", "S1"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn encoding_fits_eight_digits_and_never_shortens() {
        for (timeout, text) in [
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(1), "1n"),
            (Duration::from_millis(300), "300000u"),
            (Duration::from_secs(2), "2000000u"),
            (Duration::from_secs(200), "200000m"),
            (Duration::from_nanos(100_000_001), "100001u"),
            (Duration::from_secs(86_400 * 365 * 100), "52560000M"),
            (Duration::MAX, "99999999H"),
        ] {
            let value = encode_grpc_timeout(timeout);
            assert_eq!(value.to_str().unwrap(), text, "{timeout:?}");
            let mut h = HeaderMap::new();
            h.insert("grpc-timeout", value);
            let back = grpc_timeout(&h).unwrap();
            assert!(back >= timeout.min(Duration::from_secs(99_999_999 * 3600)));
        }
    }

    #[test]
    fn a_shorter_timeout_on_the_request_is_kept() {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", "100m".parse().unwrap());
        let own = grpc_timeout(&h);
        cap_grpc_timeout(&mut h, own, Duration::from_secs(1));
        assert_eq!(h["grpc-timeout"], "100m");
        let own = grpc_timeout(&h);
        cap_grpc_timeout(&mut h, own, Duration::from_millis(10));
        assert_eq!(grpc_timeout(&h), Some(Duration::from_millis(10)));
        let mut none = HeaderMap::new();
        cap_grpc_timeout(&mut none, None, Duration::from_secs(1));
        assert_eq!(grpc_timeout(&none), Some(Duration::from_secs(1)));
    }
}
