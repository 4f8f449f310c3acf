//! The byte layout of the BPF maps' keys and values: one encoder (and,
//! where userspace reads, decoder) per struct of `bpf/rvs_xdp.h`, field by
//! field in the C order with the C padding, so no `unsafe` transmute is
//! needed. Ports marked `_be` are network order; addresses are network
//! order, IPv4 in the first 4 of 16 bytes.

use std::net::IpAddr;

pub const MAX_SERVICES: u32 = 4096;
pub const MAX_DESTS: u32 = 65536;
pub const RING_SLOTS: u32 = 1 << 20;
pub const PUNT_MAX: usize = 2048;

pub const AF_INET: u8 = 4;
pub const AF_INET6: u8 = 6;

pub const FWD_MASQ: u8 = 0;
pub const FWD_TUNNEL: u8 = 2;
pub const FWD_ROUTE: u8 = 3;

pub const CFG_EXPIRE_NODEST: u32 = 1 << 0;
pub const CFG_CONN_REUSE: u32 = 1 << 1;
pub const CFG_MARKS: u32 = 1 << 2;
pub const CFG_SECURE_TCP: u32 = 1 << 3;
pub const CFG_JIFFIES: u32 = 1 << 4;

pub const SVC_RING: u32 = 1 << 0;
pub const SVC_PUNT: u32 = 1 << 1;

pub const DEST_AVAILABLE: u8 = 1 << 0;
pub const DEST_WEIGHT0: u8 = 1 << 1;

pub const CONN_NOOUTPUT: u8 = 1 << 0;
pub const CONN_USER: u8 = 1 << 1;

pub const EV_PUNT: u32 = 1;
pub const EV_NEIGH: u32 = 2;
pub const EV_XMIT: u32 = 3;
pub const EV_TOOBIG: u32 = 4;
pub const EV_TUNICMP: u32 = 5;
pub const EV_FRAG: u32 = 6;

/// The address pre-filter (`rvs_addrs`): words of 32 two-bit entries.
pub const FILTER_WORDS: usize = 2048;
pub const ADDR_VIP: u64 = 1;
pub const ADDR_NATRS: u64 = 2;

/// Where the pre-filter keeps `a`'s bits: the word and the shift of its
/// two bits, as the program's `addr_bits` computes them.
pub fn addr_filter_pos(a: &IpAddr) -> (usize, u32) {
    let b = addr16(a);
    let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut x = w(0);
    if a.is_ipv6() {
        x ^= w(4) ^ w(8) ^ w(12);
    }
    let h = x.wrapping_mul(0x9e37_79b1) >> 16;
    ((h >> 5) as usize, (h & 31) * 2)
}

/// Sets `bits` (`ADDR_VIP`, `ADDR_NATRS`) for `a` in pre-filter words `f`.
pub fn addr_filter_set(f: &mut [u64], a: &IpAddr, bits: u64) {
    let (w, sh) = addr_filter_pos(a);
    if let Some(x) = f.get_mut(w) {
        *x |= bits << sh;
    }
}

/// An address as 16 network-order bytes (IPv4 first).
pub fn addr16(a: &IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => b[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => b = v.octets(),
    }
    b
}

pub fn af_of(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// The address of family `af` held in `b`.
pub fn addr_from(af: u8, b: &[u8]) -> IpAddr {
    if af == AF_INET {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        IpAddr::from(a)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(x)
}

/// `struct rvs_svc_key` (20 bytes).
pub fn svc_key(addr: &IpAddr, port: u16, proto: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(20);
    b.extend_from_slice(&addr16(addr));
    b.extend_from_slice(&port.to_be_bytes());
    b.push(proto);
    b.push(af_of(addr));
    b
}

/// The `struct rvs_svc_key` of firewall-mark service `mark` of family
/// `af`: protocol 0, port 0, the mark (network order) as the address.
pub fn fwmark_svc_key(mark: u32, af: u8) -> Vec<u8> {
    let mut b = vec![0u8; 20];
    b[..4].copy_from_slice(&mark.to_be_bytes());
    b[19] = af;
    b
}

/// `struct rvs_svc` (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Svc {
    pub id: u32,
    pub flags: u32,
    pub ring_off: u32,
    pub ring_len: u32,
}

impl Svc {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        for v in [self.id, self.flags, self.ring_off, self.ring_len] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b
    }
}

