//! `loadBalancingConfig`: the first supported policy of the list → [`Policy`] (and, for
//! `outlier_detection_experimental`, an [`OutlierDetection`]).

use std::time::Duration;

use serde_json::{Map, Value};

use super::value::{
    boolean, duration, error, field, join, non_negative_float, object, show, string, uint,
};
use crate::error::Error;
use crate::health::OutlierDetection;
use crate::policy::{HashKey, Policy, WeightedRoundRobin};

/// The gRPC policy names we map, in the order the docs list them.
pub(super) const SUPPORTED: [&str; 6] = [
    "pick_first",
    "round_robin",
    "weighted_round_robin",
    "least_request_experimental",
    "ring_hash_experimental",
    "outlier_detection_experimental",
];

/// The policy chosen from a `loadBalancingConfig` list.
pub(super) struct Chosen {
    pub(super) policy: Policy,
    /// The gRPC name of the policy that won (for `outlier_detection_experimental`, the child's).
    pub(super) name: &'static str,
    /// From `outlier_detection_experimental`.
    pub(super) outlier: Option<OutlierDetection>,
}

/// The first entry of the list at `path` whose policy we support; unknown names are skipped,
/// as gRPC does. `nested`: inside `outlier_detection_experimental`'s `childPolicy`.
pub(super) fn parse_list(v: &Value, path: &str, nested: bool) -> Result<Chosen, Error> {
    let list = v.as_array().ok_or_else(|| {
        error(
            path,
            format!("expected a list of policies, got {}", show(v)),
        )
    })?;
    let mut skipped = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let obj = object(entry, &at)?;
        let mut names = obj.keys();
        let (Some(name), None) = (names.next(), names.next()) else {
            return Err(error(
                &at,
                format!(
                    "expected exactly one policy name as the key, got {} keys",
                    obj.len()
                ),
            ));
        };
        let Some(&name) = SUPPORTED.iter().find(|s| **s == name.as_str()) else {
            skipped.push(name.as_str());
            continue;
        };
        let at = join(&at, name);
        // `{"round_robin": null}` is `{"round_robin": {}}`.
        let empty = Map::new();
        let config = match &obj[name] {
            Value::Null => &empty,
            v => object(v, &at)?,
        };
        return parse_one(name, config, &obj[name], &at, nested);
    }
    let skipped = if skipped.is_empty() {
        "the list is empty".to_owned()
    } else {
        format!("none of {skipped:?} is")
    };
    Err(error(
        path,
        format!(
            "no supported policy: {skipped} supported (tower-lb supports {})",
            SUPPORTED.join(", ")
        ),
    ))
}

fn parse_one(
    name: &'static str,
    config: &Map<String, Value>,
    raw: &Value,
    path: &str,
    nested: bool,
) -> Result<Chosen, Error> {
    let at = |field: &str| join(path, field);
    let policy = match name {
        "pick_first" => match field(config, "shuffleAddressList") {
            Some(v) if boolean(v, &at("shuffleAddressList"))? => Policy::pick_first_shuffled(),
            _ => Policy::pick_first(),
        },
        "round_robin" => Policy::round_robin(),
        "weighted_round_robin" => weighted_round_robin(config, path)?,
        "least_request_experimental" => {
            let choices = match field(config, "choiceCount") {
                Some(v) => uint(v, &at("choiceCount"), u64::from(u32::MAX))?,
                None => 2,
            };
            if choices < 2 {
                return Err(error(
                    &at("choiceCount"),
                    format!("must be at least 2, got {choices}"),
                ));
            }
            // A48: above 10 is treated as 10.
            Policy::least_request(choices.min(10) as u32)?
        }
        "ring_hash_experimental" => ring_hash(config, path)?,
        "outlier_detection_experimental" => {
            if nested {
                return Err(error(
                    path,
                    "outlier detection inside outlier detection is not supported",
                ));
            }
            let outlier = super::outlier::parse(raw, path)?;
            let child = field(config, "childPolicy")
                .ok_or_else(|| error(&at("childPolicy"), "required"))?;
            let child = parse_list(child, &at("childPolicy"), true)?;
            return Ok(Chosen {
                outlier: Some(outlier),
                ..child
            });
        }
        _ => unreachable!("only names of SUPPORTED reach here"),
    };
    Ok(Chosen {
        policy,
        name,
        outlier: None,
    })
}

/// gRPC A58's `weighted_round_robin` with its parameters; absent ones keep A58's defaults.
fn weighted_round_robin(config: &Map<String, Value>, path: &str) -> Result<Policy, Error> {
    let at = |field: &str| join(path, field);
    let mut wrr = WeightedRoundRobin::default();
    let period = |name: &str| -> Result<Option<Duration>, Error> {
        field(config, name)
            .map(|v| duration(v, &at(name)))
            .transpose()
    };
    if let Some(d) = period("blackoutPeriod")? {
        wrr = wrr.blackout_period(d);
    }
    if let Some(d) = period("weightExpirationPeriod")? {
        wrr = wrr.weight_expiration_period(d);
    }
    if let Some(d) = period("weightUpdatePeriod")? {
        wrr = wrr.weight_update_period(d);
    }
    let oob = match field(config, "enableOobLoadReport") {
        Some(v) => boolean(v, &at("enableOobLoadReport"))?,
        None => false,
    };
    let oob_period = period("oobReportingPeriod")?.unwrap_or(Duration::from_secs(10));
    wrr = wrr.out_of_band(oob, oob_period);
    if let Some(v) = field(config, "errorUtilizationPenalty") {
        let penalty = non_negative_float(v, &at("errorUtilizationPenalty"))?;
        wrr = wrr.error_utilization_penalty(penalty)?;
    }
    Ok(Policy::weighted_round_robin(wrr))
}

/// gRPC A42's defaults: 1,024 and 4,096 points.
const DEFAULT_MIN_RING: u64 = 1024;
const DEFAULT_MAX_RING: u64 = 4096;
/// A42's (and our) largest ring.
const MAX_RING: u64 = 8 * 1024 * 1024;

fn ring_hash(config: &Map<String, Value>, path: &str) -> Result<Policy, Error> {
    let at = |field: &str| join(path, field);
    // 0 is proto3's "not set"; above the largest ring is capped to it.
    let size = |name: &str, default: u64| -> Result<u64, Error> {
        Ok(match field(config, name) {
            Some(v) => match uint(v, &at(name), u64::MAX)? {
                0 => default,
                n => n.min(MAX_RING),
            },
            None => default,
        })
    };
    let min = size("minRingSize", DEFAULT_MIN_RING)?;
    let max = size("maxRingSize", DEFAULT_MAX_RING)?;
    if min > max {
        return Err(error(
            path,
            format!("minRingSize {min} is above maxRingSize {max}"),
        ));
    }
    let key = match field(config, "requestHashHeader") {
        Some(v) => {
            let header = string(v, &at("requestHashHeader"))?;
            if header.is_empty() {
                None
            } else if header.ends_with("-bin") {
                return Err(error(
                    &at("requestHashHeader"),
                    format!("{header:?} is a binary header, which cannot be a hash key (A76)"),
                ));
            } else {
                Some(HashKey::header(header).map_err(|_| {
                    error(
                        &at("requestHashHeader"),
                        format!("{} is not a valid header name", show(v)),
                    )
                })?)
            }
        }
        None => None,
    };
    // Without a header, no request has a key: every call is balanced by the fallback.
    let key = key.unwrap_or_else(|| HashKey::custom(|_| None));
    Policy::ring_hash(key).ring_size(min, max)
}
