//! Socket construction: listening sockets shared by the workers through
//! SO_REUSEPORT, and connections to real servers (optionally from the
//! client's own address).

use socket2::{Domain, SockRef, Socket, Type};
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

fn new_socket(addr: &SocketAddr, ty: Type, proto: socket2::Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(*addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

fn set_transparent(s: &Socket, addr: &SocketAddr) -> io::Result<()> {
    match addr {
        SocketAddr::V4(_) => s.set_ip_transparent_v4(true),
        SocketAddr::V6(_) => s.set_ip_transparent_v6(true),
    }
}

/// Common options of a service socket: reusable by every worker, and
/// bindable before the virtual address is configured on this host (so a
/// VRRP-managed address can come and go).
fn service_socket(addr: &SocketAddr, ty: Type, proto: socket2::Protocol) -> io::Result<Socket> {
    let s = new_socket(addr, ty, proto)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    match addr {
        SocketAddr::V4(_) => s.set_freebind_v4(true)?,
        SocketAddr::V6(_) => s.set_freebind_v6(true)?,
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// A TCP listener on `addr` (one per worker; SO_REUSEPORT spreads new
/// connections across them).
pub(crate) fn tcp_listener(
    addr: SocketAddr,
    backlog: u32,
    transparent: bool,
) -> io::Result<std::net::TcpListener> {
    let s = service_socket(&addr, Type::STREAM, socket2::Protocol::TCP)?;
    if transparent {
        // TPROXY delivers connections for addresses that are not local.
        set_transparent(&s, &addr)?;
    }
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux), which
    // saves a setsockopt per connection.
    s.set_tcp_nodelay(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(s.into())
}

/// Accepts one client: non-blocking and close-on-exec in the same system
/// call, and (from the listener) TCP_NODELAY. Not registered with the
/// runtime yet, so the caller can read the client's first bytes before the
/// first readiness round.
pub(crate) fn accept(listener: &std::net::TcpListener) -> io::Result<(Socket, SocketAddr)> {
    let (s, peer) = SockRef::from(listener).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    let peer = peer
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "accept: not an IP peer"))?;
    Ok((s, peer))
}

/// A UDP socket bound to `addr` (one per worker; SO_REUSEPORT keeps each
/// client's datagrams on one worker).
pub(crate) fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = service_socket(&addr, Type::DGRAM, socket2::Protocol::UDP)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Binds (without listening) a socket like a service socket, to learn
/// early whether another program holds the address and port.
pub(crate) fn probe_bind(addr: SocketAddr, ty: Type) -> io::Result<()> {
    let proto = if ty == Type::DGRAM {
        socket2::Protocol::UDP
    } else {
        socket2::Protocol::TCP
    };
    let s = service_socket(&addr, ty, proto)?;
    s.bind(&addr.into())
}

/// The unspecified address of `addr`'s family, port 0.
pub(crate) fn any_of(addr: &SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// Binds `s` to the client's address for transparent mode: with the
/// client's port when that is free here, otherwise with any port.
fn bind_transparent(s: &Socket, client: SocketAddr) -> io::Result<()> {
    set_transparent(s, &client)?;
    s.set_reuse_address(true)?;
    match s.bind(&client.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            s.bind(&SocketAddr::new(client.ip(), 0).into())
        }
        Err(e) => Err(e),
    }
}

/// Starts connecting to a real server, from `source` (the client,
/// transparent mode) when given: a non-blocking socket with TCP_NODELAY
/// whose `connect` is under way (or done: on loopback the handshake often
/// completes inside the call). With `data_follows` the final ACK of the
/// handshake is held back (TCP_QUICKACK off) so that it rides on the first
/// data segment the caller sends at once, as HAProxy does; without data to
/// send it would wait for the delayed-ACK timer, so it is only set then.
pub(crate) fn start_connect(
    dest: SocketAddr,
    source: Option<SocketAddr>,
    data_follows: bool,
    spare: Option<Socket>,
) -> io::Result<Socket> {
    let s = match spare {
        // TCP_NODELAY survives the disconnect.
        Some(s) => s,
        None => {
            let s = Socket::new(
                Domain::for_address(dest),
                Type::STREAM.nonblocking(),
                Some(socket2::Protocol::TCP),
            )?;
            if let Some(src) = source {
                bind_transparent(&s, src)?;
            }
            s.set_tcp_nodelay(true)?;
            s
        }
    };
    if data_follows {
        s.set_tcp_quickack(false)?;
    }
    match s.connect(&dest.into()) {
        Ok(()) => Ok(s),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(s),
        Err(e) => Err(e),
    }
}

/// Sockets to real servers whose connections ended cleanly, kept to be
/// connected again (per address family): a short connection then costs no
/// socket set-up and teardown on the real-server side, only the TCP
/// exchange itself.
#[derive(Default)]
pub(crate) struct Spares {
    v4: RefCell<Vec<Socket>>,
    v6: RefCell<Vec<Socket>>,
}

/// Spare sockets kept per family and worker at most.
const SPARES: usize = 64;

impl Spares {
    fn of(&self, ipv6: bool) -> &RefCell<Vec<Socket>> {
        if ipv6 {
            &self.v6
        } else {
            &self.v4
        }
    }

    /// A spare socket for a connection to `dest` (none in transparent
    /// mode, whose sockets are bound to the client's address).
    pub(crate) fn take(&self, dest: SocketAddr, transparent: bool) -> Option<Socket> {
        if transparent {
            return None;
        }
        self.of(dest.is_ipv6()).borrow_mut().pop()
    }

    /// Keeps the socket of a connection to `dest` whose relay has ended
    /// (the real server's end of stream read), if it can be made new
    /// without changing anything the real server sees: its FIN is sent
    /// (again: a repeat is harmless), and only a connection the kernel has
    /// closed (both FINs exchanged, ours acknowledged: nothing left to
    /// retransmit) is dissolved. Otherwise the socket comes back, to be
    /// closed as usual.
    pub(crate) fn keep(&self, dest: SocketAddr, s: Socket) -> Result<(), Socket> {
        let fd = s.as_raw_fd();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let pool = self.of(dest.is_ipv6());
        if pool.borrow().len() >= SPARES
            || !crate::sys::tcp_closed(fd).unwrap_or(false)
            || crate::sys::disconnect(fd).is_err()
        {
            return Err(s);
        }
        pool.borrow_mut().push(s);
        Ok(())
    }
}

/// An unconnected UDP socket towards real servers of `dest`'s family, from
/// `source` (the client, transparent mode) when given.
pub(crate) fn udp_upstream(
    dest: &SocketAddr,
    source: Option<SocketAddr>,
) -> io::Result<std::net::UdpSocket> {
    let s = new_socket(dest, Type::DGRAM, socket2::Protocol::UDP)?;
    match source {
        Some(src) => bind_transparent(&s, src)?,
        None => s.bind(&any_of(dest).into())?,
    }
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Closes a TCP socket with a reset rather than a FIN (the proxy's
/// equivalent of the kernel refusing or aborting a connection).
pub(crate) fn reset<S: std::os::fd::AsFd>(stream: S) {
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Whether an error means the process or system ran out of descriptors
/// (or memory for sockets): back off instead of spinning.
pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// Whether this process may use IP_TRANSPARENT and TPROXY (CAP_NET_ADMIN
/// in its effective set), read from `/proc/self/status`.
pub fn privileged() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Connects a (possibly spare) socket to `l` and accepts it.
    fn pair(l: &std::net::TcpListener, spare: Option<Socket>) -> (Socket, std::net::TcpStream) {
        let dest = l.local_addr().unwrap();
        let s = start_connect(dest, None, false, spare).unwrap();
        let (peer, _) = l.accept().unwrap();
        s.set_nonblocking(false).unwrap();
        (s, peer)
    }

    #[test]
    fn a_cleanly_finished_socket_connects_again_with_its_options() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dest = l.local_addr().unwrap();
        let spares = Spares::default();
        let (s, mut peer) = pair(&l, None);
        let first_port = s.local_addr().unwrap().as_socket().unwrap().port();
        // The real server answers and closes first.
        peer.write_all(b"bye").unwrap();
        drop(peer);
        let mut got = Vec::new();
        (&s).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
        assert!(spares.keep(dest, s).is_ok(), "kept");
        let spare = spares.take(dest, false).expect("a spare");
        assert!(spare.tcp_nodelay().unwrap(), "TCP_NODELAY survives");
        assert!(spares.take(dest, false).is_none());

        // Connected again (from another port), both ways.
        let (s, mut peer) = pair(&l, Some(spare));
        assert_ne!(
            s.local_addr().unwrap().as_socket().unwrap().port(),
            first_port
        );
        (&s).write_all(b"again").unwrap();
        let mut b = [0u8; 5];
        peer.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"again");
        peer.write_all(b"ok").unwrap();
        let mut b = [0u8; 2];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ok");
        // The first connection ended with a FIN, not a reset: the peer of
        // the second reads EOF after our shutdown, as usual.
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn a_socket_whose_real_server_still_sends_is_not_kept() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dest = l.local_addr().unwrap();
        let spares = Spares::default();
        let (s, mut peer) = pair(&l, None);
        // Our FIN goes out and is acknowledged, but the real server has not
        // finished: dissolving now would reset it.
        let s = spares.keep(dest, s).expect_err("not kept");
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "the real server saw our FIN");
        // It can still send, and we still receive.
        peer.write_all(b"late").unwrap();
        let mut b = [0u8; 4];
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"late");
        assert!(spares.take(dest, false).is_none());
    }
}
