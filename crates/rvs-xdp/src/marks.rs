//! Firewall-mark classification. In LVS a firewall-mark service (`-f N`)
//! receives the packets a netfilter rule marked, e.g. `iptables -t mangle
//! -A PREROUTING -d VIP -p tcp -m multiport --dports 80,443 -j MARK
//! --set-mark 1`. XDP runs before netfilter, so no packet it sees has a
//! mark: the engine carries the rule's classification itself, as a list
//! of [`MarkRule`]s (from rvs.toml's `match`), compiled into the
//! `rvs_marks` LPM trie the program consults for first packets.
//!
//! The trie is keyed by family, protocol and destination network; each
//! value lists the port ranges of that network with their marks, followed
//! by those of every less specific network that covers it, so the longest
//! match alone holds every rule that applies. [`classify`] is the same
//! decision in userspace (for first packets scheduled there).

use crate::maps::{addr16, af_of, AF_INET};
use std::net::IpAddr;

/// Port ranges one trie entry holds (`RVS_MARK_RANGES`).
pub const MARK_RANGES: usize = 16;
/// Networks the trie holds (`RVS_MAX_MARK_NETS`).
pub const MAX_MARK_NETS: usize = 4096;
/// The size of `struct rvs_marks`.
pub const MARKS_SIZE: usize = 4 + 8 * MARK_RANGES;

/// One classification rule: packets of `proto` (6 TCP, 17 UDP) to
/// `net`/`prefix`, destination port in `lo..=hi`, get `mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkRule {
    pub mark: u32,
    pub proto: u8,
    pub net: IpAddr,
    pub prefix: u8,
    pub lo: u16,
    pub hi: u16,
}

impl MarkRule {
    /// The family of the rule's network (`AF_INET` 4 or `AF_INET6` 6).
    pub fn af(&self) -> u8 {
        af_of(&self.net)
    }

    fn max_prefix(&self) -> u8 {
        if self.af() == AF_INET {
            32
        } else {
            128
        }
    }

    /// Whether `addr` is in the rule's network.
    pub fn covers(&self, addr: &IpAddr) -> bool {
        af_of(addr) == self.af() && masked(addr, self.prefix) == masked(&self.net, self.prefix)
    }

    fn matches(&self, proto: u8, daddr: &IpAddr, dport: u16) -> bool {
        self.proto == proto && (self.lo..=self.hi).contains(&dport) && self.covers(daddr)
    }
}

/// The first `prefix` bits of `a` as 16 bytes (IPv4 in the first 4).
fn masked(a: &IpAddr, prefix: u8) -> [u8; 16] {
    let mut b = addr16(a);
    let bits = if af_of(a) == AF_INET { 32 } else { 128 };
    for (i, byte) in b.iter_mut().enumerate() {
        let start = i as u32 * 8;
        let keep = (prefix as u32).saturating_sub(start).min(8);
        if start >= bits || keep == 0 {
            *byte = 0;
        } else if keep < 8 {
            *byte &= 0xffu8 << (8 - keep);
        }
    }
    b
}

/// The mark of a first packet (`None`: no rule matches): among the
/// matching rules, the one with the longest network prefix, the first
/// listed among equals, as the program decides.
pub fn classify(rules: &[MarkRule], proto: u8, daddr: &IpAddr, dport: u16) -> Option<u32> {
    let mut best: Option<&MarkRule> = None;
    for r in rules.iter().filter(|r| r.matches(proto, daddr, dport)) {
        if best.is_none_or(|b| r.prefix > b.prefix) {
            best = Some(r);
        }
    }
    best.map(|r| r.mark)
}

/// `struct rvs_mark_key` (24 bytes) of a network.
pub fn mark_key(af: u8, proto: u8, net: &IpAddr, prefix: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&(32 + prefix as u32).to_ne_bytes());
    b.extend_from_slice(&[af, proto, 0, 0]);
    b.extend_from_slice(&masked(net, prefix));
    b
}

