//! Test helpers: a network namespace (deleted on drop), frame building and
//! full checksums (independent of the program's incremental updates).
#![allow(dead_code)]

use std::net::IpAddr;
use std::process::Command;

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh(&format!("ip netns add {name}"));
        let ns = Netns(name.to_string());
        ns.run("ip link set lo up");
        ns
    }

    pub fn run(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} {cmd}", self.0))
    }

    /// Moves the calling thread into the namespace.
    pub fn enter(&self) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.0)).expect("netns file");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    }

    pub fn mac(&self, dev: &str) -> [u8; 6] {
        let s = self.run(&format!("cat /sys/class/net/{dev}/address"));
        parse_mac(s.trim())
    }

    pub fn ifindex(&self, dev: &str) -> u32 {
        self.run(&format!("cat /sys/class/net/{dev}/ifindex"))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

pub fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, p) in s.split(':').enumerate().take(6) {
        m[i] = u8::from_str_radix(p, 16).unwrap();
    }
    m
}

pub fn fold(mut c: u32) -> u16 {
    while c >> 16 != 0 {
        c = (c & 0xffff) + (c >> 16);
    }
    !(c as u16)
}

pub fn sum(b: &[u8]) -> u32 {
    let mut c = 0u32;
    for ch in b.chunks(2) {
        let w = if ch.len() == 2 {
            u16::from_be_bytes([ch[0], ch[1]])
        } else {
            (ch[0] as u16) << 8
        };
        c += w as u32;
    }
    c
}

pub fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// An L4 segment (TCP or UDP header + payload).
#[derive(Clone)]
pub struct L4 {
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub payload: Vec<u8>,
}

impl L4 {
    pub fn tcp(sport: u16, dport: u16, flags: u8) -> L4 {
        L4 {
            proto: 6,
            sport,
            dport,
            tcp_flags: flags,
            payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        }
    }
    pub fn udp(sport: u16, dport: u16) -> L4 {
        L4 {
            proto: 17,
            sport,
            dport,
            tcp_flags: 0,
            payload: b"hello".to_vec(),
        }
    }

    /// The segment with its checksum over the pseudo-header of `src`/`dst`.
    pub fn bytes(&self, src: &IpAddr, dst: &IpAddr) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.sport.to_be_bytes());
        b.extend_from_slice(&self.dport.to_be_bytes());
        if self.proto == 6 {
            b.extend_from_slice(&1000u32.to_be_bytes());
            b.extend_from_slice(
                &(if self.tcp_flags & 0x10 != 0 {
                    2000u32
                } else {
                    0
                })
                .to_be_bytes(),
            );
            b.push(5 << 4);
            b.push(self.tcp_flags);
            b.extend_from_slice(&65535u16.to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, 0]);
        } else {
            b.extend_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
            b.extend_from_slice(&[0, 0]);
        }
        b.extend_from_slice(&self.payload);
        let cs = l4_csum(self.proto, src, dst, &b);
        let at = if self.proto == 6 { 16 } else { 6 };
        b[at..at + 2].copy_from_slice(&cs.to_be_bytes());
        b
    }
}

pub fn l4_csum(proto: u8, src: &IpAddr, dst: &IpAddr, seg: &[u8]) -> u16 {
    let mut c = sum(&ip_bytes(src)) + sum(&ip_bytes(dst)) + proto as u32 + seg.len() as u32;
    c += sum(seg);
    let r = fold(c);
    if proto == 17 && r == 0 {
        0xffff
    } else {
        r
    }
}

/// An IP packet around `payload` (protocol `proto`).
pub fn ip(src: &IpAddr, dst: &IpAddr, proto: u8, ttl: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            b.extend_from_slice(&[0x45, 0]);
            b.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&0x4000u16.to_be_bytes());
            b.extend_from_slice(&[ttl, proto, 0, 0]);
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
            let cs = fold(sum(&b));
            b[10..12].copy_from_slice(&cs.to_be_bytes());
        }
        _ => {
            b.extend_from_slice(&[0x60, 0, 0, 0]);
            b.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            b.extend_from_slice(&[proto, ttl]);
            b.extend_from_slice(&ip_bytes(src));
            b.extend_from_slice(&ip_bytes(dst));
        }
    }
    b.extend_from_slice(payload);
    b
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&dst);
    b.extend_from_slice(&src);
    b.extend_from_slice(&ethertype.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

pub fn ethertype(a: &IpAddr) -> u16 {
    if a.is_ipv4() {
        0x0800
    } else {
        0x86dd
    }
}

/// A whole frame: Ethernet / IP / L4.
pub fn frame(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: &IpAddr,
    dst: &IpAddr,
    ttl: u8,
    l4: &L4,
) -> Vec<u8> {
    let seg = l4.bytes(src, dst);
    eth(
        dmac,
        smac,
        ethertype(src),
        &ip(src, dst, l4.proto, ttl, 0x1234, &seg),
    )
}

/// An ICMP (or ICMPv6) error of `typ`/`code` from `src` to `dst` quoting `quoted` (an IP packet).
#[allow(clippy::too_many_arguments)]
pub fn icmp_error(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: &IpAddr,
    dst: &IpAddr,
    ttl: u8,
    typ: u8,
    code: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0, 0, 0, 0x05, 0xdc];
    m.extend_from_slice(quoted);
    let cs = if src.is_ipv4() {
        fold(sum(&m))
    } else {
        fold(sum(&ip_bytes(src)) + sum(&ip_bytes(dst)) + 58 + m.len() as u32 + sum(&m))
    };
    m[2..4].copy_from_slice(&cs.to_be_bytes());
    let proto = if src.is_ipv4() { 1 } else { 58 };
    eth(
        dmac,
        smac,
        ethertype(src),
        &ip(src, dst, proto, ttl, 0x1234, &m),
    )
}

/// The ICMP error the engine sends a client (built independently of
/// `rvs_xdp::packet`): from `src` to `dst`, TTL 64, IPv4 TOS 0xc0, no
/// DF, ID 0 (the kernel numbers it), `info` in the second word, `quoted`
/// after it; in an Ethernet frame with zero MACs.
pub fn icmp_reply(
    src: &IpAddr,
    dst: &IpAddr,
    typ: u8,
    code: u8,
    info: u32,
    quoted: &[u8],
) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0];
    m.extend_from_slice(&info.to_be_bytes());
    m.extend_from_slice(quoted);
    let mut b = Vec::new();
    if src.is_ipv4() {
        let cs = fold(sum(&m));
        m[2..4].copy_from_slice(&cs.to_be_bytes());
        b.extend_from_slice(&[0x45, 0xc0]);
        b.extend_from_slice(&((20 + m.len()) as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
        b.extend_from_slice(&ip_bytes(src));
        b.extend_from_slice(&ip_bytes(dst));
        let cs = fold(sum(&b));
        b[10..12].copy_from_slice(&cs.to_be_bytes());
    } else {
        let cs = fold(sum(&ip_bytes(src)) + sum(&ip_bytes(dst)) + 58 + m.len() as u32 + sum(&m));
        m[2..4].copy_from_slice(&cs.to_be_bytes());
        b.extend_from_slice(&[0x60, 0, 0, 0]);
        b.extend_from_slice(&(m.len() as u16).to_be_bytes());
        b.extend_from_slice(&[58, 64]);
        b.extend_from_slice(&ip_bytes(src));
        b.extend_from_slice(&ip_bytes(dst));
    }
    b.extend_from_slice(&m);
    eth([0; 6], [0; 6], ethertype(src), &b)
}