/// `struct rvs_dest` (48 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestVal {
    pub addr: IpAddr,
    pub tun_src: [u8; 16],
    pub fwd: u8,
    pub tun_type: u8,
    pub flags: u8,
    /// NAT: the port the destination is rewritten to (0: unchanged).
    pub port: u16,
    pub tun_port: u16,
    pub svc: u32,
    /// The real server's configured port: with `svc` and `addr`, how a
    /// restarted engine recognises the slot (the program ignores it).
    pub id_port: u16,
}

/// The size of `struct rvs_dest`.
pub const DEST_SIZE: usize = 48;

impl DestVal {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(DEST_SIZE);
        b.extend_from_slice(&addr16(&self.addr));
        b.extend_from_slice(&self.tun_src);
        b.extend_from_slice(&[af_of(&self.addr), self.fwd, self.tun_type, self.flags]);
        b.extend_from_slice(&self.port.to_be_bytes());
        b.extend_from_slice(&self.tun_port.to_be_bytes());
        b.extend_from_slice(&self.svc.to_ne_bytes());
        b.extend_from_slice(&self.id_port.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b
    }

    /// `None` for an unused slot (no address family) or a short value.
    pub fn decode(b: &[u8]) -> Option<DestVal> {
        if b.len() < DEST_SIZE || !matches!(b[32], AF_INET | AF_INET6) {
            return None;
        }
        let mut tun_src = [0u8; 16];
        tun_src.copy_from_slice(&b[16..32]);
        Some(DestVal {
            addr: addr_from(b[32], &b[..16]),
            tun_src,
            fwd: b[33],
            tun_type: b[34],
            flags: b[35],
            port: u16::from_be_bytes([b[36], b[37]]),
            tun_port: u16::from_be_bytes([b[38], b[39]]),
            svc: u32_at(b, 40),
            id_port: u16::from_be_bytes([b[44], b[45]]),
        })
    }
}

/// Decodes `struct rvs_svc_key`: address, port, IP protocol (0: a
/// firewall-mark service, the mark in the address's first 4 bytes).
pub fn svc_key_decode(b: &[u8]) -> Option<(IpAddr, u16, u8)> {
    if b.len() != 20 || !matches!(b[19], AF_INET | AF_INET6) {
        return None;
    }
    Some((
        addr_from(b[19], &b[..16]),
        u16::from_be_bytes([b[16], b[17]]),
        b[18],
    ))
}

impl Svc {
    pub fn decode(b: &[u8]) -> Option<Svc> {
        (b.len() == 16).then(|| Svc {
            id: u32_at(b, 0),
            flags: u32_at(b, 4),
            ring_off: u32_at(b, 8),
            ring_len: u32_at(b, 12),
        })
    }
}

/// `struct rvs_nh` (20 bytes); the MTU is left for the program to find.
pub fn nexthop(dmac: [u8; 6], smac: [u8; 6], ifindex: u32, valid: bool) -> Vec<u8> {
    let mut b = Vec::with_capacity(20);
    b.extend_from_slice(&dmac);
    b.extend_from_slice(&smac);
    b.extend_from_slice(&ifindex.to_ne_bytes());
    b.extend_from_slice(&u16::from(valid).to_ne_bytes());
    b.extend_from_slice(&0u16.to_ne_bytes());
    b
}

/// A cached next hop (`struct rvs_nh` as read from the map) with its valid
/// flag cleared and everything else kept, so the program looks the route
/// up again at the next packet; `None` for a value of the wrong size.
pub fn nexthop_stale(v: &[u8]) -> Option<Vec<u8>> {
    if v.len() != 20 {
        return None;
    }
    let mut b = v.to_vec();
    b[16..18].copy_from_slice(&0u16.to_ne_bytes());
    Some(b)
}

/// A connection's identity: the client side of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub proto: u8,
}

impl ConnKey {
    pub fn is_v4(&self) -> bool {
        self.caddr.is_ipv4()
    }

