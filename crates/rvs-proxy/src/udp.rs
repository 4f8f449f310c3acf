//! UDP services. Each client address:port is a flow with its own socket
//! towards the real servers; replies go back to the client from the
//! service's socket, so they come from the virtual address and port.
//!
//! A flow is scheduled by its first datagram and lives as long as its
//! connection-table entry (the UDP timeout, `--set udp`, re-armed by the
//! traffic the worker reports). With one-packet scheduling (`-o`) the table
//! frees each entry at once, so every datagram is scheduled on its own and
//! the flow only remembers where replies may come from; it ends after the
//! UDP timeout without traffic.

use crate::proxy_protocol::{self, Transport};
use crate::sock;
use crate::track::{Registration, Tracked};
use crate::worker::{Target, Worker};
use rvs_core::{DestId, Protocol, ServiceKey};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Datagrams handled per wake-up before yielding to other tasks.
const BUDGET: usize = 64;

struct Flow {
    tracked: Rc<Tracked>,
    upstream: UdpSocket,
    /// The real server of a flow with an entry.
    dest: Cell<Option<SocketAddr>>,
    /// PROXY v2 header prepended to each datagram towards `dest`.
    header: RefCell<Option<Vec<u8>>>,
    one_packet: Cell<bool>,
    /// Real servers this flow sent to: replies are accepted only from them.
    known: RefCell<Vec<(SocketAddr, DestId)>>,
}

impl Flow {
    fn accepts(&self, from: SocketAddr) -> Option<DestId> {
        self.known
            .borrow()
            .iter()
            .find(|(a, _)| *a == from)
            .map(|&(_, d)| d)
    }

    fn send(&self, data: &[u8], to: SocketAddr, header: Option<&[u8]>) {
        let r = match header {
            None => send_now(&self.upstream, data, to),
            Some(h) => {
                let mut v = Vec::with_capacity(h.len() + data.len());
                v.extend_from_slice(h);
                v.extend_from_slice(data);
                send_now(&self.upstream, &v, to)
            }
        };
        // A full socket buffer drops the datagram, as a congested link would.
        if let Err(e) = r {
            tracing::trace!(rs = %to, "udp send: {e}");
        }
    }
}

/// Sends a datagram now, without waiting for the runtime to have seen the
/// socket writable (a new socket has not been polled yet); a full buffer
/// (EAGAIN) drops the datagram, as a congested link would.
fn send_now(sock: &UdpSocket, data: &[u8], to: SocketAddr) -> io::Result<usize> {
    socket2::SockRef::from(sock).send_to(data, &to.into())
}

type Flows = Rc<RefCell<HashMap<SocketAddr, Rc<Flow>>>>;

/// Ends every flow of a service socket when its task ends.
struct CancelFlows(Flows);

impl Drop for CancelFlows {
    fn drop(&mut self) {
        for f in self.0.borrow().values() {
            f.tracked.cancel();
        }
    }
}

