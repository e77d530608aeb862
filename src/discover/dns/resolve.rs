//! One resolution against hickory's resolver: the SRV or host query, the target lookups, and
//! the resolver's errors sorted into what the stream does with them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::SRV;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use super::candidates::Candidate;
use super::error::DnsErrorKind;
use super::host::{self, Host};
use super::srv;

/// Target lookups of one SRV answer run this many at a time.
const TARGET_LOOKUPS_AT_ONCE: usize = 8;

/// What one stream resolves.
#[derive(Debug, Clone)]
pub(crate) enum Query {
    /// The SRV records of this name.
    Srv(Name),
    /// The A and AAAA records of a host, at a port.
    Host(Host, u16),
}

/// The addresses of SRV targets (or of the host asked for), kept from the last good answer so
/// that a name whose own lookup fails, in whole or for one address family, keeps its
/// addresses.
pub(crate) type TargetAddresses = HashMap<Name, Vec<IpAddr>>;

/// What a resolution found.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Candidates (maybe none usable) and the smallest TTL of the records used.
    Found {
        candidates: Vec<Candidate>,
        ttl: Option<Duration>,
    },
    /// `NXDOMAIN`, no records, or no usable record.
    Empty { detail: String },
    /// The resolution failed; nothing is known.
    Failed { kind: DnsErrorKind, detail: String },
}

/// A resolution's outcome and the addresses to remember (SRV targets', or the host's).
#[derive(Debug)]
pub(crate) struct Round {
    pub(crate) outcome: Outcome,
    pub(crate) targets: Option<TargetAddresses>,
}

/// A resolver error as the stream sees it.
enum Failure {
    NotFound(String),
    Failed(DnsErrorKind, String),
}

fn classify(e: &NetError) -> Failure {
    let kind = match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => {
            return Failure::NotFound(match no.response_code {
                ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
                _ => "no records".to_owned(),
            });
        }
        NetError::Timeout => DnsErrorKind::Timeout,
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::Refused)) => {
            DnsErrorKind::Refused
        }
        NetError::Dns(HickoryDnsError::ResponseCode(_)) => DnsErrorKind::ServerFailure,
        NetError::Truncated => DnsErrorKind::Truncated,
        NetError::Io(_) | NetError::NoConnections => DnsErrorKind::Unreachable,
        NetError::Proto(_) => DnsErrorKind::Malformed,
        _ => DnsErrorKind::Other,
    };
    Failure::Failed(kind, e.to_string())
}

/// The smallest TTL of these records, if any.
fn min_ttl<'a>(records: impl IntoIterator<Item = &'a Record>) -> Option<u32> {
    records.into_iter().map(|r| r.ttl).min()
}

fn min_opt(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What an SRV answer says before any target is looked up.
#[derive(Debug)]
pub(crate) struct SrvAnswer {
    /// The usable SRV records, best ranked first.
    pub(crate) records: Vec<SRV>,
    /// The targets to resolve, best ranked first, at most `max_endpoints`.
    pub(crate) targets: Vec<Name>,
    /// The addresses the additional section gave for those targets.
    pub(crate) addresses: TargetAddresses,
    /// The smallest TTL of the records used so far.
    pub(crate) ttl: Option<u32>,
}

/// Reads an SRV answer (`answers`, `additionals`: its sections) for `name`: the usable
/// records, the targets to resolve and the addresses the server sent along. `Err` with the
/// detail when no record is usable.
pub(crate) fn srv_answer(
    name: &Name,
    answers: &[Record],
    additionals: &[Record],
    max_endpoints: usize,
) -> Result<SrvAnswer, String> {
    let mut ttl = min_ttl(answers);
    let mut records: Vec<SRV> = Vec::new();
    let mut unusable = 0usize;
    for record in answers {
        if let RData::SRV(srv) = &record.data {
            match srv::unusable(srv) {
                None => records.push(srv.clone()),
                Some(why) => {
                    // One warning per answer, however many records are bad.
                    if unusable == 0 {
                        tracing::warn!(name = %name, target = %srv.target, port = srv.port, reason = why, "SRV record skipped (first of this answer)");
                    }
                    unusable += 1;
                }
            }
        }
    }
    if unusable > 1 {
        tracing::warn!(name = %name, skipped = unusable, "SRV records skipped in this answer");
    }
    if records.is_empty() {
        let detail = if unusable > 0 {
            format!("{unusable} SRV record(s), none usable")
        } else {
            "no SRV records".to_owned()
        };
        return Err(detail);
    }

    // The best ranked targets first, at most as many as endpoints may be kept. Ties go by
    // target name, so that which targets make the cut never depends on the record order.
    records.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.weight), &a.target).cmp(&(
            b.priority,
            std::cmp::Reverse(b.weight),
            &b.target,
        ))
    });
    let mut targets: Vec<Name> = Vec::new();
    for srv in &records {
        if !targets.contains(&srv.target) {
            targets.push(srv.target.clone());
        }
        if targets.len() >= max_endpoints {
            break;
        }
    }
    if records.len() > max_endpoints {
        tracing::warn!(name = %name, records = records.len(), max = max_endpoints, "more SRV records than the endpoint cap; resolving the best ranked targets only");
    }

    // Addresses the server sent along in the additional section.
    let mut addresses: TargetAddresses = HashMap::new();
    for record in additionals {
        // (Nested, not a let chain: the crate's rust-version is 1.85.)
        if let Some(ip) = record.data.ip_addr()
            && targets.contains(&record.name)
        {
            addresses.entry(record.name.clone()).or_default().push(ip);
            ttl = min_opt(ttl, Some(record.ttl));
        }
    }
    Ok(SrvAnswer {
        records,
        targets,
        addresses,
        ttl,
    })
}

