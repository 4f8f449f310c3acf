//! Director failover in rvsd: one `rvs_vrrp` instance per `[[vrrp]]` table
//! of the configuration, started once the engine listens, kept across a
//! reload when its table did not change, and stopped cleanly (priority 0,
//! VIPs removed, STOP hooks run) on SIGTERM/SIGINT before rvsd exits.
//!
//! The VIPs rvsd may put on interfaces are recorded in
//! `state-dir/vrrp-vips` before any instance starts, so that after a crash
//! an rvsd whose configuration no longer lists a VIP still removes it (the
//! instances themselves remove their configured VIPs when they start).
//!
//! Connection sync follows the instances: while rvsd runs VRRP instances,
//! its sync master sends only while at least one of them is MASTER
//! ([`sends_sync`]; the backup daemon always receives), so a backup never
//! sends back what it received. See docs/failover.md, "Sync roles".
//!
//! Lock order: the control state (`Shared`), then [`FAILOVER`]; nothing
//! here takes another lock. [`ROLES`] is taken alone (the instances'
//! observers set it on their own threads).

use rvs_config::{VrrpChecksum, VrrpInstance, VrrpVersion};
use rvs_vrrp::{
    Auth, ChecksumMode, InstanceSpec, Notify, Running, State, Status, TrackInterface, TrackScript,
    Version, Vip,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The running instances of this rvsd.
static FAILOVER: Mutex<Option<Failover>> = Mutex::new(None);

struct Failover {
    running: Vec<(VrrpInstance, Running)>,
    record: PathBuf,
}

fn lock() -> std::sync::MutexGuard<'static, Option<Failover>> {
    FAILOVER.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether each running instance is MASTER, by name, as its observer last
/// reported (taken alone: observers run on the instances' threads).
static ROLES: Mutex<BTreeMap<String, bool>> = Mutex::new(BTreeMap::new());

fn roles() -> std::sync::MutexGuard<'static, BTreeMap<String, bool>> {
    ROLES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether this rvsd's sync master may send: always without VRRP
/// instances, else while at least one instance is MASTER.
pub fn sends_sync() -> bool {
    let r = roles();
    r.is_empty() || r.values().any(|&m| m)
}

/// The driver's view of one `[[vrrp]]` table.
pub fn spec(v: &VrrpInstance) -> InstanceSpec {
    let vips = v
        .vips
        .iter()
        .map(|x| Vip {
            addr: x.addr,
            prefix: x.prefix,
        })
        .collect();
    let mut s = InstanceSpec::new(&v.name, &v.interface, v.virtual_router_id, vips);
    s.version = match v.version {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    };
    s.priority = v.priority;
    s.interval_cs = v.advert_interval_cs;
    s.preempt = v.preempt;
    s.preempt_delay = v.preempt_delay_ms;
    s.down_timer_adverts = v.down_timer_adverts;
    s.unicast_src = v.unicast_src;
    s.unicast_peers = v.unicast_peers.clone();
    s.auth = v.auth_pass.as_deref().map_or(Auth::None, Auth::pass);
    s.checksum = match v.checksum {
        VrrpChecksum::Keepalived => ChecksumMode::Keepalived,
        VrrpChecksum::Rfc9568 => ChecksumMode::Rfc9568,
    };
    s.garp_repeat = v.garp_repeat;
    s.garp_delay = (v.garp_delay_ms > 0).then_some(v.garp_delay_ms);
    s.garp_refresh = (v.garp_refresh_ms > 0).then_some(v.garp_refresh_ms);
    s.track_interfaces = v
        .track_interfaces
        .iter()
        .map(|t| TrackInterface {
            name: t.name.clone(),
            weight: t.weight,
        })
        .collect();
    s.track_scripts = v
        .track_scripts
        .iter()
        .map(|t| TrackScript {
            name: t.name.clone(),
            argv: t.command.clone(),
            interval: t.interval_ms,
            timeout: t.timeout_ms,
            rise: t.rise,
            fall: t.fall,
            weight: t.weight,
        })
        .collect();
    s.notify = Notify {
        master: v.notify.master.clone(),
        backup: v.notify.backup.clone(),
        fault: v.notify.fault.clone(),
        stop: v.notify.stop.clone(),
        any: v.notify.any.clone(),
        timeout: v.notify.timeout_ms,
    };
    s
}

/// One line per VIP: `interface address/prefix`.
fn record_lines(list: &[VrrpInstance]) -> String {
    let mut out = String::new();
    for v in list {
        for x in &v.vips {
            out.push_str(&format!("{} {}/{}\n", v.interface, x.addr, x.prefix));
        }
    }
    out
}

fn parse_record(text: &str) -> Vec<(String, Vip)> {
    text.lines()
        .filter_map(|l| {
            let (ifname, vip) = l.split_once(' ')?;
            let (a, p) = vip.split_once('/')?;
            Some((
                ifname.to_string(),
                Vip {
                    addr: a.parse::<IpAddr>().ok()?,
                    prefix: p.parse().ok()?,
                },
            ))
        })
        .collect()
}

/// Removes recorded VIPs the new configuration does not list, then records
/// the configured ones (temp file + rename).
fn clean_and_record(record: &Path, list: &[VrrpInstance]) {
    let configured = |ifname: &str, vip: &Vip| {
        list.iter()
            .any(|v| v.interface == ifname && v.vips.iter().any(|x| x.addr == vip.addr))
    };
    if let Ok(old) = std::fs::read_to_string(record) {
        for (ifname, vip) in parse_record(&old) {
            if configured(&ifname, &vip) {
                continue;
            }
            let Ok(Some(link)) = rvs_vrrp::iface::link(&ifname) else {
                continue;
            };
            match rvs_vrrp::netlink::del_vip(link.index, vip) {
                Ok(true) => {
                    tracing::info!(%vip, interface = %ifname, "removed a VIP left by an earlier rvsd")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(%vip, interface = %ifname, "cannot remove a stale VIP: {e}")
                }
            }
        }
    }
    let tmp = record.with_extension("tmp");
    let written =
        std::fs::write(&tmp, record_lines(list)).and_then(|_| std::fs::rename(&tmp, record));
    if let Err(e) = written {
        tracing::warn!("cannot record the VIPs in {}: {e}", record.display());
    }
}

fn spawn(v: &VrrpInstance) -> Result<Running, String> {
    roles().insert(v.name.clone(), false);
    let observer: rvs_vrrp::Observer = Arc::new(|ev: &rvs_vrrp::TransitionEvent| {
        if let Some(m) = roles().get_mut(&ev.instance) {
            *m = ev.to == State::Master;
        }
    });
    Running::spawn(spec(v), Some(observer)).map_err(|e| {
        roles().remove(&v.name);
        format!("cannot start VRRP instance {}: {e}", v.name)
    })
}

/// Starts the configured instances (possibly none: a reload may add some).
/// Call once the engine listens, so a master is ready to serve its VIPs.
pub fn start(list: &[VrrpInstance], state_dir: &Path) -> Result<(), String> {
    let record = state_dir.join("vrrp-vips");
    if !list.is_empty() || record.exists() {
        clean_and_record(&record, list);
    }
    let mut running = Vec::new();
    for v in list {
        running.push((v.clone(), spawn(v)?));
        tracing::info!(instance = %v.name, interface = %v.interface, vrid = v.virtual_router_id,
            priority = v.priority, "VRRP instance started");
    }
    *lock() = Some(Failover { running, record });
    Ok(())
}

/// Applies a reloaded configuration: unchanged instances keep running (and
/// their state: no flap), removed ones stop cleanly, changed ones are
/// restarted, new ones start. Returns a summary for the reload message.
pub fn reload(list: &[VrrpInstance]) -> String {
    let mut guard = lock();
    let Some(f) = guard.as_mut() else {
        return String::new();
    };
    if list.is_empty() && f.running.is_empty() {
        return String::new();
    }
    let mut old = std::mem::take(&mut f.running);
    let (mut kept, mut restarted, mut stopped) = (0, 0, 0);
    // Stop what goes away or changes first, so a changed instance never
    // runs twice.
    let mut keep = Vec::new();
    for (v, r) in old.drain(..) {
        if list.contains(&v) {
            keep.push((v, r));
        } else {
            if !list.iter().any(|n| n.name == v.name) {
                stopped += 1;
            }
            r.stop();
            roles().remove(&v.name);
        }
    }
    clean_and_record(&f.record, list);
    let mut errors = Vec::new();
    for v in list {
        if let Some(i) = keep.iter().position(|(k, _)| k == v) {
            f.running.push(keep.remove(i));
            kept += 1;
            continue;
        }
        match spawn(v) {
            Ok(r) => {
                restarted += 1;
                f.running.push((v.clone(), r));
            }
            Err(e) => errors.push(e),
        }
    }
    let mut s = format!(", vrrp kept {kept} started {restarted} stopped {stopped}");
    for e in errors {
        tracing::error!("{e}");
        s.push_str(&format!(" ({e})"));
    }
    s
}

/// Clean shutdown of every instance: priority 0 from masters, VIPs
/// removed, STOP hooks run. Returns when all are done.
pub fn shutdown() {
    let f = lock().take();
    if let Some(f) = f {
        for (_, r) in f.running {
            r.stop();
        }
    }
}

/// The state of every instance, in configuration order (`GetStatus`: the
/// API, the metrics and `rvsctl`).
pub fn status() -> Vec<Status> {
    lock().as_ref().map_or(Vec::new(), |f| {
        f.running.iter().map(|(_, r)| r.status()).collect()
    })
}

/// Feeds the pool's health into the priorities: `delta` (≤ 0 to lower) is
/// added to the tracking weights of instance `name`, or of every instance
/// with `None`. See docs/failover.md, "Tracking" (the health driver is to
/// call it when a service loses quorum; `crate::health::track_pool`).
pub fn set_pool_delta(name: Option<&str>, delta: i32) {
    if let Some(f) = lock().as_ref() {
        for (v, r) in &f.running {
            if name.is_none_or(|n| n == v.name) {
                r.set_external_delta(delta);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
version = 3
advert_interval = 0.1
vips = ["198.18.0.100/24"]
preempt = true
preempt_delay = 2
checksum = "rfc9568"
garp_delay = 0
notify = ["/bin/true"]
[[vrrp.track_script]]
command = ["/bin/true"]
weight = -60
"#;

    #[test]
    fn the_spec_carries_every_setting() {
        let c = rvs_config::parse(TOML, "rvs.toml").unwrap();
        let s = spec(&c.vrrp[0]);
        assert_eq!(
            (s.version, s.vrid, s.priority, s.interval_cs),
            (Version::V3, 51, 150, 10)
        );
        assert!(s.preempt);
        assert_eq!(s.preempt_delay, 2000);
        assert_eq!(s.checksum, ChecksumMode::Rfc9568);
        assert_eq!(s.garp_delay, None);
        assert_eq!(
            s.vips,
            vec![Vip {
                addr: "198.18.0.100".parse().unwrap(),
                prefix: 24
            }]
        );
        assert_eq!(s.track_scripts[0].weight, -60);
        assert_eq!(s.notify.any, vec!["/bin/true"]);
    }

    #[test]
    fn sync_is_sent_without_vrrp_or_while_an_instance_is_master() {
        assert!(sends_sync());
        roles().insert("t_a".into(), false);
        roles().insert("t_b".into(), false);
        assert!(!sends_sync());
        *roles().get_mut("t_b").unwrap() = true;
        assert!(sends_sync());
        roles().remove("t_b");
        assert!(!sends_sync());
        roles().remove("t_a");
        assert!(sends_sync());
    }

    #[test]
    fn the_vip_record_round_trips() {
        let c = rvs_config::parse(TOML, "rvs.toml").unwrap();
        let lines = record_lines(&c.vrrp);
        assert_eq!(lines, "eth0 198.18.0.100/24\n");
        assert_eq!(
            parse_record(&lines),
            vec![(
                "eth0".to_string(),
                Vip {
                    addr: "198.18.0.100".parse().unwrap(),
                    prefix: 24
                }
            )]
        );
        assert!(parse_record("garbage\neth0 x/y\n").is_empty());
    }
}
