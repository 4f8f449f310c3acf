//! The loaded BPF program and its maps: loading (with maps pinned by name
//! under a bpffs directory, so a restarted rvsd finds the connections
//! where it left them), attaching to an interface, and running the program
//! on a frame through `BPF_PROG_TEST_RUN` (fixtures, benchmarks, and the
//! re-injection of first packets userspace scheduled).

use crate::maps;
use libbpf_rs::{MapCore, MapFlags, MapHandle, Object, ObjectBuilder, ProgramInput, Xdp, XdpFlags};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The compiled program (built by build.rs from `bpf/rvs_xdp.bpf.c`).
pub const XDP_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rvs_xdp.bpf.o"));

/// `BPF_F_TEST_XDP_LIVE_FRAMES`: the run's verdicts really transmit.
const TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// An error of the xdp engine, with what it was doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub(crate) fn err(what: impl std::fmt::Display) -> impl FnOnce(libbpf_rs::Error) -> Error {
    move |e| Error(format!("{what}: {e}"))
}

/// XDP verdicts.
pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic mode.
    #[default]
    Auto,
    /// Native mode only.
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Generic,
}

/// The result of one test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub verdict: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
    /// Mean time per run as the kernel measured it.
    pub duration: Duration,
}

/// The program and its maps.
pub struct Datapath {
    obj: Object,
    pin_dir: PathBuf,
    pub(crate) services: MapHandle,
    pub(crate) svc_pos: MapHandle,
    pub(crate) ring: MapHandle,
    pub(crate) dests: MapHandle,
    pub(crate) nexthops: MapHandle,
    pub(crate) conn4: MapHandle,
    pub(crate) conn6: MapHandle,
    pub(crate) nat4: MapHandle,
    pub(crate) nat6: MapHandle,
    pub(crate) stats: MapHandle,
    pub(crate) config: MapHandle,
    pub(crate) marks: MapHandle,
    pub(crate) ifmac: MapHandle,
    pub(crate) events: MapHandle,
    pub(crate) addrs: MapHandle,
    /// Whether the maps were created by this load (none was pinned yet):
    /// then every real-server slot's counters and next hop start at zero.
    pub(crate) fresh_maps: bool,
    attached: std::sync::Mutex<Option<(i32, u32)>>,
}

impl std::fmt::Debug for Datapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datapath")
            .field("pin_dir", &self.pin_dir)
            .field("attached", &self.attached())
            .finish()
    }
}

/// The map names that are pinned (everything but the per-CPU punt budget
/// and the event ring).
pub const PINNED_MAPS: [&str; 13] = [
    "rvs_services",
    "rvs_svc_pos",
    "rvs_ring",
    "rvs_dests",
    "rvs_nexthops",
    "rvs_conn4",
    "rvs_conn6",
    "rvs_nat4",
    "rvs_nat6",
    "rvs_stats",
    "rvs_config",
    "rvs_marks",
    "rvs_addrs",
];

