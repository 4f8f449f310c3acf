//! Name lookups the way glibc's `files` NSS backend answers them:
//! `gethostbyname`/`gethostbyaddr` from a hosts file and
//! `getservbyname`/`getservbyport` from a services file.
//!
//! ipvsadm resolves names in both directions: `host[:port]` arguments may
//! use names, and listings without `-n` print names. rvsadm reads
//! `/etc/hosts` and `/etc/services` (or the files named by `RVS_HOSTS_FILE`
//! and `RVS_SERVICES_FILE`, which tests use to pin the oracle's files) and
//! never queries DNS, so a name that only DNS knows prints as a number.

use crate::addr::{inet_pton4, inet_pton6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

#[derive(Debug, Clone)]
struct HostEntry {
    addr: IpAddr,
    /// Canonical name first, then the aliases.
    names: Vec<String>,
}

impl HostEntry {
    /// The line's address as an IPv4 (`AF_INET`) lookup sees it: glibc
    /// reads an IPv4-mapped IPv6 line as its IPv4 address and `::1` as
    /// 127.0.0.1; other IPv6 lines do not exist for such lookups.
    fn as_v4(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(a) if a.is_loopback() => Some(Ipv4Addr::LOCALHOST),
            IpAddr::V6(a) => a.to_ipv4_mapped(),
        }
    }
}

#[derive(Debug, Clone)]
struct ServEntry {
    port: u16,
    proto: String,
    /// Official name first, then the aliases.
    names: Vec<String>,
}

/// The parsed hosts and services databases.
#[derive(Debug, Clone, Default)]
pub struct NameDb {
    hosts: Vec<HostEntry>,
    services: Vec<ServEntry>,
}

fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

fn proto_name(proto: u16) -> Option<&'static str> {
    match proto {
        IPPROTO_TCP => Some("tcp"),
        IPPROTO_UDP => Some("udp"),
        IPPROTO_SCTP => Some("sctp"),
        _ => None,
    }
}

impl NameDb {
    /// Parses hosts-file and services-file text.
    pub fn from_text(hosts: &str, services: &str) -> NameDb {
        let mut db = NameDb::default();
        for line in hosts.lines() {
            let mut f = strip_comment(line).split_ascii_whitespace();
            let (Some(a), Some(_)) = (f.next(), f.clone().next()) else {
                continue;
            };
            let addr = if let Some(v6) = inet_pton6(a) {
                IpAddr::V6(v6)
            } else if let Some(v4) = inet_pton4(a) {
                IpAddr::V4(v4)
            } else {
                continue;
            };
            db.hosts.push(HostEntry {
                addr,
                names: f.map(str::to_string).collect(),
            });
        }
        for line in services.lines() {
            let mut f = strip_comment(line).split_ascii_whitespace();
            let (Some(name), Some(pp)) = (f.next(), f.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let mut names = vec![name.to_string()];
            names.extend(f.map(str::to_string));
            db.services.push(ServEntry {
                port,
                proto: proto.to_string(),
                names,
            });
        }
        db
    }

    /// The system databases (or `RVS_HOSTS_FILE` / `RVS_SERVICES_FILE`),
    /// read once per process.
    pub fn system() -> &'static NameDb {
        static DB: OnceLock<NameDb> = OnceLock::new();
        DB.get_or_init(|| {
            let read = |var: &str, default: &str| {
                let path = std::env::var_os(var)
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| default.into());
                std::fs::read(path)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            NameDb::from_text(
                &read("RVS_HOSTS_FILE", "/etc/hosts"),
                &read("RVS_SERVICES_FILE", "/etc/services"),
            )
        })
    }

    /// `gethostbyname(name)` restricted to IPv4 answers (ipvsadm's
    /// `host_to_addr`). Names made only of digits and dots never reach the
    /// hosts file (glibc treats them as numeric), nor do names with `:`.
    pub fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr> {
        if name.is_empty() || name.contains(':') {
            return None;
        }
        if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !name.ends_with('.') {
            return None;
        }
        self.hosts
            .iter()
            .filter(|h| h.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .find_map(HostEntry::as_v4)
    }

    /// `gethostbyaddr`: the canonical name of the first hosts line with
    /// this address (for IPv4, as [`HostEntry::as_v4`] reads the lines).
    pub fn addr_to_host(&self, addr: &IpAddr) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| match addr {
                IpAddr::V4(a) => h.as_v4() == Some(*a),
                IpAddr::V6(_) => h.addr == *addr,
            })
            .and_then(|h| h.names.first())
            .map(String::as_str)
    }

    /// `getservbyname(name, proto)` for TCP, UDP and SCTP.
    pub fn service_to_port(&self, name: &str, proto: u16) -> Option<u16> {
        let p = proto_name(proto)?;
        self.services
            .iter()
            .find(|s| s.proto == p && s.names.iter().any(|n| n == name))
            .map(|s| s.port)
    }

    /// `getservbyport(port, proto)` for TCP, UDP and SCTP.
    pub fn port_to_service(&self, port: u16, proto: u16) -> Option<&str> {
        let p = proto_name(proto)?;
        self.services
            .iter()
            .find(|s| s.proto == p && s.port == port)
            .map(|s| s.names[0].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lookups() {
        let db = NameDb::from_text(
            "# c\n127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.1.1\tOracle  alias # x\nbogus name\n10.0.0.1\n",
            "",
        );
        assert_eq!(
            db.host_to_v4("localhost"),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(db.host_to_v4("oracle"), Some(Ipv4Addr::new(127, 0, 1, 1)));
        assert_eq!(db.host_to_v4("ALIAS"), Some(Ipv4Addr::new(127, 0, 1, 1)));
        assert_eq!(db.host_to_v4("ip6-localhost"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(db.host_to_v4("10.0.0.1"), None);
        assert_eq!(db.addr_to_host(&"::1".parse().unwrap()), Some("localhost"));
        assert_eq!(
            db.addr_to_host(&"127.0.1.1".parse().unwrap()),
            Some("Oracle")
        );
        assert_eq!(db.addr_to_host(&"10.0.0.1".parse().unwrap()), None);
        let db = NameDb::from_text(
            "::1 v6-loop\n::ffff:10.1.2.3 mapped\n2001:db8::1 v6\n127.0.0.1 localhost\n",
            "",
        );
        assert_eq!(db.host_to_v4("v6-loop"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(db.host_to_v4("mapped"), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(db.host_to_v4("v6"), None);
        assert_eq!(
            db.addr_to_host(&"127.0.0.1".parse().unwrap()),
            Some("v6-loop")
        );
        assert_eq!(db.addr_to_host(&"::1".parse().unwrap()), Some("v6-loop"));
        assert_eq!(
            db.addr_to_host(&"::ffff:10.1.2.3".parse().unwrap()),
            Some("mapped")
        );
    }

    #[test]
    fn services_lookups() {
        let db = NameDb::from_text(
            "",
            "http 80/tcp www # web\nhttps 443/tcp\nhttps 443/udp\namqp 5672/sctp\n",
        );
        assert_eq!(db.service_to_port("www", IPPROTO_TCP), Some(80));
        assert_eq!(db.service_to_port("http", IPPROTO_UDP), None);
        assert_eq!(db.service_to_port("amqp", IPPROTO_SCTP), Some(5672));
        assert_eq!(db.service_to_port("http", 0), None);
        assert_eq!(db.port_to_service(443, IPPROTO_UDP), Some("https"));
        assert_eq!(db.port_to_service(80, IPPROTO_SCTP), None);
    }
}
