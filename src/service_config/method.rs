//! `methodConfig` and `retryThrottling` (the gRPC service config spec; A6 for the retry and
//! hedging policies) → [`MethodConfig`] and [`RetryThrottling`].

use serde_json::{Map, Value};
use tonic::Code;

use super::value::{
    boolean, duration, error, field, join, non_negative_float, object, show, string, uint,
};
use crate::error::Error;
use crate::method_config::{HedgingPolicy, MethodConfig, MethodName, RetryPolicy, RetryThrottling};

const U32: u64 = u32::MAX as u64;

/// The list at `methodConfig`.
pub(super) fn parse_list(v: &Value, path: &str) -> Result<Vec<MethodConfig>, Error> {
    let list = v
        .as_array()
        .ok_or_else(|| error(path, format!("expected a list, got {}", show(v))))?;
    list.iter()
        .enumerate()
        .map(|(i, entry)| parse_one(entry, &format!("{path}[{i}]")))
        .collect()
}

fn parse_one(v: &Value, path: &str) -> Result<MethodConfig, Error> {
    let obj = object(v, path)?;
    let at = |name: &str| join(path, name);
    let names = match field(obj, "name") {
        Some(v) => names(v, &at("name"))?,
        None => Vec::new(),
    };
    let mut config = MethodConfig::new(names);
    if let Some(v) = field(obj, "timeout") {
        config = config.timeout(duration(v, &at("timeout"))?);
    }
    if let Some(v) = field(obj, "waitForReady") {
        config = config.wait_for_ready(boolean(v, &at("waitForReady"))?);
    }
    if let Some(v) = field(obj, "maxRequestMessageBytes") {
        config =
            config.max_request_message_bytes(uint(v, &at("maxRequestMessageBytes"), U32)? as u32);
    }
    if let Some(v) = field(obj, "maxResponseMessageBytes") {
        config =
            config.max_response_message_bytes(uint(v, &at("maxResponseMessageBytes"), U32)? as u32);
    }
    let retry = field(obj, "retryPolicy");
    let hedging = field(obj, "hedgingPolicy");
    if retry.is_some() && hedging.is_some() {
        return Err(error(
            path,
            "has both a retryPolicy and a hedgingPolicy; a method may have one",
        ));
    }
    if let Some(v) = retry {
        config = config.retry_policy(retry_policy(v, &at("retryPolicy"))?);
    }
    if let Some(v) = hedging {
        config = config.hedging_policy(hedging_policy(v, &at("hedgingPolicy"))?);
    }
    config.validate(&format!("service config: {path}"))?;
    Ok(config)
}

/// `name`: a list of `{"service": ..., "method": ...}`, either part optional.
fn names(v: &Value, path: &str) -> Result<Vec<MethodName>, Error> {
    let list = v
        .as_array()
        .ok_or_else(|| error(path, format!("expected a list of names, got {}", show(v))))?;
    let mut names = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let obj = object(entry, &at)?;
        let part = |name: &str| match field(obj, name) {
            Some(v) => string(v, &join(&at, name)),
            None => Ok(""),
        };
        let (service, method) = (part("service")?, part("method")?);
        if service.is_empty() && !method.is_empty() {
            return Err(error(&at, format!("method {method:?} needs its service")));
        }
        names.push(MethodName::method(service, method));
    }
    Ok(names)
}

/// A field that must be there.
fn required<'a>(obj: &'a Map<String, Value>, name: &str, path: &str) -> Result<&'a Value, Error> {
    field(obj, name).ok_or_else(|| error(&join(path, name), "required"))
}

