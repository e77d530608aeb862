//! The `endpoint-load-metrics-bin` trailer: a binary (`-bin`) gRPC metadata entry, so its value
//! is the report's protobuf bytes in base64 — unpadded when we write it, either way when we
//! read it, as the gRPC HTTP/2 spec asks.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::{HeaderMap, HeaderName};

use super::report::{DecodeError, LoadReport};

/// The trailer an ORCA load report travels in (gRPC A51).
pub const TRAILER: HeaderName = HeaderName::from_static("endpoint-load-metrics-bin");

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reports up to this size decode on the stack; larger ones (many named metrics) allocate.
const STACK: usize = 256;

/// The load report in `trailers`, if there is one. `Some(Err(_))` for a trailer that is
/// there but is not a report (bad base64, bad protobuf, NaN or negative values).
pub fn from_trailers(trailers: &HeaderMap) -> Option<Result<LoadReport, DecodeError>> {
    let value = trailers.get(&TRAILER)?.as_bytes();
    Some(decode(value))
}

fn decode(value: &[u8]) -> Result<LoadReport, DecodeError> {
    // Whitespace around a header value is not part of it.
    let value = value.trim_ascii();
    let mut stack = [0u8; STACK];
    if value.len() / 4 * 3 + 3 <= STACK {
        let n = BASE64
            .decode_slice(value, &mut stack)
            .map_err(|_| DecodeError::new("not base64"))?;
        return LoadReport::decode(&stack[..n]);
    }
    let bytes = BASE64
        .decode(value)
        .map_err(|_| DecodeError::new("not base64"))?;
    LoadReport::decode(&bytes)
}

/// The trailer's value for `report`.
#[cfg(feature = "server")]
pub(crate) fn to_header_value(report: &LoadReport) -> http::HeaderValue {
    let text = BASE64.encode(report.encode());
    http::HeaderValue::from_str(&text).expect("base64 is a valid header value")
}

#[cfg(test)]
mod tests {
    // Reports are built field by field, as a user outside the crate must (`#[non_exhaustive]`).
    #![allow(clippy::field_reassign_with_default)]

    use super::*;

    #[test]
    fn padded_and_unpadded_both_read() {
        let mut r = LoadReport::default();
        r.cpu_utilization = 0.75;
        r.in_flight = Some(1.0);
        let raw = r.encode();
        assert_eq!(raw.len() % 3, 1, "a length that base64 pads");
        let padded = base64::engine::general_purpose::STANDARD.encode(&raw);
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw);
        assert_ne!(padded, unpadded);
        for text in [padded, unpadded] {
            let mut h = HeaderMap::new();
            h.insert(TRAILER, text.parse().unwrap());
            assert_eq!(from_trailers(&h), Some(Ok(r)));
        }
        let mut h = HeaderMap::new();
        assert_eq!(from_trailers(&h), None);
        h.insert(TRAILER, "!!not base64!!".parse().unwrap());
        assert!(matches!(from_trailers(&h), Some(Err(_))));
        // A large report (long base64) takes the allocating path and still reads.
        h.insert(TRAILER, "AAAA".repeat(200).parse().unwrap());
        assert!(matches!(from_trailers(&h), Some(Err(_))), "zeros: field 0");
    }
}
