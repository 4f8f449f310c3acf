//! One worker thread: a tokio `current_thread` runtime that owns its own
//! listening sockets (one per service, SO_REUSEPORT), the connections and
//! UDP flows they accept, and a maintenance task that reports traffic to
//! the connection table and closes what the table no longer has.
//!
//! Nothing on the byte path is shared with other threads: counters are
//! plain cells of this thread, and the director's lock is taken only to
//! schedule, to report a state change, and once per flush interval.

use crate::config::{ClientAddressing, ProxyOptions, RelayMethod};
use crate::relay::RelayShared;
use crate::track::{Registry, Tracked};
use crate::SharedDirector;
use rvs_conn::conn::CONN_F_ONE_PACKET;
use rvs_conn::{tcp, ConnId, Direction, InVerdict, Packet, ProxyEvent, Transport};
use rvs_core::{DestId, DestStore, Protocol, ServiceKey, Time};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// Settings every worker reads and nobody changes after start.
pub(crate) struct Shared {
    pub director: SharedDirector,
    pub epoch: Instant,
    pub connect_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub flush_interval: Duration,
    pub relay: RelayMethod,
    /// Relay established connections through an io_uring.
    pub io_uring: bool,
    /// Buffers per group of each worker's ring.
    pub io_uring_buffers: u16,
    /// Ring buffers registered, all workers together.
    pub ring_buffers: Arc<std::sync::atomic::AtomicUsize>,
    /// Sockets held as io_uring direct descriptors, all workers together.
    pub direct_sockets: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections and UDP flows being carried, all workers together.
    pub live: Arc<std::sync::atomic::AtomicUsize>,
}

/// What the control side tells a worker.
#[derive(Debug)]
pub(crate) enum Command {
    ListenTcp(ServiceKey, std::net::TcpListener),
    ListenUdp(ServiceKey, std::net::UdpSocket),
    /// Close the service's sockets; established TCP connections continue.
    Unlisten(ServiceKey),
    Options(Arc<ProxyOptions>),
    /// Run a maintenance round now (after a table change).
    Check,
    /// Answer once every command before this one has been carried out.
    Barrier(std::sync::mpsc::Sender<()>),
    Shutdown,
}

/// Where a new connection or datagram goes, as scheduled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub id: ConnId,
    /// The address to connect to (port mapped).
    pub dest: SocketAddr,
    pub dest_id: DestId,
    pub addressing: ClientAddressing,
    /// A one-packet entry: already freed by the table.
    pub one_packet: bool,
}

pub(crate) struct Worker {
    pub shared: Arc<Shared>,
    pub options: RefCell<Arc<ProxyOptions>>,
    pub registry: Registry,
    pub relay: RelayShared,
    /// Real-server sockets of finished connections, to connect again.
    pub spares: crate::sock::Spares,
    /// The worker's io_uring relay, when enabled and available.
    pub ring: Option<Rc<crate::uring::Ring>>,
    /// Per service: the tasks serving its sockets, and its TCP listeners
    /// (shut at once when the service goes, before the tasks are dropped).
    listeners: RefCell<HashMap<ServiceKey, Vec<Listening>>>,
    /// When the last "out of descriptors" warning was logged.
    last_warning: Cell<Option<Instant>>,
}

impl Worker {
    pub fn now(&self) -> Time {
        self.shared.epoch.elapsed().as_millis() as Time
    }

