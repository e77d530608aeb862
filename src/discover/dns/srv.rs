//! SRV records to endpoint candidates: RFC 2782 priority and weight, one candidate per
//! address of each target.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::proto::rr::Name;
use hickory_resolver::proto::rr::rdata::SRV;

use super::candidates::{Candidate, server_name};

/// How much an SRV weight unit counts: weight `w ≥ 1` becomes `w × 100`.
pub(crate) const WEIGHT_SCALE: u32 = 100;

/// The endpoint weight for an SRV weight. RFC 2782 gives weight 0 "a very small chance" of
/// being picked when others have weight: 1, against 100 per unit of any other record.
pub(crate) fn endpoint_weight(srv_weight: u16) -> u32 {
    match srv_weight {
        0 => 1,
        w => u32::from(w) * WEIGHT_SCALE,
    }
}

/// Why an SRV record is skipped before its target is resolved, if it is.
pub(crate) fn unusable(srv: &SRV) -> Option<&'static str> {
    if srv.target.is_root() {
        Some("target \".\" (service not available)")
    } else if srv.port == 0 {
        Some("port 0")
    } else {
        None
    }
}

/// One candidate per address of each record's target, named by the target (the name its TLS
/// certificate is checked against); records whose target has no address contribute nothing.
pub(crate) fn candidates(
    records: &[SRV],
    addresses: &HashMap<Name, Vec<IpAddr>>,
) -> Vec<Candidate> {
    records
        .iter()
        .filter(|srv| unusable(srv).is_none())
        .flat_map(|srv| {
            let ips = addresses
                .get(&srv.target)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let name = server_name(&srv.target);
            ips.iter().map(move |ip| Candidate {
                addr: SocketAddr::new(*ip, srv.port),
                priority: u32::from(srv.priority),
                weight: endpoint_weight(srv.weight),
                server_name: Some(name.clone()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SRV {
        SRV::new(priority, weight, port, Name::from_str(target).unwrap())
    }

    #[test]
    fn weight_zero_is_a_small_share_and_others_scale() {
        assert_eq!(endpoint_weight(0), 1);
        assert_eq!(endpoint_weight(1), 100);
        assert_eq!(endpoint_weight(u16::MAX), 6_553_500);
    }

    #[test]
    fn every_address_of_a_target_is_a_candidate_at_the_record_port() {
        let a = Name::from_str("a.example.").unwrap();
        let addresses = HashMap::from([(
            a.clone(),
            vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        )]);
        let records = [
            srv(10, 5, 8080, "a.example."),
            srv(20, 0, 9090, "a.example."),
            srv(0, 1, 80, "unresolved.example."),
            srv(0, 1, 0, "a.example."),
            srv(0, 1, 80, "."),
        ];
        let got = candidates(&records, &addresses);
        let want = [
            ("10.0.0.1:8080", 10, 500),
            ("[::1]:8080", 10, 500),
            ("10.0.0.1:9090", 20, 1),
            ("[::1]:9090", 20, 1),
        ];
        assert_eq!(got.len(), want.len());
        for (c, (addr, priority, weight)) in got.iter().zip(want) {
            assert_eq!(c.addr, addr.parse::<SocketAddr>().unwrap());
            assert_eq!((c.priority, c.weight), (priority, weight));
            // The TLS server name is the SRV target, without the trailing dot.
            assert_eq!(c.server_name.as_deref(), Some("a.example"));
        }
    }
}
