//! gRPC A50's outlier detection object → [`OutlierDetection`].

use serde_json::Value;

use super::value::{duration, error, field, join, object, uint};
use crate::error::Error;
use crate::health::{FailurePercentage, OutlierDetection, SuccessRate};

const U32: u64 = u32::MAX as u64;

/// The A50 fields of `v` (an object at `path`; other fields, such as `childPolicy`, are the
/// caller's). A50 semantics: a detector that is absent is off, and there is no
/// consecutive-failures detector, so ours is off too.
pub(super) fn parse(v: &Value, path: &str) -> Result<OutlierDetection, Error> {
    let obj = object(v, path)?;
    let at = |name: &str| join(path, name);
    let mut od = OutlierDetection::default()
        .consecutive_failures(None)
        .success_rate(None)
        .failure_percentage(None);
    if let Some(v) = field(obj, "interval") {
        let interval = duration(v, &at("interval"))?;
        if interval.is_zero() {
            return Err(error(&at("interval"), "must be above 0"));
        }
        od = od.interval(interval);
    }
    if let Some(v) = field(obj, "baseEjectionTime") {
        od = od.base_ejection_time(duration(v, &at("baseEjectionTime"))?);
    }
    if let Some(v) = field(obj, "maxEjectionTime") {
        od = od.max_ejection_time(duration(v, &at("maxEjectionTime"))?);
    }
    if let Some(v) = field(obj, "maxEjectionPercent") {
        od = od.max_ejection_percent(percent(v, &at("maxEjectionPercent"))?);
    }
    if let Some(v) = field(obj, "successRateEjection") {
        let path = at("successRateEjection");
        let obj = object(v, &path)?;
        let at = |name: &str| join(&path, name);
        let mut sr = SuccessRate::default();
        if let Some(v) = field(obj, "stdevFactor") {
            // Thousandths: 1900 is 1.9 standard deviations.
            sr = sr.stdev_factor(uint(v, &at("stdevFactor"), U32)? as f64 / 1000.0);
        }
        if let Some(v) = field(obj, "enforcementPercentage") {
            sr = sr.enforcement_percent(percent(v, &at("enforcementPercentage"))?);
        }
        if let Some(v) = field(obj, "minimumHosts") {
            sr = sr.minimum_hosts(uint(v, &at("minimumHosts"), U32)? as u32);
        }
        if let Some(v) = field(obj, "requestVolume") {
            sr = sr.request_volume(uint(v, &at("requestVolume"), U32)? as u32);
        }
        od = od.success_rate(Some(sr));
    }
    if let Some(v) = field(obj, "failurePercentageEjection") {
        let path = at("failurePercentageEjection");
        let obj = object(v, &path)?;
        let at = |name: &str| join(&path, name);
        let mut fp = FailurePercentage::default();
        if let Some(v) = field(obj, "threshold") {
            fp = fp.threshold(percent(v, &at("threshold"))?);
        }
        if let Some(v) = field(obj, "enforcementPercentage") {
            fp = fp.enforcement_percent(percent(v, &at("enforcementPercentage"))?);
        }
        if let Some(v) = field(obj, "minimumHosts") {
            fp = fp.minimum_hosts(uint(v, &at("minimumHosts"), U32)? as u32);
        }
        if let Some(v) = field(obj, "requestVolume") {
            fp = fp.request_volume(uint(v, &at("requestVolume"), U32)? as u32);
        }
        od = od.failure_percentage(Some(fp));
    }
    Ok(od)
}

/// A percentage, 0 ..= 100.
fn percent(v: &Value, path: &str) -> Result<u8, Error> {
    Ok(uint(v, path, 100)? as u8)
}
