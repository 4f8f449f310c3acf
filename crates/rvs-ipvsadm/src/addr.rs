//! Address, port and number parsing exactly as ipvsadm does it with glibc:
//! `strtol`-based integers, `inet_aton` (with its `10.1` / `0x0a000001`
//! shorthands), `inet_pton`/`inet_ntop` for IPv6, and `parse_service`'s
//! `host[:port]` rules with their quirks (a bracketed IPv4 host loses its
//! port; an unbracketed string is tried as IPv6 first, so `::1:80` is an
//! address without a port).

use crate::resolve::NameDb;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol numbers as ipvsadm keeps them in `svc.protocol`.
pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;
pub const IPPROTO_SCTP: u16 = 132;

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtol(s, &end, 10)`: the value (clamped like glibc on overflow), the
/// index where parsing stopped (0 when nothing was converted) and whether
/// `errno` would be `ERANGE`.
pub fn strtol10(s: &str) -> (i64, usize, bool) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut acc: i128 = 0;
    let mut overflow = false;
    while i < b.len() && b[i].is_ascii_digit() {
        if !overflow {
            acc = acc * 10 + (b[i] - b'0') as i128;
            if acc > i64::MAX as i128 + 1 {
                overflow = true;
            }
        }
        i += 1;
    }
    if i == start {
        return (0, 0, false);
    }
    let v = if neg { -acc } else { acc };
    if overflow || v > i64::MAX as i128 {
        return (i64::MAX, i, true);
    }
    if v < i64::MIN as i128 {
        return (i64::MIN, i, true);
    }
    (v as i64, i, false)
}

/// ipvsadm's `string_to_number`: the whole string must be a base-10 integer
/// (leading blanks, `+` and leading zeros allowed) within `min..=max`.
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let (v, end, erange) = strtol10(s);
    if end == s.len() && end != 0 && !erange && min <= v && v <= max {
        Some(v)
    } else {
        None
    }
}

/// `atoi`: `(int) strtol(s, NULL, 10)`, no error checking at all.
pub fn atoi(s: &str) -> i32 {
    strtol10(s).0 as i32
}

/// `parse_fwmark`: a whole base-10 integer in `1..=4294967295`.
pub fn parse_fwmark(s: &str) -> Option<u32> {
    let (v, end, erange) = strtol10(s);
    if end != s.len() || end == 0 || erange || v <= 0 || v > u32::MAX as i64 {
        None
    } else {
        Some(v as u32)
    }
}

/// `strtoul(s, &end, 0)` on a string that starts with a digit: value
/// (saturated) and bytes consumed.
fn strtoul0(b: &[u8]) -> (u64, usize) {
    let (radix, mut i) =
        if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2].is_ascii_hexdigit() {
            (16u64, 2)
        } else if b[0] == b'0' {
            (8, 0)
        } else {
            (10, 0)
        };
    let mut acc: u64 = 0;
    while i < b.len() {
        let d = match (b[i] as char).to_digit(radix as u32) {
            Some(d) => d as u64,
            None => break,
        };
        acc = acc.saturating_mul(radix).saturating_add(d);
        i += 1;
    }
    (acc, i)
}

/// glibc `inet_aton`: `a.b.c.d`, `a.b.c`, `a.b`, `a`, each part decimal,
/// octal or hex; trailing blanks and anything after them are ignored.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut parts: Vec<u64> = Vec::with_capacity(3);
    let mut i = 0;
    let val;
    loop {
        if i >= b.len() || !b[i].is_ascii_digit() {
            return None;
        }
        let (v, n) = strtoul0(&b[i..]);
        if v > 0xffff_ffff {
            return None;
        }
        i += n;
        if i < b.len() && b[i] == b'.' {
            if parts.len() > 2 || v > 0xff {
                return None;
            }
            parts.push(v);
            i += 1;
        } else {
            val = v;
            break;
        }
    }
    if i < b.len() && !is_c_space(b[i]) {
        return None;
    }
    const MAX: [u64; 4] = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff];
    if val > MAX[parts.len()] {
        return None;
    }
    let mut word: u32 = 0;
    for (k, p) in parts.iter().enumerate() {
        word |= (*p as u32) << (24 - 8 * k);
    }
    Some(Ipv4Addr::from(word | val as u32))
}

/// glibc `inet_pton(AF_INET, ...)`: exactly four decimal octets, no leading zeros.
pub fn inet_pton4(s: &str) -> Option<Ipv4Addr> {
    let mut tmp = [0u8; 4];
    let mut tp = 0usize;
    let mut saw_digit = false;
    let mut octets = 0;
    for &ch in s.as_bytes() {
        if ch.is_ascii_digit() {
            let new = tmp[tp] as u32 * 10 + (ch - b'0') as u32;
            if saw_digit && tmp[tp] == 0 {
                return None;
            }
            if new > 255 {
                return None;
            }
            tmp[tp] = new as u8;
            if !saw_digit {
                octets += 1;
                if octets > 4 {
                    return None;
                }
                saw_digit = true;
            }
        } else if ch == b'.' && saw_digit {
            if octets == 4 {
                return None;
            }
            tp += 1;
            tmp[tp] = 0;
            saw_digit = false;
        } else {
            return None;
        }
    }
    if octets < 4 {
        return None;
    }
    Some(Ipv4Addr::from(tmp))
}

/// glibc `inet_pton(AF_INET6, ...)`.
pub fn inet_pton6(s: &str) -> Option<Ipv6Addr> {
    let src = s.as_bytes();
    let mut tmp = [0u8; 16];
    let endp = 16usize;
    let mut tp = 0usize;
    let mut colonp: Option<usize> = None;
    let mut i = 0usize;
    if src.is_empty() {
        return None;
    }
    if src[0] == b':' {
        i += 1;
        if i == src.len() || src[i] != b':' {
            return None;
        }
    }
    let mut curtok = i;
    let mut xdigits_seen = 0;
    let mut val: u32 = 0;
    while i < src.len() {
        let ch = src[i];
        i += 1;
        if let Some(d) = (ch as char).to_digit(16) {
            if xdigits_seen == 4 {
                return None;
            }
            val = (val << 4) | d;
            if val > 0xffff {
                return None;
            }
            xdigits_seen += 1;
            continue;
        }
        if ch == b':' {
            curtok = i;
            if xdigits_seen == 0 {
                if colonp.is_some() {
                    return None;
                }
                colonp = Some(tp);
                continue;
            } else if i == src.len() {
                return None;
            }
            if tp + 2 > endp {
                return None;
            }
            tmp[tp] = (val >> 8) as u8;
            tmp[tp + 1] = val as u8;
            tp += 2;
            xdigits_seen = 0;
            val = 0;
            continue;
        }
        if ch == b'.' && tp + 4 <= endp {
            if let Some(v4) = inet_pton4(&s[curtok..]) {
                tmp[tp..tp + 4].copy_from_slice(&v4.octets());
                tp += 4;
                xdigits_seen = 0;
                break;
            }
        }
        return None;
    }
    if xdigits_seen > 0 {
        if tp + 2 > endp {
            return None;
        }
        tmp[tp] = (val >> 8) as u8;
        tmp[tp + 1] = val as u8;
        tp += 2;
    }
    if let Some(c) = colonp {
        if tp == endp {
            return None;
        }
        let n = tp - c;
        tmp.copy_within(c..c + n, endp - n);
        for b in &mut tmp[c..endp - n] {
            *b = 0;
        }
        tp = endp;
    }
    if tp != endp {
        return None;
    }
    Some(Ipv6Addr::from(tmp))
}

/// glibc `inet_ntop(AF_INET6, ...)`: RFC 5952 zero compression, and the
/// dotted form for v4-mapped (`::ffff:a.b.c.d`) and v4-compatible
/// (`::a.b.c.d`) addresses.
pub fn inet_ntop6(a: &Ipv6Addr) -> String {
    let src = a.octets();
    let words = a.segments();
    let (mut best_base, mut best_len): (i32, i32) = (-1, 0);
    let (mut cur_base, mut cur_len): (i32, i32) = (-1, 0);
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur_base == -1 {
                cur_base = i as i32;
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur_base != -1 {
            if best_base == -1 || cur_len > best_len {
                best_base = cur_base;
                best_len = cur_len;
            }
            cur_base = -1;
        }
    }
    if cur_base != -1 && (best_base == -1 || cur_len > best_len) {
        best_base = cur_base;
        best_len = cur_len;
    }
    if best_base != -1 && best_len < 2 {
        best_base = -1;
    }
    let mut out = String::with_capacity(46);
    let mut i = 0i32;
    while i < 8 {
        if best_base != -1 && i >= best_base && i < best_base + best_len {
            if i == best_base {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)) {
            out.push_str(&Ipv4Addr::new(src[12], src[13], src[14], src[15]).to_string());
            break;
        }
        out.push_str(&format!("{:x}", words[i as usize]));
        i += 1;
    }
    if best_base != -1 && best_base + best_len == 8 {
        out.push(':');
    }
    out
}

/// `inet_ntop` for either family.
pub fn inet_ntop(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => inet_ntop6(v6),
    }
}

/// `str_is_digit`: true for the empty string and for all-digit strings.
fn str_is_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// A successfully parsed `host[:port]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort {
    pub addr: IpAddr,
    /// `None` when no port was given (ipvsadm's `SERVICE_ADDR` without
    /// `SERVICE_PORT`), including the `[v4]:port` quirk.
    pub port: Option<u16>,
}

