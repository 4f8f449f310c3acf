//! Addresses as the file writes them: `10.0.0.1:80`, `[2001:db8::1]:80`,
//! and persistence netmasks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses `a.b.c.d[:port]`, `[v6][:port]` or a bare IPv6 address. Only
/// numeric addresses in their standard forms (no `inet_aton` shorthand,
/// no host names): a configuration file should say exactly what it means.
pub fn parse_endpoint(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("`{s}`: missing `]`"));
        };
        let addr: Ipv6Addr = host.parse().map_err(|_| {
            if host.parse::<Ipv4Addr>().is_ok() {
                format!("`{s}`: brackets are only for IPv6 addresses")
            } else {
                format!("`{s}`: `{host}` is not an IPv6 address")
            }
        })?;
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(parse_port(s, p)?),
                None => return Err(format!("`{s}`: expected `:port` after `]`")),
            },
        };
        return Ok((IpAddr::V6(addr), port));
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok((a, None));
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "`{s}` is not an address (10.0.0.1:80 or [2001:db8::1]:80)"
        ));
    };
    if host.contains(':') {
        return Err(format!(
            "`{s}`: write an IPv6 address with a port in brackets, as [2001:db8::1]:80"
        ));
    }
    let addr: Ipv4Addr = host
        .parse()
        .map_err(|_| format!("`{s}`: `{host}` is not an IPv4 address"))?;
    Ok((IpAddr::V4(addr), Some(parse_port(s, port)?)))
}

fn parse_port(whole: &str, p: &str) -> Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{whole}`: the port must be a number 0..=65535"));
    }
    p.parse()
        .map_err(|_| format!("`{whole}`: the port must be a number 0..=65535"))
}

/// `10.0.0.1:80` or `[2001:db8::1]:80`.
pub fn format_endpoint(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// An IPv4 netmask (host order) from its prefix length.
pub fn mask_from_prefix(len: u32) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    }
}

/// A service named on a command line or in a tracking table:
/// `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `sctp:...`, `fwmark:5`,
/// `fwmark6:5` (an IPv6 firewall-mark service).
pub fn parse_service_name(s: &str) -> Result<rvs_core::ServiceKey, String> {
    use rvs_core::{Af, Protocol, ServiceKey};
    let (kind, rest) = s.split_once(':').ok_or_else(|| {
        format!("`{s}`: a service is tcp:ADDR:PORT, udp:ADDR:PORT, sctp:ADDR:PORT or fwmark:MARK")
    })?;
    let proto = match kind {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        "fwmark" | "fwmark6" => {
            let mark: u32 = rest
                .parse()
                .ok()
                .filter(|m| *m > 0)
                .ok_or_else(|| format!("`{s}`: the mark must be 1..=4294967295"))?;
            let af = if kind == "fwmark6" {
                Af::Inet6
            } else {
                Af::Inet
            };
            return Ok(ServiceKey::Fwmark { mark, af });
        }
        other => {
            return Err(format!(
                "`{s}`: unknown service kind `{other}` (tcp, udp, sctp, fwmark, fwmark6)"
            ))
        }
    };
    let (addr, port) = parse_endpoint(rest).map_err(|e| format!("`{s}`: {e}"))?;
    let port = port.ok_or_else(|| format!("`{s}`: the service needs a port"))?;
    Ok(ServiceKey::Addr { proto, addr, port })
}

/// The name [`parse_service_name`] reads.
pub fn format_service_name(key: &rvs_core::ServiceKey) -> String {
    use rvs_core::{Af, ServiceKey};
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            format!("{}:{}", proto.service_proto(), format_endpoint(addr, *port))
        }
        ServiceKey::Fwmark { mark, af: Af::Inet } => format!("fwmark:{mark}"),
        ServiceKey::Fwmark {
            mark,
            af: Af::Inet6,
        } => format!("fwmark6:{mark}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (String, Option<u16>) {
        let (a, p) = parse_endpoint(s).unwrap();
        (a.to_string(), p)
    }

    #[test]
    fn endpoints() {
        assert_eq!(ok("10.0.0.1:80"), ("10.0.0.1".into(), Some(80)));
        assert_eq!(ok("10.0.0.1"), ("10.0.0.1".into(), None));
        assert_eq!(ok("[2001:db8::1]:443"), ("2001:db8::1".into(), Some(443)));
        assert_eq!(ok("[2001:db8::1]"), ("2001:db8::1".into(), None));
        assert_eq!(ok("2001:db8::1"), ("2001:db8::1".into(), None));
        assert_eq!(ok("10.0.0.1:0"), ("10.0.0.1".into(), Some(0)));
        assert_eq!(
            ok("[::ffff:10.0.0.9]:80"),
            ("::ffff:10.0.0.9".into(), Some(80))
        );
    }

    #[test]
    fn bad_endpoints_say_why() {
        let e = |s: &str| parse_endpoint(s).unwrap_err();
        assert!(e("10.0.0.1:65536").contains("0..=65535"));
        assert!(e("10.0.0.1:").contains("0..=65535"));
        assert!(e("10.0.0.1:+80").contains("0..=65535"));
        assert!(e("[10.0.0.1]:80").contains("only for IPv6"));
        assert!(e("[2001:db8::1]80").contains("expected `:port`"));
        assert!(e("[2001:db8::1:80").contains("missing `]`"));
        assert!(e("2001:db8::1:zz").contains("in brackets"));
        assert!(e("10.1:80").contains("not an IPv4 address"));
        assert!(e("localhost:80").contains("not an IPv4 address"));
        assert!(e("web").contains("not an address"));
    }

    #[test]
    fn masks_from_prefixes() {
        assert_eq!(mask_from_prefix(24), 0xffff_ff00);
        assert_eq!(mask_from_prefix(32), 0xffff_ffff);
        assert_eq!(mask_from_prefix(1), 0x8000_0000);
        assert_eq!(mask_from_prefix(0), 0);
    }
}
