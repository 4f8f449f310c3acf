//! Sending a packet the program rewrote through the kernel's IP output:
//! NAT replies whose next hop toward the client has no neighbour entry
//! yet (a backup that just took over and never talked to the client's
//! router). The kernel's forwarding path cannot take them (their source is
//! the VIP, a local address: a martian); a raw socket (`IPPROTO_RAW`, IP
//! header included) can. The kernel routes the packet, resolves the
//! neighbour (queueing the packet meanwhile) and sends it, so no reply is
//! lost and the next ones find the neighbour from the program.
//! Also IPv4 packets without DF too big for a tunnel: the kernel's own
//! tunnel sockets fragment the tunnel packet ([`send_tunnel`]).

use crate::datapath::Error;
use crate::maps::DestVal;
use nix::sys::socket::{
    sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
    SockaddrIn6,
};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const ETH_HLEN: usize = 14;

/// Raw IPv4 and IPv6 sockets, opened at first use in the network
/// namespace of the thread that sends (needs `CAP_NET_RAW`).
#[derive(Debug, Default)]
pub struct RawXmit {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
}

impl RawXmit {
    pub fn new() -> RawXmit {
        RawXmit::default()
    }

    /// Sends the IP packet of Ethernet `frame` (its own length: the
    /// frame's padding is left out) to its destination address. Never
    /// blocks.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        let bad = || Error("not an IPv4 or IPv6 packet in an Ethernet frame".to_string());
        if frame.len() < ETH_HLEN {
            return Err(bad());
        }
        let ip = &frame[ETH_HLEN..];
        match u16::from_be_bytes([frame[12], frame[13]]) {
            0x0800 if ip.len() >= 20 && ip[0] >> 4 == 4 => {
                let len = u16::from_be_bytes([ip[2], ip[3]]) as usize;
                if len < 20 || len > ip.len() {
                    return Err(bad());
                }
                let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
                let fd = open(&mut self.v4, AddressFamily::Inet)?;
                let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
                sendto(fd, &ip[..len], &to, MsgFlags::MSG_DONTWAIT)
            }
            0x86dd if ip.len() >= 40 && ip[0] >> 4 == 6 => {
                let len = 40 + u16::from_be_bytes([ip[4], ip[5]]) as usize;
                if len > ip.len() {
                    return Err(bad());
                }
                let mut d = [0u8; 16];
                d.copy_from_slice(&ip[24..40]);
                let fd = open(&mut self.v6, AddressFamily::Inet6)?;
                let to = SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::from(d), 0, 0, 0));
                sendto(fd, &ip[..len], &to, MsgFlags::MSG_DONTWAIT)
            }
            _ => return Err(bad()),
        }
        .map(|_| ())
        .map_err(|e| Error(format!("sending a NAT reply through the kernel: {e}")))
    }
}

/// The tunnel payload of an IPv4 packet without DF too big for the
/// tunnel toward `d`, for the kernel's sockets to send (they add the outer
/// IP header and fragment it, as `ip_vs_tunnel_xmit` has the kernel do):
/// the encapsulation the socket does not write (GRE: its header; GUE: the
/// GUE header, the socket writing UDP; IPIP: none) and the packet; with
/// the IP protocol (IPIP, GRE) or UDP port (GUE) to send to, and the TOS
/// and TTL the outer header copies. `None`: not an IPv4 packet.
pub fn tunnel_payload(frame: &[u8], d: &DestVal) -> Option<(Vec<u8>, u16, u8, u8)> {
    let ip = frame.get(ETH_HLEN..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let len = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if len < 20 || len > ip.len() {
        return None;
    }
    let mut tos = ip[1];
    if tos & 3 == 3 {
        tos = (tos & !3) | 2; // CE is not copied: ECT(0)
    }
    let (mut p, to) = match d.tun_type {
        1 => (vec![0, 4, 0, 0], d.tun_port),
        2 => (vec![0, 0, 0x08, 0x00], 47),
        _ => (Vec::new(), 4),
    };
    p.extend_from_slice(&ip[..len]);
    Some((p, to, tos, ip[8]))
}

/// Sends [`tunnel_payload`]'s packet to tunnel real server `d` through a
/// kernel socket (raw IPIP / GRE, or UDP for GUE) bound to the tunnel's
/// source address: the kernel routes it and fragments the tunnel packet.
pub fn send_tunnel(frame: &[u8], d: &DestVal) -> Result<(), Error> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let e = |what: &str, err: std::io::Error| Error(format!("tunnel packet: {what}: {err}"));
    let (payload, to, tos, ttl) = tunnel_payload(frame, d)
        .ok_or_else(|| Error("tunnel packet: not an IPv4 packet".to_string()))?;
    let v4 = d.addr.is_ipv4();
    let domain = if v4 { Domain::IPV4 } else { Domain::IPV6 };
    let gue = d.tun_type == 1;
    let s = if gue {
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
    } else {
        Socket::new(domain, Type::RAW, Some(Protocol::from(i32::from(to))))
    }
    .map_err(|err| e("socket (needs CAP_NET_RAW)", err))?;
    let src = crate::maps::addr_from(crate::maps::af_of(&d.addr), &d.tun_src);
    if !src.is_unspecified() {
        s.bind(&SockAddr::from(std::net::SocketAddr::new(src, 0)))
            .map_err(|err| e("bind", err))?;
    }
    if v4 {
        s.set_tos_v4(u32::from(tos)).map_err(|err| e("TOS", err))?;
        s.set_ttl_v4(u32::from(ttl)).map_err(|err| e("TTL", err))?;
    } else {
        s.set_tclass_v6(u32::from(tos))
            .map_err(|err| e("traffic class", err))?;
        s.set_unicast_hops_v6(u32::from(ttl))
            .map_err(|err| e("hop limit", err))?;
    }
    let port = if gue { to } else { 0 };
    s.send_to(
        &payload,
        &SockAddr::from(std::net::SocketAddr::new(d.addr, port)),
    )
    .map_err(|err| e("send", err))?;
    Ok(())
}

fn open(slot: &mut Option<OwnedFd>, af: AddressFamily) -> Result<RawFd, Error> {
    if let Some(fd) = slot {
        return Ok(fd.as_raw_fd());
    }
    let fd = socket(af, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::Raw)
        .map_err(|e| Error(format!("raw socket (needs CAP_NET_RAW): {e}")))?;
    let raw = fd.as_raw_fd();
    *slot = Some(fd);
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_ip_packet() {
        let mut x = RawXmit::new();
        assert!(x.send(&[0; 10]).is_err());
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert!(x.send(&arp).is_err());
        // IPv4 whose total length runs past the frame.
        let mut v4 = vec![0u8; 14 + 20];
        v4[12] = 0x08;
        v4[14] = 0x45;
        v4[16..18].copy_from_slice(&60u16.to_be_bytes());
        assert!(x.send(&v4).is_err());
        // Nothing was opened for them.
        assert!(x.v4.is_none() && x.v6.is_none());
    }
}
