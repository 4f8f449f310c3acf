//! The control side of the engine: starting the workers, opening and
//! closing listening sockets as services come and go, and telling which
//! requests the engine can carry.

use crate::config::{EngineConfig, ProxyOptions};
use crate::worker::{self, Command, Shared};
use crate::{service_name, sock, SharedDirector};
use rvs_core::table::ServiceTable;
use rvs_core::{FwdMethod, Protocol, ServiceKey};
use rvs_ctl::Request;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// A service the engine could not (yet) serve; [`Engine::sync`] retries it
/// on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncProblem {
    pub service: ServiceKey,
    pub message: String,
}

impl std::fmt::Display for SyncProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", service_name(&self.service), self.message)
    }
}

struct WorkerHandle {
    tx: UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
}

/// What the engine holds open for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listening {
    /// The local address the sockets are bound to (for TPROXY services,
    /// the port the interception rules must send traffic to).
    addr: SocketAddr,
    tproxy: bool,
}

/// The proxy engine: worker threads that carry every TCP and UDP virtual
/// service of a director. See the crate documentation.
pub struct Engine {
    shared: Arc<Shared>,
    io_uring_workers: usize,
    workers: Vec<WorkerHandle>,
    listening: Mutex<HashMap<ServiceKey, Listening>>,
    backlog: u32,
    privileged: bool,
    options: Mutex<Arc<ProxyOptions>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.workers.len())
            .field("privileged", &self.privileged)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// Starts the worker threads (no service is served until
    /// [`Engine::sync`]). `epoch` is the instant the connection table's
    /// time counts from (`epoch.elapsed()` in ms). Raises the soft limit
    /// on open files to the hard limit. Fails if the options ask for what
    /// this process may not do (transparent mode without privilege).
    pub fn start(
        director: SharedDirector,
        config: EngineConfig,
        epoch: Instant,
    ) -> io::Result<Engine> {
        let privileged = sock::privileged();
        config
            .options
            .check(privileged)
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
        if let Err(e) = crate::sys::raise_fd_limit() {
            tracing::warn!("cannot raise the open-files limit: {e}");
        }
        let n = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let shared = Arc::new(Shared {
            director,
            epoch,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            flush_interval: config.flush_interval,
            relay: config.relay,
            io_uring: config.io_uring && config.relay != crate::config::RelayMethod::Splice,
            io_uring_buffers: config.io_uring_buffers,
            ring_buffers: Arc::default(),
            direct_sockets: Arc::default(),
            live: Arc::default(),
        });
        let options = Arc::new(config.options);
        let mut workers = Vec::with_capacity(n);
        let (ready_tx, ready) = std::sync::mpsc::channel();
        for i in 0..n {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let (s, o, r) = (shared.clone(), options.clone(), ready_tx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("rvs-proxy-{i}"))
                .spawn(move || worker::run(i, s, o, rx, r))?;
            workers.push(WorkerHandle {
                tx,
                thread: Some(thread),
            });
        }
        drop(ready_tx);
        // Each worker says whether its io_uring relay is up (a worker whose
        // runtime failed says nothing).
        let io_uring_workers = ready.iter().filter(|&ring| ring).count();
        Ok(Engine {
            shared,
            io_uring_workers,
            workers,
            listening: Mutex::new(HashMap::new()),
            backlog: config.backlog,
            privileged,
            options: Mutex::new(options),
        })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Workers relaying TCP through io_uring (the others use epoll).
    pub fn io_uring_workers(&self) -> usize {
        self.io_uring_workers
    }

    /// Receive buffers the io_uring relays have registered, all workers
    /// together (they grow while receivers that do not read hold them).
    pub fn io_uring_buffers(&self) -> usize {
        self.shared
            .ring_buffers
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The TCP relay in use: `io_uring`, `epoll`, or `mixed`.
    pub fn relay_name(&self) -> &'static str {
        match self.io_uring_workers {
            0 => "epoll",
            n if n == self.workers.len() => "io_uring",
            _ => "mixed",
        }
    }

    /// Sockets the io_uring relays hold as direct descriptors (outside the
    /// open-files limit: connections past half of it move there).
    pub fn direct_sockets(&self) -> usize {
        self.shared
            .direct_sockets
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// TCP connections and UDP flows being carried right now.
    pub fn connections(&self) -> usize {
        self.shared.live.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether this process may use IP_TRANSPARENT / TPROXY.
    pub fn privileged(&self) -> bool {
        self.privileged
    }

    /// Waits (at most a second) until every worker has carried out the
    /// commands sent so far.
    fn barrier(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.broadcast(|| Command::Barrier(tx.clone()));
        drop(tx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        for _ in &self.workers {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if rx.recv_timeout(left).is_err() {
                tracing::warn!("a proxy worker did not confirm a listener change within 1 s");
                return;
            }
        }
    }

    fn broadcast(&self, mut make: impl FnMut() -> Command) {
        for w in &self.workers {
            let _ = w.tx.send(make());
        }
    }

    /// Reconciles the listening sockets with the director's services (call
    /// after every table change): opens sockets for new services, closes
    /// those of deleted ones (established TCP connections continue; UDP
    /// flows end with their socket), and has every worker check its
    /// connections against the table at once (so `-d` with
    /// `expire_nodest_conn` closes connections without waiting).
    pub fn sync(&self) -> Vec<SyncProblem> {
        let keys: Vec<ServiceKey> = {
            let d = lock(&self.shared.director);
            d.table().services().iter().map(|s| s.key).collect()
        };
        let mut problems = Vec::new();
        let options = self.options();
        let mut listening = lock(&self.listening);
        // Deleted services, and TPROXY services whose configured port
        // changed (they are opened again below).
        let gone: Vec<ServiceKey> = listening
            .iter()
            .filter(|(k, l)| {
                !keys.contains(k)
                    || (l.tproxy
                        && options
                            .tproxy_ports
                            .get(k)
                            .is_some_and(|&p| p != l.addr.port()))
            })
            .map(|(k, _)| *k)
            .collect();
        let unlistened = !gone.is_empty();
        for k in gone {
            listening.remove(&k);
            self.broadcast(|| Command::Unlisten(k));
        }
        if unlistened {
            // A deleted service refuses new clients once `-D` returns, as
            // the kernel's does.
            self.barrier();
        }
        for k in keys {
            if listening.contains_key(&k) {
                continue;
            }
            match self.open(&k) {
                Ok(l) => {
                    listening.insert(k, l);
                }
                Err(message) => problems.push(SyncProblem {
                    service: k,
                    message,
                }),
            }
        }
        drop(listening);
        self.broadcast(|| Command::Check);
        problems
    }

    /// The sockets of one service, handed to the workers.
    fn open(&self, key: &ServiceKey) -> Result<Listening, String> {
        let proto = key.protocol();
        let (addr, tproxy) = match *key {
            ServiceKey::Addr {
                proto: Protocol::Sctp,
                ..
            } => {
                return Err(
                    "SCTP services need the xdp engine; the proxy engine carries TCP and UDP"
                        .into(),
                )
            }
            ServiceKey::Addr { addr, port, .. } if port != 0 => {
                (SocketAddr::new(addr, port), false)
            }
            ServiceKey::Addr { addr, .. } => {
                if !self.privileged {
                    return Err(tproxy_refusal(key));
                }
                if proto != Protocol::Tcp {
                    return Err("port-0 UDP services are not carried by the proxy engine (TPROXY is TCP only here)".into());
                }
                (SocketAddr::new(addr, 0), true)
            }
            ServiceKey::Fwmark { af, .. } => {
                if !self.privileged {
                    return Err(tproxy_refusal(key));
                }
                let any = match af {
                    rvs_core::Af::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    rvs_core::Af::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                (SocketAddr::new(any, 0), true)
            }
        };
        let what = |e: io::Error, a: &SocketAddr| format!("cannot listen on {a}: {e}");
        if proto == Protocol::Udp {
            let mut socks = Vec::new();
            for _ in 0..self.workers.len() {
                socks.push(sock::udp_socket(addr).map_err(|e| what(e, &addr))?);
            }
            for (w, s) in self.workers.iter().zip(socks) {
                let _ = w.tx.send(Command::ListenUdp(*key, s));
            }
            return Ok(Listening { addr, tproxy });
        }
        // The first socket picks the port of a TPROXY service (unless one
        // is configured); the others share it.
        let mut bound = addr;
        if tproxy {
            if let Some(&p) = lock(&self.options).tproxy_ports.get(key) {
                bound.set_port(p);
            }
        }
        let mut socks = Vec::new();
        for _ in 0..self.workers.len() {
            let l = sock::tcp_listener(bound, self.backlog, tproxy).map_err(|e| what(e, &bound))?;
            if tproxy {
                bound = l.local_addr().map_err(|e| what(e, &bound))?;
            }
            socks.push(l);
        }
        for (w, s) in self.workers.iter().zip(socks) {
            let _ = w.tx.send(Command::ListenTcp(*key, s));
        }
        if tproxy {
            tracing::info!(
                "{}: TPROXY listener on port {}; divert its traffic there, e.g. {}",
                service_name(key),
                bound.port(),
                tproxy_rule(key, bound.port())
            );
        }
        Ok(Listening {
            addr: bound,
            tproxy,
        })
    }

    /// Services served through TPROXY and the local port their traffic
    /// must be diverted to (`iptables -t mangle ... -j TPROXY --on-port`).
    pub fn tproxy_ports(&self) -> Vec<(ServiceKey, u16)> {
        lock(&self.listening)
            .iter()
            .filter(|(_, l)| l.tproxy)
            .map(|(k, l)| (*k, l.addr.port()))
            .collect()
    }

    /// The services the engine has sockets for.
    pub fn listening(&self) -> Vec<ServiceKey> {
        lock(&self.listening).keys().copied().collect()
    }

    /// Whether the engine can carry what `req` asks for (a batch: every
    /// request in it; the first refusal is returned). Refused: `-g`/`-i`
    /// real servers (direct routing and tunnelling happen below the socket
    /// layer: the xdp engine's job), SCTP services, and firewall-mark or
    /// port-0 services when this process may not use TPROXY. A new address
    /// service whose address and port another program holds is refused
    /// too, before the table changes.
    pub fn admit(&self, req: &Request, table: &ServiceTable) -> Result<(), String> {
        match req {
            Request::Batch(reqs) => reqs.iter().try_for_each(|r| self.admit(r, table)),
            Request::AddService { key, .. } | Request::EditService { key, .. } => {
                let add = matches!(req, Request::AddService { .. });
                self.admit_service(key, add && table.service(key).is_none())
            }
            Request::AddDest { service, dest } | Request::EditDest { service, dest } => {
                match dest.fwd {
                    FwdMethod::Masq => Ok(()),
                    m => Err(format!(
                        "real server {}: {} forwarding ({}) needs the xdp engine; \
                         the proxy engine relays connections itself, as masquerading (-m) does",
                        SocketAddr::new(dest.addr, dest.port),
                        m.label(),
                        match m {
                            FwdMethod::Route => "-g",
                            FwdMethod::Tunnel => "-i",
                            _ => "not -m",
                        }
                    )),
                }
                .map_err(|e| format!("{}: {e}", service_name(service)))
            }
            _ => Ok(()),
        }
    }

    fn admit_service(&self, key: &ServiceKey, new: bool) -> Result<(), String> {
        let name = service_name(key);
        if !key.is_fwmark() && key.protocol() == Protocol::Sctp {
            return Err(format!(
                "{name}: SCTP services need the xdp engine; the proxy engine carries TCP and UDP"
            ));
        }
        if key.is_fwmark() || key.port() == 0 {
            if !self.privileged {
                return Err(tproxy_refusal(key));
            }
            if !key.is_fwmark() && key.protocol() == Protocol::Udp {
                return Err(format!(
                    "{name}: port-0 UDP services are not carried by the proxy engine (its TPROXY path is TCP only)"
                ));
            }
            return Ok(());
        }
        if !new || lock(&self.listening).contains_key(key) {
            return Ok(());
        }
        let ServiceKey::Addr { addr, port, proto } = *key else {
            return Ok(());
        };
        let a = SocketAddr::new(addr, port);
        let ty = match proto {
            Protocol::Udp => socket2::Type::DGRAM,
            _ => socket2::Type::STREAM,
        };
        sock::probe_bind(a, ty).map_err(|e| format!("{name}: cannot listen on {a}: {e}"))
    }

    /// Replaces the per-service and per-real-server client addressing for
    /// new connections. Options this process cannot honour (see
    /// [`ProxyOptions::check`]) are refused with an error in the log and
    /// the previous options stay; call [`Engine::check_options`] first to
    /// report the reason to a user.
    pub fn set_options(&self, options: ProxyOptions) {
        if let Err(e) = options.check(self.privileged) {
            tracing::error!("proxy options refused: {e}");
            return;
        }
        let o = Arc::new(options);
        *lock(&self.options) = o.clone();
        self.broadcast(|| Command::Options(o.clone()));
    }

    /// Whether [`Engine::set_options`] would accept `options`.
    pub fn check_options(&self, options: &ProxyOptions) -> Result<(), String> {
        options.check(self.privileged)
    }

    /// The options in force.
    pub fn options(&self) -> Arc<ProxyOptions> {
        lock(&self.options).clone()
    }

    /// Stops the workers: listeners close, every connection is reset and
    /// reported closed to the connection table.
    pub fn shutdown(self) {
        drop(self)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.broadcast(|| Command::Shutdown);
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn tproxy_refusal(key: &ServiceKey) -> String {
    format!(
        "{}: {} services are carried through TPROXY, which needs root \
         (CAP_NET_ADMIN); run rvsd as root, or use an address:port service",
        service_name(key),
        if key.is_fwmark() {
            "firewall-mark"
        } else {
            "port-0"
        }
    )
}

/// An example of the rule that diverts a TPROXY service's traffic.
fn tproxy_rule(key: &ServiceKey, port: u16) -> String {
    let ipt = if key.af() == rvs_core::Af::Inet6 {
        "ip6tables"
    } else {
        "iptables"
    };
    match key {
        ServiceKey::Fwmark { mark, .. } => format!(
            "`{ipt} -t mangle -A PREROUTING -p tcp -m mark --mark {mark} -j TPROXY --on-port {port}` \
             with `ip rule add fwmark {mark} lookup 100` and a `local` default route in table 100"
        ),
        // The listener is bound to the virtual address, and TPROXY without
        // --on-ip looks for one on the incoming interface's address.
        ServiceKey::Addr { addr, .. } => format!(
            "`{ipt} -t mangle -A PREROUTING -p tcp -d {addr} -j TPROXY --on-ip {addr} --on-port {port} --tproxy-mark 1` \
             with `ip rule add fwmark 1 lookup 100` and a `local` default route in table 100"
        ),
    }
}
