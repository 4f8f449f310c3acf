//! Just enough frame parsing for a first packet the program handed to
//! userspace (the program has already checked its headers and lengths),
//! and the ICMP errors userspace sends clients for the tunnels: "packet
//! too big" for a packet the tunnel cannot carry ([`too_big`]) and errors
//! the path to a real server returned about a tunnel packet, translated
//! to the client's own packet ([`tunnel_icmp`]).

use rvs_core::Protocol;
use std::net::IpAddr;

/// The flow of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub proto: Protocol,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Ethernet / IPv4 (no options) or IPv6 (no extension headers) / TCP or UDP.
pub fn parse(frame: &[u8]) -> Option<Flow> {
    let ethertype = be16(frame, 12)?;
    let ip = frame.get(14..)?;
    let (proto, saddr, daddr, l4) = match ethertype {
        0x0800 => {
            if ip.len() < 20 || ip[0] != 0x45 {
                return None;
            }
            let s: [u8; 4] = ip[12..16].try_into().ok()?;
            let d: [u8; 4] = ip[16..20].try_into().ok()?;
            (ip[9], IpAddr::from(s), IpAddr::from(d), &ip[20..])
        }
        0x86dd => {
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                return None;
            }
            let s: [u8; 16] = ip[8..24].try_into().ok()?;
            let d: [u8; 16] = ip[24..40].try_into().ok()?;
            (ip[6], IpAddr::from(s), IpAddr::from(d), &ip[40..])
        }
        _ => return None,
    };
    let proto = match proto {
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        _ => return None,
    };
    let tcp_flags = if proto == Protocol::Tcp {
        *l4.get(13)?
    } else {
        0
    };
    Some(Flow {
        proto,
        saddr,
        sport: be16(l4, 0)?,
        daddr,
        dport: be16(l4, 2)?,
        tcp_flags,
    })
}

const ETH_HLEN: usize = 14;
/// The most of the offending packet an ICMPv4 error quotes (576 bytes in
/// all, as Linux's `icmp_send`).
const QUOTE_V4: usize = 576 - 20 - 8;
/// The most an ICMPv6 error quotes (the minimum IPv6 MTU in all).
const QUOTE_V6: usize = 1280 - 40 - 8;
/// The smallest MTU IPv4 allows, and IPv6's.
const MIN_MTU_V4: u32 = 68;
const MIN_MTU_V6: u32 = 1280;

fn sum16(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut c: u32) -> u16 {
    while c >> 16 != 0 {
        c = (c & 0xffff) + (c >> 16);
    }
    !(c as u16)
}

