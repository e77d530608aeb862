//! [`LoadReport`]: the fields of `xds.data.orca.v3.OrcaLoadReport` that balancing reads,
//! encoded and decoded by hand.
//!
//! Field numbers from cncf/xds `xds/data/orca/v3/orca_load_report.proto`: 1
//! `cpu_utilization`, 2 `mem_utilization`, 3 `rps` (deprecated, uint64), 6 `rps_fractional`,
//! 7 `eps`, 8 `named_metrics` (`map<string, double>`), 9 `application_utilization`. The other
//! fields (4 `request_cost`, 5 `utilization`) are skipped on decode and never written. A
//! decoder of our own keeps the client free of a protobuf runtime and of allocation: the
//! report is read from a stack buffer.

use std::fmt;

/// The named metric that carries the server's requests in flight.
pub const IN_FLIGHT: &str = "in_flight";
/// The named metric that carries the server's mean latency, in seconds.
pub const LATENCY: &str = "latency_seconds";

/// One ORCA load report: what a server says about its load (`xds.data.orca.v3.OrcaLoadReport`,
/// the fields balancing reads).
///
/// A zero field is a field the server did not send (proto3). Utilisations are fractions
/// (1.0 = fully used; CPU may go above 1.0), rates are per second.
///
/// ```
/// use tower_lb::orca::LoadReport;
/// let mut report = LoadReport::default();
/// report.application_utilization = 0.5;
/// report.rps_fractional = 200.0;
/// report.in_flight = Some(3.0);
/// let bytes = report.encode();
/// assert_eq!(LoadReport::decode(&bytes)?, report);
/// # Ok::<(), tower_lb::orca::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct LoadReport {
    /// CPU utilisation as a fraction of the CPU available (field 1).
    pub cpu_utilization: f64,
    /// Memory utilisation as a fraction (field 2).
    pub mem_utilization: f64,
    /// Application-defined utilisation; gRPC A58 prefers it to CPU when set (field 9).
    pub application_utilization: f64,
    /// Requests per second served (field 6; the deprecated integer field 3 when 6 is absent).
    pub rps_fractional: f64,
    /// Errors per second (field 7).
    pub eps: f64,
    /// Requests in flight: the named metric `in_flight` (field 8).
    pub in_flight: Option<f64>,
    /// Mean latency in seconds: the named metric `latency_seconds` (field 8).
    pub latency: Option<f64>,
}

/// Why a report could not be read: the bytes are not an `OrcaLoadReport`, or a value in it
/// is NaN, infinite or negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad ORCA load report: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    pub(crate) const fn new(why: &'static str) -> Self {
        DecodeError(why)
    }
}

/// Protobuf wire types.
pub(super) const VARINT: u8 = 0;
const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
const FIXED32: u8 = 5;

impl LoadReport {
    /// The utilisation gRPC A58 weighs by: the application's when set, else the CPU's.
    pub fn utilization(&self) -> f64 {
        if self.application_utilization > 0.0 {
            self.application_utilization
        } else {
            self.cpu_utilization
        }
    }

