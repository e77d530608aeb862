//! What each fuzz target checks, one function per target taking the raw input.
//!
//! The targets in `fuzz_targets/` call these, and `tests/fuzz_regressions.rs` (stable, in
//! `cargo test`) includes this file and replays the seeds and every past finding through the
//! same functions. Each function returns normally for any input; a panic is a finding.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::proto::op::Message;
use hickory_resolver::proto::rr::{Name, Record};
use tower_lb::discover::dns::OnEmpty;
use tower_lb::discover::{Change, Endpoint, Key};
use tower_lb::fuzzing::{DnsRound, DnsRun};
use tower_lb::service_config::ServiceConfig;
use tower_lb::{Balancer, HashKey, Picker, Policy, fuzzing};

/// The name every SRV answer is for.
pub const SRV_NAME: &str = "_grpc._tcp.echo.default.svc.cluster.local.";

/// `grpc-timeout` header value → deadline. Checked against a reference reading of the gRPC
/// spec in 128-bit nanoseconds: `1..=8` ASCII digits, then one of `H M S m u n`; anything else
/// is no deadline (and never a panic or an overflow).
pub fn grpc_timeout(data: &[u8]) -> Option<Duration> {
    let got = fuzzing::grpc_timeout(data);
    let reference = (|| {
        let (&unit, digits) = data.split_last()?;
        if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = digits
            .iter()
            .fold(0u128, |n, d| n * 10 + u128::from(d - b'0'));
        let per: u128 = match unit {
            b'H' => 3_600_000_000_000,
            b'M' => 60_000_000_000,
            b'S' => 1_000_000_000,
            b'm' => 1_000_000,
            b'u' => 1_000,
            b'n' => 1,
            _ => return None,
        };
        Some(n * per)
    })();
    assert_eq!(
        got.map(|d| d.as_nanos()),
        reference,
        "grpc-timeout {:?}",
        String::from_utf8_lossy(data)
    );
    got
}

/// Text → [`Endpoint`], [`Key`] and DNS host discovery's `name:port`.
///
/// * `Endpoint` parses exactly what `std` parses as a socket address (after trimming) and
///   can dial (no port 0, no unspecified address), with weight 1 and priority 0; its address
///   written out parses back to the same endpoint, and `Key::from` that address is that text.
/// * `Key::from(s)` is `s`.
/// * `name:port` parses to a port ≥ 1 and a host that, written back in canonical form
///   (`ip:port`, `[v6]:port`, `name:port`), parses to the same host and port. An IP socket
///   address is always an IP host.
pub fn address(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(Key::from(s).as_str(), s);

    let parsed = s.parse::<Endpoint>();
    let socket = s.trim().parse::<SocketAddr>().ok();
    let dialable = socket.filter(|a| a.port() != 0 && !a.ip().is_unspecified());
    match (&parsed, dialable) {
        (Ok(e), Some(addr)) => {
            assert_eq!(e.addr(), addr);
            assert_eq!((e.weight(), e.priority()), (1, 0));
            let text = e.addr().to_string();
            assert_eq!(text.parse::<Endpoint>().as_ref(), Ok(e), "{text}");
            assert_eq!(Key::from(e.addr()).as_str(), text);
        }
        (Err(_), None) => {}
        (got, want) => panic!("{s:?}: Endpoint parse {got:?}, std says {want:?}"),
    }

    match fuzzing::parse_host_port(s) {
        Ok((host, port)) => {
            assert!(port >= 1, "{s:?}: port 0 accepted");
            let canonical = match &host {
                Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
                Ok(ip) => format!("{ip}:{port}"),
                Err(name) => format!("{name}:{port}"),
            };
            let again = fuzzing::parse_host_port(&canonical)
                .unwrap_or_else(|e| panic!("{s:?} → {canonical:?} no longer parses: {e}"));
            match (&host, &again.0) {
                (Err(a), Err(b)) => assert_eq!(
                    Name::from_str(a).ok(),
                    Name::from_str(b).ok(),
                    "{s:?} → {canonical:?}"
                ),
                _ => assert_eq!(host, again.0, "{s:?} → {canonical:?}"),
            }
            assert_eq!(port, again.1);
            if let Some(addr) = socket {
                assert_eq!(host, Ok(addr.ip()), "{s:?}: a socket address is an IP host");
            }
        }
        Err(e) => {
            // (Not for IPv6 scope ids, `[fe80::1%2]:80`: DNS hosts have none.)
            if let Some(addr) = socket.filter(|a| a.port() != 0 && !s.contains('%')) {
                panic!("{s:?}: the socket address {addr} refused as a DNS host: {e}");
            }
        }
    }
}

