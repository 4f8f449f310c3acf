//! The connection-sync daemons' sockets (`rvsadm --start-daemon
//! master|backup`, Linux's `ip_vs_sync.c` threads): one thread runs every
//! daemon the director lists, with the protocol logic of `rvs-sync`.
//!
//! The master sends from the interface's IPv4 address (multicast loop off,
//! the daemon's TTL) to the group and port (224.0.0.81:8848 by default),
//! or with `--sync-peer` to each peer by unicast. The backup binds the
//! group and port on the interface and joins the group (with peers: the
//! port on every address). Entries reach the master's [`Sender`] through a
//! periodic scan of the connection table (the proxy engine reports no
//! packets); the xdp engine feeds it from its tick instead ([`attach_xdp`],
//! which sets [`SyncDaemons::packet_fed`]) and gets the entries the backup
//! installs written into its BPF map. With VRRP instances the master
//! sends only while this director is VRRP MASTER
//! ([`crate::failover::sends_sync`]). A backup that starts asks for the
//! master's whole table three times a second apart (stopping once records
//! arrive); a master answers a request with [`Sender::resend_all`], at
//! most once a second. See docs/failover.md.

use crate::server::SharedDirector;
use rvs_core::Time;
use rvs_ctl::{DaemonConfig, Request, Response, SyncRole};
use rvs_sync::{decode, table_request, Received, Receiver, Sender, SyncParams};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The master's sender while a master daemon runs. Lock order: the
/// director, then this.
pub type SharedSender = Arc<Mutex<Option<Sender>>>;

/// How often the master scans the table for changes.
const SCAN_PERIOD: Time = 1000;
/// How long a receive waits before the loop does its timed work.
const POLL: Duration = Duration::from_millis(50);
/// Table requests a starting backup sends, a second apart.
const REQUESTS: u32 = 3;

/// The running sync daemons of this rvsd.
pub struct SyncDaemons {
    director: SharedDirector,
    epoch: Instant,
    peers: Vec<IpAddr>,
    running: Option<Running>,
    pub sender: SharedSender,
    /// Set by a packet engine that calls `Sender::conn_in` itself: the
    /// periodic scan is then skipped.
    pub packet_fed: Arc<AtomicBool>,
}