/// Serves one UDP service socket of this worker.
pub(crate) async fn serve(w: Rc<Worker>, key: ServiceKey, sock: UdpSocket) {
    let sock = Rc::new(sock);
    let Ok(local) = sock.local_addr() else {
        return;
    };
    let flows: Flows = Rc::default();
    let _guard = CancelFlows(flows.clone());
    loop {
        if let Err(e) = sock.readable().await {
            tracing::warn!("{}: {e}", crate::service_name(&key));
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for _ in 0..BUDGET {
            let r = w.relay.with_scratch(|buf| {
                let (n, peer) = sock.try_recv_from(buf)?;
                datagram(&w, &key, &sock, local, &flows, peer, &buf[..n]);
                Ok::<(), io::Error>(())
            });
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if sock::is_resource_exhaustion(&e) => {
                    w.warn_exhausted(&format!("{}: receive", crate::service_name(&key)), &e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
                Err(e) => {
                    tracing::debug!("{}: receive: {e}", crate::service_name(&key));
                    break;
                }
            }
        }
        tokio::task::yield_now().await;
    }
}

fn datagram(
    w: &Rc<Worker>,
    key: &ServiceKey,
    sock: &Rc<UdpSocket>,
    local: SocketAddr,
    flows: &Flows,
    peer: SocketAddr,
    data: &[u8],
) {
    let existing = flows.borrow().get(&peer).cloned();
    let existing = existing.filter(|f| !f.tracked.is_cancelled());
    if let Some(f) = &existing {
        if !f.one_packet.get() {
            if let Some(dest) = f.dest.get() {
                f.tracked.count_in(data.len());
                f.send(data, dest, f.header.borrow().as_deref());
                return;
            }
        }
    }
    // A new flow, or a one-packet flow: schedule this datagram (the table
    // counts it).
    let now = w.now();
    let Some(t) = w.schedule(key, Protocol::Udp, peer, local, data, now) else {
        return;
    };
    let flow = match existing {
        Some(f) => f,
        None => match new_flow(w, key, sock, flows, peer, &t) {
            Ok(f) => f,
            Err(e) => {
                if sock::is_resource_exhaustion(&e) {
                    w.warn_exhausted("udp flow socket", &e);
                } else {
                    tracing::debug!(client = %peer, "udp flow: {e}");
                }
                return;
            }
        },
    };
    let header = proxy_protocol::header(
        t.addressing.proxy_protocol,
        peer,
        local,
        Transport::Datagram,
    );
    if t.one_packet {
        flow.one_packet.set(true);
        flow.tracked.conn.set(None);
        flow.tracked.touch();
    } else {
        flow.one_packet.set(false);
        flow.tracked.conn.set(Some(t.id));
        flow.dest.set(Some(t.dest));
        *flow.header.borrow_mut() = header.clone();
    }
    {
        let mut known = flow.known.borrow_mut();
        if !known.iter().any(|(a, _)| *a == t.dest) {
            known.push((t.dest, t.dest_id));
        }
    }
    flow.send(data, t.dest, header.as_deref());
}

fn new_flow(
    w: &Rc<Worker>,
    key: &ServiceKey,
    sock: &Rc<UdpSocket>,
    flows: &Flows,
    peer: SocketAddr,
    t: &Target,
) -> io::Result<Rc<Flow>> {
    let source = t.addressing.transparent.then_some(peer);
    let upstream = UdpSocket::from_std(sock::udp_upstream(&t.dest, source)?)?;
    let tracked = Rc::new(Tracked::new(
        Protocol::Udp,
        (!t.one_packet).then_some(t.id),
        w.now(),
    ));
    let flow = Rc::new(Flow {
        tracked,
        upstream,
        dest: Cell::new(None),
        header: RefCell::new(None),
        one_packet: Cell::new(t.one_packet),
        known: RefCell::new(Vec::new()),
    });
    flows.borrow_mut().insert(peer, flow.clone());
    tokio::task::spawn_local(replies(
        w.clone(),
        *key,
        sock.clone(),
        flows.clone(),
        flow.clone(),
        peer,
    ));
    Ok(flow)
}

/// Carries a flow's replies back to its client until the flow ends.
async fn replies(
    w: Rc<Worker>,
    key: ServiceKey,
    sock: Rc<UdpSocket>,
    flows: Flows,
    flow: Rc<Flow>,
    peer: SocketAddr,
) {
    let _reg = Registration {
        registry: &w.registry,
        key: w.registry.insert(flow.tracked.clone()),
    };
    loop {
        tokio::select! {
            biased;
            _ = flow.tracked.cancelled() => break,
            r = flow.upstream.readable() => if r.is_err() { break },
        }
        for _ in 0..BUDGET {
            let r = w.relay.with_scratch(|buf| {
                let (n, from) = flow.upstream.try_recv_from(buf)?;
                if let Some(dest) = flow.accepts(from) {
                    if flow.one_packet.get() {
                        flow.tracked.count_ops_out(dest, n);
                    } else {
                        flow.tracked.count_out(n);
                    }
                    if let Err(e) = send_now(&sock, &buf[..n], peer) {
                        tracing::trace!(client = %peer, "udp reply: {e}");
                    }
                }
                Ok::<(), io::Error>(())
            });
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::trace!("{}: flow receive: {e}", crate::service_name(&key));
                    break;
                }
            }
        }
        tokio::task::yield_now().await;
    }
    // Report what is left; the entry itself lives on until it times out.
    w.report(&flow.tracked, &[]);
    let mut f = flows.borrow_mut();
    if f.get(&peer).is_some_and(|g| Rc::ptr_eq(g, &flow)) {
        f.remove(&peer);
    }
}
