//! The control side of the xdp engine: mirroring the director's table into
//! the BPF maps ([`Engine::sync`]), scheduling the first packets the
//! program hands to userspace, and the tick that mirrors the BPF
//! connection entries and counters back into the director (so `rvsadm -L
//! -c`, `--stats` and `--rate` show them) and expires idle entries with
//! the table's timeouts.

use crate::datapath::{AttachMode, Datapath, Error};
use crate::maps::{self, ConnKey, ConnVal, DestStats, DestVal, Event, Svc};
use crate::marks::MarkRule;
use crate::packet;
use libbpf_rs::{MapCore, MapFlags};
use rvs_conn::conn::{
    CONN_F_DROUTE, CONN_F_INACTIVE, CONN_F_MASQ, CONN_F_NOOUTPUT, CONN_F_ONE_PACKET, CONN_F_TUNNEL,
};
use rvs_conn::sync::{Installed, SyncedConn};
use rvs_conn::{sched, ConnId, InVerdict, Transport};
use rvs_core::sched::PacketInfo;
use rvs_core::table::ServiceTable;
use rvs_core::{DestId, DestStore, FwdMethod, Protocol, Service, ServiceKey, Time, TunType};
use rvs_ctl::Request;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The director as the daemon shares it with the engine.
pub type SharedDirector = Arc<Mutex<rvs_director::Director>>;

/// Longest rr/wrr cycle scheduled in BPF; longer cycles go to userspace.
pub const MAX_RING: usize = 65536;

/// Options of the xdp engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpOptions {
    /// The interface the program is attached to.
    pub interface: String,
    /// The bpffs directory the maps are pinned in.
    pub pin_dir: PathBuf,
    pub mode: AttachMode,
    /// First packets handed to userspace per CPU per second; beyond that,
    /// new connections of userspace-scheduled services are dropped (the
    /// clients retry) while known connections keep flowing.
    pub punt_budget: u32,
    /// How often BPF entries and counters are mirrored into the director
    /// and idle entries expired.
    pub tick: Duration,
}

impl XdpOptions {
    pub fn new(interface: &str) -> XdpOptions {
        XdpOptions {
            interface: interface.to_string(),
            pin_dir: PathBuf::from("/sys/fs/bpf/rvs"),
            mode: AttachMode::Auto,
            punt_budget: 20_000,
            tick: Duration::from_secs(1),
        }
    }
}

/// A service the engine could not serve; [`Engine::sync`] retries it on
/// every call.
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

/// A service as ipvsadm names it in messages.
pub fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            format!("{} {}", proto.label(), SocketAddr::new(*addr, *port))
        }
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

#[derive(Debug, Clone)]
struct DestSlot {
    id: DestId,
    addr: IpAddr,
    /// The port connections go to (0: the packet's own): the configured
    /// one, except for persistent services reached on other ports than
    /// their own (firewall-mark and port-zero services), whose
    /// connections keep the port the client asked for (`ip_vs_sched_persist`).
    rport: u16,
    /// The service's firewall mark (0: an address service).
    fwmark: u32,
    fwd: FwdMethod,
    in_table: bool,
    written: Option<DestVal>,
}

impl DestSlot {
    /// The NAT reply entry's real-server side for a connection to `vport`.
    fn nat(&self, vport: u16) -> Option<(IpAddr, u16)> {
        (self.fwd == FwdMethod::Masq)
            .then_some((self.addr, if self.rport != 0 { self.rport } else { vport }))
    }
}

#[derive(Debug, Clone)]
struct SvcSlot {
    id: u32,
    /// The ring BPF schedules from (empty: userspace schedules), as
    /// written: one period of the scheduler's picks (real-server slots).
    ring: Vec<u32>,
    /// The ring position (`rvs_svc_pos`) the scheduler has been advanced
    /// to: picks up to it are the scheduler's already.
    counted: u64,
    written: Option<Svc>,
}

/// What a sync found for one service's ring: the new period of picks
/// (`None`: userspace schedules), whether BPF's ring already holds it
/// (from position `pos`).
struct RingPlan {
    key: ServiceKey,
    id: u32,
    ring: Option<Vec<u32>>,
    same: bool,
    pos: u64,
}

#[derive(Debug, Clone, Copy)]
struct Mirror {
    id: ConnId,
    state: u8,
    seen: u32,
}

#[derive(Default)]
pub(crate) struct State {
    svcs: HashMap<ServiceKey, SvcSlot>,
    free_svc: Vec<u32>,
    next_svc: u32,
    dests: HashMap<DestId, u16>,
    slots: HashMap<u16, DestSlot>,
    free_dest: VecDeque<u16>,
    next_dest: u32,
    ring_half: u32,
    mirror: HashMap<ConnKey, Mirror>,
    stats_seen: HashMap<u16, DestStats>,
    probe: VecDeque<IpAddr>,
    last_nh_flush: Option<Instant>,
    /// Real-server slots found in the pinned maps at start, by service id,
    /// address and configured port, until the first sync claims them.
    adopted: HashMap<(u32, IpAddr, u16), (u16, DestVal)>,
    /// Whether sync has run: until then the tick leaves the entries alone
    /// (their slots are not known yet).
    synced: bool,
    /// The interface's MAC as the program has it (`rvs_ifmac`).
    ifmac: Option<[u8; 6]>,
    /// Firewall-mark classification rules ([`Engine::set_marks`]).
    marks: Vec<MarkRule>,
    /// Whether `rvs_marks` holds entries (the program's `CFG_MARKS`).
    marks_on: bool,
    /// Freed real-server slots: their counters and cached next hop are
    /// reset when the slot is given out again (slots never given out in
    /// maps this run created are zero already, and cost nothing).
    dirty: HashSet<u16>,
    /// Slots below this may hold counters and next hops of a previous
    /// run (pinned maps): reset when given out, like `dirty`.
    dirty_below: u32,
    /// The address pre-filter as written (`rvs_addrs`; `None`: not yet).
    filter: Option<Vec<u64>>,
}

/// The address pre-filter for the services, the NAT real servers and the
/// virtual addresses of `entries` (see `rvs_xdp.h`).
fn filter_words<'a>(st: &State, entries: impl Iterator<Item = &'a ConnKey>) -> Vec<u64> {
    let mut f = vec![0u64; maps::FILTER_WORDS];
    for key in st.svcs.keys() {
        if let ServiceKey::Addr { addr, .. } = key {
            maps::addr_filter_set(&mut f, addr, maps::ADDR_VIP);
        }
    }
    for k in entries {
        maps::addr_filter_set(&mut f, &k.vaddr, maps::ADDR_VIP);
    }
    for s in st.slots.values() {
        if s.fwd == FwdMethod::Masq {
            maps::addr_filter_set(&mut f, &s.addr, maps::ADDR_NATRS);
        }
    }
    f
}

