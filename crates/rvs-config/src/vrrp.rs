//! What rvs.toml says about director failover, as plain data: the
//! `[[vrrp]]` instances (keepalived's `vrrp_instance`), with their tracked
//! interfaces and scripts and notify hooks. The daemon turns each into a
//! running `rvs_vrrp` instance; nothing here runs. Parsed in
//! `parse/vrrp.rs`, written back by [`write_vrrp`].

use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::net::IpAddr;

/// Default priority (keepalived's).
pub const VRRP_DEFAULT_PRIORITY: u8 = 100;
/// Default advert interval, centiseconds (1 s).
pub const VRRP_DEFAULT_INTERVAL_CS: u16 = 100;
/// Longest preemption delay, seconds (keepalived's limit).
pub const VRRP_MAX_PREEMPT_DELAY_S: f64 = 1000.0;
/// keepalived's tracking weight limit.
pub const VRRP_MAX_WEIGHT: i64 = 253;

/// The protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VrrpVersion {
    V2,
    V3,
}

impl VrrpVersion {
    pub fn number(self) -> u8 {
        match self {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        }
    }
}

/// The VRRPv3-over-IPv4 checksum form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum VrrpChecksum {
    /// With the IPv4 pseudo-header, as keepalived.
    #[default]
    Keepalived,
    /// Without, as RFC 9568 (Cisco, Juniper, FRR).
    Rfc9568,
}

impl VrrpChecksum {
    pub fn name(self) -> &'static str {
        match self {
            VrrpChecksum::Keepalived => "keepalived",
            VrrpChecksum::Rfc9568 => "rfc9568",
        }
    }
}

/// A virtual address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VrrpVip {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// `[[vrrp.track_interface]]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VrrpTrackInterface {
    pub name: String,
    /// 0: FAULT while down; > 0: added while up; < 0: added while down.
    pub weight: i32,
}

/// `[[vrrp.track_service]]`: the pool's health. While the service has
/// lost quorum (its health checks say too few real servers are up),
/// `weight` (negative) is added to the priority, so that a backup whose
/// pool is healthy takes over.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VrrpTrackService {
    pub service: rvs_core::ServiceKey,
    /// -253..=-1.
    pub weight: i32,
}

/// `[[vrrp.track_script]]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VrrpTrackScript {
    /// For logs; defaults to the program's name.
    pub name: String,
    /// argv, no shell.
    pub command: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub rise: u32,
    pub fall: u32,
    pub weight: i32,
}

/// Notify hooks (argv each, no shell), run in transition order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct VrrpNotify {
    pub master: Vec<String>,
    pub backup: Vec<String>,
    pub fault: Vec<String>,
    pub stop: Vec<String>,
    /// Every transition, with `INSTANCE <name> <STATE> <priority>` appended.
    pub any: Vec<String>,
    pub timeout_ms: u64,
}

/// Default notify timeout, ms.
pub const VRRP_DEFAULT_NOTIFY_TIMEOUT_MS: u64 = 30_000;

/// One `[[vrrp]]` instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub virtual_router_id: u8,
    pub priority: u8,
    pub version: VrrpVersion,
    /// Centiseconds (VRRPv2: a multiple of 100).
    pub advert_interval_cs: u16,
    /// At least one, all of one family.
    pub vips: Vec<VrrpVip>,
    pub unicast_src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    /// VRRPv2 simple password (1..=8 bytes).
    pub auth_pass: Option<String>,
    pub preempt: bool,
    pub preempt_delay_ms: u64,
    pub checksum: VrrpChecksum,
    pub down_timer_adverts: u32,
    pub garp_repeat: u32,
    /// Second burst after becoming master; 0 = none.
    pub garp_delay_ms: u64,
    /// Periodic bursts while master; 0 = off.
    pub garp_refresh_ms: u64,
    pub track_interfaces: Vec<VrrpTrackInterface>,
    pub track_scripts: Vec<VrrpTrackScript>,
    pub track_services: Vec<VrrpTrackService>,
    pub notify: VrrpNotify,
}