/// JSON text → [`ServiceConfig`]. Never a panic; an error names the service config; parsing
/// is a function of the JSON value (the same config after a trip through `serde_json`); a
/// config applies to a builder, and its policy picks from a picker.
pub fn service_config(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ServiceConfig::from_json(s);
    match &parsed {
        Err(e) => {
            assert!(
                matches!(e, tower_lb::Error::InvalidConfig(m) if m.starts_with("service config")),
                "{e}"
            );
        }
        Ok(config) => {
            assert_eq!(config.policy().is_some(), config.policy_name().is_some());
            let value: serde_json::Value = serde_json::from_str(s).expect("parsed, so JSON");
            let again = ServiceConfig::from_json(&value.to_string())
                .unwrap_or_else(|e| panic!("{s} → {value}: {e}"));
            assert_eq!(again.policy_name(), config.policy_name(), "{s} → {value}");
            assert_eq!(again.outlier_detection(), config.outlier_detection());
            assert_eq!(again.health_check(), config.health_check());
            // pick_first with shuffleAddressList salts each parse anew, and a ring hash
            // without a header has a key closure of its own (equal only to itself): compare
            // what they print.
            if config.policy_name() != Some("pick_first") {
                assert_eq!(
                    format!("{:?}", again.policy()),
                    format!("{:?}", config.policy()),
                    "{s} → {value}"
                );
            }
            let _builder = Balancer::builder().service_config(config);
            // A ring can be millions of entries (as gRPC allows); building one per input
            // would only slow the fuzzer down.
            if let Some(policy) = config.policy()
                && config.policy_name() != Some("ring_hash_experimental")
            {
                let endpoints = ["a", "b", "c"].map(|k| (Key::from(k), 1));
                let mut picker = Picker::new(policy.clone(), endpoints, 1).expect("picker");
                assert!(picker.pick(Some(7), Duration::ZERO).is_some());
            }
        }
    }
    assert_eq!(
        s.parse::<ServiceConfig>()
            .map(|c| c.policy_name().map(str::to_owned)),
        parsed.map(|c| c.policy_name().map(str::to_owned))
    );
}

/// A request head as lines: the hash key's header name, the method, the path (and query),
/// then `name: value` headers. Parts that `http` refuses are left out.
fn request(data: &[u8]) -> Option<(Vec<u8>, http::Request<()>)> {
    let mut lines = data.split(|&b| b == b'\n');
    let key = lines.next()?.to_vec();
    let method = http::Method::from_bytes(lines.next()?).unwrap_or(http::Method::POST);
    let path = http::uri::PathAndQuery::try_from(lines.next()?)
        .unwrap_or_else(|_| http::uri::PathAndQuery::from_static("/"));
    let mut request = http::Request::builder()
        .method(method)
        .uri(http::Uri::from(path))
        .body(())
        .ok()?;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    Some((key, request))
}

thread_local! {
    static PICKERS: std::cell::RefCell<Option<[Picker; 2]>> = const { std::cell::RefCell::new(None) };
}