    /// `struct rvs_conn4_key` (16 bytes) or `rvs_conn6_key` (40 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(40);
        if self.is_v4() {
            b.extend_from_slice(&addr16(&self.caddr)[..4]);
            b.extend_from_slice(&addr16(&self.vaddr)[..4]);
        } else {
            b.extend_from_slice(&addr16(&self.caddr));
            b.extend_from_slice(&addr16(&self.vaddr));
        }
        b.extend_from_slice(&self.cport.to_be_bytes());
        b.extend_from_slice(&self.vport.to_be_bytes());
        b.extend_from_slice(&[self.proto, 0, 0, 0]);
        b
    }

    pub fn decode(b: &[u8]) -> Option<ConnKey> {
        let (af, alen) = match b.len() {
            16 => (AF_INET, 4),
            40 => (AF_INET6, 16),
            _ => return None,
        };
        let p = 2 * alen;
        Some(ConnKey {
            caddr: addr_from(af, &b[..alen]),
            vaddr: addr_from(af, &b[alen..p]),
            cport: u16::from_be_bytes([b[p], b[p + 1]]),
            vport: u16::from_be_bytes([b[p + 2], b[p + 3]]),
            proto: b[p + 4],
        })
    }

    /// The reverse (NAT reply) key for real server `raddr:rport`:
    /// `struct rvs_nat4_key` / `rvs_nat6_key`.
    pub fn nat_key(&self, raddr: &IpAddr, rport: u16) -> Vec<u8> {
        let mut b = Vec::with_capacity(40);
        if self.is_v4() {
            b.extend_from_slice(&addr16(raddr)[..4]);
            b.extend_from_slice(&addr16(&self.caddr)[..4]);
        } else {
            b.extend_from_slice(&addr16(raddr));
            b.extend_from_slice(&addr16(&self.caddr));
        }
        b.extend_from_slice(&rport.to_be_bytes());
        b.extend_from_slice(&self.cport.to_be_bytes());
        b.extend_from_slice(&[self.proto, 0, 0, 0]);
        b
    }

    /// The NAT reply value: `struct rvs_nat4` / `rvs_nat6`.
    pub fn nat_val(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(20);
        if self.is_v4() {
            b.extend_from_slice(&addr16(&self.vaddr)[..4]);
        } else {
            b.extend_from_slice(&addr16(&self.vaddr));
        }
        b.extend_from_slice(&self.vport.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b
    }
}

/// `struct rvs_conn` (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnVal {
    pub dest: u16,
    pub state: u8,
    pub flags: u8,
    /// The kernel's jiffies (low 32 bits) of the last packet ([`crate::now_units`]).
    pub seen: u32,
}

impl ConnVal {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8);
        b.extend_from_slice(&self.dest.to_ne_bytes());
        b.push(self.state);
        b.push(self.flags);
        b.extend_from_slice(&self.seen.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<ConnVal> {
        (b.len() == 8).then(|| ConnVal {
            dest: u16::from_ne_bytes([b[0], b[1]]),
            state: b[2],
            flags: b[3],
            seen: u32_at(b, 4),
        })
    }
}

/// `struct rvs_stats`, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestStats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl DestStats {
    pub fn add_encoded(&mut self, b: &[u8]) {
        if b.len() < 40 {
            return;
        }
        self.conns += u64_at(b, 0);
        self.inpkts += u64_at(b, 8);
        self.outpkts += u64_at(b, 16);
        self.inbytes += u64_at(b, 24);
        self.outbytes += u64_at(b, 32);
    }
}

/// `struct rvs_config` (8 bytes).
pub fn config(flags: u32, punt_budget: u32) -> Vec<u8> {
    let mut b = flags.to_ne_bytes().to_vec();
    b.extend_from_slice(&punt_budget.to_ne_bytes());
    b
}

/// `struct rvs_ifmac` (8 bytes): the interface's MAC, or none (every
/// frame is examined).
pub fn ifmac(mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut b = mac.unwrap_or_default().to_vec();
    b.extend_from_slice(&u16::from(mac.is_some()).to_ne_bytes());
    b
}

/// A decoded `struct rvs_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A first packet for userspace: the frame and the interface it came in on.
    Punt { ifindex: u32, frame: Vec<u8> },
    /// No neighbour entry for real server slot `dest`.
    Neigh { dest: u32 },
    /// A NAT reply, rewritten, whose next hop toward the client has no
    /// neighbour entry: to be sent through the kernel (the frame as the
    /// program left it, Ethernet header included).
    Xmit { frame: Vec<u8> },
    /// A tunnel packet over the route's MTU: the client's frame as
    /// received (at most [`PUNT_MAX`] bytes) and the MTU left for it
    /// inside the tunnel; the client gets "fragmentation needed" /
    /// "packet too big".
    TooBig { mtu: u32, frame: Vec<u8> },
    /// An IPv4 packet without DF too big for the tunnel toward real-server
    /// slot `dest` (its TTL decremented): to be tunnelled by the kernel,
    /// which fragments the tunnel packet.
    Frag { dest: u32, frame: Vec<u8> },
    /// An ICMP error about one of the engine's tunnel packets (at most
    /// [`PUNT_MAX`] bytes of the frame): the client gets the error about
    /// its own packet.
    TunnelIcmp { frame: Vec<u8> },
}

