//! TCP services: accepting clients, scheduling them through the connection
//! table, connecting to the chosen real server, and relaying until both
//! sides are done, with every life event reported to the table so that
//! `-L -n` and `-L -c` show the truth.

use crate::config::RelayMethod;
use crate::proxy_protocol::{self, Transport};
use crate::relay::{Event, Relay};
use crate::sock;
use crate::track::{Registration, Tracked};
use crate::uring::{RelayStart, Ring, RingEvent, Sockets};
use crate::worker::Worker;
use rvs_conn::ProxyEvent;
use rvs_core::{Protocol, ServiceKey};
use socket2::Socket;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;

/// Accepts clients of one service on this worker's listener, forever.
/// Running out of descriptors is logged (once a second) and waited out.
pub(crate) async fn accept_loop(
    w: Rc<Worker>,
    key: ServiceKey,
    listener: Rc<AsyncFd<std::net::TcpListener>>,
) {
    loop {
        let mut guard = match listener.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("{}: listener: {e}", crate::service_name(&key));
                return;
            }
        };
        match guard.try_io(|l| sock::accept(l.get_ref())) {
            Ok(Ok((client, peer))) => {
                tokio::task::spawn_local(serve(w.clone(), key, client, peer));
            }
            Ok(Err(e)) if sock::is_resource_exhaustion(&e) => {
                w.warn_exhausted(&format!("{}: accept", crate::service_name(&key)), &e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Err(e)) => {
                tracing::debug!("{}: accept: {e}", crate::service_name(&key));
                tokio::task::yield_now().await;
            }
            // Drained: readiness is cleared, wait for the next client.
            Err(_) => {}
        }
    }
}

enum End {
    /// Both sides finished cleanly.
    Done,
    /// One side failed; the other gets a reset.
    Aborted,
    /// The entry died, the connection idled out, or the engine stops.
    Cancelled,
}

/// A connection to a real server as [`open`] leaves it.
struct Opening {
    server: Socket,
    /// The first send succeeded, so the handshake is known to be complete.
    connected: bool,
    /// The PROXY protocol header and first client bytes not sent yet.
    unsent: Vec<u8>,
    /// Client bytes read before connecting (counted once established).
    first_read: usize,
    /// The client had already finished sending.
    client_eof: bool,
}

enum OpenError {
    Client(io::Error),
    Server(io::Error),
}

/// Reads what the client has sent already (clients usually speak first,
/// and their request is in the socket by the time it is accepted), starts
/// connecting to the real server and sends the PROXY protocol header and
/// those bytes at once. On loopback and other fast paths the handshake is
/// complete when `connect` returns, so the request leaves with the
/// handshake's last ACK and no readiness round is spent waiting for the
/// connection; otherwise the send says "would block" and the bytes wait in
/// [`Opening::unsent`]. `buf` is the worker's scratch buffer.
fn open(
    client: &Socket,
    header: Option<&[u8]>,
    buf: &mut [u8],
    dest: SocketAddr,
    source: Option<SocketAddr>,
    spare: Option<Socket>,
) -> Result<Opening, OpenError> {
    let h = header.map_or(0, |h| h.len());
    if let Some(header) = header {
        buf[..h].copy_from_slice(header);
    }
    let (n, client_eof) = match (&*client).read(&mut buf[h..]) {
        Ok(0) => (0, true),
        Ok(n) => (n, false),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            (0, false)
        }
        Err(e) => return Err(OpenError::Client(e)),
    };
    let len = h + n;
    let server = sock::start_connect(dest, source, len > 0, spare).map_err(OpenError::Server)?;
    let mut sent = 0;
    let mut connected = false;
    if len > 0 {
        match server.send_with_flags(&buf[..len], libc::MSG_NOSIGNAL) {
            Ok(m) => {
                sent = m;
                connected = true;
            }
            // Still connecting.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(OpenError::Server(e)),
        }
    }
    Ok(Opening {
        server,
        connected,
        unsent: buf[sent..len].to_vec(),
        first_read: n,
        client_eof,
    })
}