    pub fn director(&self) -> MutexGuard<'_, rvs_director::Director> {
        self.shared
            .director
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Logs at most one warning a second for resource exhaustion.
    pub fn warn_exhausted(&self, what: &str, e: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_warning
            .get()
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.last_warning.set(Some(now));
            tracing::warn!("{what}: {e}; backing off");
        }
    }

    /// Finds the entry of a new connection or flow, or schedules one, as
    /// `ip_vs_in` does: an existing entry for the same client and virtual
    /// address is checked first (port reuse, deleted real servers), then
    /// the service's scheduler runs through the connection table. The
    /// opening packet is processed (TCP: the SYN, which counts as one
    /// incoming packet of 0 bytes; UDP: the datagram). `None`: no real
    /// server (the caller refuses the client).
    pub fn schedule(
        &self,
        key: &ServiceKey,
        proto: Protocol,
        peer: SocketAddr,
        local: SocketAddr,
        payload: &[u8],
        now: Time,
    ) -> Option<Target> {
        let mut d = self.director();
        let (table, conns) = d.tables_mut();
        let new_conn = proto == Protocol::Tcp;
        let mut found = None;
        if let Some(old) = conns.lookup_in(proto, peer.ip(), peer.port(), local.ip(), local.port())
        {
            match conns.check_in(old, new_conn, now, table) {
                InVerdict::Hit(id) => found = Some(id),
                InVerdict::Miss => {}
                InVerdict::Drop => return None,
            }
        }
        let id = match found {
            Some(id) => id,
            None => {
                let (svc, totals) = table.service_and_totals_mut(key)?;
                let pkt = Packet::new(proto, peer.ip(), peer.port(), local.ip(), local.port())
                    .with_payload(payload)
                    .with_mark(key.fwmark());
                conns.schedule(svc, &pkt, now, totals).ok()?
            }
        };
        let (l4, bytes) = match proto {
            Protocol::Tcp => (Transport::Tcp(tcp::SYN), 0),
            _ => (Transport::Udp, payload.len() as u64),
        };
        let info = conns.process(id, Direction::Input, l4, bytes, now, table)?;
        let dest_id = info.dest?;
        let rs = table
            .dest_mut(dest_id)
            .map(|d| SocketAddr::new(d.config.addr, d.config.port))?;
        let addressing = self.options.borrow().for_real_server(key, rs);
        Some(Target {
            id,
            dest: SocketAddr::new(info.daddr, info.dport),
            dest_id,
            addressing,
            one_packet: info.flags & CONN_F_ONE_PACKET != 0,
        })
    }

    /// Reports pending traffic and then `events` for a connection. Returns
    /// whether its entry still exists.
    pub fn report(&self, t: &Tracked, events: &[ProxyEvent]) -> bool {
        let now = self.now();
        let mut d = self.director();
        let (table, conns) = d.tables_mut();
        let mut alive = t.flush(conns, table, now);
        if let Some(id) = t.conn.get() {
            for &ev in events {
                alive = conns.proxy_event(id, ev, now, table).is_some();
            }
        }
        alive
    }

    /// One maintenance round: counts reach the table, due entries expire,
    /// and connections whose entry is gone (or that sat idle too long)
    /// are cancelled.
    pub fn maintenance(&self) {
        let items = self.registry.snapshot();
        if items.is_empty() {
            return;
        }
        let now = self.now();
        let mut dead = Vec::new();
        let udp_timeout;
        {
            let mut d = self.director();
            let (table, conns) = d.tables_mut();
            for t in &items {
                if !t.flush(conns, table, now) {
                    dead.push(t.clone());
                }
            }
            conns.expire(now, table);
            for t in &items {
                if let Some(id) = t.conn.get() {
                    if conns.get(id).is_none() {
                        dead.push(t.clone());
                    }
                }
            }
            udp_timeout = conns.timeouts.udp[rvs_conn::udp::NORMAL as usize];
        }
        for t in dead {
            t.cancel();
        }
        let idle = self.shared.idle_timeout.map(|d| d.as_millis() as Time);
        for t in &items {
            let limit = match (t.conn.get(), t.proto) {
                // One-packet flows have no entry: the UDP timeout is theirs.
                (None, Protocol::Udp) => Some(idle.map_or(udp_timeout, |i| i.min(udp_timeout))),
                _ => idle,
            };
            let idle_for = t.idle_for(now);
            if limit.is_some_and(|l| idle_for >= l) {
                t.cancel();
            }
        }
    }
}

/// One socket of a service, as its worker holds it.
struct Listening {
    task: JoinHandle<()>,
    tcp: Option<Rc<tokio::io::unix::AsyncFd<std::net::TcpListener>>>,
}

