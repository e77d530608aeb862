//! The fuzz targets' checks, on stable and in `cargo test`: every seed
//! (`fuzz/corpus/<target>/`) and every past finding (`fuzz/regressions/<target>/`) goes through
//! the same function the fuzz target calls (`fuzz/src/lib.rs`, included here). Findings also
//! get a named test below. `fuzz/README.md` says how to run the fuzzers.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every seed and finding of `target` through `check`; there must be seeds.
fn replay(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files(&root.join("corpus").join(target));
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for file in seeds
        .iter()
        .chain(&files(&root.join("regressions").join(target)))
    {
        let data = std::fs::read(file).expect("read");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its check", file.display());
    }
}

#[test]
fn dns_answer() {
    replay("dns_answer", harness::dns_answer);
}

#[test]
fn service_config() {
    replay("service_config", harness::service_config);
}

#[test]
fn hash_key() {
    replay("hash_key", harness::hash_key);
}

#[test]
fn address() {
    replay("address", harness::address);
}

#[test]
fn grpc_timeout() {
    replay("grpc_timeout", |data| {
        harness::grpc_timeout(data);
    });
}

/// Finding (dns_answer, `fuzz/regressions/dns_answer/srv_cap_tie_record_order`): with the
/// endpoint cap reached, which SRV targets were looked up depended on the record order when
/// targets tied on priority and weight, so the same answer made different endpoint sets. Ties
/// now go by target name.
#[test]
fn srv_targets_tied_at_the_cap_do_not_depend_on_record_order() {
    use std::str::FromStr;

    use hickory_resolver::proto::rr::rdata::{A, SRV};
    use hickory_resolver::proto::rr::{Name, RData, Record};
    use tower_lb::discover::dns::OnEmpty;
    use tower_lb::fuzzing::DnsRun;

    let name = |s: &str| Name::from_str(s).unwrap();
    let srv = |target: &str| {
        Record::from_rdata(
            name(harness::SRV_NAME),
            60,
            RData::SRV(SRV::new(10, 5, 8080, name(target))),
        )
    };
    let a = |n: &str, ip: &str| Record::from_rdata(name(n), 60, RData::A(A(ip.parse().unwrap())));
    let answers = [srv("b.example."), srv("a.example.")];
    let additionals = [a("a.example.", "192.0.2.1"), a("b.example.", "192.0.2.2")];
    let endpoints = |answers: &[Record]| {
        let mut run = DnsRun::new(name(harness::SRV_NAME), 1, OnEmpty::default());
        run.srv(answers, &additionals, &[]).endpoints
    };
    let forward = endpoints(&answers);
    let backward = endpoints(&[answers[1].clone(), answers[0].clone()]);
    assert_eq!(forward, backward);
    assert_eq!(forward.len(), 1);
    assert_eq!(
        forward[0].0.as_str(),
        "192.0.2.1:8080",
        "a.example. comes first"
    );
}

/// Writes the DNS seeds (`fuzz/corpus/dns_answer/`): real answers in wire format, each with
/// its setup byte. Run once by hand: `cargo test --test fuzz_regressions -- --ignored`.
#[test]
#[ignore = "writes the DNS seed corpus"]
fn write_dns_seeds() {
    use std::str::FromStr;

    use hickory_resolver::proto::op::{Message, OpCode};
    use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, SRV};
    use hickory_resolver::proto::rr::{Name, RData, Record};

    let name = |s: &str| Name::from_str(s).unwrap();
    let srv = |p, w, port, target: &str, ttl| {
        Record::from_rdata(
            name(harness::SRV_NAME),
            ttl,
            RData::SRV(SRV::new(p, w, port, name(target))),
        )
    };
    let a =
        |n: &str, ip: &str, ttl| Record::from_rdata(name(n), ttl, RData::A(A(ip.parse().unwrap())));
    let aaaa = |n: &str, ip: &str, ttl| {
        Record::from_rdata(name(n), ttl, RData::AAAA(AAAA(ip.parse().unwrap())))
    };
    let message = |answers: Vec<Record>, additionals: Vec<Record>, authorities: Vec<Record>| {
        let mut m = Message::response(7, OpCode::Query);
        m.add_answers(answers);
        m.add_additionals(additionals);
        m.add_authorities(authorities);
        m.to_vec().unwrap()
    };
    let seeds: Vec<(&str, u8, Vec<u8>)> = vec![
        // Kubernetes headless service: one SRV record per pod, addresses alongside.
        (
            "srv_k8s",
            0x00,
            message(
                vec![
                    srv(0, 50, 50051, "pod-a.echo.default.svc.cluster.local.", 30),
                    srv(0, 50, 50051, "pod-b.echo.default.svc.cluster.local.", 30),
                ],
                vec![
                    a("pod-a.echo.default.svc.cluster.local.", "10.1.0.4", 30),
                    a("pod-b.echo.default.svc.cluster.local.", "10.1.0.5", 30),
                ],
                vec![],
            ),
        ),
        // Priorities, weight 0, a dual-stack target looked up separately, a duplicate
        // address through two records, and a cap of 2.
        (
            "srv_priorities_cap",
            0x41,
            message(
                vec![
                    srv(10, 0, 8080, "a.example.", 60),
                    srv(10, 5, 8080, "b.example.", 60),
                    srv(20, 1, 8080, "a.example.", 60),
                    srv(0, 3, 9090, "c.example.", 5),
                ],
                vec![a("a.example.", "192.0.2.1", 60)],
                vec![
                    a("b.example.", "192.0.2.2", 10),
                    aaaa("b.example.", "2001:db8::2", 10),
                    a("c.example.", "192.0.2.1", 10),
                ],
            ),
        ),
        // Hostile: port 0, target ".", undialable addresses, a CNAME, an unresolved target.
        (
            "srv_hostile",
            0x10,
            message(
                vec![
                    srv(0, 1, 0, "a.example.", 1),
                    srv(0, 1, 80, ".", 1),
                    srv(0, 1, 80, "bad.example.", 1),
                    srv(0, 1, 80, "gone.example.", 1),
                    Record::from_rdata(
                        name(harness::SRV_NAME),
                        1,
                        RData::CNAME(CNAME(name("elsewhere.example."))),
                    ),
                ],
                vec![
                    a("bad.example.", "0.0.0.0", 1),
                    a("bad.example.", "255.255.255.255", 1),
                    a("bad.example.", "224.0.0.1", 1),
                    aaaa("bad.example.", "ff02::1", 1),
                    a("unasked.example.", "10.9.9.9", 1),
                ],
                vec![],
            ),
        ),
        // Host discovery at port 5000: A and AAAA answers, one of them twice.
        (
            "host",
            0x85,
            message(
                vec![
                    a("echo.internal.", "10.0.0.1", 20),
                    a("echo.internal.", "10.0.0.1", 20),
                    aaaa("echo.internal.", "::1", 3),
                ],
                vec![],
                vec![],
            ),
        ),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/dns_answer");
    std::fs::create_dir_all(&dir).unwrap();
    for (file, setup, wire) in seeds {
        let data = [&[setup][..], &wire].concat();
        harness::dns_answer(&data);
        std::fs::write(dir.join(file), data).unwrap();
    }
}