/// The ICMP (IPv4) or ICMPv6 error `typ`/`code` with `info` in its second
/// word, from the director to the sender of `offending` (an IP packet,
/// possibly cut short) about that packet, quoting as much of it as Linux
/// would. Its source is the packet's destination (the virtual address),
/// as the kernel's `icmp_send` answers for a packet to a local address.
/// Returned in an Ethernet frame (MACs zero) for [`crate::RawXmit`], which
/// lets the kernel route it. `None` if `offending` is not an IP header.
pub fn icmp_error(offending: &[u8], typ: u8, code: u8, info: u32) -> Option<Vec<u8>> {
    let version = offending.first()? >> 4;
    let mut out = vec![0u8; 12];
    if version == 4 {
        if offending.len() < 20 || offending[0] & 0x0f != 5 {
            return None;
        }
        let tot = u16::from_be_bytes([offending[2], offending[3]]) as usize;
        let q = &offending[..offending.len().min(tot.max(20)).min(QUOTE_V4)];
        out.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = vec![0x45, 0xc0 | (offending[1] & 0x1e)];
        ip.extend_from_slice(&((20 + 8 + q.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
        ip.extend_from_slice(&offending[16..20]);
        ip.extend_from_slice(&offending[12..16]);
        let cs = fold(sum16(&ip));
        ip[10..12].copy_from_slice(&cs.to_be_bytes());
        let mut m = vec![typ, code, 0, 0];
        m.extend_from_slice(&info.to_be_bytes());
        m.extend_from_slice(q);
        let cs = fold(sum16(&m));
        m[2..4].copy_from_slice(&cs.to_be_bytes());
        out.extend_from_slice(&ip);
        out.extend_from_slice(&m);
    } else if version == 6 {
        if offending.len() < 40 {
            return None;
        }
        let tot = 40 + u16::from_be_bytes([offending[4], offending[5]]) as usize;
        let q = &offending[..offending.len().min(tot).min(QUOTE_V6)];
        out.extend_from_slice(&0x86ddu16.to_be_bytes());
        let (src, dst) = (&offending[24..40], &offending[8..24]);
        let mut m = vec![typ, code, 0, 0];
        m.extend_from_slice(&info.to_be_bytes());
        m.extend_from_slice(q);
        let pseudo = sum16(src) + sum16(dst) + m.len() as u32 + 58;
        let cs = fold(pseudo + sum16(&m));
        m[2..4].copy_from_slice(&cs.to_be_bytes());
        out.extend_from_slice(&[0x60, 0, 0, 0]);
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(&[58, 64]);
        out.extend_from_slice(src);
        out.extend_from_slice(dst);
        out.extend_from_slice(&m);
    } else {
        return None;
    }
    Some(out)
}

/// "Fragmentation needed" (IPv4, type 3 code 4) or "packet too big"
/// (ICMPv6 type 2) for the client's packet in `frame` that would not fit
/// the tunnel toward its real server: `mtu` is what is left of the route's
/// MTU after the tunnel's headers (`ip_vs_tunnel_xmit`). `None` when the
/// MTU is below the family's minimum (the kernel drops such packets too).
pub fn too_big(frame: &[u8], mtu: u32) -> Option<Vec<u8>> {
    let ip = frame.get(ETH_HLEN..)?;
    match ip.first()? >> 4 {
        4 if mtu >= MIN_MTU_V4 => icmp_error(ip, 3, 4, mtu.min(0xffff)),
        6 => icmp_error(ip, 2, 0, mtu.max(MIN_MTU_V6)),
        _ => None,
    }
}

/// The length of an IP header at the start of `b` and its protocol.
fn ip_header(b: &[u8]) -> Option<(usize, u8)> {
    match b.first()? >> 4 {
        4 if b.len() >= 20 => Some(((b[0] & 0x0f) as usize * 4, b[9])),
        6 if b.len() >= 40 => Some((40, b[6])),
        _ => None,
    }
}

/// For an ICMP error in `frame` about one of the engine's tunnel packets
/// (sent back by the path toward a real server), the error the client
/// gets about its own packet, as `ip_vs_in_icmp` does for IPIP: the same
/// type and code, and for "fragmentation needed" / "packet too big" the
/// reported MTU less the tunnel's headers (between families, one becomes
/// the other). A client that did not set DF gets no "fragmentation
/// needed" (it does not do path MTU discovery); other errors between
/// families are not translated. `None` when nothing is to be sent.
pub fn tunnel_icmp(frame: &[u8]) -> Option<Vec<u8>> {
    let outer = frame.get(ETH_HLEN..)?;
    let (ohl, oproto) = ip_header(outer)?;
    let v6_outer = outer[0] >> 4 == 6;
    if oproto != if v6_outer { 58 } else { 1 } {
        return None;
    }
    let icmp = outer.get(ohl..)?;
    let (typ, code) = (*icmp.first()?, *icmp.get(1)?);
    let info = u32::from_be_bytes(icmp.get(4..8)?.try_into().ok()?);
    let emb = icmp.get(8..)?;
    let (ehl, eproto) = ip_header(emb)?;
    let encap = match eproto {
        4 | 41 => 0,
        47 => 4,
        17 => 12,
        _ => return None,
    };
    let inner = emb.get(ehl + encap..)?;
    let v6_inner = inner.first()? >> 4 == 6;
    let overhead = (ehl + encap) as u32;
    let too_big = if v6_outer {
        typ == 2
    } else {
        typ == 3 && code == 4
    };
    if too_big {
        let mtu = if v6_outer { info } else { info & 0xffff };
        let left = mtu.saturating_sub(overhead);
        if v6_inner {
            return icmp_error(inner, 2, 0, left.max(MIN_MTU_V6));
        }
        let df = inner.len() >= 8 && inner[6] & 0x40 != 0;
        if !df || left < MIN_MTU_V4 {
            return None;
        }
        return icmp_error(inner, 3, 4, left);
    }
    if v6_outer != v6_inner {
        return None;
    }
    icmp_error(inner, typ, code, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_foreign_frames_are_refused() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0u8; 14]), None);
        let mut arp = vec![0u8; 60];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(parse(&arp), None);
    }

    #[test]
    fn tcp_syn_over_ipv4() {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[14 + 12..14 + 16].copy_from_slice(&[198, 18, 1, 2]);
        f[14 + 16..14 + 20].copy_from_slice(&[198, 18, 0, 10]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[34 + 13] = 0x02;
        let p = parse(&f).unwrap();
        assert_eq!(
            (p.proto, p.sport, p.dport, p.tcp_flags),
            (Protocol::Tcp, 40000, 80, 2)
        );
        assert_eq!(p.daddr, "198.18.0.10".parse::<IpAddr>().unwrap());
    }

    fn v4_packet(df: bool, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[6] = if df { 0x40 } else { 0 };
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[198, 18, 0, 2]);
        p[16..20].copy_from_slice(&[198, 18, 0, 100]);
        p
    }

    #[test]
    fn too_big_quotes_the_packet_from_the_virtual_address() {
        let mut frame = vec![0u8; 14];
        frame[12] = 8;
        frame.extend_from_slice(&v4_packet(true, 1500));
        let r = too_big(&frame, 1480).unwrap();
        let ip = &r[14..];
        assert_eq!(ip.len(), 576);
        assert_eq!(&ip[12..16], &[198, 18, 0, 100], "from the VIP");
        assert_eq!(&ip[16..20], &[198, 18, 0, 2], "to the client");
        assert_eq!(fold(sum16(&ip[..20])), 0, "IP checksum");
        assert_eq!(&ip[20..22], &[3, 4]);
        assert_eq!(&ip[24..28], &1480u32.to_be_bytes());
        assert_eq!(fold(sum16(&ip[20..])), 0, "ICMP checksum");
        assert_eq!(&ip[28..48], &frame[14..34], "quoted header");
        assert_eq!(too_big(&frame, 60), None, "below the IPv4 minimum");
    }

    #[test]
    fn errors_about_tunnel_packets_become_errors_about_the_clients_packet() {
        // A router says "fragmentation needed, MTU 1400" about our IPIP packet.
        let inner = v4_packet(true, 1400);
        let mut emb = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 63, 4, 0, 0];
        emb.extend_from_slice(&[198, 19, 0, 1, 198, 19, 1, 2]);
        emb.extend_from_slice(&inner[..100]);
        let mut frame = vec![0u8; 14];
        frame[12] = 8;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        ip.extend_from_slice(&[198, 19, 1, 254, 198, 19, 0, 1]);
        ip.extend_from_slice(&[3, 4, 0, 0, 0, 0, 0x05, 0x78]);
        ip.extend_from_slice(&emb);
        frame.extend_from_slice(&ip);
        let r = tunnel_icmp(&frame).unwrap();
        let out = &r[14..];
        assert_eq!(&out[16..20], &[198, 18, 0, 2], "to the client");
        assert_eq!(&out[20..22], &[3, 4]);
        assert_eq!(&out[24..28], &1380u32.to_be_bytes(), "MTU less 20");
        assert_eq!(&out[28..], &inner[..100], "the client's packet quoted");
        // Without DF the client gets nothing.
        let mut no_df = frame.clone();
        no_df[14 + 28 + 20 + 6] = 0;
        assert_eq!(tunnel_icmp(&no_df), None);
        // Other errors keep their type and code.
        let mut unreach = frame.clone();
        unreach[14 + 21] = 1;
        let r = tunnel_icmp(&unreach).unwrap();
        assert_eq!(&r[14 + 20..14 + 22], &[3, 1]);
    }
}
