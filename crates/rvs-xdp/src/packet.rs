//! Just enough frame parsing for a first packet the program handed to
//! userspace (the program has already checked its headers and lengths).

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
}