struct Running {
    configs: Vec<DaemonConfig>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// This process's sync daemons. Lock order: the control state, this, the
/// director, the sender.
static DAEMONS: Mutex<Option<SyncDaemons>> = Mutex::new(None);

/// Sets up the sync daemons of this rvsd and starts those the director
/// lists (restored rules).
pub fn init(director: SharedDirector, epoch: Instant, peers: Vec<IpAddr>) {
    let mut d = SyncDaemons::new(director, epoch, peers);
    d.reconcile();
    *lock(&DAEMONS) = Some(d);
}

/// Follows the director's daemon list after a control request.
pub fn reconcile() {
    if let Some(d) = lock(&DAEMONS).as_mut() {
        d.reconcile();
    }
}

/// For a packet engine: the master's sender (call `Sender::conn_in` with
/// it under the director lock) and the flag that turns the periodic scan
/// off. `None` before [`init`].
pub fn sender() -> Option<(SharedSender, Arc<AtomicBool>)> {
    lock(&DAEMONS)
        .as_ref()
        .map(|d| (d.sender.clone(), d.packet_fed.clone()))
}

/// The xdp engine, when it runs: synced entries are written into its map.
/// Taken alone.
static ENGINE: Mutex<Option<rvs_xdp::SyncHandle>> = Mutex::new(None);

/// Connects the xdp engine to the sync daemons (call after [`init`]): its
/// tick feeds the master's sender (the periodic scan is turned off), gated
/// by [`crate::failover::sends_sync`], and every entry the backup daemon
/// installs is written into its BPF connection map.
pub fn attach_xdp(h: rvs_xdp::SyncHandle) {
    if let Some((sender, packet_fed)) = sender() {
        packet_fed.store(true, Ordering::Relaxed);
        h.set_link(Some(rvs_xdp::SyncLink {
            sender,
            sending: Arc::new(crate::failover::sends_sync),
        }));
    }
    *lock(&ENGINE) = Some(h);
}

impl SyncDaemons {
    pub fn new(director: SharedDirector, epoch: Instant, peers: Vec<IpAddr>) -> SyncDaemons {
        SyncDaemons {
            director,
            epoch,
            peers,
            running: None,
            sender: Arc::new(Mutex::new(None)),
            packet_fed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts, restarts or stops the sync thread so that it runs exactly
    /// the daemons the director lists.
    pub fn reconcile(&mut self) {
        let wanted = match lock(&self.director).apply(&Request::GetDaemons, 0) {
            Response::Daemons(d) => d,
            _ => Vec::new(),
        };
        if self.running.as_ref().map(|r| &r.configs) == Some(&wanted)
            || (self.running.is_none() && wanted.is_empty())
        {
            return;
        }
        if let Some(r) = self.running.take() {
            r.stop.store(true, Ordering::Relaxed);
            let _ = r.thread.join();
            *lock(&self.sender) = None;
            tracing::info!("sync daemons stopped");
        }
        if wanted.is_empty() {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = match Worker::open(
            &wanted,
            &self.peers,
            self.director.clone(),
            self.sender.clone(),
            self.packet_fed.clone(),
            self.epoch,
        ) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("cannot start the sync daemon: {e}");
                return;
            }
        };
        let s = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("rvsd-sync".into())
            .spawn(move || worker.run(&s));
        match spawned {
            Ok(thread) => {
                for c in &wanted {
                    tracing::info!(
                        role = ?c.role, ifn = %c.mcast_ifn, syncid = c.syncid,
                        group = ?c.mcast_group, port = c.mcast_port, peers = ?self.peers,
                        "sync daemon started"
                    );
                }
                self.running = Some(Running {
                    configs: wanted,
                    stop,
                    thread,
                });
            }
            Err(e) => tracing::error!("cannot start the sync thread: {e}"),
        }
    }
}

/// One role's sockets.
struct Endpoint {
    cfg: DaemonConfig,
    send: UdpSocket,
    dests: Vec<SocketAddr>,
    /// Index into `Worker::recv`.
    recv: usize,
}

struct Worker {
    master: Option<Endpoint>,
    backup: Option<(Endpoint, Receiver)>,
    /// Receive sockets, one per (interface, group, port).
    recv: Vec<((String, IpAddr, u16), UdpSocket)>,
    director: SharedDirector,
    sender: SharedSender,
    packet_fed: Arc<AtomicBool>,
    epoch: Instant,
}

/// The first IPv4 address of interface `ifn`.
fn iface_v4(ifn: &str) -> Result<Ipv4Addr, String> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| format!("getifaddrs: {e}"))?;
    for a in addrs {
        if a.interface_name != ifn {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            return Ok(sin.ip());
        }
    }
    Err(format!("interface {ifn} has no IPv4 address"))
}

fn ifindex(ifn: &str) -> Result<u32, String> {
    nix::net::if_::if_nametoindex(ifn).map_err(|e| format!("interface {ifn}: {e}"))
}

fn group_of(c: &DaemonConfig) -> IpAddr {
    c.mcast_group.unwrap_or(IpAddr::V4(rvs_sync::DEFAULT_GROUP))
}

fn port_of(c: &DaemonConfig) -> u16 {
    match c.mcast_port {
        0 => rvs_sync::DEFAULT_PORT,
        p => p,
    }
}

/// The sending socket of a daemon (`make_send_sock`).
fn send_socket(c: &DaemonConfig, peers: &[IpAddr]) -> Result<(UdpSocket, Vec<SocketAddr>), String> {
    let group = group_of(c);
    let port = port_of(c);
    let err = |what: &str, e: std::io::Error| format!("{what} on {}: {e}", c.mcast_ifn);
    let ttl = c.mcast_ttl.max(1) as u32;
    let s = match group {
        IpAddr::V4(_) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
                .map_err(|e| err("socket", e))?;
            let addr = iface_v4(&c.mcast_ifn)?;
            s.set_multicast_if_v4(&addr)
                .map_err(|e| err("IP_MULTICAST_IF", e))?;
            s.set_multicast_loop_v4(false)
                .map_err(|e| err("IP_MULTICAST_LOOP", e))?;
            s.set_multicast_ttl_v4(ttl)
                .map_err(|e| err("IP_MULTICAST_TTL", e))?;
            s.set_ttl_v4(ttl).map_err(|e| err("IP_TTL", e))?;
            s.bind(&SocketAddr::new(IpAddr::V4(addr), 0).into())
                .map_err(|e| err("bind", e))?;
            s
        }
        IpAddr::V6(_) => {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
                .map_err(|e| err("socket", e))?;
            let idx = ifindex(&c.mcast_ifn)?;
            s.set_multicast_if_v6(idx)
                .map_err(|e| err("IPV6_MULTICAST_IF", e))?;
            s.set_multicast_loop_v6(false)
                .map_err(|e| err("IPV6_MULTICAST_LOOP", e))?;
            s.set_multicast_hops_v6(ttl)
                .map_err(|e| err("IPV6_MULTICAST_HOPS", e))?;
            s
        }
    };
    let dests = if peers.is_empty() {
        vec![SocketAddr::new(group, port)]
    } else {
        peers.iter().map(|p| SocketAddr::new(*p, port)).collect()
    };
    Ok((s.into(), dests))
}

