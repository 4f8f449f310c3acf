//! Adding and removing a VIP through rtnetlink: `RTM_NEWADDR` /
//! `RTM_DELADDR` on a `NETLINK_ROUTE` socket, what `ip addr add|del` sends,
//! written by hand (two messages do not need a netlink crate). IPv6 VIPs
//! are added with `IFA_F_NODAD`, as keepalived does, so they are usable at
//! once instead of after duplicate-address detection.

use nix::sys::socket::{
    bind, recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;

/// A virtual address with its prefix length, as put on the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn attr(m: &mut Vec<u8>, ty: u16, data: &[u8]) {
    m.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(data);
    while !m.len().is_multiple_of(4) {
        m.push(0);
    }
}

/// The request adding (`add`) or removing `vip` on interface `ifindex`.
/// An IPv4 removal names only the local address, so it also matches an
/// address left with another prefix length.
pub fn addr_request(add: bool, ifindex: u32, vip: Vip, seq: u32) -> Vec<u8> {
    let (family, bytes): (u8, Vec<u8>) = match vip.addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    let (ty, flags) = if add {
        (
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    } else {
        (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&[0; 4]); // length, below
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    let ifa_flags = if add && vip.addr.is_ipv6() {
        IFA_F_NODAD as u8
    } else {
        0
    };
    m.extend_from_slice(&[family, vip.prefix, ifa_flags, 0]);
    m.extend_from_slice(&ifindex.to_ne_bytes());
    match vip.addr {
        IpAddr::V4(_) => {
            attr(&mut m, IFA_LOCAL, &bytes);
            if add {
                attr(&mut m, IFA_ADDRESS, &bytes);
            }
        }
        IpAddr::V6(_) => {
            attr(&mut m, IFA_ADDRESS, &bytes);
            if add {
                attr(&mut m, IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
            }
        }
    }
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// The errno of the `NLMSG_ERROR` answer to request `seq` in `buf`
/// (0 = success), or `None` if `buf` holds no such answer.
pub fn parse_ack(buf: &[u8], seq: u32) -> Option<i32> {
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[at..at + 4].try_into().ok()?) as usize;
        if len < 16 || at + len > buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().ok()?);
        let s = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().ok()?);
        if ty == NLMSG_ERROR && s == seq && len >= 20 {
            let e = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().ok()?);
            return Some(-e);
        }
        at += (len + 3) & !3;
    }
    None
}

static SEQ: AtomicU32 = AtomicU32::new(1);

fn request(msg_for: impl Fn(u32) -> Vec<u8>) -> io::Result<i32> {
    let fd: OwnedFd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let msg = msg_for(seq);
    sendto(
        fd.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink closed",
            ));
        }
        if let Some(errno) = parse_ack(&buf[..n], seq) {
            return Ok(errno);
        }
    }
}

/// Puts `vip` on interface `ifindex`; already present is success.
pub fn add_vip(ifindex: u32, vip: Vip) -> io::Result<()> {
    match request(|seq| addr_request(true, ifindex, vip, seq))? {
        0 => Ok(()),
        e if e == libc::EEXIST => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Takes `vip` off interface `ifindex`. Returns whether it was there.
pub fn del_vip(ifindex: u32, vip: Vip) -> io::Result<bool> {
    match request(|seq| addr_request(false, ifindex, vip, seq))? {
        0 => Ok(true),
        e if e == libc::EADDRNOTAVAIL || e == libc::ENOENT || e == libc::ENODEV => Ok(false),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_request_layout() {
        let vip = Vip {
            addr: "198.18.0.100".parse().unwrap(),
            prefix: 24,
        };
        let m = addr_request(true, 7, vip, 9);
        assert_eq!(m.len(), 16 + 8 + 8 + 8);
        assert_eq!(
            u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWADDR);
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 24, 0, 0]);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        assert_eq!(&m[28..32], &[198, 18, 0, 100]);
        let del = addr_request(false, 7, vip, 9);
        assert_eq!(del.len(), 16 + 8 + 8, "IPv4 removal names only IFA_LOCAL");
        let v6 = Vip {
            addr: "2001:db8::100".parse().unwrap(),
            prefix: 64,
        };
        let m = addr_request(true, 7, v6, 9);
        assert_eq!(m.len(), 16 + 8 + 20 + 8);
        assert_eq!(m[18], IFA_F_NODAD as u8);
    }

    #[test]
    fn ack_parsing() {
        let mut b = Vec::new();
        b.extend_from_slice(&36u32.to_ne_bytes());
        b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&5u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&(-libc::EEXIST).to_ne_bytes());
        b.extend_from_slice(&[0; 16]);
        assert_eq!(parse_ack(&b, 5), Some(libc::EEXIST));
        assert_eq!(parse_ack(&b, 6), None);
        assert_eq!(parse_ack(&b[..10], 5), None);
    }
}