/// Waits until a connection under way is established (or fails).
async fn connected(server: &TcpStream) -> io::Result<()> {
    server.writable().await?;
    match server.take_error()? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn serve(w: Rc<Worker>, key: ServiceKey, client: Socket, peer: SocketAddr) {
    // The virtual address: the service's own, unless the socket may have
    // received connections for other addresses (wildcard, TPROXY).
    let local = match key {
        ServiceKey::Addr { addr, port, .. } if port != 0 && !addr.is_unspecified() => {
            SocketAddr::new(addr, port)
        }
        _ => match client.local_addr().ok().and_then(|a| a.as_socket()) {
            Some(a) => a,
            None => return,
        },
    };
    let now = w.now();
    let Some(target) = w.schedule(&key, Protocol::Tcp, peer, local, &[], now) else {
        // No real server (or a deleted one without expire_nodest_conn):
        // the kernel answers port unreachable; a proxy can only reset.
        sock::reset(client);
        return;
    };
    let tracked = Rc::new(Tracked::new(Protocol::Tcp, Some(target.id), now));
    let _reg = Registration {
        registry: &w.registry,
        key: w.registry.insert(tracked.clone()),
    };

    let source = target.addressing.transparent.then_some(peer);
    let header = proxy_protocol::header(
        target.addressing.proxy_protocol,
        peer,
        local,
        Transport::Stream,
    );
    let transparent = target.addressing.transparent;
    // The ring gives a cleanly finished connection's real-server socket
    // back for reuse; the readiness relay does not.
    let spare = w
        .ring
        .as_ref()
        .and_then(|_| w.spares.take(target.dest, transparent));
    let opened = w
        .relay
        .with_scratch(|buf| open(&client, header.as_deref(), buf, target.dest, source, spare));
    let opening = match opened {
        Ok(o) => o,
        Err(OpenError::Client(e)) => {
            tracing::trace!(client = %peer, "client side failed: {e}");
            w.report(&tracked, &[ProxyEvent::ClientReset, ProxyEvent::Closed]);
            sock::reset(client);
            return;
        }
        Err(OpenError::Server(e)) => {
            if sock::is_resource_exhaustion(&e) {
                w.warn_exhausted("connect to real server", &e);
            }
            tracing::debug!(rs = %target.dest, "connect failed: {e}");
            w.report(&tracked, &[ProxyEvent::ServerReset, ProxyEvent::Closed]);
            sock::reset(client);
            return;
        }
    };
    if let Some(ring) = w.ring.clone() {
        let ends = (peer, target.dest, transparent);
        return serve_ring(&w, &ring, &tracked, ends, client, opening).await;
    }
    let streams = TcpStream::from_std(std::net::TcpStream::from(client)).and_then(|c| {
        TcpStream::from_std(std::net::TcpStream::from(opening.server)).map(|s| (c, s))
    });
    let (client, server) = match streams {
        Ok(cs) => cs,
        Err(e) => {
            // The sockets are closed (dropped) with the error.
            tracing::debug!("cannot register sockets: {e}");
            w.report(&tracked, &[ProxyEvent::ServerReset, ProxyEvent::Closed]);
            return;
        }
    };
    if !opening.connected {
        let up = tokio::select! {
            r = tokio::time::timeout(w.shared.connect_timeout, connected(&server)) => match r {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    tracing::debug!(rs = %target.dest, "connect failed: {e}");
                    false
                }
                Err(_) => {
                    tracing::debug!(rs = %target.dest, "connect timed out");
                    false
                }
            },
            _ = tracked.cancelled() => false,
        };
        if !up {
            w.report(&tracked, &[ProxyEvent::ServerReset, ProxyEvent::Closed]);
            sock::reset(client);
            sock::reset(server);
            return;
        }
    }
    if !w.report(&tracked, &[ProxyEvent::Established]) {
        sock::reset(client);
        sock::reset(server);
        return;
    }
    if opening.first_read > 0 {
        tracked.count_in(opening.first_read);
    }

    let mut relay = Relay::new(client, server, &w.relay, &tracked);
    relay.prime(opening.unsent, opening.client_eof);
    relay_events(&w, &tracked, peer, target.dest, relay).await;
}