/// A resolver bound to one query.
pub(crate) struct Resolver {
    resolver: TokioResolver,
    query: Query,
    max_endpoints: usize,
}

impl Resolver {
    pub(crate) fn new(resolver: TokioResolver, query: Query, max_endpoints: usize) -> Self {
        Resolver {
            resolver,
            query,
            max_endpoints,
        }
    }

    /// The name as the user gave it, for logs and errors.
    pub(crate) fn display_name(&self) -> String {
        match &self.query {
            Query::Srv(name) => name.to_string(),
            Query::Host(Host::Name(name), port) => format!("{name}:{port}"),
            Query::Host(Host::Ip(ip), port) => std::net::SocketAddr::new(*ip, *port).to_string(),
        }
    }

    /// Resolves once, from the name servers (not the resolver's cache).
    pub(crate) async fn resolve(self: Arc<Self>, known: TargetAddresses) -> Round {
        // This stream keeps the answer for its TTL itself; the resolver's cache would only
        // hand back a stale copy when the stream re-resolves early (jitter, refresh).
        self.resolver.clear_cache();
        match &self.query {
            Query::Host(Host::Ip(ip), port) => Round {
                outcome: Outcome::Found {
                    candidates: host::candidates(&[*ip], *port, None),
                    ttl: None,
                },
                targets: None,
            },
            Query::Host(Host::Name(name), port) => {
                let (outcome, targets) = match self.addresses(name, known.get(name)).await {
                    Ok((ips, ttl)) => {
                        let outcome = Outcome::Found {
                            candidates: host::candidates(&ips, *port, Some(name)),
                            ttl: ttl.map(secs),
                        };
                        (outcome, Some(TargetAddresses::from([(name.clone(), ips)])))
                    }
                    Err(Failure::NotFound(detail)) => (Outcome::Empty { detail }, None),
                    Err(Failure::Failed(kind, detail)) => (Outcome::Failed { kind, detail }, None),
                };
                Round { outcome, targets }
            }
            Query::Srv(name) => self.resolve_srv(name, known).await,
        }
    }

