//! The thin driver: one thread per instance that owns the sockets and the
//! clock and feeds the state machine ([`crate::fsm`]). It polls the
//! receiving socket and a wake-up socket, with a timeout that is the
//! state machine's next deadline (at most 100 ms, when it also rereads the
//! interfaces it tracks), and performs the actions in order: adverts,
//! VIPs through rtnetlink, gratuitous ARP / unsolicited NA bursts through
//! AF_PACKET, and notify hooks, which one more thread per instance runs one
//! after the other, in the order of the transitions.
//!
//! [`Running::stop`] is the clean shutdown: priority 0 is sent, the VIPs
//! removed, the STOP hooks run, and only then does it return.

use crate::announce::{gratuitous_arp, unsolicited_na};
use crate::fsm::{Action, Config, Instance, State};
use crate::iface::{self, Link};
use crate::netlink::{self, Vip};
use crate::packet::{Advert, Auth, ChecksumMode, Version, TTL};
use crate::socket::VrrpSocket;
use crate::track::{self, Effect, Hysteresis, TrackInterface, TrackScript};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rvs_core::Time;
use socket2::{Domain, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How often the interfaces are reread, ms.
const LINK_POLL: Time = 100;
/// The same warning is logged at most this often, ms.
const WARN_EVERY: Time = 10_000;

/// Notify hooks: programs with arguments (no shell), run in transition
/// order, each to completion (or `timeout`) before the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    pub master: Vec<String>,
    pub backup: Vec<String>,
    pub fault: Vec<String>,
    pub stop: Vec<String>,
    /// Run on every transition with keepalived's four extra arguments:
    /// `INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>`.
    pub any: Vec<String>,
    /// ms; 0 means 30 s.
    pub timeout: Time,
}

/// Everything one instance needs (rvs.toml's `[[vrrp]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    pub name: String,
    pub interface: String,
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds (VRRPv2: a multiple of 100).
    pub interval_cs: u16,
    pub preempt: bool,
    /// ms.
    pub preempt_delay: Time,
    pub down_timer_adverts: u32,
    /// All of one family; IPv6 needs VRRPv3.
    pub vips: Vec<Vip>,
    /// Source address; default: the interface's first IPv4 address that is
    /// not a VIP, or its IPv6 link-local address.
    pub unicast_src: Option<IpAddr>,
    /// When non-empty, adverts go to these and only they are listened to.
    pub unicast_peers: Vec<IpAddr>,
    pub auth: Auth,
    pub checksum: ChecksumMode,
    /// Gratuitous ARPs / NAs per VIP in a burst (keepalived: 5).
    pub garp_repeat: u32,
    /// Second burst this long after becoming master, ms.
    pub garp_delay: Option<Time>,
    /// Further bursts this often while master, ms.
    pub garp_refresh: Option<Time>,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_scripts: Vec<TrackScript>,
    pub notify: Notify,
}

impl InstanceSpec {
    /// An instance with keepalived's defaults for everything else.
    pub fn new(name: &str, interface: &str, vrid: u8, vips: Vec<Vip>) -> InstanceSpec {
        InstanceSpec {
            name: name.into(),
            interface: interface.into(),
            version: if vips.iter().any(|v| v.addr.is_ipv6()) {
                Version::V3
            } else {
                Version::V2
            },
            vrid,
            priority: 100,
            interval_cs: 100,
            preempt: false,
            preempt_delay: 0,
            down_timer_adverts: 3,
            vips,
            unicast_src: None,
            unicast_peers: Vec::new(),
            auth: Auth::None,
            checksum: ChecksumMode::Keepalived,
            garp_repeat: 5,
            garp_delay: Some(5_000),
            garp_refresh: None,
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            notify: Notify::default(),
        }
    }

    fn is_v6(&self) -> bool {
        self.vips.first().is_some_and(|v| v.addr.is_ipv6())
            || self.unicast_src.is_some_and(|a| a.is_ipv6())
    }
}