/// The side of a relayed connection that failed.
enum Side {
    Client(SocketAddr),
    RealServer(SocketAddr),
}

/// Logs a failed side and reports its reset and the close to the table.
fn report_failure(w: &Worker, tracked: &Tracked, side: Side, e: &io::Error) {
    match side {
        Side::Client(peer) => {
            tracing::trace!(client = %peer, "client side failed: {e}");
            w.report(tracked, &[ProxyEvent::ClientReset, ProxyEvent::Closed]);
        }
        Side::RealServer(dest) => {
            tracing::trace!(rs = %dest, "real-server side failed: {e}");
            w.report(tracked, &[ProxyEvent::ServerReset, ProxyEvent::Closed]);
        }
    }
}

/// Relays with the readiness relay until both sides are done, reporting
/// every event to the connection table, then closes (or resets) both sockets.
async fn relay_events(
    w: &Worker,
    tracked: &Tracked,
    peer: SocketAddr,
    dest: SocketAddr,
    mut relay: Relay<'_>,
) {
    let end = loop {
        let ev = std::future::poll_fn(|cx| {
            if tracked.poll_cancelled(cx).is_ready() {
                return std::task::Poll::Ready(None);
            }
            relay.poll_event(cx).map(Some)
        })
        .await;
        let Some(ev) = ev else {
            break End::Cancelled;
        };
        match ev {
            Event::ClientFin | Event::ServerFin => {
                let fin = match ev {
                    Event::ClientFin => ProxyEvent::ClientFin,
                    _ => ProxyEvent::ServerFin,
                };
                if relay.finished() {
                    w.report(tracked, &[fin, ProxyEvent::Closed]);
                    break End::Done;
                }
                w.report(tracked, &[fin]);
            }
            Event::ClientReset(e) => {
                report_failure(w, tracked, Side::Client(peer), &e);
                break End::Aborted;
            }
            Event::ServerReset(e) => {
                report_failure(w, tracked, Side::RealServer(dest), &e);
                break End::Aborted;
            }
        }
    };
    relay.release();
    let Relay { client, server, .. } = relay;
    match end {
        End::Done => {}
        End::Aborted => {
            sock::reset(client);
            sock::reset(server);
        }
        End::Cancelled => {
            w.report(tracked, &[ProxyEvent::Closed]);
            sock::reset(client);
            sock::reset(server);
        }
    }
}

