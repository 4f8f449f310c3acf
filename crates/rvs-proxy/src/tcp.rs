//! TCP services: accepting clients, scheduling them through the connection
//! table, connecting to the chosen real server, and relaying until both
//! sides are done, with every life event reported to the table so that
//! `-L -n` and `-L -c` show the truth.

use crate::proxy_protocol::{self, Transport};
use crate::relay::{Event, Relay};
use crate::sock;
use crate::track::{Registration, Tracked};
use crate::worker::Worker;
use rvs_conn::ProxyEvent;
use rvs_core::{Protocol, ServiceKey};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Accepts clients of one service on this worker's listener, forever.
/// Running out of descriptors is logged (once a second) and waited out.
pub(crate) async fn accept_loop(w: Rc<Worker>, key: ServiceKey, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::task::spawn_local(serve(w.clone(), key, stream, peer));
            }
            Err(e) if sock::is_resource_exhaustion(&e) => {
                w.warn_exhausted(&format!("{}: accept", crate::service_name(&key)), &e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                tracing::debug!("{}: accept: {e}", crate::service_name(&key));
                tokio::task::yield_now().await;
            }
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

async fn serve(w: Rc<Worker>, key: ServiceKey, client: TcpStream, peer: SocketAddr) {
    // The virtual address: the service's own, unless the socket may have
    // received connections for other addresses (wildcard, TPROXY).
    let local = match key {
        ServiceKey::Addr { addr, port, .. } if port != 0 && !addr.is_unspecified() => {
            SocketAddr::new(addr, port)
        }
        _ => match client.local_addr() {
            Ok(a) => a,
            Err(_) => return,
        },
    };
    let _ = client.set_nodelay(true);
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
    let connected = tokio::select! {
        r = tokio::time::timeout(w.shared.connect_timeout, sock::connect(target.dest, source)) => match r {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                if sock::is_resource_exhaustion(&e) {
                    w.warn_exhausted("connect to real server", &e);
                }
                tracing::debug!(rs = %target.dest, "connect failed: {e}");
                None
            }
            Err(_) => {
                tracing::debug!(rs = %target.dest, "connect timed out");
                None
            }
        },
        _ = tracked.cancelled() => None,
    };
    let Some(mut server) = connected else {
        w.report(&tracked, &[ProxyEvent::ServerReset, ProxyEvent::Closed]);
        sock::reset(client);
        return;
    };
    if let Some(h) = proxy_protocol::header(
        target.addressing.proxy_protocol,
        peer,
        local,
        Transport::Stream,
    ) {
        if server.write_all(&h).await.is_err() {
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

    let mut relay = Relay::new(client, server, &w.relay, &tracked);
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
                    w.report(&tracked, &[fin, ProxyEvent::Closed]);
                    break End::Done;
                }
                w.report(&tracked, &[fin]);
            }
            Event::ClientReset(e) => {
                tracing::trace!(client = %peer, "client side failed: {e}");
                w.report(&tracked, &[ProxyEvent::ClientReset, ProxyEvent::Closed]);
                break End::Aborted;
            }
            Event::ServerReset(e) => {
                tracing::trace!(rs = %target.dest, "real-server side failed: {e}");
                w.report(&tracked, &[ProxyEvent::ServerReset, ProxyEvent::Closed]);
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
            w.report(&tracked, &[ProxyEvent::Closed]);
            sock::reset(client);
            sock::reset(server);
        }
    }
}