/// ipvsadm's `parse_service`: `host[:port]` for `-t/-u/--sctp-service/-r`.
/// `proto` is the protocol known so far (for service-name lookup). `None`
/// means the string is invalid.
pub fn parse_host_port(s: &str, proto: u16, names: &NameDb) -> Option<HostPort> {
    if str_is_digit(s) {
        return None;
    }
    let mut buf = s;
    let mut portp: Option<&str> = None;
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let after = &rest[close + 1..];
        let port = after.strip_prefix(':')?;
        buf = &rest[..close];
        portp = Some(port);
    }
    let addr = if let Some(a6) = inet_pton6(buf) {
        IpAddr::V6(a6)
    } else {
        portp = match buf.rfind(':') {
            Some(i) => {
                let p = &buf[i + 1..];
                buf = &buf[..i];
                Some(p)
            }
            None => None,
        };
        match inet_aton(buf).or_else(|| names.host_to_v4(buf)) {
            Some(a) => IpAddr::V4(a),
            None => return None,
        }
    };
    let port = match portp {
        None => None,
        Some(p) => match string_to_number(p, 0, 65535) {
            Some(n) => Some(n as u16),
            None => Some(names.service_to_port(p, proto)?),
        },
    };
    Some(HostPort { addr, port })
}

/// `parse_netmask` for an IPv4 service: dotted quad via `inet_aton` (so `24`
/// is `0.0.0.24`), else a host name. Host byte order.
pub fn parse_netmask(s: &str, names: &NameDb) -> Option<u32> {
    inet_aton(s).or_else(|| names.host_to_v4(s)).map(u32::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> NameDb {
        NameDb::from_text(
            "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n127.0.1.1 oracle # comment\n",
            "http\t80/tcp www\nhttp-alt 8080/tcp webcache\ndomain 53/tcp\ndomain 53/udp\namqp 5672/sctp\n",
        )
    }

    #[test]
    fn integers_follow_strtol() {
        assert_eq!(string_to_number(" 4", 0, 10), Some(4));
        assert_eq!(string_to_number("+3", 0, 10), Some(3));
        assert_eq!(string_to_number("007", 0, 10), Some(7));
        assert_eq!(string_to_number("0x10", 0, 100), None);
        assert_eq!(string_to_number("", 0, 100), None);
        assert_eq!(string_to_number("-", 0, 100), None);
        assert_eq!(string_to_number("4 ", 0, 100), None);
        assert_eq!(string_to_number("-0", 0, 100), Some(0));
        assert_eq!(string_to_number("2147483648", 0, i32::MAX as i64), None);
        assert_eq!(string_to_number("99999999999999999999", 0, i64::MAX), None);
        assert_eq!(atoi(" +7x"), 7);
        assert_eq!(atoi("4294967297"), 1);
        assert_eq!(atoi("-5") as u32, 0xffff_fffb);
    }

    #[test]
    fn fwmarks() {
        assert_eq!(parse_fwmark("1"), Some(1));
        assert_eq!(parse_fwmark("4294967295"), Some(u32::MAX));
        for bad in ["0", "-1", "abc", "4294967296", "1x", ""] {
            assert_eq!(parse_fwmark(bad), None, "{bad}");
        }
    }

    #[test]
    fn inet_aton_shorthands() {
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("10.0.0"), Some(Ipv4Addr::new(10, 0, 0, 0)));
        assert_eq!(inet_aton("0x0a000001"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("24"), Some(Ipv4Addr::new(0, 0, 0, 24)));
        assert_eq!(inet_aton("10.0.0.1 junk"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        for bad in [
            "999.0.0.1",
            "255.255.255.256",
            "1.2.3.4.5",
            "08",
            "0x",
            "",
            " 1",
            "1.",
            "a",
        ] {
            assert_eq!(inet_aton(bad), None, "{bad}");
        }
    }

    #[test]
    fn pton6_matches_glibc() {
        assert_eq!(inet_pton6("::1"), Some(Ipv6Addr::LOCALHOST));
        assert!(inet_pton6("2001:db8:0:0:0:0:0:2").is_some());
        assert!(inet_pton6("::ffff:10.0.0.9").is_some());
        assert!(inet_pton6("1:2:3:4:5:6:7::").is_some());
        for bad in [
            "",
            ":",
            ":1",
            "1:",
            "1:2:3:4::5:6:7:8",
            "12345::",
            "::1:2:3:4:5:6:7:8",
            "::01.2.3.4",
            "1::2::3",
        ] {
            assert_eq!(inet_pton6(bad), None, "{bad}");
        }
        assert_eq!(inet_pton6("::1:80"), Some("::1:80".parse().unwrap()));
    }

    #[test]
    fn ntop6_matches_glibc() {
        let t = |s: &str| inet_ntop6(&s.parse::<Ipv6Addr>().unwrap());
        assert_eq!(t("::1"), "::1");
        assert_eq!(t("::"), "::");
        assert_eq!(t("::ffff:10.0.0.9"), "::ffff:10.0.0.9");
        assert_eq!(t("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(t("2001:db8:0:0:0:0:0:2"), "2001:db8::2");
        assert_eq!(t("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
        assert_eq!(t("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(t("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(t("1::"), "1::");
    }

    #[test]
    fn host_port_rules() {
        let d = db();
        let p = |s: &str, proto| parse_host_port(s, proto, &d);
        let v4 = |a, b, c, e| IpAddr::V4(Ipv4Addr::new(a, b, c, e));
        assert_eq!(
            p("10.0.0.1:80", 6),
            Some(HostPort {
                addr: v4(10, 0, 0, 1),
                port: Some(80)
            })
        );
        assert_eq!(
            p("10.0.0.1", 6),
            Some(HostPort {
                addr: v4(10, 0, 0, 1),
                port: None
            })
        );
        assert_eq!(
            p("[10.0.0.1]:80", 6),
            Some(HostPort {
                addr: v4(10, 0, 0, 1),
                port: None
            })
        );
        assert_eq!(
            p("localhost:http-alt", 6),
            Some(HostPort {
                addr: v4(127, 0, 0, 1),
                port: Some(8080)
            })
        );
        assert_eq!(p("oracle:25", 6).unwrap().addr, v4(127, 0, 1, 1));
        assert_eq!(p("10.0.0.1:amqp", 132).unwrap().port, Some(5672));
        assert_eq!(p("10.0.0.1:amqp", 6), None);
        assert_eq!(p("[2001:db8::1]:80", 6).unwrap().port, Some(80));
        assert_eq!(p("2001:db8::2", 6).unwrap().port, None);
        assert_eq!(p("::1:80", 6).unwrap().port, None);
        for bad in [
            "12345",
            "",
            "10.0.0.1:99999",
            "10.0.0.1:-1",
            "10.0.0.1:",
            "10.0.0.1:nosuchservice",
            "10.0.0.1:80:90",
            "999.0.0.1:80",
            "[2001:db8::1]80",
            "[2001:db8::1",
            "[2001:db8::1]",
            "[2001:db8::1]:",
            "nosuch.host.invalid:80",
            "[]:80",
        ] {
            assert_eq!(p(bad, 6), None, "{bad}");
        }
        assert_eq!(p("10.0.0:80", 6).unwrap().addr, v4(10, 0, 0, 0));
        assert_eq!(p("10.0.0.1: 92", 6).unwrap().port, Some(92));
    }

    #[test]
    fn netmasks() {
        let d = db();
        assert_eq!(parse_netmask("255.255.255.0", &d), Some(0xffff_ff00));
        assert_eq!(parse_netmask("24", &d), Some(24));
        assert_eq!(parse_netmask("localhost", &d), Some(0x7f00_0001));
        assert_eq!(parse_netmask("255.255.255.256", &d), None);
    }
}