/// Request head → hash key → hash → endpoint. A header key exists exactly for valid header
/// names; it hashes the header's values joined by `,` (none: no hash); the path key hashes the
/// path; the same request always hashes, and picks, the same.
pub fn hash_key(data: &[u8]) {
    let Some((name, request)) = request(data) else {
        return;
    };
    let by_path = HashKey::path();
    let path_hash = fuzzing::request_hash(&by_path, &request);
    assert_eq!(
        path_hash,
        Some(tower_lb::hash_bytes(request.uri().path().as_bytes()))
    );
    let by_header = std::str::from_utf8(&name)
        .ok()
        .and_then(|n| HashKey::header(n).ok());
    let valid = std::str::from_utf8(&name)
        .ok()
        .and_then(|n| http::HeaderName::from_bytes(n.as_bytes()).ok());
    assert_eq!(by_header.is_some(), valid.is_some());
    let header_hash = by_header.as_ref().and_then(|key| {
        let hash = fuzzing::request_hash(key, &request);
        let values: Vec<&[u8]> = request
            .headers()
            .get_all(valid.as_ref().expect("valid"))
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let want = (!values.is_empty()).then(|| tower_lb::hash_bytes(&values.join(&b","[..])));
        assert_eq!(hash, want);
        assert_eq!(hash, fuzzing::request_hash(key, &request));
        hash
    });
    PICKERS.with(|pickers| {
        let mut pickers = pickers.borrow_mut();
        let pickers = pickers.get_or_insert_with(|| {
            let endpoints = || (0..5).map(|i| (Key::from(format!("10.0.0.{i}:80")), i + 1));
            [
                Picker::new(Policy::ring_hash(HashKey::path()), endpoints(), 1).expect("ring"),
                Picker::new(Policy::maglev(HashKey::path()), endpoints(), 1).expect("maglev"),
            ]
        });
        for picker in pickers.iter_mut() {
            for hash in [path_hash, header_hash].into_iter().flatten() {
                let first = picker.pick(Some(hash), Duration::ZERO);
                assert!(first.is_some_and(|i| i < picker.len()));
                assert_eq!(first, picker.pick(Some(hash), Duration::ZERO));
            }
        }
    });
}

/// How a DNS input is read: the first byte chooses SRV or host discovery, the endpoint cap
/// and the empty-answer rule; the rest is a DNS message in wire format.
#[derive(Debug, Clone, Copy)]
struct DnsSetup {
    srv: bool,
    max_endpoints: usize,
    on_empty: OnEmpty,
    port: u16,
}

impl DnsSetup {
    fn read(b: u8) -> Self {
        DnsSetup {
            srv: b & 0x80 == 0,
            // A small cap often, so the fuzzer meets it; otherwise the default.
            max_endpoints: if b & 0x40 == 0 {
                1000
            } else {
                usize::from(b & 0x0f) + 1
            },
            on_empty: match (b >> 4) & 0x03 {
                0 => OnEmpty::default(),
                1 => OnEmpty::Clear,
                2 => OnEmpty::Keep,
                _ => OnEmpty::KeepFor(Duration::ZERO),
            },
            port: u16::from(b & 0x0f) * 1000,
        }
    }

    fn run(&self) -> DnsRun {
        DnsRun::new(
            Name::from_str(SRV_NAME).expect("name"),
            self.max_endpoints,
            self.on_empty,
        )
    }

    /// One resolution of `m`: SRV answer and additional sections, and the authority section
    /// standing in for the targets' own A/AAAA lookups; or, for a host, the answer section.
    fn round(&self, run: &mut DnsRun, m: &Sections) -> DnsRound {
        if self.srv {
            run.srv(&m.answers, &m.additionals, &m.authorities)
        } else {
            run.host(&m.answers, self.port)
        }
    }
}

#[derive(Debug, Clone)]
struct Sections {
    answers: Vec<Record>,
    additionals: Vec<Record>,
    authorities: Vec<Record>,
}

impl Sections {
    fn reversed(&self) -> Sections {
        let rev = |v: &Vec<Record>| v.iter().rev().cloned().collect();
        Sections {
            answers: rev(&self.answers),
            additionals: rev(&self.additionals),
            authorities: rev(&self.authorities),
        }
    }
}

