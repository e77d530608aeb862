//! Out-of-band load reports (gRPC A51): `xds.service.orca.v3.OpenRcaService/StreamCoreMetrics`,
//! a server stream on which the server sends its `OrcaLoadReport` every reporting interval,
//! whether or not calls are made. This file is the wire: the request, and gRPC's message
//! framing both ways.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};

#[cfg(test)]
use super::report::LoadReport;
use super::report::{DecodeError, LEN, VARINT, bytes, skip, varint};

/// The stream's path.
pub const OUT_OF_BAND_PATH: &str = "/xds.service.orca.v3.OpenRcaService/StreamCoreMetrics";

/// Largest message either side reads: a load report with a few named metrics is far below.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// One gRPC message (uncompressed) as its 5-byte prefix and body.
pub(crate) fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

/// `OrcaLoadReportRequest { report_interval }` (no cost names), framed.
pub(crate) fn request(interval: Duration) -> Bytes {
    let mut duration = Vec::new();
    if interval.as_secs() > 0 {
        duration.push(1 << 3 | VARINT);
        put_varint(&mut duration, interval.as_secs());
    }
    if interval.subsec_nanos() > 0 {
        duration.push(2 << 3 | VARINT);
        put_varint(&mut duration, u64::from(interval.subsec_nanos()));
    }
    let mut message = vec![1 << 3 | LEN];
    put_varint(&mut message, duration.len() as u64);
    message.extend_from_slice(&duration);
    frame(&message)
}

/// The requested interval of an `OrcaLoadReportRequest` (zero when absent).
#[cfg(any(feature = "server", test))]
pub(crate) fn decode_request(mut buf: &[u8]) -> Result<Duration, DecodeError> {
    let mut interval = Duration::ZERO;
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match (key >> 3, (key & 7) as u8) {
            (1, LEN) => interval = decode_duration(bytes(&mut buf)?)?,
            (0, _) => return Err(DecodeError::new("field number 0")),
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    Ok(interval)
}

#[cfg(any(feature = "server", test))]
fn decode_duration(mut buf: &[u8]) -> Result<Duration, DecodeError> {
    let (mut secs, mut nanos) = (0u64, 0u64);
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match (key >> 3, (key & 7) as u8) {
            (1, VARINT) => secs = varint(&mut buf)?,
            (2, VARINT) => nanos = varint(&mut buf)?,
            (0, _) => return Err(DecodeError::new("field number 0")),
            (_, wire) => skip(&mut buf, wire)?,
        }
    }
    // Negative values (two's complement varints) and out-of-range nanos are not durations.
    if secs > i64::MAX as u64 || nanos >= 1_000_000_000 {
        return Err(DecodeError::new("not a valid duration"));
    }
    Ok(Duration::new(secs, nanos as u32))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Cuts a stream of DATA frames into gRPC messages.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    buf: BytesMut,
}

impl Messages {
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message, if one has arrived; an error for a compressed or oversized
    /// one (the stream cannot be read past it).
    pub(crate) fn next(&mut self) -> Option<Result<Bytes, DecodeError>> {
        let head: [u8; 5] = self.buf.get(..5)?.try_into().ok()?;
        if head[0] != 0 {
            return Some(Err(DecodeError::new("compressed message")));
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_MESSAGE {
            return Some(Err(DecodeError::new("message too large")));
        }
        if self.buf.len() < 5 + len {
            return None;
        }
        self.buf.advance(5);
        Some(Ok(self.buf.split_to(len).freeze()))
    }

    /// The next whole message decoded as a load report.
    #[cfg(test)]
    fn next_report(&mut self) -> Option<Result<LoadReport, DecodeError>> {
        Some(self.next()?.and_then(|m| LoadReport::decode(&m)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::field_reassign_with_default)]

    use super::*;

    #[test]
    fn the_request_round_trips_and_messages_are_cut_at_any_split() {
        for interval in [
            Duration::ZERO,
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::new(1, 5),
        ] {
            let framed = request(interval);
            let mut m = Messages::default();
            m.push(&framed);
            let message = m.next().unwrap().unwrap();
            assert_eq!(decode_request(&message).unwrap(), interval);
            assert!(m.next().is_none());
        }
        let mut report = LoadReport::default();
        report.rps_fractional = 12.5;
        report.in_flight = Some(3.0);
        let two = [frame(&report.encode()), frame(&report.encode())].concat();
        for cut in 0..two.len() {
            let mut m = Messages::default();
            m.push(&two[..cut]);
            let mut got = Vec::new();
            while let Some(r) = m.next_report() {
                got.push(r.unwrap());
            }
            m.push(&two[cut..]);
            while let Some(r) = m.next_report() {
                got.push(r.unwrap());
            }
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[1].in_flight, Some(3.0));
        }
        let mut m = Messages::default();
        m.push(&[1, 0, 0, 0, 1, 0]);
        assert!(m.next().unwrap().is_err(), "compressed");
        let mut m = Messages::default();
        m.push(&[0, 0xff, 0, 0, 0]);
        assert!(m.next().unwrap().is_err(), "too large");
        // A negative seconds field is refused.
        let negative = [
            0x0a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(decode_request(&negative).is_err());
    }
}