impl Datapath {
    /// Loads the program. Its maps are pinned by name under `pin_dir` (a
    /// directory on a bpffs mount, created if missing); maps already
    /// pinned there are reused with their contents.
    pub fn load(pin_dir: &Path) -> Result<Datapath, Error> {
        std::fs::create_dir_all(pin_dir)
            .map_err(|e| Error(format!("cannot create {}: {e}", pin_dir.display())))?;
        let fresh_maps = !pin_dir.join("rvs_stats").exists();
        let mut b = ObjectBuilder::default();
        b.pin_root_path(pin_dir)
            .map_err(err(format!("pin directory {}", pin_dir.display())))?;
        let open = b
            .open_memory(XDP_OBJECT)
            .map_err(err("opening the BPF object"))?;
        let obj = open.load().map_err(err(
            "loading the BPF program (needs root or CAP_BPF+CAP_NET_ADMIN, and Linux >= 5.18)",
        ))?;
        let map = |name: &str| -> Result<MapHandle, Error> {
            let m = obj
                .maps()
                .find(|m| m.name() == name)
                .ok_or_else(|| Error(format!("BPF object has no map {name}")))?;
            MapHandle::try_from(&m).map_err(err(format!("map {name}")))
        };
        let d = Datapath {
            services: map("rvs_services")?,
            svc_pos: map("rvs_svc_pos")?,
            ring: map("rvs_ring")?,
            dests: map("rvs_dests")?,
            nexthops: map("rvs_nexthops")?,
            conn4: map("rvs_conn4")?,
            conn6: map("rvs_conn6")?,
            nat4: map("rvs_nat4")?,
            nat6: map("rvs_nat6")?,
            stats: map("rvs_stats")?,
            config: map("rvs_config")?,
            marks: map("rvs_marks")?,
            ifmac: map("rvs_ifmac")?,
            events: map("rvs_events")?,
            addrs: map("rvs_addrs")?,
            fresh_maps,
            obj,
            pin_dir: pin_dir.to_path_buf(),
            attached: std::sync::Mutex::new(None),
        };
        let now = d.read_jiffies()? as u32;
        // Maps pinned by a loader from before the jiffies clock: their
        // entries' `seen` is in another unit; they count as active now.
        let flags = d
            .config
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)))
            .unwrap_or(0);
        if !fresh_maps && flags & maps::CFG_JIFFIES == 0 {
            for (m, (k, mut v)) in [&d.conn4, &d.conn6]
                .into_iter()
                .flat_map(|m| d.conns_of(m).into_iter().map(move |e| (m, e)))
            {
                v.seen = now;
                let _ = m.update(&k.encode(), &v.encode(), MapFlags::EXIST);
            }
            let budget = d
                .config
                .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|v| Some(u32::from_ne_bytes(v.get(4..8)?.try_into().ok()?)))
                .unwrap_or(20_000);
            d.set_config(flags, budget)?;
        }
        Ok(d)
    }

    /// Where the maps are pinned.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    fn with_prog<T>(&self, f: impl FnOnce(&libbpf_rs::ProgramMut<'_>) -> T) -> Result<T, Error> {
        self.with_named_prog("rvs_xdp", f)
    }

    fn with_named_prog<T>(
        &self,
        name: &str,
        f: impl FnOnce(&libbpf_rs::ProgramMut<'_>) -> T,
    ) -> Result<T, Error> {
        let p = self
            .obj
            .progs_mut()
            .find(|p| p.name() == name)
            .ok_or_else(|| Error(format!("BPF object has no program {name}")))?;
        Ok(f(&p))
    }

    /// Reads the kernel's jiffies (the program's clock for `seen`) and
    /// sets [`jiffies_now`]'s reference to them.
    pub fn read_jiffies(&self) -> Result<u64, Error> {
        let frame = [0u8; 64];
        let mut out = vec![0u8; 64 + 256];
        let r = self.with_named_prog("rvs_clock", |p| {
            let input = ProgramInput {
                data_in: Some(&frame),
                data_out: Some(&mut out),
                repeat: 1,
                ..Default::default()
            };
            p.test_run(input).map(|o| o.return_value)
        })?;
        let verdict = r.map_err(err("reading the kernel's jiffies"))?;
        if verdict != XDP_PASS {
            return Err(Error("reading the kernel's jiffies: no answer".into()));
        }
        let j = u64::from_ne_bytes(out[..8].try_into().unwrap_or([0; 8]));
        let mut c = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
        *c = Some((j, mono_ns()));
        Ok(j)
    }

    /// Attaches the program to interface `ifindex`, atomically replacing
    /// any XDP program there (a restarted rvsd takes over without a gap).
    pub fn attach(&self, ifindex: i32, mode: AttachMode) -> Result<(), Error> {
        let try_mode = |flags: XdpFlags| {
            self.with_prog(|p| Xdp::new(p.as_fd()).attach(ifindex, flags))
                .and_then(|r| r.map_err(err("attaching XDP")))
        };
        let flags = match mode {
            AttachMode::Native => {
                try_mode(XdpFlags::DRV_MODE)?;
                XdpFlags::DRV_MODE
            }
            AttachMode::Generic => {
                try_mode(XdpFlags::SKB_MODE)?;
                XdpFlags::SKB_MODE
            }
            AttachMode::Auto => match try_mode(XdpFlags::DRV_MODE) {
                Ok(()) => XdpFlags::DRV_MODE,
                Err(e) => {
                    tracing::warn!("native XDP refused ({e}); using generic mode");
                    try_mode(XdpFlags::SKB_MODE)?;
                    XdpFlags::SKB_MODE
                }
            },
        };
        *self.attached.lock().unwrap_or_else(|p| p.into_inner()) = Some((ifindex, flags.bits()));
        Ok(())
    }

    /// Whether the program runs in native mode (if attached).
    pub fn native(&self) -> Option<bool> {
        self.attached().map(|(_, f)| f == XdpFlags::DRV_MODE.bits())
    }

    fn attached(&self) -> Option<(i32, u32)> {
        *self.attached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Detaches the program (the pinned maps stay).
    pub fn detach(&self) -> Result<(), Error> {
        let taken = self
            .attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((ifindex, flags)) = taken {
            self.with_prog(|p| {
                Xdp::new(p.as_fd()).detach(ifindex, XdpFlags::from_bits_truncate(flags))
            })?
            .map_err(err("detaching XDP"))?;
        }
        Ok(())
    }

    /// Runs the program once (or `repeat` times) on `frame` as if it
    /// arrived on interface `ifindex`; nothing is sent.
    pub fn test_run(&self, frame: &[u8], ifindex: u32, repeat: u32) -> Result<RunResult, Error> {
        let mut ctx = xdp_md(frame.len(), ifindex);
        let mut out = vec![0u8; frame.len() + 256];
        let r = self.with_prog(|p| {
            let input = ProgramInput {
                data_in: Some(frame),
                data_out: Some(&mut out),
                context_in: Some(&mut ctx),
                repeat,
                ..Default::default()
            };
            p.test_run(input).map(|o| {
                (
                    o.return_value,
                    o.data.map(|d| d.len()).unwrap_or(0),
                    o.duration,
                )
            })
        })?;
        let (verdict, len, duration) = r.map_err(err("BPF_PROG_TEST_RUN"))?;
        out.truncate(len);
        Ok(RunResult {
            verdict,
            frame: out,
            duration,
        })
    }

    /// Runs the program on `frame` in live mode: its verdict takes effect
    /// (XDP_TX leaves through `ifindex`, XDP_PASS enters the stack). Used
    /// to send on a first packet after userspace scheduled it.
    pub fn inject(&self, frame: &[u8], ifindex: u32) -> Result<(), Error> {
        let mut ctx = xdp_md(frame.len(), ifindex);
        self.with_prog(|p| {
            let input = ProgramInput {
                data_in: Some(frame),
                context_in: Some(&mut ctx),
                flags: TEST_XDP_LIVE_FRAMES,
                repeat: 1,
                ..Default::default()
            };
            p.test_run(input).map(|_| ())
        })?
        .map_err(err("re-injecting a packet (BPF_F_TEST_XDP_LIVE_FRAMES)"))
    }

    /// Sets the engine-wide options.
    pub fn set_config(&self, flags: u32, punt_budget: u32) -> Result<(), Error> {
        self.config
            .update(
                &0u32.to_ne_bytes(),
                &maps::config(flags | maps::CFG_JIFFIES, punt_budget),
                MapFlags::ANY,
            )
            .map_err(err("config map"))
    }

    /// Sets the MAC address of the interface the program serves: frames
    /// for any other destination (another host's unicast on a promiscuous
    /// interface, broadcast, multicast) then pass to the kernel untouched.
    /// `None` (the state after loading) examines every frame. Not pinned:
    /// each loaded program has its own.
    pub fn set_ifmac(&self, mac: Option<[u8; 6]>) -> Result<(), Error> {
        self.ifmac
            .update(&0u32.to_ne_bytes(), &maps::ifmac(mac), MapFlags::ANY)
            .map_err(err("interface MAC map"))
    }

    /// Replaces the firewall-mark classification with `rules` (see
    /// [`crate::marks`]); returns what [`crate::marks::compile`] reported.
    /// The program consults it only while the config flag
    /// [`maps::CFG_MARKS`] is set.
    pub fn set_marks(
        &self,
        rules: &[crate::marks::MarkRule],
    ) -> Result<Vec<(crate::marks::MarkRule, String)>, Error> {
        let (entries, problems) = crate::marks::compile(rules);
        let keep: std::collections::HashSet<&[u8]> =
            entries.iter().map(|(k, _)| k.as_slice()).collect();
        let old: Vec<Vec<u8>> = self.marks.keys().collect();
        for k in old {
            if !keep.contains(k.as_slice()) {
                let _ = self.marks.delete(&k);
            }
        }
        for (k, v) in &entries {
            self.marks
                .update(k, v, MapFlags::ANY)
                .map_err(err("firewall-mark map"))?;
        }
        Ok(problems)
    }

    /// The per-CPU counters of real-server slot `slot`, summed.
    pub fn dest_stats(&self, slot: u32) -> Result<maps::DestStats, Error> {
        let mut s = maps::DestStats::default();
        if let Some(per_cpu) = self
            .stats
            .lookup_percpu(&slot.to_ne_bytes(), MapFlags::ANY)
            .map_err(err("stats map"))?
        {
            for v in per_cpu {
                s.add_encoded(&v);
            }
        }
        Ok(s)
    }

    /// Every connection entry (IPv4 and IPv6) with its value.
    pub fn conns(&self) -> Vec<(maps::ConnKey, maps::ConnVal)> {
        let mut out = self.conns_of(&self.conn4);
        out.extend(self.conns_of(&self.conn6));
        out
    }

    fn conns_of(&self, m: &MapHandle) -> Vec<(maps::ConnKey, maps::ConnVal)> {
        let mut out = Vec::new();
        for k in m.keys() {
            let (Some(key), Ok(Some(v))) = (maps::ConnKey::decode(&k), m.lookup(&k, MapFlags::ANY))
            else {
                continue;
            };
            if let Some(val) = maps::ConnVal::decode(&v) {
                out.push((key, val));
            }
        }
        out
    }

    /// The entry of one connection.
    pub fn conn(&self, key: &maps::ConnKey) -> Option<maps::ConnVal> {
        let m = if key.is_v4() {
            &self.conn4
        } else {
            &self.conn6
        };
        m.lookup(&key.encode(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| maps::ConnVal::decode(&v))
    }

    /// Installs a connection entry (and the NAT reply entry when `nat`
    /// names the real server's address and port).
    pub fn put_conn(
        &self,
        key: &maps::ConnKey,
        val: &maps::ConnVal,
        nat: Option<(std::net::IpAddr, u16)>,
    ) -> Result<(), Error> {
        let (m, n) = if key.is_v4() {
            (&self.conn4, &self.nat4)
        } else {
            (&self.conn6, &self.nat6)
        };
        m.update(&key.encode(), &val.encode(), MapFlags::ANY)
            .map_err(err("connection map"))?;
        if let Some((raddr, rport)) = nat {
            n.update(&key.nat_key(&raddr, rport), &key.nat_val(), MapFlags::ANY)
                .map_err(err("NAT map"))?;
        }
        Ok(())
    }

    /// Removes a connection entry and its NAT reply entry.
    pub fn delete_conn(&self, key: &maps::ConnKey, nat: Option<(std::net::IpAddr, u16)>) {
        let (m, n) = if key.is_v4() {
            (&self.conn4, &self.nat4)
        } else {
            (&self.conn6, &self.nat6)
        };
        let _ = m.delete(&key.encode());
        if let Some((raddr, rport)) = nat {
            let _ = n.delete(&key.nat_key(&raddr, rport));
        }
    }

    /// Sets a virtual service (`addr`:`port`, IP protocol `proto`).
    pub fn set_service(
        &self,
        addr: &std::net::IpAddr,
        port: u16,
        proto: u8,
        svc: &maps::Svc,
    ) -> Result<(), Error> {
        self.filter_addr(addr, maps::ADDR_VIP)?;
        self.services
            .update(
                &maps::svc_key(addr, port, proto),
                &svc.encode(),
                MapFlags::ANY,
            )
            .map_err(err("service map"))
    }

    /// Adds `bits` (`maps::ADDR_VIP`, `ADDR_NATRS`) for `addr` to the
    /// address pre-filter (`set_service` and `set_dest` do it).
    pub fn filter_addr(&self, addr: &std::net::IpAddr, bits: u64) -> Result<(), Error> {
        let (w, sh) = maps::addr_filter_pos(addr);
        let k = (w as u32).to_ne_bytes();
        let old = self
            .addrs
            .lookup(&k, MapFlags::ANY)
            .map_err(err("address filter"))?
            .and_then(|v| Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?)))
            .unwrap_or(0);
        self.addrs
            .update(&k, &(old | bits << sh).to_ne_bytes(), MapFlags::ANY)
            .map_err(err("address filter"))
    }

    /// Writes the address pre-filter's words that differ from `old` (all
    /// of them without it).
    pub(crate) fn write_filter(&self, new: &[u64], old: Option<&[u64]>) -> Result<(), Error> {
        let mut keys = Vec::new();
        let mut vals = Vec::new();
        for (i, w) in new.iter().enumerate() {
            if old.and_then(|o| o.get(i)) != Some(w) {
                keys.extend_from_slice(&(i as u32).to_ne_bytes());
                vals.extend_from_slice(&w.to_ne_bytes());
            }
        }
        if keys.is_empty() {
            return Ok(());
        }
        self.addrs
            .update_batch(
                &keys,
                &vals,
                (keys.len() / 4) as u32,
                MapFlags::ANY,
                MapFlags::ANY,
            )
            .map_err(err("address filter"))
    }

    /// Virtual service `addr`:`port` (IP protocol `proto`) as the program
    /// has it, and the position of its ring (`rvs_svc_pos`: picks made).
    pub fn service(
        &self,
        addr: &std::net::IpAddr,
        port: u16,
        proto: u8,
    ) -> Option<(maps::Svc, u64)> {
        let svc = self
            .services
            .lookup(&maps::svc_key(addr, port, proto), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| maps::Svc::decode(&v))?;
        let pos = self
            .svc_pos
            .lookup(&svc.id.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?)))?;
        Some((svc, pos))
    }

    /// Sets firewall-mark service `mark` of family `af` (`maps::AF_INET`
    /// or `AF_INET6`).
    pub fn set_fwmark_service(&self, mark: u32, af: u8, svc: &maps::Svc) -> Result<(), Error> {
        self.services
            .update(
                &maps::fwmark_svc_key(mark, af),
                &svc.encode(),
                MapFlags::ANY,
            )
            .map_err(err("service map"))
    }

    /// Sets real-server slot `slot` (and forgets its cached next hop).
    pub fn set_dest(&self, slot: u32, d: &maps::DestVal) -> Result<(), Error> {
        if d.fwd == maps::FWD_MASQ {
            self.filter_addr(&d.addr, maps::ADDR_NATRS)?;
        }
        self.dests
            .update(&slot.to_ne_bytes(), &d.encode(), MapFlags::ANY)
            .map_err(err("dest map"))?;
        self.nexthops
            .update(
                &slot.to_ne_bytes(),
                &maps::nexthop([0; 6], [0; 6], 0, false),
                MapFlags::ANY,
            )
            .map_err(err("nexthop map"))
    }

    /// Writes real-server slots into the ring from index `off`.
    pub fn set_ring(&self, off: u32, slots: &[u32]) -> Result<(), Error> {
        if slots.is_empty() {
            return Ok(());
        }
        let keys: Vec<u8> = (0..slots.len() as u32)
            .flat_map(|i| (off + i).to_ne_bytes())
            .collect();
        let vals: Vec<u8> = slots.iter().flat_map(|v| v.to_ne_bytes()).collect();
        self.ring
            .update_batch(
                &keys,
                &vals,
                slots.len() as u32,
                MapFlags::ANY,
                MapFlags::ANY,
            )
            .map_err(err("ring map"))
    }

    /// Drains the event ring: first packets handed to userspace, neighbour
    /// misses and NAT replies to send through the kernel, in order.
    pub fn drain_events(&self) -> Vec<maps::Event> {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let o = out.clone();
        let mut b = libbpf_rs::RingBufferBuilder::new();
        if b.add(&self.events, move |data: &[u8]| {
            if let Some(e) = maps::Event::decode(data) {
                o.lock().unwrap_or_else(|p| p.into_inner()).push(e);
            }
            0
        })
        .is_ok()
        {
            if let Ok(rb) = b.build() {
                let _ = rb.consume();
            }
        }
        let v = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
        v
    }

    /// Removes the pinned maps (their contents go when the last user
    /// closes them).
    pub fn unpin(&self) {
        for name in PINNED_MAPS {
            let _ = std::fs::remove_file(self.pin_dir.join(name));
        }
        let _ = std::fs::remove_dir(&self.pin_dir);
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

/// `struct xdp_md` for a test run: data 0, data_end = the frame's length.
/// The last reading of the kernel's jiffies and the monotonic time then.
static CLOCK: std::sync::Mutex<Option<(u64, u64)>> = std::sync::Mutex::new(None);

fn mono_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The length of a jiffy in ns: the coarse clocks' resolution (1 / HZ).
pub(crate) fn jiffy_ns() -> u64 {
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        nix::time::clock_getres(nix::time::ClockId::CLOCK_MONOTONIC_COARSE)
            .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
            .ok()
            .filter(|&ns| (100_000..=100_000_000).contains(&ns))
            .unwrap_or(4_000_000)
    })
}

/// The kernel's jiffies now, from the last [`Datapath::read_jiffies`]
/// and the monotonic clock since (jiffies follow it); the monotonic clock
/// in jiffies before any reading.
pub(crate) fn jiffies_now() -> u64 {
    let c = *CLOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (j0, t0) = c.unwrap_or((0, 0));
    j0 + mono_ns().saturating_sub(t0) / jiffy_ns()
}

fn xdp_md(len: usize, ifindex: u32) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(24);
    for v in [0u32, len as u32, 0, ifindex, 0, 0] {
        ctx.extend_from_slice(&v.to_ne_bytes());
    }
    ctx
}