/// Relays through the worker's io_uring: connection completion, data and
/// ends of stream are handled by the ring; this task reports the events to
/// the connection table and, when a direction turns bulk, hands both
/// sockets to the readiness relay (which splices).
async fn serve_ring(
    w: &Worker,
    ring: &Ring,
    tracked: &Rc<Tracked>,
    (peer, dest, transparent): (SocketAddr, SocketAddr, bool),
    client: Socket,
    opening: Opening,
) {
    let server = opening.server;
    let auto_bulk = w.relay.method == RelayMethod::Auto;
    let slot = ring.start(RelayStart {
        client,
        server,
        tracked: tracked.clone(),
        unsent: opening.unsent,
        client_eof: opening.client_eof,
        connected: opening.connected,
        auto_bulk,
    });
    let mut established = opening.connected;
    if established {
        if !w.report(tracked, &[ProxyEvent::Established]) {
            ring.reset(ring.stop(slot, false).await.1);
            return;
        }
        if opening.first_read > 0 {
            tracked.count_in(opening.first_read);
        }
    }
    let connect_deadline = tokio::time::Instant::now() + w.shared.connect_timeout;
    let end = loop {
        let ev = std::future::poll_fn(|cx| {
            if tracked.poll_cancelled(cx).is_ready() {
                return std::task::Poll::Ready(None);
            }
            ring.poll_event(slot, cx).map(Some)
        });
        let ev = if established {
            ev.await
        } else {
            match tokio::time::timeout_at(connect_deadline, ev).await {
                Ok(ev) => ev,
                Err(_) => {
                    tracing::debug!(rs = %dest, "connect timed out");
                    Some(RingEvent::ConnectFailed(io::ErrorKind::TimedOut.into()))
                }
            }
        };
        let Some(ev) = ev else {
            break End::Cancelled;
        };
        match ev {
            RingEvent::Connected => {
                established = true;
                if !w.report(tracked, &[ProxyEvent::Established]) {
                    break End::Cancelled;
                }
                if opening.first_read > 0 {
                    tracked.count_in(opening.first_read);
                }
                ring.relay(slot);
            }
            RingEvent::ConnectFailed(e) => {
                tracing::debug!(rs = %dest, "connect failed: {e}");
                let (_, sockets) = ring.stop(slot, false).await;
                w.report(tracked, &[ProxyEvent::ServerReset, ProxyEvent::Closed]);
                ring.reset(sockets);
                return;
            }
            RingEvent::ClientFin | RingEvent::ServerFin => {
                let fin = match ev {
                    RingEvent::ClientFin => ProxyEvent::ClientFin,
                    _ => ProxyEvent::ServerFin,
                };
                if ring.finished(slot) {
                    let other = match ring.next_fin(slot) {
                        Some(RingEvent::ClientFin) => Some(ProxyEvent::ClientFin),
                        Some(_) => Some(ProxyEvent::ServerFin),
                        None => None,
                    };
                    let (_, sockets) = ring.stop(slot, true).await;
                    match other {
                        Some(o) => w.report(tracked, &[fin, o, ProxyEvent::Closed]),
                        None => w.report(tracked, &[fin, ProxyEvent::Closed]),
                    };
                    match sockets {
                        Sockets::Fds(client, server) if !transparent => {
                            ring.close_socket(client);
                            if let Err(s) = w.spares.keep(dest, server) {
                                ring.close_socket(s);
                            }
                        }
                        other => ring.close(other),
                    }
                    return;
                }
                w.report(tracked, &[fin]);
            }
            RingEvent::ClientReset(e) => {
                report_failure(w, tracked, Side::Client(peer), &e);
                break End::Aborted;
            }
            RingEvent::ServerReset(e) => {
                report_failure(w, tracked, Side::RealServer(dest), &e);
                break End::Aborted;
            }
            RingEvent::Bulk => {
                // The hand-over waits for the sends in flight, which a
                // receiver that stopped reading can hold up: the entry's
                // death or the idle timeout still ends the connection.
                let (q, sockets) = tokio::select! {
                    q = ring.stop(slot, true) => q,
                    _ = tracked.cancelled() => break End::Cancelled,
                };
                let Sockets::Fds(client, server) = sockets else {
                    unreachable!("direct descriptors do not turn bulk");
                };
                let streams =
                    TcpStream::from_std(std::net::TcpStream::from(client)).and_then(|c| {
                        TcpStream::from_std(std::net::TcpStream::from(server)).map(|s| (c, s))
                    });
                let (client, server) = match streams {
                    Ok(cs) => cs,
                    Err(e) => {
                        tracing::debug!("cannot register sockets: {e}");
                        w.report(tracked, &[ProxyEvent::ServerReset, ProxyEvent::Closed]);
                        return;
                    }
                };
                let mut relay = Relay::new(client, server, &w.relay, tracked);
                relay.resume(q.done, q.bulk);
                relay_events(w, tracked, peer, dest, relay).await;
                return;
            }
        }
    };
    let (_, sockets) = ring.stop(slot, false).await;
    if matches!(end, End::Cancelled) {
        w.report(tracked, &[ProxyEvent::Closed]);
    }
    ring.reset(sockets);
}
