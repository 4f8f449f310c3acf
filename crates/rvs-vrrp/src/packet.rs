//! The VRRP advertisement on the wire: VRRPv2 (RFC 3768, IPv4 only, with
//! keepalived's simple-password authentication) and VRRPv3 (RFC 5798 / RFC
//! 9568, IPv4 and IPv6), encoded and decoded with the checksum each form
//! uses. Everything here is pure: the IP addresses that enter the checksum
//! are arguments.
//!
//! The one interop trap is the VRRPv3 checksum over IPv4. keepalived (2.2.7,
//! and later by default) sums an IPv4 pseudo-header (source, destination,
//! zero, protocol 112, length) before the message; RFC 9568, Cisco and
//! Juniper sum the message alone. [`ChecksumMode`] picks one; VRRPv2 never
//! has a pseudo-header and IPv6 always has one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP.
pub const PROTO_VRRP: u8 = 112;
/// The IPv4 multicast group adverts go to.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group adverts go to.
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL / hop limit every advert is sent with and must arrive with.
pub const TTL: u8 = 255;
/// Largest VRRPv3 interval, centiseconds (12 bits: 40.95 s).
pub const MAX_V3_INTERVAL_CS: u16 = 0x0fff;
/// Largest VRRPv2 interval, seconds (8 bits).
pub const MAX_V2_INTERVAL_S: u16 = 255;
/// Bytes of authentication data at the end of a VRRPv2 advert.
pub const AUTH_LEN: usize = 8;
const TYPE_ADVERTISEMENT: u8 = 1;

/// The protocol version of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, whole-second intervals, optional password.
    V2,
    /// RFC 5798 / 9568: IPv4 or IPv6, centisecond intervals.
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// How the VRRPv3 checksum over IPv4 is computed (IPv6 always includes
/// its pseudo-header, VRRPv2 never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumMode {
    /// With the IPv4 pseudo-header, as keepalived sends and expects.
    #[default]
    Keepalived,
    /// The message alone, as RFC 9568 (and Cisco, Juniper) specify.
    Rfc9568,
}

/// VRRPv2 authentication (absent in VRRPv3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Auth {
    /// Type 0: eight zero bytes.
    #[default]
    None,
    /// Type 1, keepalived `auth_type PASS`: the password NUL-padded to 8
    /// bytes (longer passwords are cut to 8, as keepalived does).
    Pass([u8; AUTH_LEN]),
}

impl Auth {
    /// Simple-text authentication with `password` (first 8 bytes).
    pub fn pass(password: &str) -> Auth {
        let mut data = [0u8; AUTH_LEN];
        for (d, s) in data.iter_mut().zip(password.as_bytes()) {
            *d = *s;
        }
        Auth::Pass(data)
    }

    fn type_byte(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }
}

/// One VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    pub version: Version,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// 0 = the master is resigning, 255 = the address owner.
    pub priority: u8,
    /// The advert interval in centiseconds (VRRPv2 carries whole seconds:
    /// a multiple of 100).
    pub interval_cs: u16,
    /// VRRPv2 only; always [`Auth::None`] for VRRPv3.
    pub auth: Auth,
    /// The virtual addresses, all of the packet's family.
    pub addrs: Vec<IpAddr>,
}