/// What an instance looks like from outside (API, metrics, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub state: State,
    /// The priority advertised now (configured plus tracking).
    pub priority: u8,
    pub base_priority: u8,
    /// The master as far as this instance knows.
    pub master: Option<IpAddr>,
    /// When the current state was entered.
    pub since: SystemTime,
    /// Transitions since start.
    pub transitions: u64,
    /// Why it is in FAULT.
    pub fault: Option<String>,
    pub vips: Vec<Vip>,
}

/// A state change, as observers see it (in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionEvent {
    pub instance: String,
    pub from: State,
    pub to: State,
    pub priority: u8,
}

/// Called on the instance's thread for every transition, in order; keep it
/// short (it delays the state machine).
pub type Observer = Arc<dyn Fn(&TransitionEvent) + Send + Sync>;

enum Cmd {
    Stop,
    External(i32),
    Script(usize, bool),
}

/// A running instance.
pub struct Running {
    name: String,
    cmd: Sender<Cmd>,
    wake: UnixDatagram,
    status: Arc<Mutex<Status>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Starts the instance on its own thread. It begins by removing its
    /// VIPs from the interface (a crashed predecessor may have left them),
    /// then is BACKUP (or FAULT until the interface is usable).
    pub fn spawn(spec: InstanceSpec, observer: Option<Observer>) -> io::Result<Running> {
        let (wake_rx, wake) = UnixDatagram::pair()?;
        wake_rx.set_nonblocking(true)?;
        let (cmd, cmd_rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(Status {
            name: spec.name.clone(),
            interface: spec.interface.clone(),
            vrid: spec.vrid,
            state: State::Init,
            priority: spec.priority,
            base_priority: spec.priority,
            master: None,
            since: SystemTime::now(),
            transitions: 0,
            fault: None,
            vips: spec.vips.clone(),
        }));
        let name = spec.name.clone();
        let st = status.clone();
        let script_tx = cmd.clone();
        let script_wake = wake.try_clone()?;
        let thread = std::thread::Builder::new()
            .name(format!("vrrp-{}", spec.name))
            .spawn(move || {
                let mut d = Driver::new(spec, st, observer, script_tx, script_wake);
                d.run(cmd_rx, wake_rx);
            })?;
        Ok(Running {
            name,
            cmd,
            wake,
            status,
            thread: Some(thread),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets an outside contribution to the priority (the pool's health,
    /// say): added to the tracker weights, the total kept within 1..=254.
    pub fn set_external_delta(&self, delta: i32) {
        let _ = self.cmd.send(Cmd::External(delta));
        let _ = self.wake.send(&[1]);
    }

    /// Clean shutdown; returns when priority 0 has been sent, the VIPs are
    /// removed and the notify hooks have run.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        let _ = self.cmd.send(Cmd::Stop);
        let _ = self.wake.send(&[1]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

struct ScriptRunner {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

struct Driver {
    spec: InstanceSpec,
    fsm: Instance,
    t0: Instant,
    status: Arc<Mutex<Status>>,
    observer: Option<Observer>,
    link: Option<Link>,
    sock: Option<VrrpSocket>,
    sock_error: Option<String>,
    packet: Option<Socket>,
    tracked: Vec<bool>,
    scripts: Vec<Hysteresis>,
    external: i32,
    notify: Option<(Sender<TransitionEvent>, JoinHandle<()>)>,
    runners: Vec<ScriptRunner>,
    warned: HashMap<String, Time>,
    next_link_poll: Time,
}

impl Driver {
    fn new(
        spec: InstanceSpec,
        status: Arc<Mutex<Status>>,
        observer: Option<Observer>,
        script_tx: Sender<Cmd>,
        script_wake: UnixDatagram,
    ) -> Driver {
        let v6 = spec.is_v6();
        let unspecified = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let mut cfg = Config::new(
            spec.version,
            spec.vrid,
            spec.priority,
            spec.interval_cs,
            unspecified,
        );
        cfg.preempt = spec.preempt;
        cfg.preempt_delay = spec.preempt_delay;
        cfg.down_timer_adverts = spec.down_timer_adverts;
        cfg.vips = spec.vips.iter().map(|v| v.addr).collect();
        cfg.auth = spec.auth;
        cfg.peers = spec.unicast_peers.clone();
        cfg.announce_again = spec.garp_delay;
        cfg.announce_refresh = spec.garp_refresh;
        let (ntx, nrx) = mpsc::channel::<TransitionEvent>();
        let notify_spec = spec.notify.clone();
        let notify = std::thread::Builder::new()
            .name(format!("vrrp-notify-{}", spec.name))
            .spawn(move || run_notify(notify_spec, nrx))
            .ok()
            .map(|h| (ntx, h));
        let runners = spec
            .track_scripts
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                spawn_script(
                    i,
                    s.clone(),
                    script_tx.clone(),
                    script_wake.try_clone().ok()?,
                )
            })
            .collect();
        Driver {
            tracked: vec![true; spec.track_interfaces.len()],
            scripts: spec
                .track_scripts
                .iter()
                .map(|s| Hysteresis::new(s.rise, s.fall))
                .collect(),
            fsm: Instance::new(cfg),
            t0: Instant::now(),
            spec,
            status,
            observer,
            link: None,
            sock: None,
            sock_error: None,
            packet: None,
            external: 0,
            notify,
            runners,
            warned: HashMap::new(),
            next_link_poll: 0,
        }
    }

    fn now(&self) -> Time {
        self.t0.elapsed().as_millis() as Time
    }

    fn run(&mut self, cmds: Receiver<Cmd>, wake: UnixDatagram) {
        self.refresh_links();
        let now = self.now();
        self.next_link_poll = now + LINK_POLL;
        let (fault, delta) = self.tracking();
        self.fsm.set_priority_delta(now, delta);
        let acts = self.fsm.start(now, fault.is_some());
        self.execute(acts);
        let mut buf = vec![0u8; 4096];
        'main: loop {
            let now = self.now();
            let deadline = self
                .fsm
                .next_deadline()
                .unwrap_or(Time::MAX)
                .min(self.next_link_poll);
            let wait = deadline.saturating_sub(now).min(LINK_POLL) as u16;
            let (sock_ready, wake_ready) = {
                let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
                if let Some(s) = &self.sock {
                    fds.push(PollFd::new(s.rx_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::from(wait)) {
                    Ok(_) => {
                        let r = |f: &PollFd| f.revents().is_some_and(|e| !e.is_empty());
                        (fds.get(1).is_some_and(r), r(&fds[0]))
                    }
                    Err(nix::errno::Errno::EINTR) => (false, false),
                    Err(e) => {
                        self.warn("poll", &format!("poll failed: {e}"));
                        std::thread::sleep(Duration::from_millis(10));
                        (false, false)
                    }
                }
            };
            if sock_ready {
                self.receive(&mut buf);
            }
            if wake_ready {
                let mut b = [0u8; 64];
                while wake.recv(&mut b).is_ok() {}
            }
            let mut tracking_changed = false;
            while let Ok(c) = cmds.try_recv() {
                match c {
                    Cmd::Stop => break 'main,
                    Cmd::External(d) => {
                        self.external = d;
                        tracking_changed = true;
                    }
                    Cmd::Script(i, ok) => {
                        if let Some(h) = self.scripts.get_mut(i) {
                            if h.feed(ok) {
                                tracing::info!(instance = %self.spec.name, script = %self.spec.track_scripts[i].name,
                                    up = ok, "tracked script changed state");
                                tracking_changed = true;
                            }
                        }
                    }
                }
            }
            let now = self.now();
            if now >= self.next_link_poll {
                self.next_link_poll = now + LINK_POLL;
                tracking_changed |= self.refresh_links();
            }
            if tracking_changed {
                self.apply_tracking(now);
            }
            let acts = self.fsm.on_timer(now);
            self.execute(acts);
        }
        let now = self.now();
        let acts = self.fsm.stop(now);
        self.execute(acts);
        for r in self.runners.drain(..) {
            let _ = r.stop.send(());
            let _ = r.thread.join();
        }
        if let Some((tx, h)) = self.notify.take() {
            drop(tx);
            let _ = h.join();
        }
    }

    /// Why the instance must be in FAULT, and the tracking delta.
    fn tracking(&self) -> (Option<String>, i32) {
        let mut why = None;
        if !self.link.as_ref().is_some_and(|l| l.up) {
            why = Some(format!(
                "interface {} is down or missing",
                self.spec.interface
            ));
        } else if self.sock.is_none() {
            why = Some(format!(
                "cannot open VRRP sockets on {}: {}",
                self.spec.interface,
                self.sock_error
                    .as_deref()
                    .unwrap_or("no usable source address")
            ));
        }
        let effects = self
            .spec
            .track_interfaces
            .iter()
            .zip(&self.tracked)
            .map(|(t, up)| {
                (
                    format!("tracked interface {}", t.name),
                    track::effect(*up, t.weight),
                )
            })
            .chain(
                self.spec
                    .track_scripts
                    .iter()
                    .zip(&self.scripts)
                    .map(|(t, h)| {
                        (
                            format!("tracked script {}", t.name),
                            track::effect(h.is_up(), t.weight),
                        )
                    }),
            )
            .collect::<Vec<_>>();
        if why.is_none() {
            why = effects
                .iter()
                .find(|(_, e)| *e == Effect::Fault)
                .map(|(n, _)| format!("{n} failed"));
        }
        let (_, delta) = track::combine(effects.into_iter().map(|(_, e)| e));
        (why, delta + self.external)
    }

    fn apply_tracking(&mut self, now: Time) {
        let (fault, delta) = self.tracking();
        let mut acts = self.fsm.set_priority_delta(now, delta);
        if let Some(why) = &fault {
            if self.fsm.state() != State::Fault {
                tracing::warn!(instance = %self.spec.name, "fault: {why}");
            }
        }
        acts.extend(self.fsm.set_fault(now, fault.is_some()));
        self.status_mut(|s| s.fault = fault);
        self.execute(acts);
    }

    /// Rereads the interfaces; opens the sockets when possible. Returns
    /// whether anything tracking depends on changed.
    fn refresh_links(&mut self) -> bool {
        let before = (
            self.link.as_ref().map(|l| l.up),
            self.tracked.clone(),
            self.sock.is_some(),
        );
        self.link = match iface::link(&self.spec.interface) {
            Ok(l) => l,
            Err(e) => {
                self.warn(
                    "link",
                    &format!("cannot read interface {}: {e}", self.spec.interface),
                );
                None
            }
        };
        for (i, t) in self.spec.track_interfaces.iter().enumerate() {
            self.tracked[i] = iface::link(&t.name).ok().flatten().is_some_and(|l| l.up);
        }
        let gone = match (&self.link, &self.sock) {
            (Some(l), Some(_)) => !l.up,
            (None, Some(_)) => true,
            _ => false,
        };
        if gone {
            self.sock = None;
        }
        if self.sock.is_none() {
            if let Some(l) = self.link.clone().filter(|l| l.up) {
                self.open_sockets(&l);
            }
        }
        before
            != (
                self.link.as_ref().map(|l| l.up),
                self.tracked.clone(),
                self.sock.is_some(),
            )
    }

    fn open_sockets(&mut self, l: &Link) {
        let v6 = self.spec.is_v6();
        let src = self.spec.unicast_src.or_else(|| {
            if v6 {
                l.link_local().map(IpAddr::V6)
            } else {
                let own = |a: &IpAddr| !self.spec.vips.iter().any(|v| v.addr == *a);
                let mut v4 = l.v4.iter().copied().map(IpAddr::V4);
                // An address owner may have no other address than its VIP.
                let owner = self.spec.priority == crate::fsm::OWNER_PRIORITY;
                v4.clone().find(own).or_else(|| v4.next().filter(|_| owner))
            }
        });
        let Some(src) = src else {
            self.sock_error = Some("no usable source address".into());
            return;
        };
        match VrrpSocket::open(&self.spec.interface, l.index, src, &self.spec.unicast_peers) {
            Ok(s) => {
                tracing::info!(instance = %self.spec.name, %src, interface = %self.spec.interface, "VRRP sockets open");
                self.fsm.set_primary(src);
                self.sock = Some(s);
                self.sock_error = None;
            }
            Err(e) => self.sock_error = Some(e.to_string()),
        }
        if self.packet.is_none() {
            match Socket::new(Domain::PACKET, Type::RAW, None) {
                Ok(p) => self.packet = Some(p),
                Err(e) => self.warn("packet", &format!("cannot open an AF_PACKET socket: {e}")),
            }
        }
    }

    fn receive(&mut self, buf: &mut [u8]) {
        for _ in 0..64 {
            let Some(sock) = &self.sock else { return };
            let r = match sock.recv(buf) {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    self.warn("recv", &format!("bad packet: {e}"));
                    continue;
                }
            };
            if r.ttl != TTL {
                self.warn(
                    &format!("ttl {}", r.src),
                    &format!(
                        "ignored an advert from {} with TTL {} (must be 255)",
                        r.src, r.ttl
                    ),
                );
                continue;
            }
            let adv = match Advert::decode(&buf[r.start..r.end], r.src, r.dst, self.spec.checksum) {
                Ok(a) => a,
                Err(e) => {
                    self.warn(
                        &format!("decode {}", r.src),
                        &format!("ignored a packet from {}: {e}", r.src),
                    );
                    continue;
                }
            };
            let now = self.now();
            let acts = self.fsm.on_advert(now, r.src, &adv);
            self.execute(acts);
        }
    }

    fn execute(&mut self, acts: Vec<Action>) {
        for a in acts {
            match a {
                Action::SendAdvert { priority } => self.send_advert(priority),
                Action::AddVips => self.vips(true),
                Action::RemoveVips => self.vips(false),
                Action::Announce => self.announce(),
                Action::Transition { from, to, priority } => {
                    tracing::info!(instance = %self.spec.name, vrid = self.spec.vrid, %from, %to, priority, "VRRP transition");
                    let master = self.fsm.master();
                    self.status_mut(|s| {
                        s.state = to;
                        s.since = SystemTime::now();
                        s.transitions += 1;
                        s.priority = priority;
                        s.master = master;
                    });
                    let ev = TransitionEvent {
                        instance: self.spec.name.clone(),
                        from,
                        to,
                        priority,
                    };
                    if let Some(o) = &self.observer {
                        o(&ev);
                    }
                    if let Some((tx, _)) = &self.notify {
                        let _ = tx.send(ev);
                    }
                }
                Action::Warn(w) => {
                    let key = format!("{:?}", std::mem::discriminant(&w));
                    self.warn(&key, &w.to_string());
                }
            }
        }
        let (p, m) = (self.fsm.priority(), self.fsm.master());
        self.status_mut(|s| {
            s.priority = p;
            s.master = m;
        });
    }

    fn send_advert(&mut self, priority: u8) {
        let Some(sock) = &self.sock else { return };
        let adv = Advert {
            version: self.spec.version,
            vrid: self.spec.vrid,
            priority,
            interval_cs: self.spec.interval_cs,
            auth: if self.spec.version == Version::V2 {
                self.spec.auth
            } else {
                Auth::None
            },
            addrs: self.spec.vips.iter().map(|v| v.addr).collect(),
        };
        let mut errs = Vec::new();
        for &dst in sock.destinations() {
            let r = adv
                .encode(sock.src(), dst, self.spec.checksum)
                .map_err(|e| e.to_string())
                .and_then(|m| sock.send_to(&m, dst).map_err(|e| e.to_string()));
            if let Err(e) = r {
                errs.push(format!("cannot send an advert to {dst}: {e}"));
            }
        }
        for e in errs {
            self.warn("send", &e);
        }
    }

    fn vips(&mut self, add: bool) {
        // The address owner's VIPs are its own addresses: never taken off.
        if !add && self.spec.priority == crate::fsm::OWNER_PRIORITY {
            return;
        }
        let Some(index) = self.link.as_ref().map(|l| l.index) else {
            return;
        };
        for vip in self.spec.vips.clone() {
            let r = if add {
                netlink::add_vip(index, vip).map(|_| true)
            } else {
                netlink::del_vip(index, vip)
            };
            match r {
                Ok(true) => {
                    tracing::info!(instance = %self.spec.name, %vip, interface = %self.spec.interface,
                    "{} VIP", if add { "added" } else { "removed" })
                }
                Ok(false) => {}
                Err(e) => tracing::error!(instance = %self.spec.name, %vip,
                    "cannot {} the VIP: {e}", if add { "add" } else { "remove" }),
            }
        }
    }

    fn announce(&mut self) {
        let (Some(p), Some(l)) = (&self.packet, &self.link) else {
            return;
        };
        let Some(mac) = l.mac else { return };
        let mut err = None;
        for _ in 0..self.spec.garp_repeat.max(1) {
            for vip in &self.spec.vips {
                let frame = match vip.addr {
                    IpAddr::V4(a) => gratuitous_arp(mac, a),
                    IpAddr::V6(a) => unsolicited_na(mac, a),
                };
                if let Err(e) = crate::sys::send_frame(p.as_fd(), l.index, &frame) {
                    err = Some(e);
                }
            }
        }
        if let Some(e) = err {
            self.warn("announce", &format!("cannot send gratuitous ARP / NA: {e}"));
        }
    }

    fn warn(&mut self, key: &str, msg: &str) {
        let now = self.now();
        match self.warned.get(key) {
            Some(&t) if now < t + WARN_EVERY => {
                tracing::debug!(instance = %self.spec.name, "{msg}")
            }
            _ => {
                self.warned.insert(key.to_string(), now);
                tracing::warn!(instance = %self.spec.name, "{msg}");
            }
        }
    }

    fn status_mut(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

fn spawn_script(
    i: usize,
    s: TrackScript,
    tx: Sender<Cmd>,
    wake: UnixDatagram,
) -> Option<ScriptRunner> {
    let (stop, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("vrrp-script-{}", s.name))
        .spawn(move || loop {
            let started = Instant::now();
            let ok = match track::run_command(&s.argv, Duration::from_millis(s.timeout.max(1))) {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::warn!(script = %s.name, "cannot run the tracked script: {e}");
                    false
                }
            };
            if tx.send(Cmd::Script(i, ok)).is_err() {
                return;
            }
            let _ = wake.send(&[1]);
            let left = Duration::from_millis(s.interval).saturating_sub(started.elapsed());
            match stop_rx.recv_timeout(left) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        })
        .ok()?;
    Some(ScriptRunner { stop, thread })
}

fn run_notify(n: Notify, events: Receiver<TransitionEvent>) {
    let timeout = Duration::from_millis(if n.timeout == 0 { 30_000 } else { n.timeout });
    for ev in events {
        let specific = match ev.to {
            State::Master => &n.master,
            State::Backup => &n.backup,
            State::Fault => &n.fault,
            State::Stop => &n.stop,
            State::Init => continue,
        };
        let mut runs = Vec::new();
        if !specific.is_empty() {
            runs.push(specific.clone());
        }
        if !n.any.is_empty() {
            let mut argv = n.any.clone();
            argv.extend([
                "INSTANCE".to_string(),
                ev.instance.clone(),
                ev.to.name().to_string(),
                ev.priority.to_string(),
            ]);
            runs.push(argv);
        }
        for argv in runs {
            match track::run_command(&argv, timeout) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(instance = %ev.instance, "notify {:?} failed or timed out", argv[0])
                }
                Err(e) => {
                    tracing::warn!(instance = %ev.instance, "cannot run notify {:?}: {e}", argv[0])
                }
            }
        }
    }
}