pub(crate) struct Inner {
    director: SharedDirector,
    epoch: Instant,
    pub(crate) dp: Datapath,
    ifindex: u32,
    state: Mutex<State>,
    stop: AtomicBool,
    /// Connection sync (`crate::sync`); lock order: state, director, this.
    pub(crate) sync: Mutex<crate::sync::SyncState>,
}

/// The xdp engine: the BPF program on one interface, fed from the
/// director's table. See the crate documentation.
pub struct Engine {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("ifindex", &self.inner.ifindex)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The clock of the entries' `seen` field: the kernel's jiffies (low 32
/// bits), as the program reads them. Estimated from the monotonic clock
/// and the last [`Datapath`] reading of the kernel's counter (at load and
/// at every tick), so within a jiffy or two of it.
pub fn now_units() -> u32 {
    crate::datapath::jiffies_now() as u32
}

fn units_to_ms(u: u32) -> Time {
    u as Time * crate::datapath::jiffy_ns() / 1_000_000
}

impl Engine {
    /// Loads the program (reusing the maps pinned under
    /// `options.pin_dir`, so connections survive a restart), attaches it to
    /// the interface, and starts the event and tick threads. `epoch` is
    /// the instant the connection table's time counts from.
    pub fn start(
        director: SharedDirector,
        options: XdpOptions,
        epoch: Instant,
    ) -> Result<Engine, Error> {
        let ifindex = nix::net::if_::if_nametoindex(options.interface.as_str())
            .map_err(|e| Error(format!("interface {}: {e}", options.interface)))?;
        let dp = Datapath::load(&options.pin_dir)?;
        dp.set_config(0, options.punt_budget)?;
        // Before attaching: frames for other MACs are never forwarded.
        let ifmac = interface_mac(ifindex);
        if ifmac.is_none() {
            tracing::warn!(
                "interface {} has no MAC address: the xdp program examines every frame",
                options.interface
            );
        }
        dp.set_ifmac(ifmac)?;
        let inner = Arc::new(Inner {
            director,
            epoch,
            ifindex,
            state: Mutex::new(State {
                ifmac,
                dirty_below: if dp.fresh_maps { 0 } else { maps::MAX_DESTS },
                ..State::default()
            }),
            stop: AtomicBool::new(false),
            sync: Mutex::new(Default::default()),
            dp: {
                dp.attach(ifindex as i32, options.mode)?;
                dp
            },
        });
        inner.adopt_pinned();
        let mut threads = Vec::new();
        let i = inner.clone();
        threads.push(
            std::thread::Builder::new()
                .name("rvs-xdp-events".into())
                .spawn(move || i.events())
                .map_err(|e| Error(format!("event thread: {e}")))?,
        );
        let i = inner.clone();
        let period = options.tick;
        threads.push(
            std::thread::Builder::new()
                .name("rvs-xdp-tick".into())
                .spawn(move || {
                    while !i.stop.load(Ordering::Relaxed) {
                        std::thread::sleep(period.min(Duration::from_millis(200)));
                        i.tick_if_due(period);
                    }
                })
                .map_err(|e| Error(format!("tick thread: {e}")))?,
        );
        Ok(Engine { inner, threads })
    }

    /// Whether the program runs in native (driver) mode.
    pub fn native(&self) -> bool {
        self.inner.dp.native().unwrap_or(false)
    }

    /// The loaded program and maps.
    pub fn datapath(&self) -> &Datapath {
        &self.inner.dp
    }

    /// The connection-sync daemons' handle on this engine (feeding the
    /// master's sender, installing synced entries): see `crate::sync`.
    pub fn sync_handle(&self) -> crate::sync::SyncHandle {
        crate::sync::SyncHandle::new(self.inner.clone())
    }

    /// Mirrors the director's table into the maps (call after every table
    /// change). Returns the services that cannot be served, and why.
    pub fn sync(&self) -> Vec<SyncProblem> {
        self.inner.sync()
    }

    /// Sets the firewall-mark classification (rvs.toml's `match` lists:
    /// see [`crate::marks`]): what an iptables MARK rule does for LVS, as
    /// XDP runs before netfilter. A firewall-mark service is carried only
    /// while rules give its mark (of its family); the next [`Engine::sync`]
    /// writes them.
    pub fn set_marks(&self, rules: Vec<MarkRule>) {
        lock(&self.inner.state).marks = rules;
    }

    /// Mirrors BPF entries and counters into the director now (the tick
    /// does it every `tick`).
    pub fn tick(&self) {
        self.inner.tick_if_due(Duration::ZERO);
    }

    /// Whether the engine can carry what `req` asks (a batch: every
    /// request in it). Refused: firewall-mark services without
    /// classification rules for their mark ([`Engine::set_marks`]: XDP
    /// runs before netfilter marks packets), SCTP services, local and
    /// bypass real servers, and tunnel checksums (`--tun-csum`,
    /// `--tun-remcsum`).
    pub fn admit(&self, req: &Request, table: &ServiceTable) -> Result<(), String> {
        let marks = lock(&self.inner.state).marks.clone();
        admit(req, table, &marks)
    }

    /// Stops the threads and detaches the program. The pinned maps keep
    /// the connections for the next start.
    pub fn shutdown(self) {
        drop(self)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Err(e) = self.inner.dp.detach() {
            tracing::warn!("{e}");
        }
    }
}

/// See [`Engine::admit`]; `marks` are the classification rules.
pub fn admit(req: &Request, _table: &ServiceTable, marks: &[MarkRule]) -> Result<(), String> {
    match req {
        Request::Batch(reqs) => reqs.iter().try_for_each(|r| admit(r, _table, marks)),
        Request::AddService { key, .. } | Request::EditService { key, .. } => {
            service_problem(key, marks)
                .map_or(Ok(()), |m| Err(format!("{}: {m}", service_name(key))))
        }
        Request::AddDest { service, dest } | Request::EditDest { service, dest } => {
            dest_problem(dest.fwd, dest.tun_flags).map_or(Ok(()), |m| {
                Err(format!(
                    "{}: real server {}: {m}",
                    service_name(service),
                    SocketAddr::new(dest.addr, dest.port)
                ))
            })
        }
        _ => Ok(()),
    }
}

fn service_problem(key: &ServiceKey, marks: &[MarkRule]) -> Option<String> {
    if let ServiceKey::Fwmark { mark, af } = key {
        let af = if *af == rvs_core::Af::Inet6 {
            maps::AF_INET6
        } else {
            maps::AF_INET
        };
        if !marks.iter().any(|r| r.mark == *mark && r.af() == af) {
            return Some(format!(
                "no classification for mark {mark}: XDP sees packets before netfilter marks \
                 them, so the xdp engine needs the service's `match` list in rvs.toml \
                 (e.g. match = [\"tcp:VIP:80\", \"tcp:VIP:443\"])"
            ));
        }
        return None;
    }
    if key.protocol() == Protocol::Sctp {
        return Some("SCTP services are not carried by the xdp engine (TCP and UDP only)".into());
    }
    None
}

fn dest_problem(fwd: FwdMethod, tun_flags: u16) -> Option<String> {
    match fwd {
        FwdMethod::Masq | FwdMethod::Route => None,
        FwdMethod::Tunnel if tun_flags == 0 => None,
        FwdMethod::Tunnel => Some(
            "tunnel checksums (--tun-csum, --tun-remcsum) are not supported by the xdp engine"
                .into(),
        ),
        m => Some(format!(
            "{} forwarding is not supported by the xdp engine",
            m.label()
        )),
    }
}

fn conn_fwd_flags(fwd: FwdMethod) -> u32 {
    match fwd {
        FwdMethod::Masq => CONN_F_MASQ,
        FwdMethod::Tunnel => CONN_F_TUNNEL | CONN_F_NOOUTPUT,
        _ => CONN_F_DROUTE | CONN_F_NOOUTPUT,
    }
}

/// The outer source address the kernel would use toward `dst`.
fn source_for(dst: &IpAddr) -> [u8; 16] {
    let any: SocketAddr = match dst {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(any)
        .and_then(|s| s.connect(SocketAddr::new(*dst, 9)).map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| maps::addr16(&a.ip()))
        .unwrap_or([0; 16])
}

/// How many picks one period of a rr or wrr service takes, or `None` when
/// the service is not scheduled in BPF.
fn ring_period(svc: &Service) -> Option<usize> {
    let name = svc.config.scheduler.as_str();
    if !matches!(name, "rr" | "wrr") || svc.config.is_persistent() || svc.config.is_onepacket() {
        return None;
    }
    if svc
        .dests
        .iter()
        .any(|d| d.config.u_threshold > 0 || d.config.l_threshold > 0)
    {
        return None;
    }
    let weights: Vec<u64> = svc
        .dests
        .iter()
        .filter(|d| d.config.weight > 0)
        .map(|d| d.config.weight as u64)
        .collect();
    let n = if name == "rr" {
        weights.len()
    } else {
        let g = weights.iter().fold(0u64, |a, &b| gcd(a, b));
        if g == 0 {
            0
        } else {
            weights.iter().map(|w| (w / g) as usize).sum()
        }
    };
    (n <= MAX_RING).then_some(n)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The service's key in `rvs_services`.
fn bpf_svc_key(key: &ServiceKey) -> Vec<u8> {
    match key {
        ServiceKey::Addr { addr, port, proto } => maps::svc_key(addr, *port, *proto as u8),
        ServiceKey::Fwmark { mark, af } => maps::fwmark_svc_key(
            *mark,
            if *af == rvs_core::Af::Inet6 {
                maps::AF_INET6
            } else {
                maps::AF_INET
            },
        ),
    }
}

fn dummy_packet(key: &ServiceKey) -> PacketInfo {
    let addr = match key {
        ServiceKey::Addr { addr, .. } => *addr,
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    PacketInfo {
        proto: key.protocol(),
        saddr: addr,
        sport: 0,
        daddr: addr,
        dport: key.port(),
        inverse: false,
    }
}

impl Inner {
    fn now(&self) -> Time {
        self.epoch.elapsed().as_millis() as Time
    }

    /// After a restart: takes over the services and real-server slots the
    /// pinned maps hold, so the first sync gives every real server still
    /// in the table the slot its connection entries point at (found by
    /// service, address and port), and the entries keep flowing.
    fn adopt_pinned(&self) {
        let mut st = lock(&self.state);
        let st = &mut *st;
        let half = maps::RING_SLOTS / 2;
        let mut used_svc = HashSet::new();
        for k in self.dp.services.keys() {
            let (Some((addr, port, proto)), Some(v)) = (
                maps::svc_key_decode(&k),
                self.dp
                    .services
                    .lookup(&k, MapFlags::ANY)
                    .ok()
                    .flatten()
                    .and_then(|v| Svc::decode(&v)),
            ) else {
                continue;
            };
            let key = match proto {
                6 => ServiceKey::Addr {
                    proto: Protocol::Tcp,
                    addr,
                    port,
                },
                17 => ServiceKey::Addr {
                    proto: Protocol::Udp,
                    addr,
                    port,
                },
                0 => ServiceKey::Fwmark {
                    mark: u32::from_be_bytes(maps::addr16(&addr)[..4].try_into().unwrap_or([0; 4])),
                    af: rvs_core::Af::of(&addr),
                },
                _ => continue,
            };
            if v.id >= maps::MAX_SERVICES || !used_svc.insert(v.id) {
                continue;
            }
            if v.ring_len > 0 {
                st.ring_half = u32::from(v.ring_off >= half);
            }
            st.svcs.insert(
                key,
                SvcSlot {
                    id: v.id,
                    // Picks of the previous run's ring are not replayed:
                    // the scheduler starts afresh, as it does in a new table.
                    ring: Vec::new(),
                    counted: 0,
                    written: Some(v),
                },
            );
        }
        st.next_svc = used_svc.iter().max().map_or(0, |m| m + 1);
        st.free_svc = (0..st.next_svc).filter(|i| !used_svc.contains(i)).collect();
        let mut used_dest = HashSet::new();
        let found: Vec<(u32, DestVal)> =
            match self
                .dp
                .dests
                .lookup_batch(4096, MapFlags::ANY, MapFlags::ANY)
            {
                Ok(it) => it
                    .filter_map(|(k, v)| {
                        let slot = u32::from_ne_bytes(k.get(..4)?.try_into().ok()?);
                        Some((slot, DestVal::decode(&v)?))
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!("xdp: reading the pinned real servers: {e}");
                    Vec::new()
                }
            };
        for (slot, v) in found {
            if slot >= maps::MAX_DESTS || !used_svc.contains(&v.svc) {
                continue;
            }
            used_dest.insert(slot);
            st.adopted
                .insert((v.svc, v.addr, v.id_port), (slot as u16, v));
            // Counters already there were counted by the previous run.
            if let Ok(now) = self.dp.dest_stats(slot) {
                st.stats_seen.insert(slot as u16, now);
            }
        }
        st.next_dest = used_dest.iter().max().map_or(0, |m| m + 1);
        st.free_dest = (0..st.next_dest)
            .filter(|i| !used_dest.contains(i))
            .map(|i| i as u16)
            .collect();
        let n = self.dp.conns().len();
        if n > 0 || !st.adopted.is_empty() {
            tracing::info!(
                entries = n,
                services = st.svcs.len(),
                real_servers = st.adopted.len(),
                "xdp: taking over the pinned maps of the previous run"
            );
        }
    }

    /// Connection sync: the slot, method, address and port of real server
    /// `dest`, if the engine carries it.
    pub(crate) fn dest_slot(&self, dest: DestId) -> Option<(u16, FwdMethod, IpAddr, u16)> {
        let st = lock(&self.state);
        let slot = *st.dests.get(&dest)?;
        let d = st.slots.get(&slot)?;
        Some((slot, d.fwd, d.addr, d.rport))
    }

    /// Writes pre-filter `f`; with `only_add`, the bits already written
    /// stay (a sync adds; the tick, which sees every entry, also clears).
    fn write_filter(&self, st: &mut State, mut f: Vec<u64>, only_add: bool) {
        if only_add {
            if let Some(old) = &st.filter {
                for (w, o) in f.iter_mut().zip(old) {
                    *w |= o;
                }
            }
        }
        match self.dp.write_filter(&f, st.filter.as_deref()) {
            Ok(()) => st.filter = Some(f),
            Err(e) => {
                tracing::warn!("{e}");
                st.filter = None;
            }
        }
    }

    /// Makes sure the pre-filter lets packets to `vaddr` in (an entry
    /// written outside a sync: a first packet scheduled here, a synced
    /// connection).
    pub(crate) fn filter_vip(&self, st: &mut State, vaddr: &IpAddr) {
        let Some(mut f) = st.filter.clone() else {
            return; // the first sync writes it whole
        };
        maps::addr_filter_set(&mut f, vaddr, maps::ADDR_VIP);
        if Some(&f) != st.filter.as_ref() {
            self.write_filter(st, f, true);
        }
    }

    /// [`Inner::filter_vip`], taking the lock.
    pub(crate) fn note_vip(&self, vaddr: &IpAddr) {
        let mut st = lock(&self.state);
        self.filter_vip(&mut st, vaddr);
    }

    fn alloc_dest(st: &mut State) -> Option<u16> {
        if let Some(s) = st.free_dest.pop_front() {
            return Some(s);
        }
        if st.next_dest < maps::MAX_DESTS {
            st.next_dest += 1;
            return Some((st.next_dest - 1) as u16);
        }
        None
    }

    fn sync(&self) -> Vec<SyncProblem> {
        let mut st = lock(&self.state);
        let st = &mut *st;
        let mut problems = Vec::new();
        let now = self.now();
        let mut d = lock(&self.director);
        let sysctls = d.conns().sysctls;
        let mut flags = 0;
        if st.marks_on {
            flags |= maps::CFG_MARKS;
        }
        if sysctls.expire_nodest_conn {
            flags |= maps::CFG_EXPIRE_NODEST;
        }
        if sysctls.conn_reuse_mode != 0 {
            flags |= maps::CFG_CONN_REUSE;
        }
        if sysctls.secure_tcp_active() {
            flags |= maps::CFG_SECURE_TCP;
        }
        let budget = self
            .dp
            .config
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .map(|v| u32::from_ne_bytes([v[4], v[5], v[6], v[7]]))
            .unwrap_or(20_000);
        if let Err(e) = self.dp.set_config(flags, budget) {
            tracing::warn!("{e}");
        }

        let half = maps::RING_SLOTS / 2;
        let next_half = st.ring_half ^ 1;
        let mut ring: Vec<u32> = Vec::new();
        let mut svc_vals: Vec<(ServiceKey, Svc)> = Vec::new();
        let mut rings: Vec<RingPlan> = Vec::new();
        let mut seen_dests: HashSet<DestId> = HashSet::new();
        let mut dest_writes: Vec<(u16, DestVal)> = Vec::new();
        let keys: Vec<ServiceKey> = d.table().services().iter().map(|s| s.key).collect();
        for key in &keys {
            if let Some(m) = service_problem(key, &st.marks) {
                problems.push(SyncProblem {
                    service: *key,
                    message: m,
                });
                continue;
            }
            let id = match st.svcs.get(key) {
                Some(s) => s.id,
                None => {
                    let id = match st.free_svc.pop() {
                        Some(i) => i,
                        None if st.next_svc < maps::MAX_SERVICES => {
                            st.next_svc += 1;
                            st.next_svc - 1
                        }
                        None => {
                            problems.push(SyncProblem {
                                service: *key,
                                message: format!("more than {} services", maps::MAX_SERVICES),
                            });
                            continue;
                        }
                    };
                    st.svcs.insert(
                        *key,
                        SvcSlot {
                            id,
                            ring: Vec::new(),
                            counted: 0,
                            written: None,
                        },
                    );
                    id
                }
            };
            let Some(svc) = d.table_mut().service_mut(key) else {
                continue;
            };
            // Persistent services reached on other ports than their own
            // keep the client's port (`ip_vs_sched_persist`).
            let keeps_port = svc.config.is_persistent() && key.port() == 0;
            // Real servers.
            for dest in &svc.dests {
                seen_dests.insert(dest.id);
                if let Some(m) = dest_problem(dest.config.fwd, dest.config.tun_flags) {
                    problems.push(SyncProblem {
                        service: *key,
                        message: format!(
                            "real server {}: {m}",
                            SocketAddr::new(dest.config.addr, dest.config.port)
                        ),
                    });
                }
                let mut adopted = None;
                let slot = match st.dests.get(&dest.id) {
                    Some(&s) => s,
                    None if st
                        .adopted
                        .contains_key(&(id, dest.config.addr, dest.config.port)) =>
                    {
                        let (s, v) = st.adopted[&(id, dest.config.addr, dest.config.port)];
                        st.adopted.remove(&(id, dest.config.addr, dest.config.port));
                        adopted = Some(v);
                        st.dests.insert(dest.id, s);
                        s
                    }
                    None => {
                        let Some(s) = Self::alloc_dest(st) else {
                            problems.push(SyncProblem {
                                service: *key,
                                message: format!("more than {} real servers", maps::MAX_DESTS),
                            });
                            continue;
                        };
                        st.dests.insert(dest.id, s);
                        s
                    }
                };
                let c = &dest.config;
                let mut fl = 0;
                if dest.available && dest_problem(c.fwd, c.tun_flags).is_none() {
                    fl |= maps::DEST_AVAILABLE;
                }
                if c.weight == 0 {
                    fl |= maps::DEST_WEIGHT0;
                }
                let prev = st.slots.get(&slot);
                let tun_src = match prev.and_then(|p| p.written) {
                    Some(w) if w.addr == c.addr && w.fwd == maps::FWD_TUNNEL => w.tun_src,
                    _ if c.fwd == FwdMethod::Tunnel => source_for(&c.addr),
                    _ => [0; 16],
                };
                let val = DestVal {
                    addr: c.addr,
                    tun_src,
                    fwd: match c.fwd {
                        FwdMethod::Masq => maps::FWD_MASQ,
                        FwdMethod::Tunnel => maps::FWD_TUNNEL,
                        _ => maps::FWD_ROUTE,
                    },
                    tun_type: match c.tun_type {
                        TunType::Ipip => 0,
                        TunType::Gue => 1,
                        TunType::Gre => 2,
                    },
                    flags: fl,
                    port: if c.fwd == FwdMethod::Masq && !keeps_port {
                        c.port
                    } else {
                        0
                    },
                    tun_port: c.tun_port,
                    svc: id,
                    id_port: c.port,
                };
                let written = prev.and_then(|p| p.written).or(adopted);
                if written != Some(val) {
                    dest_writes.push((slot, val));
                }
                st.slots.insert(
                    slot,
                    DestSlot {
                        id: dest.id,
                        addr: c.addr,
                        rport: if keeps_port { 0 } else { c.port },
                        fwmark: key.fwmark(),
                        fwd: c.fwd,
                        in_table: true,
                        written,
                    },
                );
            }
            // The ring: advance the scheduler by the picks BPF made from
            // the last ring, then take one period of picks from a copy of
            // it. The scheduler itself must make exactly the kernel's
            // picks: a table change resets part of its state (wrr keeps
            // its current weight), so picks made ahead would shift the
            // sequence. A period brings the state back to where it was
            // after the same pick of the previous period, so `pos` picks
            // are `(pos - 1) % len + 1` picks.
            let old = &st.svcs[key];
            let len = old.ring.len() as u64;
            let mut pos = 0;
            if len > 0 {
                pos = self
                    .dp
                    .svc_pos
                    .lookup(&id.to_ne_bytes(), MapFlags::ANY)
                    .ok()
                    .flatten()
                    .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8])))
                    .unwrap_or(0);
                // `p` picks from the ring's start leave the scheduler where
                // `(p - 1) % len + 1` picks do; it stands at `counted`.
                let eq = |p: u64| if p == 0 { 0 } else { (p - 1) % len + 1 };
                let picks = if pos <= old.counted {
                    0
                } else {
                    (eq(pos) + len - eq(old.counted)) % len
                };
                let picks = if old.counted == 0 { eq(pos) } else { picks };
                let info = dummy_packet(key);
                for _ in 0..picks {
                    svc.schedule(&info, now);
                }
            }
            let mut new_ring = None;
            let snapshot = svc.scheduler.as_ref().and_then(|s| s.snapshot());
            if let (Some(period), Some(mut ahead)) = (ring_period(svc), snapshot) {
                let info = dummy_packet(key);
                let view = svc.sched_view();
                let mut r = Vec::with_capacity(period);
                for _ in 0..period {
                    match ahead
                        .schedule(&view, &info, now)
                        .and_then(|i| svc.dests.get(i))
                        .and_then(|dd| st.dests.get(&dd.id))
                    {
                        Some(&slot) => r.push(slot as u32),
                        None => break,
                    }
                }
                if period > 0 && r.len() == period {
                    new_ring = Some(r);
                }
            }
            // The ring BPF has is still right when the new period is the
            // old one from where BPF stands (nothing changed but the
            // position): then it is left as it is, position included.
            let old = &st.svcs[key];
            let same = match &new_ring {
                None => old.ring.is_empty(),
                Some(r) => {
                    r.len() == old.ring.len()
                        && old.written.is_some_and(|w| w.flags & maps::SVC_RING != 0)
                        && {
                            let k = (pos % len.max(1)) as usize;
                            r.iter()
                                .enumerate()
                                .all(|(i, s)| old.ring[(i + k) % r.len()] == *s)
                        }
                }
            };
            rings.push(RingPlan {
                key: *key,
                id,
                ring: new_ring,
                same,
                pos,
            });
        }
        // Rings: when one changed, every ring is written again to the
        // half BPF does not read, then the services are switched to it
        // (a packet reads either the old ring or the new one, whole);
        // otherwise nothing is written.
        let rewrite = rings.iter().any(|r| !r.same);
        for RingPlan {
            key,
            id,
            ring: new_ring,
            pos,
            ..
        } in rings
        {
            let Some(slot) = st.svcs.get_mut(&key) else {
                continue;
            };
            let mut sv = Svc {
                id,
                flags: maps::SVC_PUNT,
                ring_off: 0,
                ring_len: 0,
            };
            match new_ring {
                Some(_) if !rewrite => {
                    // The ring BPF holds stays, and so does its position.
                    sv = slot.written.unwrap_or(sv);
                    slot.counted = pos;
                }
                Some(r) if ring.len() + r.len() <= half as usize => {
                    sv = Svc {
                        id,
                        flags: maps::SVC_RING,
                        ring_off: next_half * half + ring.len() as u32,
                        ring_len: r.len() as u32,
                    };
                    ring.extend_from_slice(&r);
                    slot.counted = 0;
                    slot.ring = r;
                }
                _ => {
                    slot.counted = 0;
                    slot.ring.clear();
                }
            }
            svc_vals.push((key, sv));
        }

        // Real servers that left the table: unavailable while entries use
        // them, then free.
        let mut in_use: HashMap<u16, usize> = HashMap::new();
        for m in st.mirror.values() {
            if let Some(c) = d.conns().get(m.id) {
                if let Some(did) = c.dest() {
                    if let Some(&s) = st.dests.get(&did) {
                        *in_use.entry(s).or_default() += 1;
                    }
                }
            }
        }
        let gone: Vec<DestId> = st
            .dests
            .keys()
            .filter(|id| !seen_dests.contains(id))
            .copied()
            .collect();
        for id in gone {
            let slot = st.dests[&id];
            if in_use.contains_key(&slot) {
                if let Some(s) = st.slots.get_mut(&slot) {
                    if s.in_table {
                        s.in_table = false;
                        if let Some(mut w) = s.written {
                            w.flags &= !maps::DEST_AVAILABLE;
                            dest_writes.push((slot, w));
                        }
                    }
                }
                continue;
            }
            self.flush_slot_stats(st, &mut d, slot);
            st.dests.remove(&id);
            st.slots.remove(&slot);
            st.stats_seen.remove(&slot);
            let _ =
                self.dp
                    .dests
                    .update(&slot.to_ne_bytes(), &[0u8; maps::DEST_SIZE], MapFlags::ANY);
            st.free_dest.push_back(slot);
            st.dirty.insert(slot);
        }
        drop(d);

        // Write: ring half, then real servers, then services.
        if !ring.is_empty() {
            let base = next_half * half;
            let keys: Vec<u8> = (0..ring.len() as u32)
                .flat_map(|i| (base + i).to_ne_bytes())
                .collect();
            let vals: Vec<u8> = ring.iter().flat_map(|v| v.to_ne_bytes()).collect();
            if let Err(e) = self.dp.ring.update_batch(
                &keys,
                &vals,
                ring.len() as u32,
                MapFlags::ANY,
                MapFlags::ANY,
            ) {
                tracing::warn!("ring map: {e}");
            }
        }
        if !dest_writes.is_empty() {
            let n = dest_writes.len() as u32;
            let keys: Vec<u8> = dest_writes
                .iter()
                .flat_map(|(s, _)| (*s as u32).to_ne_bytes())
                .collect();
            let vals: Vec<u8> = dest_writes.iter().flat_map(|(_, v)| v.encode()).collect();
            // A slot given out again starts from zero counters and no
            // next hop (the program looks it up at the first packet); one
            // never given out in maps this run created is zero already.
            let mut reset: Vec<u8> = Vec::new();
            let zero_stats = vec![0u8; 40];
            for (slot, v) in &dest_writes {
                let fresh = st.slots.get(slot).is_some_and(|s| s.written.is_none());
                if fresh {
                    if st.dirty.remove(slot) || u32::from(*slot) < st.dirty_below {
                        let _ = self.zero_stats(*slot, &zero_stats);
                        reset.extend_from_slice(&u32::from(*slot).to_ne_bytes());
                    }
                    st.stats_seen.remove(slot);
                    st.probe.push_back(v.addr);
                }
                if let Some(s) = st.slots.get_mut(slot) {
                    s.written = Some(*v);
                }
            }
            if !reset.is_empty() {
                let n = (reset.len() / 4) as u32;
                let nh: Vec<u8> = (0..n)
                    .flat_map(|_| maps::nexthop([0; 6], [0; 6], 0, false))
                    .collect();
                if let Err(e) =
                    self.dp
                        .nexthops
                        .update_batch(&reset, &nh, n, MapFlags::ANY, MapFlags::ANY)
                {
                    tracing::warn!("nexthop map: {e}");
                }
            }
            if let Err(e) =
                self.dp
                    .dests
                    .update_batch(&keys, &vals, n, MapFlags::ANY, MapFlags::ANY)
            {
                tracing::warn!("dest map: {e}");
            }
        }
        // The pre-filter lets the new services' packets in before they
        // are written.
        let f = filter_words(st, st.mirror.keys());
        self.write_filter(st, f, true);
        for (key, sv) in &svc_vals {
            if st.svcs.get(key).is_some_and(|s| s.written == Some(*sv)) {
                continue;
            }
            if sv.flags & maps::SVC_RING != 0 {
                // A new ring (a new offset) starts from its first pick.
                let _ = self.dp.svc_pos.update(
                    &sv.id.to_ne_bytes(),
                    &0u64.to_ne_bytes(),
                    MapFlags::ANY,
                );
            }
            if let Err(e) = self
                .dp
                .services
                .update(&bpf_svc_key(key), &sv.encode(), MapFlags::ANY)
            {
                problems.push(SyncProblem {
                    service: *key,
                    message: format!("service map: {e}"),
                });
            }
            if let Some(s) = st.svcs.get_mut(key) {
                s.written = Some(*sv);
            }
        }
        if rewrite {
            st.ring_half = next_half;
        }
        // Slots of the previous run that no real server claimed: free.
        for (_, (slot, _)) in std::mem::take(&mut st.adopted) {
            let _ = self.dp.dests.update(
                &(slot as u32).to_ne_bytes(),
                &[0u8; maps::DEST_SIZE],
                MapFlags::ANY,
            );
            st.stats_seen.remove(&slot);
            st.free_dest.push_back(slot);
            st.dirty.insert(slot);
        }
        st.synced = true;
        let gone: Vec<ServiceKey> = st
            .svcs
            .keys()
            .filter(|k| !keys.contains(k))
            .copied()
            .collect();
        for key in gone {
            if let Some(s) = st.svcs.remove(&key) {
                let _ = self.dp.services.delete(&bpf_svc_key(&key));
                st.free_svc.push(s.id);
            }
        }
        // Firewall-mark classification: the rules of the marks whose
        // service is carried.
        let carried: Vec<MarkRule> = st
            .marks
            .iter()
            .filter(|r| {
                let k = ServiceKey::Fwmark {
                    mark: r.mark,
                    af: rvs_core::Af::of(&r.net),
                };
                keys.contains(&k) && st.svcs.contains_key(&k)
            })
            .copied()
            .collect();
        match self.dp.set_marks(&carried) {
            Ok(msgs) => problems.extend(msgs.into_iter().map(|(r, message)| SyncProblem {
                service: ServiceKey::Fwmark {
                    mark: r.mark,
                    af: rvs_core::Af::of(&r.net),
                },
                message,
            })),
            Err(e) => tracing::warn!("{e}"),
        }
        let on = !carried.is_empty();
        if on != st.marks_on {
            st.marks_on = on;
            let mut f = flags;
            if on {
                f |= maps::CFG_MARKS;
            }
            if let Err(e) = self.dp.set_config(f, budget) {
                tracing::warn!("{e}");
            }
        }
        problems
    }

    fn zero_stats(&self, slot: u16, zero: &[u8]) -> Result<(), libbpf_rs::Error> {
        let cpus = libbpf_rs::num_possible_cpus()?;
        let v: Vec<Vec<u8>> = (0..cpus).map(|_| zero.to_vec()).collect();
        self.dp
            .stats
            .update_percpu(&(slot as u32).to_ne_bytes(), &v, MapFlags::ANY)
    }

    /// Adds what BPF counted for `slot` since the last flush to the
    /// director's statistics.
    fn flush_slot_stats(&self, st: &mut State, d: &mut rvs_director::Director, slot: u16) {
        if let Ok(now) = self.dp.dest_stats(slot as u32) {
            Self::apply_slot_stats(st, d, slot, now);
        }
    }

    /// Adds the difference between `now` (what BPF counted for `slot`,
    /// read before the director was locked) and the last flush.
    fn apply_slot_stats(st: &mut State, d: &mut rvs_director::Director, slot: u16, now: DestStats) {
        let Some(info) = st.slots.get(&slot) else {
            return;
        };
        let before = st.stats_seen.insert(slot, now).unwrap_or_default();
        let table = d.table_mut();
        let id = info.id;
        for _ in before.conns..now.conns {
            table.count_conn(id);
        }
        let (ip, ib) = (
            now.inpkts.saturating_sub(before.inpkts),
            now.inbytes.saturating_sub(before.inbytes),
        );
        if ip > 0 {
            table.count_in_n(id, ip, ib);
        }
        let (op, ob) = (
            now.outpkts.saturating_sub(before.outpkts),
            now.outbytes.saturating_sub(before.outbytes),
        );
        if op > 0 {
            table.count_out_n(id, op, ob);
        }
    }

    fn tick_if_due(&self, period: Duration) {
        let mut st = lock(&self.state);
        let due = st.last_nh_flush.is_none_or(|t| t.elapsed() >= period);
        if due {
            self.tick(&mut st);
        }
        // Neighbour resolution for new real servers, without the lock (a
        // socket each: thousands of them must not hold up a sync).
        let probes = std::mem::take(&mut st.probe);
        drop(st);
        for a in probes {
            probe(&a);
        }
    }

    fn tick(&self, st: &mut State) {
        st.last_nh_flush = Some(Instant::now());
        self.follow_ifmac(st);
        if !st.synced {
            return;
        }
        let now = self.now();
        if let Err(e) = self.dp.read_jiffies() {
            tracing::warn!("{e}");
        }
        let units = now_units();
        let entries = self.dp.conns();
        // The counters are read (one system call per real server) before
        // the director is locked, so a large table does not hold up the
        // control plane while they are read.
        let counted: Vec<(u16, DestStats)> = st
            .slots
            .keys()
            .filter_map(|&s| Some((s, self.dp.dest_stats(u32::from(s)).ok()?)))
            .collect();
        let mut d = lock(&self.director);
        self.follow_secure_tcp(d.conns().sysctls.secure_tcp_active());
        let timeouts = d.conns().timeouts.clone();
        let mut live: HashSet<ConnKey> = HashSet::with_capacity(entries.len());
        let mut changed: Vec<(ConnKey, ConnId)> = Vec::new();
        for (k, v) in entries {
            let Some(slot) = st.slots.get(&v.dest).cloned() else {
                // An entry from before a restart whose slot sync has not
                // given out again, or a freed slot: forget it.
                self.dp.delete_conn(&k, None);
                continue;
            };
            // An entry touched after `units` was read (a packet, a synced
            // entry written meanwhile) is not idle: the difference wraps.
            let since = units.wrapping_sub(v.seen);
            let idle = if (since as i32) < 0 {
                0
            } else {
                units_to_ms(since)
            };
            let timeout = if k.proto == Protocol::Tcp as u8 {
                timeouts.tcp.get(v.state as usize).copied().unwrap_or(0)
            } else {
                timeouts.udp[0]
            };
            if idle >= timeout {
                self.dp.delete_conn(&k, slot.nat(k.vport));
                if let Some(m) = st.mirror.remove(&k) {
                    d.tables_mut().1.expire_now(m.id, now);
                }
                continue;
            }
            live.insert(k);
            let (table, conns) = d.tables_mut();
            if let Some(m) = st.mirror.get(&k) {
                if m.state == v.state && m.seen == v.seen && conns.get(m.id).is_some() {
                    continue;
                }
            }
            let active = k.proto == Protocol::Tcp as u8 && rvs_conn::tcp::is_active(v.state);
            let mut flags = conn_fwd_flags(slot.fwd);
            if !active {
                flags |= CONN_F_INACTIVE;
            }
            let s = SyncedConn {
                proto: k.proto,
                af: rvs_core::Af::of(&k.caddr),
                caddr: k.caddr,
                cport: k.cport,
                vaddr: k.vaddr,
                vport: k.vport,
                daddr: slot.addr,
                dport: if slot.rport != 0 { slot.rport } else { k.vport },
                flags,
                state: v.state as u16,
                timeout_secs: 0,
                fwmark: slot.fwmark,
                pe: None,
            };
            if let Ok(Installed::Created(id) | Installed::Updated(id)) =
                conns.install_synced(s, Some(slot.id), 0, now, table)
            {
                changed.push((k, id));
                st.mirror.insert(
                    k,
                    Mirror {
                        id,
                        state: v.state,
                        seen: v.seen,
                    },
                );
            }
        }
        let gone: Vec<ConnKey> = st
            .mirror
            .keys()
            .filter(|k| !live.contains(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(m) = st.mirror.remove(&k) {
                d.tables_mut().1.expire_now(m.id, now);
            }
        }
        let f = filter_words(st, live.iter());
        self.write_filter(st, f, false);
        crate::sync::feed(&self.sync, d.conns(), &changed, &live, now);
        for (s, now) in counted {
            Self::apply_slot_stats(st, &mut d, s, now);
        }
        drop(d);
        // Tunnel real servers: the route's MTU is read again (a route
        // change, a PMTU exception) with the next hop at their next packet.
        let tunnels: Vec<u8> = st
            .slots
            .iter()
            .filter(|(_, s)| s.fwd == FwdMethod::Tunnel && s.in_table)
            .flat_map(|(slot, _)| u32::from(*slot).to_ne_bytes())
            .collect();
        if !tunnels.is_empty() {
            // Only the valid flag is cleared: the addresses are written back
            // as they are, so a packet that read the entry as valid just
            // before never sends with a zeroed MAC.
            let mut keys = Vec::with_capacity(tunnels.len());
            let mut nh = Vec::with_capacity(tunnels.len() * 5);
            for key in tunnels.chunks_exact(4) {
                if let Ok(Some(v)) = self.dp.nexthops.lookup(key, MapFlags::ANY) {
                    if let Some(v) = maps::nexthop_stale(&v) {
                        keys.extend_from_slice(key);
                        nh.extend_from_slice(&v);
                    }
                }
            }
            let n = (keys.len() / 4) as u32;
            if n > 0 {
                if let Err(e) =
                    self.dp
                        .nexthops
                        .update_batch(&keys, &nh, n, MapFlags::ANY, MapFlags::ANY)
                {
                    tracing::warn!("nexthop map: {e}");
                }
            }
        }
    }

    /// Follows the secure_tcp defence (the director's table switches it
    /// on and off): the program's TCP table with it.
    fn follow_secure_tcp(&self, on: bool) {
        let Some(v) = self
            .dp
            .config
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .filter(|v| v.len() >= 8)
        else {
            return;
        };
        let flags = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
        let budget = u32::from_ne_bytes([v[4], v[5], v[6], v[7]]);
        if (flags & maps::CFG_SECURE_TCP != 0) != on {
            if let Err(e) = self.dp.set_config(flags ^ maps::CFG_SECURE_TCP, budget) {
                tracing::warn!("{e}");
            }
        }
    }

    /// Follows a change of the interface's MAC address.
    fn follow_ifmac(&self, st: &mut State) {
        let mac = interface_mac(self.ifindex);
        if mac.is_none() || mac == st.ifmac {
            return;
        }
        match self.dp.set_ifmac(mac) {
            Ok(()) => st.ifmac = mac,
            Err(e) => tracing::warn!("{e}"),
        }
    }

    fn events(self: Arc<Self>) {
        let me = self.clone();
        let mut b = libbpf_rs::RingBufferBuilder::new();
        let mut raw = crate::xmit::RawXmit::new();
        let mut xmit_failed = false;
        if let Err(e) = b.add(&self.dp.events, move |data: &[u8]| {
            match Event::decode(data) {
                Some(Event::Xmit { frame }) => {
                    // Warned once: a burst of replies fails alike.
                    if let Err(e) = raw.send(&frame) {
                        if !std::mem::replace(&mut xmit_failed, true) {
                            tracing::warn!("{e}");
                        }
                    }
                }
                Some(Event::Punt { ifindex, frame }) => me.punted(ifindex, &frame),
                Some(Event::TooBig { mtu, frame }) => {
                    if let Some(reply) = packet::too_big(&frame, mtu) {
                        if let Err(e) = raw.send(&reply) {
                            tracing::debug!("packet too big: {e}");
                        }
                    }
                }
                Some(Event::TunnelIcmp { frame }) => {
                    if let Some(reply) = packet::tunnel_icmp(&frame) {
                        if let Err(e) = raw.send(&reply) {
                            tracing::debug!("ICMP about a tunnel packet: {e}");
                        }
                    }
                }
                Some(Event::Frag { dest, frame }) => {
                    let st = lock(&me.state);
                    let d = st.slots.get(&(dest as u16)).and_then(|s| s.written);
                    drop(st);
                    if let Some(d) = d {
                        if let Err(e) = crate::xmit::send_tunnel(&frame, &d) {
                            tracing::debug!("{e}");
                        }
                    }
                }
                Some(Event::Neigh { dest }) => {
                    let st = lock(&me.state);
                    let a = st.slots.get(&(dest as u16)).map(|s| s.addr);
                    drop(st);
                    if let Some(a) = a {
                        probe(&a);
                    }
                }
                None => {}
            }
            0
        }) {
            tracing::error!("xdp event ring: {e}");
            return;
        }
        let rb = match b.build() {
            Ok(rb) => rb,
            Err(e) => {
                tracing::error!("xdp event ring: {e}");
                return;
            }
        };
        while !self.stop.load(Ordering::Relaxed) {
            let _ = rb.poll(Duration::from_millis(100));
        }
    }

    /// A first packet the program handed over: schedule it with the
    /// connection table, install the entry, send the packet on.
    fn punted(&self, ifindex: u32, frame: &[u8]) {
        let Some(p) = packet::parse(frame) else {
            return;
        };
        let key = ConnKey {
            caddr: p.saddr,
            cport: p.sport,
            vaddr: p.daddr,
            vport: p.dport,
            proto: p.proto as u8,
        };
        let l4 = match p.proto {
            Protocol::Tcp => Transport::Tcp(p.tcp_flags),
            _ => Transport::Udp,
        };
        let now = self.now();
        let mut st = lock(&self.state);
        let mut d = lock(&self.director);
        let (table, conns) = d.tables_mut();
        let mut id: Option<ConnId> = None;
        if let Some(found) = conns.lookup_in(p.proto, p.saddr, p.sport, p.daddr, p.dport) {
            match conns.check_in(found, sched::is_new_conn(l4), now, table) {
                InVerdict::Hit(h) => id = Some(h),
                InVerdict::Miss => {}
                InVerdict::Drop => return,
            }
        }
        if id.is_none() {
            if !sched::may_schedule(l4, &conns.sysctls) {
                return;
            }
            // A marked packet's fwmark service first (ip_vs_service_find).
            let mark = crate::marks::classify(&st.marks, p.proto as u8, &p.daddr, p.dport).filter(
                |&mark| {
                    table
                        .service(&ServiceKey::Fwmark {
                            mark,
                            af: rvs_core::Af::of(&p.daddr),
                        })
                        .is_some()
                },
            );
            let skey = match mark {
                Some(mark) => Some(ServiceKey::Fwmark {
                    mark,
                    af: rvs_core::Af::of(&p.daddr),
                }),
                None => [p.dport, 0]
                    .into_iter()
                    .map(|port| ServiceKey::Addr {
                        proto: p.proto,
                        addr: p.daddr,
                        port,
                    })
                    .find(|k| table.service(k).is_some()),
            };
            let Some(skey) = skey else { return };
            let Some((svc, totals)) = table.service_and_totals_mut(&skey) else {
                return;
            };
            let pkt = sched::Packet::new(p.proto, p.saddr, p.sport, p.daddr, p.dport)
                .with_mark(mark.unwrap_or(0));
            match conns.schedule(svc, &pkt, now, totals) {
                Ok(i) => id = Some(i),
                Err(_) => return,
            }
        }
        let Some(id) = id else { return };
        let Some(c) = conns.get(id) else { return };
        let one_packet = c.flags() & CONN_F_ONE_PACKET != 0;
        let Some(&slot) = c.dest().and_then(|did| st.dests.get(&did)) else {
            return;
        };
        let Some(info) = st.slots.get(&slot).cloned() else {
            return;
        };
        drop(d);
        let val = ConnVal {
            dest: slot,
            state: 0,
            flags: maps::CONN_USER
                | if info.fwd == FwdMethod::Masq {
                    0
                } else {
                    maps::CONN_NOOUTPUT
                },
            seen: now_units(),
        };
        let nat = info.nat(key.vport);
        self.filter_vip(&mut st, &key.vaddr);
        if let Err(e) = self.dp.put_conn(&key, &val, nat) {
            tracing::warn!("{e}");
            return;
        }
        if !one_packet {
            st.mirror.insert(
                key,
                Mirror {
                    id,
                    state: u8::MAX,
                    seen: 0,
                },
            );
        }
        drop(st);
        if let Err(e) = self.dp.inject(frame, ifindex) {
            tracing::warn!("{e}");
        }
        if one_packet {
            self.dp.delete_conn(&key, nat);
        }
    }
}

/// The MAC address of interface `ifindex`, if it has one.
fn interface_mac(ifindex: u32) -> Option<[u8; 6]> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        let l = a.address.as_ref()?.as_link_addr()?;
        if l.ifindex() != ifindex as usize {
            return None;
        }
        l.addr()
    })
}

/// Makes the kernel resolve the neighbour toward `addr` (a datagram to the
/// discard port; the reply, if any, is ignored).
fn probe(addr: &IpAddr) {
    let any: SocketAddr = match addr {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    if let Ok(s) = UdpSocket::bind(any) {
        let _ = s.send_to(&[], SocketAddr::new(*addr, 9));
    }
}
