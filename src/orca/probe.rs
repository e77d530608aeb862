//! The load probe: a gRPC call a client sends to ask a server for its load now, answered by
//! the server's [`OrcaLayer`](https://docs.rs/tower-lb/latest/tower_lb/server/struct.OrcaLayer.html)
//! without reaching its services.
//!
//! Wire: `POST /tower_lb.v1.LoadProbe/Probe` with an empty request; the answer is a
//! trailers-only response (`grpc-status: 0`, no message) whose `endpoint-load-metrics-bin`
//! header holds an `xds.data.orca.v3.OrcaLoadReport` with the named metrics `in_flight`
//! (calls in flight now) and `latency_seconds` (the latency a call sent now can expect).
//! Headers only, so the answer costs one HEADERS frame and no message codec on either side;
//! any gRPC server can answer it with three headers. A server without the layer answers
//! `UNIMPLEMENTED`.

use http::HeaderMap;

use super::report::{DecodeError, LoadReport};
use super::trailer::from_trailers;

/// The probe's path.
pub const PROBE_PATH: &str = "/tower_lb.v1.LoadProbe/Probe";

/// What a probe's answer said.
#[derive(Debug)]
pub(crate) enum ProbeAnswer {
    /// The server's load report.
    Report(Result<LoadReport, DecodeError>),
    /// The server does not answer probes (`UNIMPLEMENTED`, or OK without a report).
    Unsupported,
    /// Another gRPC status, or not gRPC at all.
    Failed(String),
}

/// Reads a probe's answer from its response headers.
pub(crate) fn answer(status: http::StatusCode, headers: &HeaderMap) -> ProbeAnswer {
    if status != http::StatusCode::OK {
        return ProbeAnswer::Failed(format!("HTTP status {status}"));
    }
    match headers.get("grpc-status").map(|v| v.as_bytes()) {
        Some(b"0") => match from_trailers(headers) {
            Some(report) => ProbeAnswer::Report(report),
            None => ProbeAnswer::Unsupported,
        },
        Some(b"12") => ProbeAnswer::Unsupported,
        Some(code) => ProbeAnswer::Failed(format!("grpc-status {}", String::from_utf8_lossy(code))),
        None => ProbeAnswer::Failed("not a trailers-only gRPC answer".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn answers_are_read_from_headers() {
        let ok = http::StatusCode::OK;
        // cpu_utilization = 0.5
        let good = headers(&[
            ("grpc-status", "0"),
            ("endpoint-load-metrics-bin", "CQAAAAAAAOA/"),
        ]);
        assert!(
            matches!(answer(ok, &good), ProbeAnswer::Report(Ok(r)) if r.cpu_utilization == 0.5)
        );
        let bad = headers(&[("grpc-status", "0"), ("endpoint-load-metrics-bin", "%%")]);
        assert!(matches!(answer(ok, &bad), ProbeAnswer::Report(Err(_))));
        let unimplemented = headers(&[("grpc-status", "12")]);
        assert!(matches!(
            answer(ok, &unimplemented),
            ProbeAnswer::Unsupported
        ));
        assert!(matches!(
            answer(ok, &headers(&[("grpc-status", "0")])),
            ProbeAnswer::Unsupported
        ));
        assert!(matches!(
            answer(ok, &headers(&[("grpc-status", "14")])),
            ProbeAnswer::Failed(_)
        ));
        assert!(matches!(
            answer(ok, &HeaderMap::new()),
            ProbeAnswer::Failed(_)
        ));
        assert!(matches!(
            answer(http::StatusCode::NOT_FOUND, &good),
            ProbeAnswer::Failed(_)
        ));
    }
}
