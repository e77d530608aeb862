//! Reading proto-JSON values out of a parsed document, each error naming the field's path.
//!
//! Proto JSON (what gRPC's service config is) writes integers as numbers or strings (64-bit
//! ones usually as strings), durations as strings of seconds with up to nine decimals
//! (`"10s"`, `"0.5s"`, `"1.000000001s"`), and treats `null` as "not set".

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::Error;

/// An error for the field at `path`.
pub(super) fn error(path: &str, what: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("service config: {path}: {what}"))
}

/// A value as JSON, cut short if long, for error messages.
pub(super) fn show(v: &Value) -> String {
    const MAX: usize = 60;
    let s = v.to_string();
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// `path.name`, or `name` at the top.
pub(super) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

pub(super) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| error(path, format!("expected an object, got {}", show(v))))
}

/// A field of an object; `null` counts as absent, as in proto JSON.
pub(super) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

pub(super) fn boolean(v: &Value, path: &str) -> Result<bool, Error> {
    v.as_bool()
        .ok_or_else(|| error(path, format!("expected true or false, got {}", show(v))))
}

pub(super) fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, Error> {
    v.as_str()
        .ok_or_else(|| error(path, format!("expected a string, got {}", show(v))))
}

/// An unsigned integer up to `max`, as a number (`1024`, also `1024.0` or `1e3`) or a string
/// of digits (`"1024"`). Above `max` is an error (pass `u64::MAX` to clamp instead: numbers
/// beyond u64 then read as `u64::MAX`).
pub(super) fn uint(v: &Value, path: &str, max: u64) -> Result<u64, Error> {
    let expected = || {
        error(
            path,
            format!("expected an unsigned integer, got {}", show(v)),
        )
    };
    // Beyond u64 saturates; the range check below then decides.
    let n = match v {
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => u,
            (None, Some(f)) if f.fract() == 0.0 && f >= 0.0 => f as u64,
            _ => return Err(expected()),
        },
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().unwrap_or(u64::MAX)
        }
        _ => return Err(expected()),
    };
    if n > max {
        return Err(error(
            path,
            format!("{} is out of range (at most {max})", show(v)),
        ));
    }
    Ok(n)
}

/// A finite number at least 0, as a number or a numeric string.
pub(super) fn non_negative_float(v: &Value, path: &str) -> Result<f64, Error> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match f {
        Some(f) if f.is_finite() && f >= 0.0 => Ok(f),
        _ => Err(error(
            path,
            format!("expected a finite number >= 0, got {}", show(v)),
        )),
    }
}

/// The most seconds a proto `Duration` holds (10,000 years).
const MAX_SECONDS: u64 = 315_576_000_000;

/// A non-negative proto-JSON duration: `"10s"`, `"0.5s"`, `"1.000000001s"`.
pub(super) fn duration(v: &Value, path: &str) -> Result<Duration, Error> {
    let bad = || {
        error(
            path,
            format!(
                "expected a duration such as \"10s\" or \"0.5s\", got {}",
                show(v)
            ),
        )
    };
    let s = v.as_str().ok_or_else(bad)?;
    if s.starts_with('-') {
        return Err(error(
            path,
            format!("must not be negative, got {}", show(v)),
        ));
    }
    let body = s.strip_suffix('s').ok_or_else(bad)?;
    let (secs, frac) = match body.split_once('.') {
        Some((secs, frac)) => (secs, Some(frac)),
        None => (body, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || frac.is_some_and(|f| !digits(f) || f.len() > 9) {
        return Err(bad());
    }
    let secs: u64 = secs
        .parse()
        .ok()
        .filter(|&s| s <= MAX_SECONDS)
        .ok_or_else(|| {
            error(
                path,
                format!("{} is out of range (at most {MAX_SECONDS}s)", show(v)),
            )
        })?;
    let nanos = frac.map_or(0, |f| {
        // Right-pad to nine digits: "5" is 500,000,000 ns.
        f.bytes()
            .chain(std::iter::repeat(b'0'))
            .take(9)
            .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'))
    });
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        let d = |s: &str| duration(&json!(s), "d");
        assert_eq!(d("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(d("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(d("1.000000001s").unwrap(), Duration::new(1, 1));
        assert_eq!(d("0s").unwrap(), Duration::ZERO);
        assert_eq!(
            d("315576000000s").unwrap(),
            Duration::from_secs(MAX_SECONDS)
        );
        for bad in [
            "",
            "s",
            "10",
            "1.s",
            ".5s",
            "1.0000000001s",
            "1e3s",
            "NaNs",
            "10ms",
            " 1s",
            "+1s",
            "１s",
        ] {
            let e = d(bad).unwrap_err().to_string();
            assert!(e.contains("d: expected a duration"), "{bad:?}: {e}");
        }
        assert!(d("-1s").unwrap_err().to_string().contains("negative"));
        assert!(
            d("315576000001s")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(
            d("99999999999999999999999s")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(duration(&json!(10), "d").is_err());
    }

    #[test]
    fn unsigned_integers() {
        let u = |v: Value| uint(&v, "n", u64::from(u32::MAX));
        assert_eq!(u(json!(1024)).unwrap(), 1024);
        assert_eq!(u(json!("1024")).unwrap(), 1024);
        assert_eq!(u(json!(1e3)).unwrap(), 1000);
        assert_eq!(u(json!(0)).unwrap(), 0);
        for bad in [
            json!(-1),
            json!(1.5),
            json!("abc"),
            json!(""),
            json!("-1"),
            json!(true),
            json!([]),
        ] {
            let e = u(bad.clone()).unwrap_err().to_string();
            assert!(e.contains("n: expected an unsigned integer"), "{bad}: {e}");
        }
        for big in [
            json!(4294967296u64),
            json!("18446744073709551616"),
            json!(1e300),
        ] {
            let e = u(big.clone()).unwrap_err().to_string();
            assert!(e.contains("out of range"), "{big}: {e}");
        }
        let e = u(json!("abc")).unwrap_err().to_string();
        assert_eq!(
            e,
            "tower-lb: invalid configuration: service config: n: expected an unsigned integer, got \"abc\""
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "é".repeat(100);
        let shown = show(&json!(long));
        assert!(shown.len() < 70 && shown.ends_with("..."), "{shown}");
    }
}