fn undialable(addr: SocketAddr) -> bool {
    addr.port() == 0
        || addr.ip().is_unspecified()
        || addr.ip().is_multicast()
        || matches!(addr.ip(), IpAddr::V4(v4) if v4.is_broadcast())
}

/// Applies a round's items to `published` (what a balancer would hold), checking their order
/// (inserts, then removes, then errors alone) and that the result is the answer's set.
fn apply(published: &mut BTreeMap<Key, Endpoint>, round: &DnsRound, setup: &DnsSetup) {
    let mut removing = false;
    let errors = round.items.iter().filter(|i| i.is_err()).count();
    assert!(
        errors == 0 || errors == round.items.len(),
        "errors mixed with changes"
    );
    let mut seen = std::collections::BTreeSet::new();
    for item in &round.items {
        match item {
            Ok(Change::Insert(key, endpoint)) => {
                assert!(!removing, "an insert after a remove");
                assert!(seen.insert(key.clone()), "{key} twice in one round");
                published.insert(key.clone(), endpoint.clone());
            }
            Ok(Change::Remove(key)) => {
                removing = true;
                assert!(seen.insert(key.clone()), "{key} twice in one round");
                assert!(published.remove(key).is_some(), "removes unknown {key}");
            }
            Err(_) => {}
        }
    }
    if !round.endpoints.is_empty() {
        let want: BTreeMap<Key, Endpoint> = round.endpoints.iter().cloned().collect();
        assert_eq!(
            *published, want,
            "the diffs do not lead to the answer's set"
        );
    }
    for (key, e) in published.iter() {
        assert_eq!(key.as_str(), e.addr().to_string());
        assert!(!undialable(e.addr()), "{key} cannot be dialled");
        assert!(e.weight() >= 1);
        if setup.srv {
            assert!(e.weight() == 1 || (e.weight() % 100 == 0 && e.weight() <= 6_553_500));
            assert!(e.priority() <= u32::from(u16::MAX));
        } else {
            assert_eq!(
                (e.weight(), e.priority(), e.addr().port()),
                (1, 0, setup.port)
            );
        }
    }
    assert!(round.endpoints.len() <= setup.max_endpoints);
    assert!(published.len() <= setup.max_endpoints);
    assert!(round.wait <= Duration::from_secs(30), "{:?}", round.wait);
}

/// DNS answer (wire format) → endpoints, through the code DNS discovery runs after its
/// lookups. Never a panic; every endpoint dialable, weight ≥ 1 (SRV: 1 or a multiple of 100),
/// at most the cap, keyed by its address; the stream's diffs turn the published set into the
/// answer's set (inserts before removes, no key twice); the same answer with its records in
/// reverse order makes the same set and no change; a failure changes nothing.
pub fn dns_answer(data: &[u8]) {
    let Some((&first, wire)) = data.split_first() else {
        return;
    };
    let Ok(message) = Message::from_vec(wire) else {
        return;
    };
    let setup = DnsSetup::read(first);
    let m = Sections {
        answers: message.answers.clone(),
        additionals: message.additionals.clone(),
        authorities: message.authorities.clone(),
    };

    let mut run = setup.run();
    let mut published = BTreeMap::new();
    let round = setup.round(&mut run, &m);
    apply(&mut published, &round, &setup);
    let endpoints = round.endpoints.clone();

    // Record order does not matter.
    let reversed = setup.round(&mut setup.run(), &m.reversed());
    assert_eq!(
        reversed.endpoints, endpoints,
        "the same answer in reverse order"
    );

    // The same answer again, in either order, changes nothing.
    for again in [m.reversed(), m] {
        let round = setup.round(&mut run, &again);
        if !endpoints.is_empty() {
            assert!(
                round.items.is_empty(),
                "an unchanged answer sent {:?}",
                round.items
            );
        }
        apply(&mut published, &round, &setup);
    }

    // A failure keeps the set.
    let before = published.clone();
    let round = run.fail();
    assert!(matches!(&round.items[..], [Err(_)]));
    apply(&mut published, &round, &setup);
    assert_eq!(published, before);
}
