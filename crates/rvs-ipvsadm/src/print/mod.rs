//! Everything ipvsadm prints from the table: listings (`-L`), the rule
//! format (`-S`), the connection table (`-L -c`), timeouts and sync daemons.
//!
//! Output is built as bytes because ipvsadm cuts names at byte offsets
//! (33 for an IPv4 service, 28 for an IPv4 real server, 59 for any
//! `addr:port` text) and pads with `printf` widths, which count bytes.

pub mod conn;
pub mod list;
pub mod save;
pub mod sort;

use crate::addr::{inet_ntop, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
use crate::options::fmt;
use crate::resolve::NameDb;
use rvs_core::dest::FwdMethod;
use rvs_core::Protocol;
use std::net::IpAddr;

/// `printf("%-Ns", s)`.
pub(crate) fn pad_right(out: &mut Vec<u8>, s: &[u8], width: usize) {
    out.extend_from_slice(s);
    for _ in s.len()..width {
        out.push(b' ');
    }
}

/// `snprintf(buf, n, ...)` keeps at most `n - 1` bytes.
pub(crate) fn cap(mut s: Vec<u8>, n: usize) -> Vec<u8> {
    s.truncate(n - 1);
    s
}

pub(crate) fn proto_number(p: Protocol) -> u16 {
    match p {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Sctp => IPPROTO_SCTP,
    }
}

/// ipvsadm's `addrport_to_anyname`: `addr:port` (`[addr]:port` for IPv6)
/// with names unless `-n`, in a 60-byte buffer.
pub fn addrport_to_anyname(
    addr: &IpAddr,
    port: u16,
    proto: u16,
    format: u32,
    names: &NameDb,
) -> Vec<u8> {
    let (open, close) = if addr.is_ipv4() { ("", "") } else { ("[", "]") };
    let s = if format & fmt::NUMERIC != 0 {
        format!("{open}{}{close}:{port}", inet_ntop(addr))
    } else {
        let host = match names.addr_to_host(addr) {
            Some(h) => h.to_string(),
            None => inet_ntop(addr),
        };
        let serv = match names.port_to_service(port, proto) {
            Some(s) => s.to_string(),
            None => port.to_string(),
        };
        format!("{open}{host}{close}:{serv}")
    };
    cap(s.into_bytes(), 60)
}

/// `print_largenum`: counters with K/M/G/T suffixes, or exact with `--exact`.
pub fn largenum(i: u64, format: u32) -> String {
    if format & fmt::EXACT != 0 {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>width$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

/// `fwd_name`: the Forward column (`printf` shows a NULL as `(null)`).
pub fn fwd_name(f: FwdMethod) -> &'static str {
    match f {
        FwdMethod::Masq => "Masq",
        FwdMethod::Local => "Local",
        FwdMethod::Tunnel => "Tunnel",
        FwdMethod::Route => "Route",
        FwdMethod::Bypass => "(null)",
    }
}

/// `fwd_switch`: the forwarding option in `-S` output.
pub fn fwd_switch(f: FwdMethod) -> &'static str {
    match f {
        FwdMethod::Masq => "-m",
        FwdMethod::Tunnel => "-i",
        FwdMethod::Local | FwdMethod::Route => "-g",
        FwdMethod::Bypass => "(null)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largenum_suffixes_and_exact() {
        assert_eq!(largenum(0, 0), "        0");
        assert_eq!(largenum(99_999_999, 0), " 99999999");
        assert_eq!(largenum(100_000_000, 0), "  100000K");
        assert_eq!(largenum(999_999_999, 0), "  999999K");
        assert_eq!(largenum(1_000_000_000, 0), "    1000M");
        assert_eq!(largenum(100_000_000_000, 0), "     100G");
        assert_eq!(largenum(100_000_000_000_000, 0), "     100T");
        assert_eq!(largenum(12, fmt::EXACT), "       12");
        assert_eq!(largenum(123_456_789, fmt::EXACT), " 123456789");
        assert_eq!(largenum(u64::MAX, fmt::EXACT), format!(" {}", u64::MAX));
    }

    #[test]
    fn anyname_forms() {
        let db = NameDb::from_text("127.0.0.1 localhost\n::1 localhost\n", "http 80/tcp\n");
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(addrport_to_anyname(&v4, 80, 6, 0, &db), b"localhost:http");
        assert_eq!(addrport_to_anyname(&v4, 80, 17, 0, &db), b"localhost:80");
        assert_eq!(addrport_to_anyname(&v6, 80, 6, 0, &db), b"[localhost]:http");
        assert_eq!(
            addrport_to_anyname(&v6, 80, 6, fmt::NUMERIC, &db),
            b"[::1]:80"
        );
        let long = format!("10.0.0.1 {}\n", "h".repeat(70));
        let db = NameDb::from_text(&long, "");
        let v: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(addrport_to_anyname(&v, 1, 6, 0, &db).len(), 59);
    }
}
