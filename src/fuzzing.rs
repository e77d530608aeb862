//! Entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_regressions.rs`.
//!
//! **Not API.** Thin wrappers that reach the crate's parsers of outside input which are not
//! public (the `grpc-timeout` header, a request's hash key, a DNS answer on its way to
//! endpoints), so that a fuzz target runs exactly the code the balancer runs. Hidden from the
//! docs and free to change in any release; nothing here is meant for applications.

use std::time::Duration;

use crate::policy::HashKey;

/// The `grpc-timeout` deadline of a request whose header has this value: `None` when the
/// header value is malformed, or not a valid header value at all.
pub fn grpc_timeout(value: &[u8]) -> Option<Duration> {
    let value = http::HeaderValue::from_bytes(value).ok()?;
    let mut headers = http::HeaderMap::new();
    headers.insert("grpc-timeout", value);
    crate::time::grpc_timeout(&headers)
}

/// The hash a hashing policy with `key` computes for `request` (`None`: the request has no
/// key).
pub fn request_hash<B>(key: &HashKey, request: &http::Request<B>) -> Option<u64> {
    key.hash(request)
}

#[cfg(feature = "dns")]
pub use dns::{DnsRound, DnsRun, parse_host_port};

#[cfg(feature = "dns")]
mod dns {
    use std::net::IpAddr;
    use std::time::Duration;

    use hickory_resolver::proto::rr::{Name, Record};

    use crate::discover::dns::candidates::endpoint_set;
    use crate::discover::dns::resolve::{Outcome, SrvAnswer, srv_answer};
    use crate::discover::dns::schedule::Schedule;
    use crate::discover::dns::tracker::Tracker;
    use crate::discover::dns::{DnsError, DnsErrorKind, OnEmpty, host, srv};
    use crate::discover::{Change, Endpoint, Key};
    use crate::error::Error;

    /// Host discovery's `name:port` input: the IP address or the DNS name (as hickory writes
    /// it in ASCII, punycode for IDNs), and the port.
    pub fn parse_host_port(input: &str) -> Result<(Result<IpAddr, String>, u16), Error> {
        let (host, port) = host::parse_host_port(input)?;
        let host = match host {
            host::Host::Ip(ip) => Ok(ip),
            host::Host::Name(name) => Err(name.to_ascii()),
        };
        Ok((host, port))
    }

    /// What one resolution did.
    #[derive(Debug)]
    pub struct DnsRound {
        /// The stream's items, in order.
        pub items: Vec<Result<Change, DnsError>>,
        /// The endpoint set the answer made (before the empty-answer rules), in key order.
        pub endpoints: Vec<(Key, Endpoint)>,
        /// When the stream would resolve again.
        pub wait: Duration,
    }

    /// DNS discovery's state between resolutions, fed answers instead of a resolver.
    #[derive(Debug)]
    pub struct DnsRun {
        name: Name,
        max_endpoints: usize,
        tracker: Tracker,
    }

    impl DnsRun {
        /// A stream for `name` keeping at most `max_endpoints` endpoints, with the default TTL
        /// bounds and backoff.
        pub fn new(name: Name, max_endpoints: usize, on_empty: OnEmpty) -> Self {
            let schedule = Schedule {
                min_ttl: Duration::from_secs(1),
                max_ttl: Duration::from_secs(30),
                backoff: Schedule::default_backoff(),
            };
            let tracker = Tracker::new(name.to_string(), schedule, on_empty, max_endpoints);
            DnsRun {
                name,
                max_endpoints,
                tracker,
            }
        }

        /// An SRV resolution: `answers` and `additionals` are the SRV answer's sections, and
        /// `lookups` stands in for the A/AAAA lookups of targets the additional section left
        /// out (a target's addresses are the address records named after it; none: it does not
        /// resolve).
        pub fn srv(
            &mut self,
            answers: &[Record],
            additionals: &[Record],
            lookups: &[Record],
        ) -> DnsRound {
            let outcome = match srv_answer(&self.name, answers, additionals, self.max_endpoints) {
                Err(detail) => Outcome::Empty { detail },
                Ok(SrvAnswer {
                    records,
                    targets,
                    mut addresses,
                    mut ttl,
                }) => {
                    for target in targets {
                        if addresses.contains_key(&target) {
                            continue;
                        }
                        let found: Vec<&Record> = lookups
                            .iter()
                            .filter(|r| r.name == target && r.data.ip_addr().is_some())
                            .collect();
                        if found.is_empty() {
                            continue;
                        }
                        let lookup_ttl = found.iter().map(|r| r.ttl).min();
                        ttl = match (ttl, lookup_ttl) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                        let ips = found.iter().filter_map(|r| r.data.ip_addr()).collect();
                        addresses.insert(target, ips);
                    }
                    Outcome::Found {
                        candidates: srv::candidates(&records, &addresses),
                        ttl: ttl.map(|t| Duration::from_secs(u64::from(t))),
                    }
                }
            };
            self.round(outcome)
        }

        /// A host resolution at `port`: the addresses of the A and AAAA answers' records.
        pub fn host(&mut self, answers: &[Record], port: u16) -> DnsRound {
            let ips: Vec<IpAddr> = answers.iter().filter_map(|r| r.data.ip_addr()).collect();
            let outcome = if ips.is_empty() {
                Outcome::Empty {
                    detail: "no addresses".into(),
                }
            } else {
                Outcome::Found {
                    // Named by the name asked for, as host discovery does (the records' owner here).
                    candidates: host::candidates(&ips, port, answers.first().map(|r| &r.name)),
                    ttl: answers
                        .iter()
                        .map(|r| r.ttl)
                        .min()
                        .map(|t| Duration::from_secs(u64::from(t))),
                }
            };
            self.round(outcome)
        }

        /// A failed resolution (the set is kept).
        pub fn fail(&mut self) -> DnsRound {
            self.round(Outcome::Failed {
                kind: DnsErrorKind::ServerFailure,
                detail: "SERVFAIL".into(),
            })
        }

        fn round(&mut self, outcome: Outcome) -> DnsRound {
            let endpoints = match &outcome {
                Outcome::Found { candidates, .. } => {
                    endpoint_set("fuzz", candidates.iter().cloned(), self.max_endpoints)
                        .into_iter()
                        .collect()
                }
                _ => Vec::new(),
            };
            let next = self
                .tracker
                .on_round(outcome, tokio::time::Instant::now(), 0.5);
            DnsRound {
                items: next.items,
                endpoints,
                wait: next.wait,
            }
        }
    }
}
