//! Host discovery's input: `name:port` parsed with errors that say what is wrong, and its
//! addresses turned into candidates at that port.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use hickory_resolver::proto::rr::Name;

use super::candidates::{Candidate, server_name};
use crate::error::Error;

/// What host discovery resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    /// A DNS name: its A and AAAA records.
    Name(Name),
    /// An IP address given as such: it is its own answer.
    Ip(IpAddr),
}

/// Parses `name:port`, `ipv4:port` or `[ipv6]:port`.
pub(crate) fn parse_host_port(input: &str) -> Result<(Host, u16), Error> {
    let s = input.trim();
    let invalid = |why: &str| Error::InvalidConfig(format!("DNS host {input:?}: {why}"));
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, port) = rest
            .split_once("]:")
            .ok_or_else(|| invalid("expected [ipv6]:port"))?;
        let ip: std::net::Ipv6Addr = ip
            .parse()
            .map_err(|_| invalid("not an IPv6 address inside [ ]"))?;
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| invalid("missing :port (e.g. echo.internal:50051)"))?;
        if host.contains(':') {
            return Err(invalid("an IPv6 address goes in brackets: [::1]:50051"));
        }
        if host.is_empty() {
            return Err(invalid("empty name"));
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(parse_name(host).map_err(|e| invalid(&e))?),
        };
        (host, port)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port must be a number from 1 to 65535"))?;
    if port == 0 {
        return Err(Error::InvalidEndpoint(format!(
            "DNS host {input:?}: port 0"
        )));
    }
    Ok((host, port))
}

/// A DNS name, or why it is not one.
pub(crate) fn parse_name(name: &str) -> Result<Name, String> {
    if name.is_empty() || name == "." {
        return Err("empty name".into());
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a DNS name has no spaces or control characters".into());
    }
    let parsed = Name::from_str(name).map_err(|e| format!("not a DNS name ({e})"))?;
    // hickory reads some malformed escapes (`\15`) as the root name.
    if parsed.is_root() {
        return Err("empty name".into());
    }
    Ok(parsed)
}

/// One candidate per address, at `port`, weight 1, priority 0, named by the host name asked
/// for (`None` for a host given as an IP address: an address is never a TLS name).
pub(crate) fn candidates(ips: &[IpAddr], port: u16, name: Option<&Name>) -> Vec<Candidate> {
    let name = name.map(server_name);
    ips.iter()
        .map(|ip| Candidate {
            addr: SocketAddr::new(*ip, port),
            priority: 0,
            weight: 1,
            server_name: name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_addresses() {
        let (host, port) = parse_host_port("echo.internal:50051").unwrap();
        assert_eq!(host, Host::Name(Name::from_str("echo.internal").unwrap()));
        assert_eq!(port, 50051);
        let (host, _) = parse_host_port(" echo.default.svc.cluster.local.:1 ").unwrap();
        assert!(matches!(host, Host::Name(n) if n.is_fqdn()));
        assert_eq!(
            parse_host_port("127.0.0.1:80").unwrap(),
            (Host::Ip("127.0.0.1".parse().unwrap()), 80)
        );
        assert_eq!(
            parse_host_port("[::1]:80").unwrap(),
            (Host::Ip("::1".parse().unwrap()), 80)
        );
    }

    #[test]
    fn candidates_are_named_by_the_host_name_never_the_address() {
        let name = Name::from_str("echo.internal.").unwrap();
        let ips = ["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        for c in candidates(&ips, 443, Some(&name)) {
            assert_eq!(c.server_name.as_deref(), Some("echo.internal"));
        }
        assert!(
            candidates(&ips, 443, None)
                .iter()
                .all(|c| c.server_name.is_none())
        );
    }

    #[test]
    fn refuses_with_a_reason() {
        for (input, reason) in [
            ("echo.internal", "missing :port"),
            ("echo.internal:", "port must be a number"),
            ("echo.internal:http", "port must be a number"),
            ("echo.internal:65536", "port must be a number"),
            (":80", "empty name"),
            ("::1:80", "brackets"),
            ("[::1]80", "[ipv6]:port"),
            ("[nope]:80", "not an IPv6 address"),
            ("bad name:80", "no spaces"),
            ("a..b:80", "not a DNS name"),
            // Found by the address fuzz target: hickory reads this as the root name.
            ("\\15:257", "empty name"),
        ] {
            let e = parse_host_port(input).unwrap_err();
            assert!(matches!(e, Error::InvalidConfig(_)), "{input}: {e}");
            assert!(e.to_string().contains(reason), "{input}: {e}");
        }
        assert!(matches!(
            parse_host_port("echo.internal:0"),
            Err(Error::InvalidEndpoint(_))
        ));
    }
}