/// The receiving socket of a daemon (`make_receive_sock`).
fn recv_socket(c: &DaemonConfig, unicast: bool) -> Result<UdpSocket, String> {
    let group = group_of(c);
    let port = port_of(c);
    let err = |what: &str, e: std::io::Error| format!("{what} on {}: {e}", c.mcast_ifn);
    let domain = if group.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| err("socket", e))?;
    s.set_reuse_address(true)
        .map_err(|e| err("SO_REUSEADDR", e))?;
    if let Err(e) = s.bind_device(Some(c.mcast_ifn.as_bytes())) {
        // Needs CAP_NET_RAW; the group membership still names the interface.
        tracing::debug!("SO_BINDTODEVICE {}: {e}", c.mcast_ifn);
    }
    let bind_addr = match (unicast, group) {
        (false, g) => g,
        (true, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (true, IpAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    s.bind(&SocketAddr::new(bind_addr, port).into())
        .map_err(|e| err(&format!("bind {bind_addr}:{port}"), e))?;
    if !unicast {
        match group {
            IpAddr::V4(g) => {
                let a = iface_v4(&c.mcast_ifn)?;
                s.join_multicast_v4(&g, &a)
                    .map_err(|e| err("IP_ADD_MEMBERSHIP", e))?;
            }
            IpAddr::V6(g) => {
                s.join_multicast_v6(&g, ifindex(&c.mcast_ifn)?)
                    .map_err(|e| err("IPV6_ADD_MEMBERSHIP", e))?;
            }
        }
    }
    let u: UdpSocket = s.into();
    u.set_read_timeout(Some(POLL))
        .map_err(|e| err("SO_RCVTIMEO", e))?;
    Ok(u)
}

impl Worker {
    fn open(
        cfgs: &[DaemonConfig],
        peers: &[IpAddr],
        director: SharedDirector,
        sender: SharedSender,
        packet_fed: Arc<AtomicBool>,
        epoch: Instant,
    ) -> Result<Worker, String> {
        let mut recv: Vec<((String, IpAddr, u16), UdpSocket)> = Vec::new();
        let mut endpoint = |c: &DaemonConfig| -> Result<Endpoint, String> {
            let key = (c.mcast_ifn.clone(), group_of(c), port_of(c));
            let i = match recv.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    recv.push((key, recv_socket(c, !peers.is_empty())?));
                    recv.len() - 1
                }
            };
            let (send, dests) = send_socket(c, peers)?;
            Ok(Endpoint {
                cfg: c.clone(),
                send,
                dests,
                recv: i,
            })
        };
        let master = match cfgs.iter().find(|c| c.role == SyncRole::Master) {
            Some(c) => Some(endpoint(c)?),
            None => None,
        };
        let backup = match cfgs.iter().find(|c| c.role == SyncRole::Backup) {
            Some(c) => {
                let threshold = SyncParams::default().sync_threshold;
                Some((endpoint(c)?, Receiver::new(c.syncid as u8, threshold)))
            }
            None => None,
        };
        if let Some(m) = &master {
            *lock(&sender) = Some(Sender::new(
                m.cfg.syncid as u8,
                m.cfg.sync_maxlen,
                SyncParams::default(),
            ));
        }
        Ok(Worker {
            master,
            backup,
            recv,
            director,
            sender,
            packet_fed,
            epoch,
        })
    }

    fn now(&self) -> Time {
        self.epoch.elapsed().as_millis() as Time
    }

    fn run(&mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 65536];
        let mut next_scan: Time = 0;
        let mut last_resend: Option<Time> = None;
        let mut requests_sent = 0;
        let mut next_request: Time = 0;
        let mut got_records = false;
        while !stop.load(Ordering::Relaxed) {
            for i in 0..self.recv.len() {
                let got = self.recv[i].1.recv_from(&mut buf);
                let Ok((n, from)) = got else { continue };
                let now = self.now();
                self.datagram(i, &buf[..n], from, now, &mut last_resend, &mut got_records);
            }
            let now = self.now();
            if self.master.is_some() {
                if now >= next_scan {
                    next_scan = now + SCAN_PERIOD;
                    if !self.packet_fed.load(Ordering::Relaxed) && crate::failover::sends_sync() {
                        let mut d = lock(&self.director);
                        let (_, conns) = d.tables_mut();
                        if let Some(s) = lock(&self.sender).as_mut() {
                            s.scan(conns, now);
                        }
                    }
                }
                self.send_due(now);
            }
            if let Some((b, _)) = &self.backup {
                if !got_records && requests_sent < REQUESTS && now >= next_request {
                    requests_sent += 1;
                    next_request = now + 1000;
                    let req = table_request(b.cfg.syncid as u8);
                    for d in &b.dests {
                        if let Err(e) = b.send.send_to(&req, d) {
                            tracing::debug!("table request to {d}: {e}");
                        }
                    }
                }
            }
        }
    }

    /// Sends what the master has ready.
    fn send_due(&mut self, now: Time) {
        let Some(m) = &self.master else { return };
        loop {
            let Some(d) = lock(&self.sender)
                .as_mut()
                .and_then(|s| s.next_datagram(now))
            else {
                return;
            };
            for to in &m.dests {
                if let Err(e) = m.send.send_to(&d, to) {
                    tracing::warn!("sync message to {to}: {e}");
                }
            }
        }
    }

    fn datagram(
        &mut self,
        sock: usize,
        d: &[u8],
        from: SocketAddr,
        now: Time,
        last_resend: &mut Option<Time>,
        got_records: &mut bool,
    ) {
        let Ok(msg) = decode(d) else {
            if let Some((_, rx)) = &mut self.backup {
                rx.stats.malformed += 1;
            }
            tracing::debug!("malformed sync datagram from {from}");
            return;
        };
        if msg.is_table_request() {
            let Some(m) = &self.master else { return };
            if m.recv != sock || (m.cfg.syncid != 0 && msg.syncid as u32 != m.cfg.syncid) {
                return;
            }
            // A VRRP backup's table is a copy: the VRRP master answers.
            if !crate::failover::sends_sync() {
                return;
            }
            if last_resend.is_some_and(|t| now < t + 1000) {
                return;
            }
            *last_resend = Some(now);
            let n = {
                let d = lock(&self.director);
                let mut s = lock(&self.sender);
                s.as_mut().map_or(0, |s| s.resend_all(d.conns(), now))
            };
            tracing::info!(from = %from, entries = n, "table requested: sending the whole table");
            self.send_due(now);
            return;
        }
        let Some((b, rx)) = &mut self.backup else {
            return;
        };
        if b.recv != sock {
            return;
        }
        let engine = lock(&ENGINE).clone();
        let mut installed = Vec::new();
        let (r, entries) = {
            let mut dir = lock(&self.director);
            let (services, conns) = dir.tables_mut();
            let r = rx.receive_into(d, now, services, conns, &mut installed);
            let entries = match &engine {
                Some(_) => rvs_xdp::synced_entries(conns, &installed),
                None => Vec::new(),
            };
            (r, entries)
        };
        // Outside the director lock: the engine takes its own state first.
        if let Some(e) = &engine {
            e.install(&entries);
        }
        match r {
            Received::Records(t) => {
                *got_records = true;
                tracing::debug!(from = %from, ?t, "sync message");
            }
            Received::OtherSyncid(id) => {
                tracing::debug!(from = %from, syncid = id, "other sync group")
            }
            Received::Malformed(e) => tracing::debug!(from = %from, "malformed sync message: {e}"),
            Received::TableRequest { .. } => {}
        }
    }
}