fn retry_policy(v: &Value, path: &str) -> Result<RetryPolicy, Error> {
    let obj = object(v, path)?;
    let at = |name: &str| join(path, name);
    let attempts = max_attempts(required(obj, "maxAttempts", path)?, &at("maxAttempts"))?;
    let initial = duration(
        required(obj, "initialBackoff", path)?,
        &at("initialBackoff"),
    )?;
    let max = duration(required(obj, "maxBackoff", path)?, &at("maxBackoff"))?;
    let multiplier = non_negative_float(
        required(obj, "backoffMultiplier", path)?,
        &at("backoffMultiplier"),
    )?;
    for (name, zero) in [
        ("initialBackoff", initial.is_zero()),
        ("maxBackoff", max.is_zero()),
        ("backoffMultiplier", multiplier == 0.0),
    ] {
        if zero {
            return Err(error(&at(name), "must be above 0"));
        }
    }
    let codes = status_codes(
        required(obj, "retryableStatusCodes", path)?,
        &at("retryableStatusCodes"),
    )?;
    if codes.is_empty() {
        return Err(error(
            &at("retryableStatusCodes"),
            "must name at least one code",
        ));
    }
    Ok(RetryPolicy::new(attempts, codes)
        .initial_backoff(initial)
        .max_backoff(max)
        .backoff_multiplier(multiplier))
}

fn hedging_policy(v: &Value, path: &str) -> Result<HedgingPolicy, Error> {
    let obj = object(v, path)?;
    let at = |name: &str| join(path, name);
    let attempts = max_attempts(required(obj, "maxAttempts", path)?, &at("maxAttempts"))?;
    let delay = match field(obj, "hedgingDelay") {
        Some(v) => duration(v, &at("hedgingDelay"))?,
        None => std::time::Duration::ZERO,
    };
    let codes = match field(obj, "nonFatalStatusCodes") {
        Some(v) => status_codes(v, &at("nonFatalStatusCodes"))?,
        None => Vec::new(),
    };
    Ok(HedgingPolicy::new(attempts, delay).non_fatal_status_codes(codes))
}

/// `maxAttempts`: 2 or more; above 5 is 5 (A6).
fn max_attempts(v: &Value, path: &str) -> Result<u32, Error> {
    let n = uint(v, path, U32)?;
    if n < 2 {
        return Err(error(path, format!("must be 2 or more, got {}", show(v))));
    }
    Ok(n as u32)
}

/// A list of status codes, by name (`"UNAVAILABLE"`, any case) or number (proto JSON enums).
fn status_codes(v: &Value, path: &str) -> Result<Vec<Code>, Error> {
    let list = v.as_array().ok_or_else(|| {
        error(
            path,
            format!("expected a list of status codes, got {}", show(v)),
        )
    })?;
    let mut codes = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let code = match v {
            Value::String(name) => code_named(name),
            Value::Number(_) => uint(v, &at, 16).ok().map(|n| Code::from_i32(n as i32)),
            _ => None,
        }
        .ok_or_else(|| error(&at, format!("unknown status code {}", show(v))))?;
        if code == Code::Ok {
            return Err(error(&at, "OK is not a failure"));
        }
        codes.push(code);
    }
    Ok(codes)
}

/// `retryThrottling`.
pub(super) fn throttling(v: &Value, path: &str) -> Result<RetryThrottling, Error> {
    let obj = object(v, path)?;
    let at = |name: &str| join(path, name);
    let max_tokens = uint(required(obj, "maxTokens", path)?, &at("maxTokens"), U32)?;
    if !(1..=1000).contains(&max_tokens) {
        return Err(error(
            &at("maxTokens"),
            format!("must be within 1 ..= 1000, got {max_tokens}"),
        ));
    }
    let ratio = non_negative_float(required(obj, "tokenRatio", path)?, &at("tokenRatio"))?;
    if ratio < 0.001 {
        return Err(error(
            &at("tokenRatio"),
            format!("must be at least 0.001, got {ratio}"),
        ));
    }
    Ok(RetryThrottling::new(max_tokens as u32, ratio))
}

/// A gRPC status code by its canonical name (`"UNAVAILABLE"`, any case) — as the service
/// config writes them.
fn code_named(name: &str) -> Option<Code> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    let i = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))?;
    Some(Code::from_i32(i as i32))
}
