//! The raw IP protocol-112 sockets of one instance. Two per instance: a
//! receiving socket that is bound to the interface only (a raw socket
//! bound to an address would not see multicast), joined to 224.0.0.18 or
//! ff02::12 unless unicast peers are configured; and a sending socket bound
//! to the source address, with TTL / hop limit 255, TOS / traffic class
//! 0xC0 and multicast loop off, as keepalived sends. Received adverts are
//! only passed on with TTL 255 (RFC 5798 section 7.1).

use crate::packet::{split_ipv4, GROUP_V4, GROUP_V6, PROTO_VRRP, TTL};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn6};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use std::io::{self, IoSliceMut, Read};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// A datagram as received, before the VRRP decoder looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL / hop limit it arrived with.
    pub ttl: u8,
    /// Where the VRRP message sits in the buffer passed to `recv`.
    pub start: usize,
    pub end: usize,
}

/// The sockets of one instance.
#[derive(Debug)]
pub struct VrrpSocket {
    rx: Socket,
    tx: Socket,
    ifindex: u32,
    src: IpAddr,
    dsts: Vec<IpAddr>,
}

fn raw(v6: bool) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    Socket::new(
        domain,
        Type::RAW,
        Some(Protocol::from(i32::from(PROTO_VRRP))),
    )
}

fn sockaddr(ip: IpAddr, ifindex: u32) -> SockAddr {
    match ip {
        IpAddr::V4(a) => SockAddr::from(SocketAddr::new(a.into(), 0)),
        IpAddr::V6(a) => {
            let scope = if a.is_unicast_link_local() || a.is_multicast() {
                ifindex
            } else {
                0
            };
            SockAddr::from(SocketAddrV6::new(a, 0, 0, scope))
        }
    }
}

impl VrrpSocket {
    /// Opens the sockets on `ifname` (index `ifindex`), sending from `src`
    /// to the multicast group, or to each of `peers` when there are any.
    pub fn open(
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
        peers: &[IpAddr],
    ) -> io::Result<VrrpSocket> {
        let v6 = src.is_ipv6();
        let rx = raw(v6)?;
        rx.bind_device(Some(ifname.as_bytes()))?;
        rx.set_nonblocking(true)?;
        rx.set_cloexec(true)?;
        let tx = raw(v6)?;
        tx.bind_device(Some(ifname.as_bytes()))?;
        tx.set_cloexec(true)?;
        tx.bind(&sockaddr(src, ifindex))?;
        if v6 {
            setsockopt(&rx, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
            setsockopt(&rx, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
            if peers.is_empty() {
                rx.join_multicast_v6(&GROUP_V6, ifindex)?;
            }
            tx.set_unicast_hops_v6(u32::from(TTL))?;
            tx.set_multicast_hops_v6(u32::from(TTL))?;
            tx.set_multicast_loop_v6(false)?;
            tx.set_multicast_if_v6(ifindex)?;
            tx.set_tclass_v6(0xc0)?;
        } else {
            if peers.is_empty() {
                rx.join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
            }
            tx.set_ttl_v4(u32::from(TTL))?;
            tx.set_multicast_ttl_v4(u32::from(TTL))?;
            tx.set_multicast_loop_v4(false)?;
            tx.set_tos_v4(0xc0)?;
            if let IpAddr::V4(a) = src {
                tx.set_multicast_if_v4(&a)?;
            }
        }
        let dsts = if peers.is_empty() {
            vec![if v6 {
                IpAddr::V6(GROUP_V6)
            } else {
                IpAddr::V4(GROUP_V4)
            }]
        } else {
            peers.to_vec()
        };
        Ok(VrrpSocket {
            rx,
            tx,
            ifindex,
            src,
            dsts,
        })
    }

    /// The source address adverts are sent from.
    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// Where adverts go: the group, or the unicast peers.
    pub fn destinations(&self) -> &[IpAddr] {
        &self.dsts
    }

    /// The receiving socket, to poll.
    pub fn rx_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }

    /// Sends `msg` (a VRRP message built for `dst`) to `dst`.
    pub fn send_to(&self, msg: &[u8], dst: IpAddr) -> io::Result<()> {
        self.tx.send_to(msg, &sockaddr(dst, self.ifindex))?;
        Ok(())
    }

    /// Receives one datagram into `buf`; `None` when nothing is waiting.
    /// Packets whose IP header is unreadable are reported as errors of kind
    /// `InvalidData`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        if self.src.is_ipv4() {
            let n = match (&self.rx).read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            };
            let (info, payload) =
                split_ipv4(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let start = payload.as_ptr() as usize - buf.as_ptr() as usize;
            return Ok(Some(Received {
                src: info.src.into(),
                dst: info.dst.into(),
                ttl: info.ttl,
                start,
                end: start + payload.len(),
            }));
        }
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<SockaddrIn6>(
            self.rx.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let n = msg.bytes;
        let src = msg
            .address
            .map(|a| IpAddr::V6(a.ip()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no source address"))?;
        let mut ttl = 0;
        let mut dst = IpAddr::V6(GROUP_V6);
        for c in msg.cmsgs().map_err(io::Error::from)? {
            match c {
                ControlMessageOwned::Ipv6HopLimit(h) => ttl = h.clamp(0, 255) as u8,
                ControlMessageOwned::Ipv6PacketInfo(pi) => {
                    dst = IpAddr::V6(pi.ipi6_addr.s6_addr.into())
                }
                _ => {}
            }
        }
        Ok(Some(Received {
            src,
            dst,
            ttl,
            start: 0,
            end: n,
        }))
    }
}
