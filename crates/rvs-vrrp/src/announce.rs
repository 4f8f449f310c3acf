//! The frames that tell a segment where a VIP now lives: a gratuitous ARP
//! request for an IPv4 VIP and an unsolicited neighbour advertisement for
//! an IPv6 VIP, built byte for byte as keepalived sends them (ha-health.md
//! section 5.3). Pure: the driver sends them through an AF_PACKET socket.

use crate::packet::internet_checksum;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A MAC address.
pub type Mac = [u8; 6];

const BROADCAST: Mac = [0xff; 6];
/// Ethernet address of ff02::1 (all nodes).
const ALL_NODES_MAC: Mac = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;

/// A gratuitous ARP request for `vip` from `mac`: Ethernet broadcast,
/// sender and target IP both the VIP, target MAC all ones (as keepalived).
pub fn gratuitous_arp(mac: Mac, vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&vip.octets());
    f
}

/// An unsolicited neighbour advertisement for `vip` from `mac`: from the
/// VIP to ff02::1, hop limit 255, Override set, Router clear, with a Target
/// Link-Layer Address option.
pub fn unsolicited_na(mac: Mac, vip: Ipv6Addr) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]); // type NA, code 0, checksum
    icmp.extend_from_slice(&[0x20, 0, 0, 0]); // O flag
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[2, 1]); // option TLLA, 8 bytes
    icmp.extend_from_slice(&mac);
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&vip.octets());
    pseudo.extend_from_slice(&ALL_NODES.octets());
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let sum = internet_checksum(&[&pseudo, &icmp]);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&ALL_NODES_MAC);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&ALL_NODES.octets());
    f.extend_from_slice(&icmp);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_matches_the_keepalived_capture() {
        // ha-health.md 5.3.
        let mac = [0x1a, 0xe1, 0x14, 0x9b, 0x9e, 0xa2];
        let f = gratuitous_arp(mac, Ipv4Addr::new(198, 18, 0, 100));
        let want: Vec<u8> = "ff ff ff ff ff ff 1a e1 14 9b 9e a2 08 06 00 01 08 00 06 04 00 01 \
                             1a e1 14 9b 9e a2 c6 12 00 64 ff ff ff ff ff ff c6 12 00 64"
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        assert_eq!(f, want);
    }

    #[test]
    fn na_is_well_formed_and_its_checksum_verifies() {
        let mac = [2, 0, 0, 0, 0, 1];
        let vip: Ipv6Addr = "2001:db8:0:1::100".parse().unwrap();
        let f = unsolicited_na(mac, vip);
        assert_eq!(&f[..6], &ALL_NODES_MAC);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let ip6 = &f[14..54];
        assert_eq!((ip6[6], ip6[7]), (58, 255));
        assert_eq!(&ip6[8..24], &vip.octets());
        let icmp = &f[54..];
        assert_eq!(icmp.len(), 32);
        assert_eq!((icmp[0], icmp[4]), (136, 0x20));
        assert_eq!(&icmp[8..24], &vip.octets());
        assert_eq!(&icmp[26..32], &mac);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip6[8..40]);
        pseudo.extend_from_slice(&32u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(internet_checksum(&[&pseudo, icmp]), 0);
    }
}