impl VrrpInstance {
    /// An instance with the defaults (as parsing fills them in).
    pub fn new(name: &str, interface: &str, vrid: u8, vips: Vec<VrrpVip>) -> VrrpInstance {
        let v6 = vips.first().is_some_and(|v| v.addr.is_ipv6());
        VrrpInstance {
            name: name.into(),
            interface: interface.into(),
            virtual_router_id: vrid,
            priority: VRRP_DEFAULT_PRIORITY,
            version: if v6 { VrrpVersion::V3 } else { VrrpVersion::V2 },
            advert_interval_cs: VRRP_DEFAULT_INTERVAL_CS,
            vips,
            unicast_src: None,
            unicast_peers: Vec::new(),
            auth_pass: None,
            preempt: false,
            preempt_delay_ms: 0,
            checksum: VrrpChecksum::Keepalived,
            down_timer_adverts: 3,
            garp_repeat: 5,
            garp_delay_ms: 5_000,
            garp_refresh_ms: 0,
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_services: Vec::new(),
            notify: VrrpNotify {
                timeout_ms: VRRP_DEFAULT_NOTIFY_TIMEOUT_MS,
                ..VrrpNotify::default()
            },
        }
    }
}

fn quote(s: &str) -> String {
    crate::write::quote(s)
}

fn strings(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Milliseconds as TOML seconds: an integer when whole, else a float.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}", ms as f64 / 1000.0)
    }
}

/// Appends the `[[vrrp]]` tables, every key written so that parsing gives
/// the same instances back.
pub fn write_vrrp(o: &mut String, list: &[VrrpInstance]) {
    for v in list {
        let _ = writeln!(o, "\n[[vrrp]]");
        let _ = writeln!(o, "name = {}", quote(&v.name));
        let _ = writeln!(o, "interface = {}", quote(&v.interface));
        let _ = writeln!(o, "virtual_router_id = {}", v.virtual_router_id);
        let _ = writeln!(o, "priority = {}", v.priority);
        let _ = writeln!(o, "version = {}", v.version.number());
        let _ = writeln!(
            o,
            "advert_interval = {}",
            seconds(u64::from(v.advert_interval_cs) * 10)
        );
        let vips: Vec<String> = v
            .vips
            .iter()
            .map(|x| format!("{}/{}", x.addr, x.prefix))
            .collect();
        let _ = writeln!(o, "vips = {}", strings(&vips));
        if let Some(s) = v.unicast_src {
            let _ = writeln!(o, "unicast_src = {}", quote(&s.to_string()));
        }
        if !v.unicast_peers.is_empty() {
            let p: Vec<String> = v.unicast_peers.iter().map(|a| a.to_string()).collect();
            let _ = writeln!(o, "unicast_peers = {}", strings(&p));
        }
        if let Some(p) = &v.auth_pass {
            let _ = writeln!(o, "auth_pass = {}", quote(p));
        }
        let _ = writeln!(o, "preempt = {}", v.preempt);
        if v.preempt_delay_ms > 0 {
            let _ = writeln!(o, "preempt_delay = {}", seconds(v.preempt_delay_ms));
        }
        if v.version == VrrpVersion::V3 {
            let _ = writeln!(o, "checksum = {}", quote(v.checksum.name()));
        }
        let _ = writeln!(o, "down_timer_adverts = {}", v.down_timer_adverts);
        let _ = writeln!(o, "garp_repeat = {}", v.garp_repeat);
        let _ = writeln!(o, "garp_delay = {}", seconds(v.garp_delay_ms));
        let _ = writeln!(o, "garp_refresh = {}", seconds(v.garp_refresh_ms));
        let n = &v.notify;
        for (key, argv) in [
            ("notify_master", &n.master),
            ("notify_backup", &n.backup),
            ("notify_fault", &n.fault),
            ("notify_stop", &n.stop),
            ("notify", &n.any),
        ] {
            if !argv.is_empty() {
                let _ = writeln!(o, "{key} = {}", strings(argv));
            }
        }
        let _ = writeln!(o, "notify_timeout = {}", seconds(n.timeout_ms));
        for t in &v.track_interfaces {
            let _ = writeln!(o, "\n[[vrrp.track_interface]]");
            let _ = writeln!(o, "name = {}\nweight = {}", quote(&t.name), t.weight);
        }
        for t in &v.track_services {
            let _ = writeln!(o, "\n[[vrrp.track_service]]");
            let _ = writeln!(
                o,
                "service = {}\nweight = {}",
                quote(&crate::addr::format_service_name(&t.service)),
                t.weight
            );
        }
        for s in &v.track_scripts {
            let _ = writeln!(o, "\n[[vrrp.track_script]]");
            let _ = writeln!(o, "name = {}", quote(&s.name));
            let _ = writeln!(o, "command = {}", strings(&s.command));
            let _ = writeln!(o, "interval = {}", seconds(s.interval_ms));
            let _ = writeln!(o, "timeout = {}", seconds(s.timeout_ms));
            let _ = writeln!(
                o,
                "rise = {}\nfall = {}\nweight = {}",
                s.rise, s.fall, s.weight
            );
        }
    }
}