    async fn resolve_srv(&self, name: &Name, known: TargetAddresses) -> Round {
        let failed = |failure| Round {
            outcome: match failure {
                Failure::NotFound(detail) => Outcome::Empty { detail },
                Failure::Failed(kind, detail) => Outcome::Failed { kind, detail },
            },
            targets: None,
        };
        let lookup = match self.resolver.lookup(name.clone(), RecordType::SRV).await {
            Ok(lookup) => lookup,
            Err(e) => return failed(classify(&e)),
        };
        let SrvAnswer {
            records,
            targets,
            mut addresses,
            mut ttl,
        } = match srv_answer(
            name,
            lookup.answers(),
            lookup.additionals(),
            self.max_endpoints,
        ) {
            Ok(answer) => answer,
            Err(detail) => return failed(Failure::NotFound(detail)),
        };

        // The others are looked up, a few at a time.
        let missing: Vec<Name> = targets
            .iter()
            .filter(|t| !addresses.contains_key(*t))
            .cloned()
            .collect();
        let mut lookups = futures_util::stream::iter(missing)
            .map(|target| {
                let known = known.get(&target);
                async move {
                    let result = self.addresses(&target, known).await;
                    (target, result)
                }
            })
            .buffer_unordered(TARGET_LOOKUPS_AT_ONCE);
        // One warning per kind of trouble per answer (the first target as the example), so a
        // hostile answer cannot flood the log.
        let (mut unresolved, mut kept, mut skipped) = (0usize, 0usize, 0usize);
        while let Some((target, result)) = lookups.next().await {
            match result {
                Ok((ips, target_ttl)) => {
                    ttl = min_opt(ttl, target_ttl);
                    addresses.insert(target, ips);
                }
                Err(Failure::NotFound(detail)) => {
                    if unresolved == 0 {
                        tracing::warn!(name = %name, target = %target, %detail, "SRV target does not resolve; skipped");
                    }
                    unresolved += 1;
                }
                Err(Failure::Failed(kind, detail)) => match known.get(&target) {
                    Some(ips) => {
                        if kept == 0 {
                            tracing::warn!(name = %name, target = %target, %kind, %detail, "SRV target lookup failed; keeping its last known addresses");
                        }
                        kept += 1;
                        addresses.insert(target, ips.clone());
                    }
                    None => {
                        if skipped == 0 {
                            tracing::warn!(name = %name, target = %target, %kind, %detail, "SRV target lookup failed and it has no known addresses; skipped for now");
                        }
                        skipped += 1;
                    }
                },
            }
        }
        if unresolved + kept + skipped > 1 {
            tracing::warn!(name = %name, unresolved, kept_last_known = kept, skipped_failed = skipped, "SRV targets with trouble in this answer");
        }
        drop(lookups);
        let candidates = srv::candidates(&records, &addresses);
        Round {
            outcome: Outcome::Found {
                candidates,
                ttl: ttl.map(secs),
            },
            targets: Some(addresses),
        }
    }

    /// The A and AAAA addresses of a name, with the smallest TTL of the records. One family
    /// may have no records. When one family's lookup fails and the other answers, the answer
    /// is used, with the failed family's addresses from the last good answer (`known`), and
    /// the failure is logged: hickory's own `lookup_ip` does the same, and failing the whole
    /// name would leave a server that answers A but fails AAAA with no endpoints at all.
    /// Only when both fail, or one fails and nothing is left, is the name a failure.
    async fn addresses(
        &self,
        name: &Name,
        known: Option<&Vec<IpAddr>>,
    ) -> Result<(Vec<IpAddr>, Option<u32>), Failure> {
        let (v4, v6) = futures_util::future::join(
            self.resolver.lookup(name.clone(), RecordType::A),
            self.resolver.lookup(name.clone(), RecordType::AAAA),
        )
        .await;
        let mut ips = Vec::new();
        let mut ttl = None;
        let mut not_found = Vec::new();
        let mut failed = None;
        for (result, family) in [(v4, RecordType::A), (v6, RecordType::AAAA)] {
            match result {
                Ok(lookup) => {
                    ttl = min_opt(ttl, min_ttl(lookup.answers()));
                    ips.extend(lookup.answers().iter().filter_map(|r| r.data.ip_addr()));
                }
                Err(e) => match classify(&e) {
                    Failure::NotFound(detail) => not_found.push(detail),
                    failure @ Failure::Failed(..) => {
                        if failed.is_some() {
                            // Both families failed: nothing is known.
                            return Err(failure);
                        }
                        failed = Some((family, failure));
                    }
                },
            }
        }
        if let Some((family, failure)) = failed {
            let kept: Vec<IpAddr> = known
                .into_iter()
                .flatten()
                .copied()
                .filter(|ip| ip.is_ipv4() == (family == RecordType::A))
                .collect();
            if ips.is_empty() && kept.is_empty() {
                return Err(failure);
            }
            if let Failure::Failed(kind, detail) = &failure {
                tracing::warn!(name = %name, family = %family, %kind, %detail, answered = ips.len(), kept_last_known = kept.len(), "one address family's lookup failed; using the other's answer and the failed family's last known addresses");
            }
            ips.extend(kept);
        }
        if ips.is_empty() {
            let detail = not_found
                .first()
                .cloned()
                .unwrap_or_else(|| "no addresses".into());
            return Err(Failure::NotFound(detail));
        }
        Ok((ips, ttl))
    }
}

fn secs(ttl: u32) -> Duration {
    Duration::from_secs(u64::from(ttl))
}