/// The trie's entries for `rules`: (key, value) pairs in a stable order,
/// and a message for each network that has more than [`MARK_RANGES`]
/// ranges (its first ones are kept) or that does not fit the trie, with
/// the network's first rule.
#[allow(clippy::type_complexity)]
pub fn compile(rules: &[MarkRule]) -> (Vec<(Vec<u8>, Vec<u8>)>, Vec<(MarkRule, String)>) {
    // Networks in order of first appearance, each with its own rules.
    let mut nets: Vec<((u8, u8, [u8; 16], u8), Vec<&MarkRule>)> = Vec::new();
    for r in rules {
        let prefix = r.prefix.min(r.max_prefix());
        let id = (r.af(), r.proto, masked(&r.net, prefix), prefix);
        match nets.iter_mut().find(|(k, _)| *k == id) {
            Some((_, v)) => v.push(r),
            None => nets.push((id, vec![r])),
        }
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for ((af, proto, _, prefix), own) in &nets {
        let net = own[0].net;
        let mut covering: Vec<&(_, Vec<&MarkRule>)> = nets
            .iter()
            .filter(|((a, p, _, pl), v)| a == af && p == proto && pl < prefix && v[0].covers(&net))
            .collect();
        covering.sort_by_key(|((_, _, _, pl), _)| std::cmp::Reverse(*pl));
        let all: Vec<&MarkRule> = own
            .iter()
            .copied()
            .chain(covering.iter().flat_map(|(_, v)| v.iter().copied()))
            .collect();
        if all.len() > MARK_RANGES {
            problems.push((
                *own[0],
                format!(
                    "{net}/{prefix}: {} port ranges apply (its own and those of the networks \
                 that cover it); the xdp engine keeps the first {MARK_RANGES}",
                    all.len()
                ),
            ));
        }
        if out.len() == MAX_MARK_NETS {
            problems.push((
                *own[0],
                format!("more than {MAX_MARK_NETS} networks to classify: {net}/{prefix} left out"),
            ));
            continue;
        }
        let mut v = Vec::with_capacity(MARKS_SIZE);
        let n = all.len().min(MARK_RANGES);
        v.extend_from_slice(&(n as u32).to_ne_bytes());
        for i in 0..MARK_RANGES {
            match all.get(i).filter(|_| i < n) {
                Some(r) => {
                    v.extend_from_slice(&r.lo.to_ne_bytes());
                    v.extend_from_slice(&r.hi.to_ne_bytes());
                    v.extend_from_slice(&r.mark.to_ne_bytes());
                }
                None => v.extend_from_slice(&[0; 8]),
            }
        }
        out.push((mark_key(*af, *proto, &net, *prefix), v));
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mark: u32, proto: u8, net: &str, prefix: u8, lo: u16, hi: u16) -> MarkRule {
        MarkRule {
            mark,
            proto,
            net: net.parse().unwrap(),
            prefix,
            lo,
            hi,
        }
    }

    #[test]
    fn the_longest_network_wins_and_ports_and_protocols_must_match() {
        let rules = [
            rule(1, 6, "198.18.0.0", 24, 80, 80),
            rule(2, 6, "198.18.0.100", 32, 443, 443),
            rule(3, 17, "198.18.0.100", 32, 0, 65535),
            rule(4, 6, "2001:db8::", 64, 8000, 8100),
        ];
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        assert_eq!(classify(&rules, 6, &vip, 80), Some(1));
        assert_eq!(classify(&rules, 6, &vip, 443), Some(2));
        assert_eq!(classify(&rules, 6, &vip, 444), None);
        assert_eq!(classify(&rules, 17, &vip, 53), Some(3));
        let other: IpAddr = "198.18.0.7".parse().unwrap();
        assert_eq!(classify(&rules, 6, &other, 80), Some(1));
        assert_eq!(classify(&rules, 6, &other, 443), None);
        assert_eq!(
            classify(&rules, 6, &"198.18.1.7".parse().unwrap(), 80),
            None
        );
        let v6: IpAddr = "2001:db8::5".parse().unwrap();
        assert_eq!(classify(&rules, 6, &v6, 8050), Some(4));
        assert_eq!(classify(&rules, 17, &v6, 8050), None);
        assert_eq!(
            classify(&rules, 6, &"2001:db8:0:1::5".parse().unwrap(), 8050),
            None
        );
    }

    #[test]
    fn an_entry_holds_its_own_ranges_then_the_covering_ones() {
        let rules = [
            rule(1, 6, "198.18.0.0", 16, 22, 22),
            rule(2, 6, "198.18.0.1", 24, 80, 80),
            rule(3, 6, "198.18.0.100", 32, 443, 443),
            rule(3, 6, "198.18.0.100", 32, 8443, 8443),
        ];
        let (entries, problems) = compile(&rules);
        assert!(problems.is_empty());
        assert_eq!(entries.len(), 3);
        let (k, v) = &entries[2];
        assert_eq!(k.len(), 24);
        assert_eq!(u32::from_ne_bytes(k[..4].try_into().unwrap()), 64);
        assert_eq!(&k[4..12], &[4, 6, 0, 0, 198, 18, 0, 100]);
        assert_eq!(v.len(), MARKS_SIZE);
        let ranges: Vec<(u16, u16, u32)> = (0..u32::from_ne_bytes(v[..4].try_into().unwrap())
            as usize)
            .map(|i| {
                let b = &v[4 + 8 * i..12 + 8 * i];
                (
                    u16::from_ne_bytes([b[0], b[1]]),
                    u16::from_ne_bytes([b[2], b[3]]),
                    u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                )
            })
            .collect();
        assert_eq!(
            ranges,
            [(443, 443, 3), (8443, 8443, 3), (80, 80, 2), (22, 22, 1)]
        );
        // The /24 was written with its host bits cleared.
        assert_eq!(&entries[1].0[8..12], &[198, 18, 0, 0]);
    }

    #[test]
    fn too_many_ranges_are_reported() {
        let rules: Vec<MarkRule> = (0..20)
            .map(|i| rule(1, 17, "198.18.0.1", 32, i, i))
            .collect();
        let (entries, problems) = compile(&rules);
        assert_eq!(entries.len(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            u32::from_ne_bytes(entries[0].1[..4].try_into().unwrap()),
            MARK_RANGES as u32
        );
    }
}