    /// The report as protobuf bytes (proto3: zero fields are left out).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        for (field, v) in [
            (1, self.cpu_utilization),
            (2, self.mem_utilization),
            (6, self.rps_fractional),
            (7, self.eps),
            (9, self.application_utilization),
        ] {
            if v != 0.0 {
                out.push(field << 3 | FIXED64);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        for (name, v) in [(IN_FLIGHT, self.in_flight), (LATENCY, self.latency)] {
            let Some(v) = v else { continue };
            // A map entry: key (1, string), value (2, double).
            let entry_len = 2 + name.len() + 9;
            out.push(8 << 3 | LEN);
            out.push(entry_len as u8);
            out.push(1 << 3 | LEN);
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.push(2 << 3 | FIXED64);
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads a report from protobuf bytes, skipping fields it does not know. Fails on bytes
    /// that are not a well-formed message and on values no server should send (NaN,
    /// infinite, negative), so a broken report is never taken for a real one.
    pub fn decode(mut buf: &[u8]) -> Result<Self, DecodeError> {
        let mut report = LoadReport::default();
        let mut rps_integer = None;
        while !buf.is_empty() {
            let key = varint(&mut buf)?;
            let (field, wire) = (key >> 3, (key & 7) as u8);
            match (field, wire) {
                (1, FIXED64) => report.cpu_utilization = double(&mut buf)?,
                (2, FIXED64) => report.mem_utilization = double(&mut buf)?,
                (3, VARINT) => rps_integer = Some(varint(&mut buf)? as f64),
                (6, FIXED64) => report.rps_fractional = double(&mut buf)?,
                (7, FIXED64) => report.eps = double(&mut buf)?,
                (9, FIXED64) => report.application_utilization = double(&mut buf)?,
                (8, LEN) => {
                    let entry = bytes(&mut buf)?;
                    match map_entry(entry)? {
                        (IN_FLIGHT_BYTES, v) => report.in_flight = Some(valid(v)?),
                        (LATENCY_BYTES, v) => report.latency = Some(valid(v)?),
                        _ => {}
                    }
                }
                (0, _) => return Err(DecodeError("field number 0")),
                (_, wire) => skip(&mut buf, wire)?,
            }
        }
        if report.rps_fractional == 0.0
            && let Some(rps) = rps_integer
        {
            report.rps_fractional = rps;
        }
        Ok(report)
    }
}

const IN_FLIGHT_BYTES: &[u8] = IN_FLIGHT.as_bytes();
const LATENCY_BYTES: &[u8] = LATENCY.as_bytes();

/// One `map<string, double>` entry: its key and value (0.0 when absent, as proto3 says).
fn map_entry(mut buf: &[u8]) -> Result<(&[u8], f64), DecodeError> {
    let (mut name, mut value): (&[u8], f64) = (&[], 0.0);
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match (key >> 3, (key & 7) as u8) {
            (1, LEN) => name = bytes(&mut buf)?,
            (2, FIXED64) => value = f64::from_le_bytes(take::<8>(&mut buf)?),
            (0, _) => return Err(DecodeError("field number 0")),
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    Ok((name, value))
}

fn valid(v: f64) -> Result<f64, DecodeError> {
    if v.is_nan() {
        Err(DecodeError("a NaN value"))
    } else if v.is_infinite() {
        Err(DecodeError("an infinite value"))
    } else if v < 0.0 {
        Err(DecodeError("a negative value"))
    } else {
        Ok(v)
    }
}

fn double(buf: &mut &[u8]) -> Result<f64, DecodeError> {
    valid(f64::from_le_bytes(take::<8>(buf)?))
}

fn take<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], DecodeError> {
    let Some((head, rest)) = buf.split_first_chunk::<N>() else {
        return Err(DecodeError("truncated"));
    };
    *buf = rest;
    Ok(*head)
}

pub(super) fn varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    for i in 0..10 {
        let Some((&b, rest)) = buf.split_first() else {
            return Err(DecodeError("truncated varint"));
        };
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError("varint longer than 10 bytes"))
}

pub(super) fn bytes<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = varint(buf)?;
    let len = usize::try_from(len).map_err(|_| DecodeError("length too large"))?;
    if len > buf.len() {
        return Err(DecodeError("truncated"));
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

pub(super) fn skip(buf: &mut &[u8], wire: u8) -> Result<(), DecodeError> {
    match wire {
        VARINT => varint(buf).map(drop),
        FIXED64 => take::<8>(buf).map(drop),
        LEN => bytes(buf).map(drop),
        FIXED32 => take::<4>(buf).map(drop),
        _ => Err(DecodeError("unknown wire type")),
    }
}

#[cfg(test)]
mod tests {
    // Reports are built field by field, as a user outside the crate must (`#[non_exhaustive]`).
    #![allow(clippy::field_reassign_with_default)]

    use super::*;

    #[test]
    fn round_trips_and_skips_unknown_fields() {
        let mut r = LoadReport::default();
        r.cpu_utilization = 0.25;
        r.rps_fractional = 1234.5;
        r.eps = 3.0;
        r.latency = Some(0.002);
        let mut bytes = r.encode();
        // Unknown fields of every wire type: 10 varint, 11 fixed32, 12 bytes, and a
        // request_cost map entry (field 4).
        bytes.extend_from_slice(&[10 << 3, 0x96, 0x01, 11 << 3 | 5, 1, 2, 3, 4]);
        bytes.extend_from_slice(&[12 << 3 | 2, 2, b'h', b'i']);
        bytes.extend_from_slice(&[4 << 3 | 2, 3, 1 << 3 | 2, 1, b'x']);
        assert_eq!(LoadReport::decode(&bytes), Ok(r));
        assert_eq!(LoadReport::decode(&[]), Ok(LoadReport::default()));
        // The deprecated integer rps stands in when rps_fractional is absent.
        assert_eq!(
            LoadReport::decode(&[3 << 3, 42]).unwrap().rps_fractional,
            42.0
        );
    }

    #[test]
    fn broken_and_insane_reports_are_refused() {
        let mut r = LoadReport::default();
        r.cpu_utilization = 0.5;
        let good = r.encode();
        assert!(LoadReport::decode(&good[..5]).is_err(), "truncated");
        assert!(LoadReport::decode(&[0xff; 11]).is_err(), "endless varint");
        assert!(
            LoadReport::decode(&[8 << 3 | 2, 200, 1]).is_err(),
            "length past the end"
        );
        assert!(LoadReport::decode(&[1 << 3 | 7]).is_err(), "wire type 7");
        assert!(LoadReport::decode(&[0]).is_err(), "field 0");
        for bad in [f64::NAN, -0.5, f64::INFINITY] {
            let mut r = LoadReport::default();
            r.rps_fractional = bad;
            assert!(LoadReport::decode(&r.encode()).is_err(), "{bad}");
        }
    }
}