impl Listening {
    /// Stops accepting now (a listening socket shut for reading refuses
    /// new connections and resets those not yet accepted), then ends the
    /// task that served it.
    fn close(self) {
        if let Some(l) = &self.tcp {
            let _ = socket2::SockRef::from(l.get_ref()).shutdown(std::net::Shutdown::Read);
        }
        self.task.abort();
    }
}

/// The body of a worker thread.
pub(crate) fn run(
    index: usize,
    shared: Arc<Shared>,
    options: Arc<ProxyOptions>,
    rx: UnboundedReceiver<Command>,
    ready: std::sync::mpsc::Sender<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, "cannot start the worker's runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let relay = RelayShared::new(shared.relay);
    let registry = Registry::new(shared.live.clone());
    // The ring is created inside the runtime: its eventfd registers with
    // this thread's reactor, and the ring accepts submissions only from
    // the thread that created it.
    let ring = if shared.io_uring {
        let _enter = rt.enter();
        match crate::uring::Ring::new(
            shared.io_uring_buffers,
            shared.ring_buffers.clone(),
            shared.direct_sockets.clone(),
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                if index == 0 {
                    tracing::info!("io_uring unavailable ({e}): relaying with epoll");
                }
                None
            }
        }
    } else {
        None
    };
    let _ = ready.send(ring.is_some());
    drop(ready);
    let w = Rc::new(Worker {
        shared,
        options: RefCell::new(options),
        registry,
        relay,
        ring,
        listeners: RefCell::new(HashMap::new()),
        last_warning: Cell::new(None),
        spares: Default::default(),
    });
    local.block_on(&rt, serve(w, rx));
}

async fn serve(w: Rc<Worker>, mut rx: UnboundedReceiver<Command>) {
    let maint = tokio::task::spawn_local(maintain(w.clone()));
    let driver = w
        .ring
        .clone()
        .map(|r| tokio::task::spawn_local(crate::uring::drive(r)));
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::ListenTcp(key, l) => match crate::sys::async_listener(l) {
                Ok(l) => {
                    let l = Rc::new(l);
                    let task = tokio::task::spawn_local(crate::tcp::accept_loop(
                        w.clone(),
                        key,
                        l.clone(),
                    ));
                    w.listeners
                        .borrow_mut()
                        .entry(key)
                        .or_default()
                        .push(Listening { task, tcp: Some(l) });
                }
                Err(e) => tracing::error!(
                    "{}: cannot register listener: {e}",
                    crate::service_name(&key)
                ),
            },
            Command::ListenUdp(key, s) => match tokio::net::UdpSocket::from_std(s) {
                Ok(s) => {
                    let task = tokio::task::spawn_local(crate::udp::serve(w.clone(), key, s));
                    w.listeners
                        .borrow_mut()
                        .entry(key)
                        .or_default()
                        .push(Listening { task, tcp: None });
                }
                Err(e) => {
                    tracing::error!("{}: cannot register socket: {e}", crate::service_name(&key))
                }
            },
            Command::Unlisten(key) => {
                if let Some(ls) = w.listeners.borrow_mut().remove(&key) {
                    for l in ls {
                        l.close();
                    }
                }
            }
            Command::Options(o) => *w.options.borrow_mut() = o,
            Command::Check => w.maintenance(),
            Command::Barrier(ack) => {
                let _ = ack.send(());
            }
            Command::Shutdown => break,
        }
    }
    for (_, ls) in w.listeners.borrow_mut().drain() {
        for l in ls {
            l.close();
        }
    }
    maint.abort();
    // Let every connection report its end to the table before the runtime goes.
    for t in w.registry.snapshot() {
        t.cancel();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while w.registry.len() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(d) = driver {
        d.abort();
    }
}

async fn maintain(w: Rc<Worker>) {
    let mut iv = tokio::time::interval(w.shared.flush_interval);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    iv.tick().await;
    loop {
        iv.tick().await;
        w.maintenance();
    }
}