/// Why bytes are not a VRRP advert this router will look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header or than its address count says.
    Truncated { len: usize, need: usize },
    /// Longer than its address count says.
    TrailingBytes { len: usize, expected: usize },
    /// Not version 2 or 3.
    Version(u8),
    /// Not type 1 (advertisement).
    Type(u8),
    /// VRRPv2 arrived over IPv6.
    V2OverIpv6,
    /// Virtual router id 0.
    ZeroVrid,
    /// An advert interval of 0.
    ZeroInterval,
    /// VRRPv2 authentication other than none or simple text (IP AH).
    AuthType(u8),
    /// The checksum does not verify.
    Checksum { got: u16, expected: u16 },
    /// An IPv4 packet's header is malformed or is not VRRP.
    IpHeader(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { len, need } => {
                write!(f, "truncated: {len} bytes, need {need}")
            }
            DecodeError::TrailingBytes { len, expected } => {
                write!(f, "{len} bytes where the address count says {expected}")
            }
            DecodeError::Version(v) => write!(f, "unknown VRRP version {v}"),
            DecodeError::Type(t) => write!(f, "VRRP type {t} is not an advertisement"),
            DecodeError::V2OverIpv6 => write!(f, "VRRPv2 over IPv6"),
            DecodeError::ZeroVrid => write!(f, "virtual router id 0"),
            DecodeError::ZeroInterval => write!(f, "advert interval 0"),
            DecodeError::AuthType(t) => write!(f, "unsupported VRRPv2 auth type {t}"),
            DecodeError::Checksum { got, expected } => {
                write!(f, "bad checksum {got:#06x} (expected {expected:#06x})")
            }
            DecodeError::IpHeader(why) => write!(f, "bad IPv4 header: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why an advert cannot be encoded (the configuration validation keeps
/// these from happening; they are reported, never panicked on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    V2OverIpv6,
    /// An address of the other family than the packet's.
    MixedFamily(IpAddr),
    /// More than 255 addresses.
    TooManyAddrs(usize),
    /// The interval does not fit the version's field.
    Interval(u16),
    /// VRRPv3 has no authentication.
    AuthInV3,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::V2OverIpv6 => write!(f, "VRRPv2 cannot carry IPv6"),
            EncodeError::MixedFamily(a) => write!(f, "{a} is not of the packet's family"),
            EncodeError::TooManyAddrs(n) => write!(f, "{n} addresses (at most 255)"),
            EncodeError::Interval(cs) => write!(f, "advert interval {cs} cs does not fit"),
            EncodeError::AuthInV3 => write!(f, "VRRPv3 has no authentication"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// The Internet checksum (RFC 1071) of the concatenation of `parts`.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The pseudo-header the checksum of a `len`-byte message of protocol
/// `proto` from `src` to `dst` starts with, or `None` when this form has
/// none.
fn pseudo_header(
    version: Version,
    mode: ChecksumMode,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    len: usize,
) -> Option<Vec<u8>> {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = Vec::with_capacity(40);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
            Some(p)
        }
        (IpAddr::V4(s), IpAddr::V4(d))
            if version == Version::V3 && mode == ChecksumMode::Keepalived =>
        {
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
            Some(p)
        }
        _ => None,
    }
}

/// The checksum of message `msg` (whose checksum field is zero or is
/// skipped by the caller) as `version`/`mode` compute it.
fn vrrp_checksum(
    version: Version,
    mode: ChecksumMode,
    src: IpAddr,
    dst: IpAddr,
    msg: &[u8],
) -> u16 {
    match pseudo_header(version, mode, src, dst, PROTO_VRRP, msg.len()) {
        Some(p) => internet_checksum(&[&p, msg]),
        None => internet_checksum(&[msg]),
    }
}

impl Advert {
    /// Encodes the VRRP message (no IP header) sent from `src` to `dst`;
    /// both enter the checksum for IPv6 and for VRRPv3 over IPv4 in
    /// [`ChecksumMode::Keepalived`].
    pub fn encode(
        &self,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<Vec<u8>, EncodeError> {
        let v6 = src.is_ipv6();
        if self.version == Version::V2 && v6 {
            return Err(EncodeError::V2OverIpv6);
        }
        if let Some(a) = self.addrs.iter().find(|a| a.is_ipv6() != v6) {
            return Err(EncodeError::MixedFamily(*a));
        }
        if self.addrs.len() > 255 {
            return Err(EncodeError::TooManyAddrs(self.addrs.len()));
        }
        let mut m = Vec::with_capacity(8 + self.addrs.len() * 16 + AUTH_LEN);
        m.push((self.version.number() << 4) | TYPE_ADVERTISEMENT);
        m.push(self.vrid);
        m.push(self.priority);
        m.push(self.addrs.len() as u8);
        match self.version {
            Version::V2 => {
                let secs = self.interval_cs / 100;
                if !self.interval_cs.is_multiple_of(100) || secs == 0 || secs > MAX_V2_INTERVAL_S {
                    return Err(EncodeError::Interval(self.interval_cs));
                }
                m.push(self.auth.type_byte());
                m.push(secs as u8);
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EncodeError::AuthInV3);
                }
                if self.interval_cs == 0 || self.interval_cs > MAX_V3_INTERVAL_CS {
                    return Err(EncodeError::Interval(self.interval_cs));
                }
                m.extend_from_slice(&self.interval_cs.to_be_bytes());
            }
        }
        m.extend_from_slice(&[0, 0]);
        for a in &self.addrs {
            match a {
                IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            match self.auth {
                Auth::None => m.extend_from_slice(&[0; AUTH_LEN]),
                Auth::Pass(data) => m.extend_from_slice(&data),
            }
        }
        let sum = vrrp_checksum(self.version, mode, src, dst, &m);
        m[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(m)
    }

    /// Decodes a VRRP message (no IP header) that came from `src` to
    /// `dst`, verifying its checksum in `mode`.
    pub fn decode(
        buf: &[u8],
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<Advert, DecodeError> {
        if buf.len() < 8 {
            return Err(DecodeError::Truncated {
                len: buf.len(),
                need: 8,
            });
        }
        let version = match buf[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(DecodeError::Version(v)),
        };
        if buf[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(DecodeError::Type(buf[0] & 0x0f));
        }
        let v6 = src.is_ipv6();
        if version == Version::V2 && v6 {
            return Err(DecodeError::V2OverIpv6);
        }
        let vrid = buf[1];
        if vrid == 0 {
            return Err(DecodeError::ZeroVrid);
        }
        let priority = buf[2];
        let count = usize::from(buf[3]);
        let alen = if v6 { 16 } else { 4 };
        let need = 8 + count * alen + if version == Version::V2 { AUTH_LEN } else { 0 };
        if buf.len() < need {
            return Err(DecodeError::Truncated {
                len: buf.len(),
                need,
            });
        }
        if buf.len() > need {
            return Err(DecodeError::TrailingBytes {
                len: buf.len(),
                expected: need,
            });
        }
        let got = u16::from_be_bytes([buf[6], buf[7]]);
        let expected = match pseudo_header(version, mode, src, dst, PROTO_VRRP, buf.len()) {
            Some(p) => internet_checksum(&[&p, &buf[..6], &buf[8..]]),
            None => internet_checksum(&[&buf[..6], &buf[8..]]),
        };
        if got != expected {
            return Err(DecodeError::Checksum { got, expected });
        }
        let (interval_cs, auth) = match version {
            Version::V2 => {
                let auth = match buf[4] {
                    0 => Auth::None,
                    1 => {
                        let mut d = [0u8; AUTH_LEN];
                        d.copy_from_slice(&buf[need - AUTH_LEN..need]);
                        Auth::Pass(d)
                    }
                    t => return Err(DecodeError::AuthType(t)),
                };
                (u16::from(buf[5]) * 100, auth)
            }
            Version::V3 => (
                u16::from_be_bytes([buf[4], buf[5]]) & MAX_V3_INTERVAL_CS,
                Auth::None,
            ),
        };
        if interval_cs == 0 {
            return Err(DecodeError::ZeroInterval);
        }
        let addrs = buf[8..8 + count * alen]
            .chunks_exact(alen)
            .map(|c| match <[u8; 16]>::try_from(c) {
                Ok(b) => IpAddr::V6(Ipv6Addr::from(b)),
                Err(_) => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
            })
            .collect();
        Ok(Advert {
            version,
            vrid,
            priority,
            interval_cs,
            auth,
            addrs,
        })
    }
}

/// What a raw IPv4 socket's datagram says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
}

/// Splits an IPv4 datagram carrying VRRP (as a raw IPv4 socket returns
/// it) into its header facts and its payload.
pub fn split_ipv4(pkt: &[u8]) -> Result<(Ipv4Info, &[u8]), DecodeError> {
    if pkt.len() < 20 {
        return Err(DecodeError::IpHeader("shorter than 20 bytes"));
    }
    if pkt[0] >> 4 != 4 {
        return Err(DecodeError::IpHeader("not IPv4"));
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    if ihl < 20 || pkt.len() < ihl {
        return Err(DecodeError::IpHeader("bad header length"));
    }
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    // Linux hands raw sockets the total length as sent; trust the shorter.
    let end = if total >= ihl && total <= pkt.len() {
        total
    } else {
        pkt.len()
    };
    if pkt[9] != PROTO_VRRP {
        return Err(DecodeError::IpHeader("not protocol 112"));
    }
    let info = Ipv4Info {
        src: Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]),
        dst: Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]),
        ttl: pkt[8],
    };
    Ok((info, &pkt[ihl..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // The three captures of ha-health.md section 5.3 (keepalived 2.2.7).
    #[test]
    fn decodes_keepalived_v2_pass_capture() {
        let m = hex("21 33 96 01 01 01 77 39 c6 12 00 64 73 33 63 72 33 74 00 00");
        let a = Advert::decode(
            &m,
            ip("198.18.0.1"),
            ip("224.0.0.18"),
            ChecksumMode::Keepalived,
        )
        .unwrap();
        assert_eq!(a.version, Version::V2);
        assert_eq!((a.vrid, a.priority, a.interval_cs), (51, 150, 100));
        assert_eq!(a.auth, Auth::pass("s3cr3t"));
        assert_eq!(a.addrs, vec![ip("198.18.0.100")]);
        assert_eq!(
            a.encode(ip("198.18.0.1"), ip("224.0.0.18"), ChecksumMode::Keepalived)
                .unwrap(),
            m
        );
        // The SIGTERM advert: priority 0, checksum 0d 3a.
        let stop = Advert { priority: 0, ..a };
        let e = stop
            .encode(ip("198.18.0.1"), ip("224.0.0.18"), ChecksumMode::Rfc9568)
            .unwrap();
        assert_eq!(&e[6..8], &[0x0d, 0x3a]);
    }

    #[test]
    fn keepalived_v3_ipv4_checksum_needs_the_pseudo_header() {
        let m = hex("31 33 96 01 00 0a cb a7 c6 12 00 64");
        let (s, d) = (ip("198.18.0.1"), ip("224.0.0.18"));
        let a = Advert::decode(&m, s, d, ChecksumMode::Keepalived).unwrap();
        assert_eq!(
            (a.version, a.vrid, a.priority, a.interval_cs),
            (Version::V3, 51, 150, 10)
        );
        assert_eq!(a.encode(s, d, ChecksumMode::Keepalived).unwrap(), m);
        assert!(matches!(
            Advert::decode(&m, s, d, ChecksumMode::Rfc9568),
            Err(DecodeError::Checksum { .. })
        ));
        let rfc = a.encode(s, d, ChecksumMode::Rfc9568).unwrap();
        assert_ne!(rfc, m);
        assert_eq!(
            Advert::decode(&rfc, s, d, ChecksumMode::Rfc9568).unwrap(),
            a
        );
        assert_eq!(internet_checksum(&[&rfc]), 0, "RFC form sums to zero alone");
    }

    #[test]
    fn decodes_keepalived_v3_ipv6_capture() {
        let m = hex("31 34 96 01 00 64 11 98 20 01 0d b8 00 00 00 01 00 00 00 00 00 00 01 00");
        let (s, d) = (ip("fe80::f891:b1ff:fecd:5096"), ip("ff02::12"));
        for mode in [ChecksumMode::Keepalived, ChecksumMode::Rfc9568] {
            let a = Advert::decode(&m, s, d, mode).unwrap();
            assert_eq!((a.vrid, a.priority, a.interval_cs), (52, 150, 100));
            assert_eq!(a.addrs, vec![ip("2001:db8:0:1::100")]);
            assert_eq!(a.encode(s, d, mode).unwrap(), m);
        }
        // The pseudo-header covers the source.
        assert!(Advert::decode(&m, ip("fe80::1"), d, ChecksumMode::Keepalived).is_err());
    }

    #[test]
    fn rejects_what_keepalived_rejects() {
        let (s, d) = (ip("198.18.0.1"), ip("224.0.0.18"));
        let good = hex("31 33 96 01 00 0a cb a7 c6 12 00 64");
        let mut bad = good.clone();
        bad[7] ^= 1;
        assert!(matches!(
            Advert::decode(&bad, s, d, ChecksumMode::Keepalived),
            Err(DecodeError::Checksum { .. })
        ));
        assert!(matches!(
            Advert::decode(&good[..11], s, d, ChecksumMode::Keepalived),
            Err(DecodeError::Truncated { .. })
        ));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            Advert::decode(&long, s, d, ChecksumMode::Keepalived),
            Err(DecodeError::TrailingBytes { .. })
        ));
        let mut v4 = good.clone();
        v4[0] = 0x41;
        assert_eq!(
            Advert::decode(&v4, s, d, ChecksumMode::Keepalived),
            Err(DecodeError::Version(4))
        );
        let mut ty = good.clone();
        ty[0] = 0x32;
        assert_eq!(
            Advert::decode(&ty, s, d, ChecksumMode::Keepalived),
            Err(DecodeError::Type(2))
        );
        let v2 = hex("21 33 96 01 01 01 77 39 c6 12 00 64 73 33 63 72 33 74 00 00");
        assert_eq!(
            Advert::decode(&v2, ip("fe80::1"), ip("ff02::12"), ChecksumMode::Keepalived),
            Err(DecodeError::V2OverIpv6)
        );
    }

    #[test]
    fn encode_refuses_impossible_adverts() {
        let a = Advert {
            version: Version::V2,
            vrid: 1,
            priority: 100,
            interval_cs: 10,
            auth: Auth::None,
            addrs: vec![ip("198.18.0.100")],
        };
        let (s, d) = (ip("198.18.0.1"), ip("224.0.0.18"));
        assert_eq!(
            a.encode(s, d, ChecksumMode::Keepalived),
            Err(EncodeError::Interval(10))
        );
        let v3 = Advert {
            version: Version::V3,
            interval_cs: 4096,
            ..a.clone()
        };
        assert_eq!(
            v3.encode(s, d, ChecksumMode::Keepalived),
            Err(EncodeError::Interval(4096))
        );
        let mixed = Advert {
            version: Version::V3,
            addrs: vec![ip("2001:db8::1")],
            ..a
        };
        assert!(matches!(
            mixed.encode(s, d, ChecksumMode::Keepalived),
            Err(EncodeError::MixedFamily(_))
        ));
    }

    #[test]
    fn splits_the_captured_ipv4_header() {
        let pkt = hex(
            "45 c0 00 28 00 01 00 00 ff 70 14 7f c6 12 00 01 e0 00 00 12 \
             21 33 96 01 01 01 77 39 c6 12 00 64 73 33 63 72 33 74 00 00",
        );
        let (info, payload) = split_ipv4(&pkt).unwrap();
        assert_eq!(info.ttl, 255);
        assert_eq!(info.src, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(info.dst, GROUP_V4);
        assert_eq!(payload.len(), 20);
        assert_eq!(
            internet_checksum(&[&pkt[..20]]),
            0,
            "captured IP header checksum verifies"
        );
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn advert() -> impl Strategy<Value = (Advert, IpAddr, IpAddr)> {
            (
                any::<bool>(),
                any::<bool>(),
                1u8..=255,
                any::<u8>(),
                1u16..=4095,
                any::<Option<[u8; 8]>>(),
                0usize..20,
                any::<u64>(),
            )
                .prop_map(|(v6, v2, vrid, priority, iv, pass, n, seed)| {
                    let v2 = v2 && !v6;
                    let addr = |i: u64| -> IpAddr {
                        let x = seed.wrapping_mul(i + 1);
                        if v6 {
                            IpAddr::V6(Ipv6Addr::from(u128::from(x) << 32 | 0x2001_0db8))
                        } else {
                            IpAddr::V4(Ipv4Addr::from(x as u32))
                        }
                    };
                    let a = Advert {
                        version: if v2 { Version::V2 } else { Version::V3 },
                        vrid,
                        priority,
                        interval_cs: if v2 { (iv % 255 + 1) * 100 } else { iv },
                        auth: match (v2, pass) {
                            (true, Some(p)) => Auth::Pass(p),
                            _ => Auth::None,
                        },
                        addrs: (0..n as u64).map(addr).collect(),
                    };
                    (
                        a,
                        addr(100),
                        if v6 {
                            IpAddr::V6(GROUP_V6)
                        } else {
                            IpAddr::V4(GROUP_V4)
                        },
                    )
                })
        }

        proptest! {
            #[test]
            fn encode_then_decode_is_identity((a, s, d) in advert(), rfc in any::<bool>()) {
                let mode = if rfc { ChecksumMode::Rfc9568 } else { ChecksumMode::Keepalived };
                let m = a.encode(s, d, mode).unwrap();
                prop_assert_eq!(Advert::decode(&m, s, d, mode).unwrap(), a);
            }

            #[test]
            fn any_single_bit_flip_is_caught((a, s, d) in advert(), bit in any::<usize>()) {
                let m = a.encode(s, d, ChecksumMode::Keepalived).unwrap();
                let mut b = m.clone();
                let i = bit % (b.len() * 8);
                b[i / 8] ^= 1 << (i % 8);
                prop_assert_ne!(Advert::decode(&b, s, d, ChecksumMode::Keepalived).ok(), Some(a));
            }

            #[test]
            fn decode_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..600), v6 in any::<bool>()) {
                let (s, d) = if v6 {
                    (IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V6(GROUP_V6))
                } else {
                    (IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(GROUP_V4))
                };
                let _ = Advert::decode(&buf, s, d, ChecksumMode::Keepalived);
                let _ = split_ipv4(&buf);
            }
        }
    }
}