impl Event {
    pub fn decode(b: &[u8]) -> Option<Event> {
        if b.len() < 16 {
            return None;
        }
        let (kind, len, ifindex, dest) = (u32_at(b, 0), u32_at(b, 4), u32_at(b, 8), u32_at(b, 12));
        match kind {
            EV_PUNT => {
                let len = len as usize;
                (len <= PUNT_MAX && b.len() >= 16 + len).then(|| Event::Punt {
                    ifindex,
                    frame: b[16..16 + len].to_vec(),
                })
            }
            EV_NEIGH => Some(Event::Neigh { dest }),
            EV_XMIT | EV_TOOBIG | EV_TUNICMP | EV_FRAG => {
                let len = len as usize;
                if len > PUNT_MAX || b.len() < 16 + len {
                    return None;
                }
                let frame = b[16..16 + len].to_vec();
                Some(match kind {
                    EV_XMIT => Event::Xmit { frame },
                    EV_TOOBIG => Event::TooBig { mtu: dest, frame },
                    EV_FRAG => Event::Frag { dest, frame },
                    _ => Event::TunnelIcmp { frame },
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_keys_round_trip_and_have_the_c_sizes() {
        let k = ConnKey {
            caddr: "198.18.1.2".parse().unwrap(),
            cport: 40000,
            vaddr: "198.18.0.10".parse().unwrap(),
            vport: 80,
            proto: 6,
        };
        assert_eq!(k.encode().len(), 16);
        assert_eq!(ConnKey::decode(&k.encode()), Some(k));
        let k6 = ConnKey {
            caddr: "2001:db8::2".parse().unwrap(),
            vaddr: "2001:db8::10".parse().unwrap(),
            ..k
        };
        assert_eq!(k6.encode().len(), 40);
        assert_eq!(ConnKey::decode(&k6.encode()), Some(k6));
        assert_eq!(k.nat_key(&"198.18.2.1".parse().unwrap(), 8080).len(), 16);
        assert_eq!(k6.nat_val().len(), 20);
        assert_eq!(ConnKey::decode(&[0; 17]), None);
    }

    #[test]
    fn values_have_the_c_sizes() {
        let d = DestVal {
            addr: "198.18.2.1".parse().unwrap(),
            tun_src: [0; 16],
            fwd: FWD_ROUTE,
            tun_type: 0,
            flags: DEST_AVAILABLE,
            port: 80,
            tun_port: 0,
            svc: 1,
            id_port: 80,
        };
        assert_eq!(d.encode().len(), DEST_SIZE);
        assert_eq!(DestVal::decode(&d.encode()), Some(d));
        assert_eq!(DestVal::decode(&[0; DEST_SIZE]), None);
        assert_eq!(svc_key(&d.addr, 80, 6).len(), 20);
        assert_eq!(
            svc_key_decode(&svc_key(&d.addr, 80, 6)),
            Some((d.addr, 80, 6))
        );
        let s = Svc {
            id: 3,
            flags: SVC_RING,
            ring_off: 9,
            ring_len: 4,
        };
        assert_eq!(Svc::decode(&s.encode()), Some(s));
        assert_eq!(
            Svc {
                id: 0,
                flags: 0,
                ring_off: 0,
                ring_len: 0
            }
            .encode()
            .len(),
            16
        );
        assert_eq!(nexthop([0; 6], [0; 6], 1, true).len(), 20);
        let live = nexthop([1, 2, 3, 4, 5, 6], [7; 6], 9, true);
        assert_eq!(
            nexthop_stale(&live),
            Some(nexthop([1, 2, 3, 4, 5, 6], [7; 6], 9, false)),
            "only the valid flag changes"
        );
        assert_eq!(nexthop_stale(&live[..19]), None);
        assert_eq!(ifmac(Some([2, 0, 0, 0, 0, 1])).len(), 8);
        assert_eq!(ifmac(None), vec![0; 8]);
        let v = ConnVal {
            dest: 7,
            state: 3,
            flags: CONN_NOOUTPUT,
            seen: 99,
        };
        assert_eq!(ConnVal::decode(&v.encode()), Some(v));
        assert_eq!(
            Event::decode(&[1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            None
        );
        // kind, len, ifindex, dest, then the frame (and the slot's slack).
        let mut xmit: Vec<u8> = [EV_XMIT, 2, 0, 0]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        xmit.extend_from_slice(&[7, 9, 0]);
        assert_eq!(
            Event::decode(&xmit),
            Some(Event::Xmit { frame: vec![7, 9] })
        );
    }
}
