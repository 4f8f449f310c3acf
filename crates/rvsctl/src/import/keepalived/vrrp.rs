//! keepalived's VRRP blocks → rvs.toml's `[[vrrp]]` tables.
//!
//! A `vrrp_instance` becomes a `[[vrrp]]` with its tracked interfaces,
//! tracked scripts (`vrrp_script` blocks resolved by name, the instance's
//! `weight` overriding the script's) and notify hooks; `global_defs`'
//! `vrrp_version`, `vrrp_garp_master_*` and `v3_checksum_as_v2` are the
//! instances' defaults. Where the two differ in behaviour the output keeps
//! keepalived's: keepalived preempts unless told not to (and always with
//! `state MASTER` or priority 255) while rvs preempts only when told to, so
//! the output says `preempt = true` whenever keepalived would preempt.
//! What rvs does not have (sync groups, VMACs, file, process and BFD
//! tracking, virtual routes and rules, IPsec AH) is an error naming it.

use super::{Mapper, Node};
use crate::import::model::*;
use crate::import::{shell_char, split_keepalived_command};
use std::collections::HashMap;
use std::net::IpAddr;

/// `global_defs` settings that are defaults for every instance.
#[derive(Debug, Clone, Default)]
pub(super) struct Defaults {
    version: Option<At<u8>>,
    garp_repeat: Option<At<u32>>,
    garp_delay: Option<At<f64>>,
    garp_refresh: Option<At<f64>>,
    checksum_as_v2: Option<At<bool>>,
    /// Multicast groups other than VRRP's own (224.0.0.18, ff02::12).
    mcast_groups: Vec<At<String>>,
    /// `vrrp_strict`.
    strict: Option<Origin>,
}

/// A `vrrp_script` block, read once and tracked by any number of
/// instances.
#[derive(Debug, Clone)]
pub(super) struct Script {
    origin: Origin,
    /// `None` when the block has errors (already reported).
    command: Option<Vec<String>>,
    interval: f64,
    timeout: Option<f64>,
    rise: u32,
    fall: u32,
    weight: i32,
    used: bool,
    /// The timeout-above-interval warning was given.
    timeout_cut: bool,
}

/// The `vrrp_script` blocks by name.
pub(super) type Scripts = HashMap<String, Script>;

/// Why keepalived's strict mode cannot be carried over.
const STRICT: &str = "strict mode changes what keepalived does (it drops authentication and \
                      preempt_delay, blocks traffic to the VIPs with firewall rules, ...) in \
                      ways rvs does not reproduce: remove it, check that keepalived still does \
                      what you want, and import again";

/// keepalived's tracking weight limit.
const MAX_WEIGHT: i64 = 253;

/// Instance keywords keepalived has and rvs has no equivalent for, beyond
/// the ones `vrrp_instance` explains one by one.
const NO_EQUIVALENT: &[&str] = &[
    "native_ipv6",
    "promote_secondaries",
    "skip_check_adv_addr",
    "check_unicast_src",
    "unicast_fault_no_peer",
    "old_unicast_checksum",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "lower_prio_no_advert",
    "kernel_rx_buf_size",
    "notify_master_rx_lower_pri",
    "notify_deleted",
    "notify_priority_changes",
    "track_src_ip",
    "no_accept",
    "no_virtual_ipaddress",
];

impl Mapper<'_> {
    /// A VRRP setting of `global_defs`; false when `c` is not one.
    pub(super) fn vrrp_global(&mut self, c: &Node, g: &mut Defaults) -> bool {
        match c.name.as_str() {
            "vrrp_version" => {
                if let Some(v) = self.int(c, 2, 3) {
                    g.version = Some(At::new(v as u8, &c.at, &c.name));
                }
            }
            "vrrp_garp_master_repeat" => {
                if let Some(v) = self.int(c, 1, 100) {
                    g.garp_repeat = Some(At::new(v, &c.at, &c.name));
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(v) = self.timer(c) {
                    g.garp_delay = Some(At::new(v, &c.at, &c.name));
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(v) = self.timer(c) {
                    g.garp_refresh = Some(At::new(v, &c.at, &c.name));
                }
            }
            "vrrp_garp_master_refresh_repeat" => self.d.warn(
                &c.at,
                &c.name,
                "not imported: rvs sends garp_repeat messages in every refresh burst",
            ),
            "v3_checksum_as_v2" => {
                if let Some(b) = self.flag(c) {
                    g.checksum_as_v2 = Some(At::new(b, &c.at, &c.name));
                }
            }
            "vrrp_mcast_group4" | "vrrp_mcast_group6" => {
                if let Some(v) = self.one(c) {
                    let standard = match v.parse::<IpAddr>() {
                        Ok(a) => {
                            a == "224.0.0.18".parse::<IpAddr>().unwrap_or(a)
                                && c.name.ends_with('4')
                                || a == "ff02::12".parse::<IpAddr>().unwrap_or(a)
                                    && c.name.ends_with('6')
                        }
                        Err(_) => false,
                    };
                    if !standard {
                        g.mcast_groups.push(At::new(v.to_string(), &c.at, &c.name));
                    }
                }
            }
            "vrrp_strict" => {
                if self.args(c, 0, 0) {
                    g.strict = Some(c.at.clone());
                }
            }
            _ => return false,
        }
        true
    }

    /// What global_defs says that matters only when there are instances:
    /// errors with instances, nothing without.
    pub(super) fn vrrp_global_checks(&mut self, g: &Defaults, instances: bool) {
        if !instances {
            return;
        }
        if let Some(at) = &g.strict {
            self.d.error(at, "vrrp_strict", STRICT);
        }
        for m in &g.mcast_groups {
            self.d.error(
                &m.origin,
                &m.directive,
                format!(
                    "{} is not VRRP's multicast group; rvs sends to 224.0.0.18 / ff02::12 (or \
                     by unicast)",
                    m.value
                ),
            );
        }
    }

    /// The `vrrp_script` blocks no instance tracks.
    pub(super) fn vrrp_unused_scripts(&mut self, scripts: &Scripts) {
        for (name, s) in scripts {
            if !s.used {
                self.d.warn(
                    &s.origin,
                    "vrrp_script",
                    format!("{name} not imported: no vrrp_instance tracks it"),
                );
            }
        }
    }

    /// A `vrrp_script NAME { ... }` block.
    pub(super) fn vrrp_script(&mut self, n: &Node, scripts: &mut Scripts) {
        if n.args.len() != 1 {
            self.d
                .error(&n.at, &n.name, "expected `vrrp_script NAME { ... }`");
            return;
        }
        let Some(children) = self.block(n) else {
            return;
        };
        let errors_before = self.d.errors.len();
        let mut s = Script {
            origin: n.at.clone(),
            command: None,
            interval: 1.0,
            timeout: None,
            rise: 1,
            fall: 1,
            weight: 0,
            used: false,
            timeout_cut: false,
        };
        for c in children {
            match c.name.as_str() {
                "script" => s.command = self.command_line(c),
                "interval" => {
                    if let Some(x) = self.positive(c) {
                        s.interval = x;
                    }
                }
                "timeout" => s.timeout = self.positive(c),
                "weight" => {
                    if let Some(Some(w)) = self.weight(c, &c.args, true) {
                        s.weight = w;
                    }
                }
                "rise" => s.rise = self.int(c, 1, i32::MAX as i64).unwrap_or(1),
                "fall" => s.fall = self.int(c, 1, i32::MAX as i64).unwrap_or(1),
                "user" => self.d.error(
                    &c.at,
                    &c.name,
                    "running the script as another user has no rvs equivalent (rvsd runs \
                     commands as itself)",
                ),
                "init_fail" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs starts every tracked script as passing; starting failed has no rvs \
                     equivalent",
                ),
                _ => self.d.error(&c.at, &c.name, "unknown vrrp_script keyword"),
            }
        }
        if s.command.is_none() && self.d.errors.len() == errors_before {
            self.d.error(&n.at, &n.name, "has no script");
        }
        if self.d.errors.len() > errors_before {
            s.command = None;
        }
        let name = n.args[0].clone();
        if let Some(first) = scripts.get(&name) {
            let first = first.origin.clone();
            self.d.error(
                &n.at,
                &n.name,
                format!("vrrp_script {name} is already declared at {first}"),
            );
            return;
        }
        scripts.insert(name, s);
    }

    /// A command line given as one or more (possibly quoted) words,
    /// split as keepalived splits scripts, with nothing a shell would
    /// have to interpret.
    fn command_line(&mut self, c: &Node) -> Option<Vec<String>> {
        if c.args.is_empty() || c.children.is_some() {
            self.d.error(&c.at, &c.name, "expects a command line");
            return None;
        }
        let mut argv = Vec::new();
        for a in &c.args {
            match split_keepalived_command(a) {
                Ok(v) => argv.extend(v),
                Err(e) => {
                    self.d.error(&c.at, &c.name, e);
                    return None;
                }
            }
        }
        self.shell_free(c, argv)
    }

    /// `argv`, or an error when a shell would be needed to run it.
    fn shell_free(&mut self, c: &Node, argv: Vec<String>) -> Option<Vec<String>> {
        if let Some(ch) = shell_char(&argv) {
            self.d.error(
                &c.at,
                &c.name,
                format!(
                    "{:?} needs a shell (it contains {ch:?}); rvs runs commands without one, as \
                     keepalived 2 does: put it in a script",
                    argv.join(" ")
                ),
            );
            return None;
        }
        Some(argv)
    }

    /// Seconds above 0.
    fn positive(&mut self, c: &Node) -> Option<f64> {
        let x = self.timer(c)?;
        if x <= 0.0 {
            self.d.error(&c.at, &c.name, "must be above 0");
            return None;
        }
        Some(x)
    }

    /// `weight N [reverse]`: `args` are the words after `weight` on its
    /// own line (`own_line`) or after a tracker's name. `Some(None)` when
    /// there is no weight.
    fn weight(&mut self, c: &Node, args: &[String], own_line: bool) -> Option<Option<i32>> {
        let mut it = args.iter();
        if !own_line {
            match it.next().map(String::as_str) {
                None => return Some(None),
                Some("weight") => {}
                Some(other) => {
                    self.d
                        .error(&c.at, &c.name, format!("unexpected {other:?}"));
                    return None;
                }
            }
        }
        let w = match it.next().map(|v| (v, v.parse::<i64>())) {
            Some((_, Ok(w))) if (-MAX_WEIGHT..=MAX_WEIGHT).contains(&w) => w as i32,
            Some((v, _)) => {
                self.d.error(
                    &c.at,
                    &c.name,
                    format!("weight {v:?} is not a number in -253..=253"),
                );
                return None;
            }
            None => {
                self.d.error(&c.at, &c.name, "weight needs a number");
                return None;
            }
        };
        match it.next().map(String::as_str) {
            None => Some(Some(w)),
            Some("reverse") => {
                self.d.error(
                    &c.at,
                    &c.name,
                    "a reversed weight has no rvs equivalent (rvs adds a positive weight while \
                     the tracker succeeds, a negative one while it fails)",
                );
                None
            }
            Some(other) => {
                self.d
                    .error(&c.at, &c.name, format!("unexpected {other:?}"));
                None
            }
        }
    }

    /// A `vrrp_instance NAME { ... }` block.
    pub(super) fn vrrp_instance(
        &mut self,
        n: &Node,
        scripts: &mut Scripts,
        g: &Defaults,
    ) -> Option<Vrrp> {
        if n.args.len() != 1 {
            self.d
                .error(&n.at, &n.name, "expected `vrrp_instance NAME { ... }`");
            return None;
        }
        let children = self.block(n)?;
        let errors_before = self.d.errors.len();
        let name = n.args[0].clone();
        let mut state: Option<(bool, &Node)> = None;
        let mut interface: Option<At<String>> = None;
        let mut vrid = None;
        let mut priority = None;
        let mut version: Option<At<u8>> = None;
        let mut advert = None;
        let mut vips: Option<At<Vec<(IpAddr, u8)>>> = None;
        let mut devs: Vec<(&Node, String)> = Vec::new();
        let mut unicast_src = None;
        let mut unicast_peers = None;
        let mut auth: Option<(&Node, Option<&Node>, Option<String>)> = None;
        let mut preempt_kw: Option<(bool, &Node)> = None;
        let mut preempt_delay: Option<At<f64>> = None;
        let mut checksum_as_v2: Option<At<bool>> = None;
        let mut down_timer = None;
        let mut garp_repeat = None;
        let mut garp_delay = None;
        let mut garp_refresh = None;
        let mut notify: Vec<(&'static str, At<Vec<String>>)> = Vec::new();
        let mut track_ifs: Vec<(&Node, i32)> = Vec::new();
        let mut track_scripts: Vec<(&Node, Option<i32>)> = Vec::new();
        for c in children {
            match c.name.as_str() {
                "state" => match self.one(c) {
                    Some("MASTER") => state = Some((true, c)),
                    Some("BACKUP") => state = Some((false, c)),
                    Some(_) => self.d.error(&c.at, &c.name, "must be MASTER or BACKUP"),
                    None => {}
                },
                "interface" => {
                    interface = self.one(c).map(|v| At::new(v.to_string(), &c.at, &c.name))
                }
                "virtual_router_id" => {
                    vrid = self.int(c, 1, 255).map(|v| At::new(v, &c.at, &c.name))
                }
                "priority" => priority = self.int(c, 1, 255).map(|v| At::new(v, &c.at, &c.name)),
                "version" => version = self.int(c, 2, 3).map(|v| At::new(v as u8, &c.at, &c.name)),
                "vrrp_version" => self.d.error(
                    &c.at,
                    &c.name,
                    "keepalived's instance keyword is `version` (vrrp_version belongs in \
                     global_defs); keepalived ignores this line",
                ),
                "advert_int" => {
                    advert = self.positive(c).map(|v| At::new(v, &c.at, &c.name));
                }
                "virtual_ipaddress" => {
                    if let Some(list) = self.vips(c, &mut devs) {
                        vips = Some(At::new(list, &c.at, &c.name));
                    }
                }
                "virtual_ipaddress_excluded" => self.d.error(
                    &c.at,
                    &c.name,
                    "addresses left out of the adverts have no rvs equivalent (rvs advertises \
                     every VIP): move them to virtual_ipaddress",
                ),
                "unicast_src_ip" | "mcast_src_ip" => {
                    unicast_src = self.one(c).and_then(|a| {
                        let a = a.to_string();
                        self.addr(c, &a).map(|a| At::new(a, &c.at, &c.name))
                    })
                }
                "unicast_peer" => {
                    if let Some(list) = self.peers(c) {
                        unicast_peers = Some(At::new(list, &c.at, &c.name));
                    }
                }
                "unicast_ttl" => {
                    if self.int(c, 1, 255).is_some() {
                        self.d.warn(
                            &c.at,
                            &c.name,
                            "not imported: rvs sends its adverts with TTL 255",
                        );
                    }
                }
                "authentication" => auth = self.authentication(c),
                "nopreempt" => {
                    if self.args(c, 0, 0) {
                        preempt_kw = Some((false, c));
                    }
                }
                "preempt" => {
                    if self.args(c, 0, 0) {
                        preempt_kw = Some((true, c));
                    }
                }
                "preempt_delay" => {
                    if let Some(x) = self.timer(c) {
                        if x > 1000.0 {
                            self.d.error(&c.at, &c.name, "must be 0..=1000 seconds");
                        } else {
                            preempt_delay = Some(At::new(x, &c.at, &c.name));
                        }
                    }
                }
                "v3_checksum_as_v2" => {
                    checksum_as_v2 = self.flag(c).map(|b| At::new(b, &c.at, &c.name))
                }
                "down_timer_adverts" => {
                    down_timer = self.int(c, 1, 100).map(|v| At::new(v, &c.at, &c.name))
                }
                "garp_master_repeat" => {
                    garp_repeat = self.int(c, 1, 100).map(|v| At::new(v, &c.at, &c.name))
                }
                "garp_master_delay" => {
                    garp_delay = self.timer(c).map(|v| At::new(v, &c.at, &c.name))
                }
                "garp_master_refresh" => {
                    garp_refresh = self.timer(c).map(|v| At::new(v, &c.at, &c.name))
                }
                "garp_master_refresh_repeat" => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: rvs sends garp_repeat messages in every refresh burst",
                ),
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    let key: &'static str = match c.name.as_str() {
                        "notify_master" => "notify_master",
                        "notify_backup" => "notify_backup",
                        "notify_fault" => "notify_fault",
                        "notify_stop" => "notify_stop",
                        _ => "notify",
                    };
                    if notify.iter().any(|(k, _)| *k == key) {
                        self.d.warn(
                            &c.at,
                            &c.name,
                            "not imported: given twice, and keepalived runs the first",
                        );
                        continue;
                    }
                    if let Some(argv) = self.script(c).and_then(|a| self.shell_free(c, a)) {
                        notify.push((key, At::new(argv, &c.at, &c.name)));
                    }
                }
                "smtp_alert" => {
                    if self.flag(c) == Some(true) {
                        self.d
                            .error(&c.at, &c.name, "e-mail alerts have no rvs equivalent");
                    }
                }
                "track_interface" => {
                    if let Some(list) = self.block(c) {
                        for t in list {
                            if t.children.is_some() {
                                self.d.error(&t.at, &t.name, "takes no block");
                            } else if let Some(w) = self.weight(t, &t.args, false) {
                                track_ifs.push((t, w.unwrap_or(0)));
                            }
                        }
                    }
                }
                "track_script" => {
                    if let Some(list) = self.block(c) {
                        for t in list {
                            if t.children.is_some() {
                                self.d.error(&t.at, &t.name, "takes no block");
                            } else {
                                if let Some(s) = scripts.get_mut(&t.name) {
                                    s.used = true;
                                }
                                if let Some(w) = self.weight(t, &t.args, false) {
                                    track_scripts.push((t, w));
                                }
                            }
                        }
                    }
                }
                "track_file" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs has no file tracking (use a vrrp_script that reads the file)",
                ),
                "track_process" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs has no process tracking (use a vrrp_script such as `pidof NAME`)",
                ),
                "track_bfd" => self.d.error(&c.at, &c.name, "rvs has no BFD"),
                "use_vmac" | "vmac_xmit_base" | "use_ipvlan" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs has no virtual MAC interfaces: its VIPs live on the instance's interface \
                     and move with gratuitous ARP",
                ),
                "virtual_routes" | "virtual_rules" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs moves only addresses, not routes or rules, with the master",
                ),
                "dont_track_primary" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs always puts an instance whose own interface is down in FAULT",
                ),
                "strict_mode" => {
                    if self.flag(c) == Some(true) {
                        self.d.error(&c.at, &c.name, STRICT);
                    }
                }
                "accept" => {
                    self.args(c, 0, 0);
                }
                "higher_prio_send_advert" => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: a master rvs steps down for always sends one last advert",
                ),
                "debug" => self
                    .d
                    .warn(&c.at, &c.name, "not imported: rvsd logs every transition"),
                "linkbeat_use_polling" => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: rvs follows the link state through netlink",
                ),
                "lvs_sync_daemon_interface" => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: connection synchronisation is configured outside rvs.toml",
                ),
                other if NO_EQUIVALENT.contains(&other) => {
                    self.d.error(&c.at, &c.name, "has no rvs equivalent")
                }
                _ => self
                    .d
                    .error(&c.at, &c.name, "unknown vrrp_instance keyword"),
            }
        }
        if interface.is_none() {
            self.d.error(
                &n.at,
                &n.name,
                format!("{name} has no interface (rvs needs it named)"),
            );
        }
        if vrid.is_none() && !children.iter().any(|c| c.name == "virtual_router_id") {
            self.d
                .error(&n.at, &n.name, format!("{name} has no virtual_router_id"));
        }
        if vips.is_none() && !children.iter().any(|c| c.name == "virtual_ipaddress") {
            self.d.error(
                &n.at,
                &n.name,
                format!("{name} has no virtual_ipaddress (rvs needs at least one VIP)"),
            );
        }
        let (Some(interface), Some(vrid), Some(vips)) = (interface, vrid, vips) else {
            return None;
        };
        for (c, dev) in devs {
            if dev != interface.value {
                self.d.error(
                    &c.at,
                    &c.name,
                    format!(
                        "dev {dev}: rvs adds an instance's VIPs to its own interface ({}); \
                         put this address in an instance on {dev}",
                        interface.value
                    ),
                );
            }
        }
        let mut trackers = Vec::new();
        for (t, w) in track_ifs {
            if t.name == interface.value {
                self.d.warn(
                    &t.at,
                    &t.name,
                    "not imported: an instance always tracks its own interface (keepalived \
                     ignores this line too)",
                );
                continue;
            }
            trackers.push(VrrpTrackInterface {
                origin: t.at.clone(),
                name: t.name.clone(),
                weight: w,
            });
        }
        let mut tracked = Vec::new();
        for (t, w) in track_scripts {
            let Some(s) = scripts.get_mut(&t.name) else {
                self.d.error(
                    &t.at,
                    &t.name,
                    format!(
                        "no vrrp_script {} is declared (keepalived would ignore the tracker)",
                        t.name
                    ),
                );
                continue;
            };
            let Some(command) = s.command.clone() else {
                continue;
            };
            let (interval, script_origin) = (s.interval, s.origin.clone());
            let (rise, fall, weight) = (s.rise, s.fall, w.unwrap_or(s.weight));
            let mut timeout = s.timeout.unwrap_or(interval);
            // Said once per script, however many instances track it.
            if timeout > interval && !std::mem::replace(&mut s.timeout_cut, true) {
                self.d.warn(
                    &script_origin,
                    "timeout",
                    format!(
                        "vrrp_script {}: timeout {} s exceeds interval {} s; rvs needs timeout <= \
                         interval: imported as timeout = {}",
                        t.name,
                        super::seconds_text(timeout),
                        super::seconds_text(interval),
                        super::seconds_text(interval)
                    ),
                );
            }
            timeout = timeout.min(interval);
            tracked.push(VrrpTrackScript {
                origin: t.at.clone(),
                script_origin,
                name: t.name.clone(),
                command,
                interval,
                timeout,
                rise,
                fall,
                weight,
            });
        }
        notify.sort_by_key(|(k, _)| {
            [
                "notify_master",
                "notify_backup",
                "notify_fault",
                "notify_stop",
                "notify",
            ]
            .iter()
            .position(|x| x == k)
        });
        if self.d.errors.len() > errors_before {
            return None;
        }
        // Only an instance that imports gets the messages about how.
        let v6 = vips.value.first().is_some_and(|(a, _)| a.is_ipv6());
        let priority = priority.unwrap_or_else(|| at_node(n, 100));
        // The version: the instance's, then global_defs', then the family's.
        let mut version = version
            .or_else(|| g.version.clone())
            .unwrap_or_else(|| at_node(n, if v6 { 3 } else { 2 }));
        if v6 && version.value == 2 {
            if version.directive == "version" {
                self.d.warn(
                    &version.origin,
                    &version.directive,
                    "IPv6 needs VRRPv3, as keepalived decides too: imported as version = 3",
                );
            }
            version.value = 3;
        }
        let v3 = version.value == 3;
        // v3_checksum_as_v2 in global_defs is a default for VRRPv3
        // instances; in a VRRPv2 instance it has no effect.
        let local = checksum_as_v2.is_some();
        let checksum = match checksum_as_v2.or_else(|| g.checksum_as_v2.clone()) {
            Some(c) if c.value && v3 => Some(At::new("rfc9568", &c.origin, &c.directive)),
            Some(c) if c.value && local => {
                self.d.warn(
                    &c.origin,
                    &c.directive,
                    "not imported: VRRPv2 has one checksum form",
                );
                None
            }
            _ => None,
        };
        let auth_pass = match auth {
            None => None,
            Some((a, _, _)) if v3 => {
                self.d.warn(
                    &a.at,
                    &a.name,
                    "not imported: VRRPv3 has no authentication (keepalived ignores it too)",
                );
                None
            }
            Some((_, Some(p), Some(mut pass))) => {
                if pass.len() > 8 {
                    let mut cut = 8;
                    while !pass.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    pass.truncate(cut);
                    self.d.warn(
                        &p.at,
                        &p.name,
                        format!(
                            "longer than 8 bytes: keepalived sends only the first 8, imported as \
                             {pass:?}"
                        ),
                    );
                }
                Some(At::new(pass, &p.at, &p.name))
            }
            Some(_) => None,
        };
        // keepalived preempts unless nopreempt; state MASTER and priority
        // 255 clear nopreempt and (state MASTER) preempt_delay.
        let master = state.is_some_and(|(m, _)| m);
        let (mut preempt, mut comment) = match preempt_kw {
            Some((p, c)) => (At::new(p, &c.at, &c.name), None),
            None => {
                self.d.warn(
                    &n.at,
                    &n.name,
                    format!(
                        "{name}: keepalived preempts unless nopreempt is set, rvs only with \
                         preempt = true: imported as preempt = true"
                    ),
                );
                (
                    at_node(n, true),
                    Some(
                        "keepalived preempts by default (no nopreempt); rvs only when told to"
                            .to_string(),
                    ),
                )
            }
        };
        if !preempt.value {
            let why = if master {
                Some("with state MASTER")
            } else if priority.value == 255 {
                Some("with priority 255")
            } else {
                None
            };
            if let Some(why) = why {
                self.d.warn(
                    &preempt.origin,
                    &preempt.directive,
                    format!(
                        "keepalived ignores nopreempt {why} and preempts: imported as preempt = \
                         true (for no fail-back use state BACKUP and a priority below 255)"
                    ),
                );
                preempt.value = true;
                comment = Some(format!("keepalived ignores nopreempt {why}"));
            }
        }
        if let Some(d) = &preempt_delay {
            let drop = if !preempt.value {
                Some("with nopreempt")
            } else if master {
                Some("with state MASTER")
            } else {
                None
            };
            if let Some(why) = drop {
                self.d.warn(
                    &d.origin,
                    &d.directive,
                    format!("not imported: keepalived ignores preempt_delay {why}"),
                );
                preempt_delay = None;
            } else if d.value == 0.0 {
                preempt_delay = None;
            }
        }
        if let Some((m, c)) = state {
            self.d.note(
                &c.at,
                &c.name,
                format!(
                    "state {} has no rvs equivalent: rvs starts every instance as backup and the \
                     highest priority becomes master (this one has {})",
                    if m { "MASTER" } else { "BACKUP" },
                    priority.value
                ),
            );
        }
        Some(Vrrp {
            origin: n.at.clone(),
            name,
            interface,
            virtual_router_id: vrid,
            priority,
            version,
            advert_interval: advert.unwrap_or_else(|| at_node(n, 1.0)),
            vips,
            unicast_src,
            unicast_peers,
            auth_pass,
            preempt,
            preempt_comment: comment,
            preempt_delay,
            checksum,
            down_timer_adverts: down_timer,
            garp_repeat: garp_repeat
                .or_else(|| g.garp_repeat.clone())
                .unwrap_or_else(|| at_node(n, 5)),
            garp_delay: garp_delay
                .or_else(|| g.garp_delay.clone())
                .unwrap_or_else(|| at_node(n, 5.0)),
            garp_refresh: garp_refresh
                .or_else(|| g.garp_refresh.clone())
                .unwrap_or_else(|| at_node(n, 0.0)),
            notify,
            track_interfaces: trackers,
            track_scripts: tracked,
        })
    }

    /// `virtual_ipaddress { ADDR[/PREFIX] [dev IF] [label L] ... }`: the
    /// addresses, and each `dev` for checking against the interface.
    fn vips<'n>(
        &mut self,
        n: &'n Node,
        devs: &mut Vec<(&'n Node, String)>,
    ) -> Option<Vec<(IpAddr, u8)>> {
        let children = self.block(n)?;
        let mut out: Vec<(IpAddr, u8)> = Vec::new();
        let mut ok = true;
        for c in children {
            if c.children.is_some() {
                self.d.error(&c.at, &c.name, "takes no block");
                ok = false;
                continue;
            }
            let (a, p) = match c.name.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (c.name.as_str(), None),
            };
            let Ok(addr) = a.parse::<IpAddr>() else {
                self.d.error(&c.at, &c.name, "is not an address[/prefix]");
                ok = false;
                continue;
            };
            let max = if addr.is_ipv6() { 128 } else { 32 };
            let prefix = match p.map(str::parse::<u8>) {
                None => max,
                Some(Ok(p)) if p <= max => p,
                Some(_) => {
                    self.d
                        .error(&c.at, &c.name, format!("the prefix must be 0..={max}"));
                    ok = false;
                    continue;
                }
            };
            if let Some((first, _)) = out.first() {
                if first.is_ipv6() != addr.is_ipv6() {
                    self.d.error(
                        &c.at,
                        &c.name,
                        "of another address family than the instance's first VIP: keepalived \
                         ignores it, rvs refuses it; give it an instance of its own",
                    );
                    ok = false;
                    continue;
                }
            }
            let mut it = c.args.iter();
            while let Some(opt) = it.next() {
                let takes_value = matches!(
                    opt.as_str(),
                    "dev" | "label" | "brd" | "broadcast" | "scope" | "peer" | "preferred_lft"
                );
                let value = if takes_value {
                    match it.next() {
                        Some(v) => Some(v.as_str()),
                        None => {
                            self.d.error(&c.at, &c.name, format!("{opt} needs a value"));
                            ok = false;
                            break;
                        }
                    }
                } else {
                    None
                };
                match (opt.as_str(), value) {
                    ("dev", Some(d)) => devs.push((c, d.to_string())),
                    ("label", Some(_)) => self.d.warn(
                        &c.at,
                        &c.name,
                        "not imported: label (rvs adds VIPs without one)",
                    ),
                    ("scope", Some("global")) => {}
                    (
                        "brd" | "broadcast" | "scope" | "peer" | "preferred_lft" | "home"
                        | "-nodad" | "nodad" | "noprefixroute" | "autojoin" | "no_track",
                        _,
                    ) => {
                        self.d.error(
                            &c.at,
                            &c.name,
                            format!(
                                "{opt}{}: rvs adds VIPs with the interface's defaults and has no \
                                 equivalent",
                                value.map(|v| format!(" {v}")).unwrap_or_default()
                            ),
                        );
                        ok = false;
                    }
                    _ => {
                        self.d
                            .error(&c.at, &c.name, format!("unknown address option {opt:?}"));
                        ok = false;
                    }
                }
            }
            out.push((addr, prefix));
        }
        if out.is_empty() && ok {
            self.d.error(&n.at, &n.name, "lists no address");
            return None;
        }
        ok.then_some(out)
    }

    /// `unicast_peer { ADDR ... }`.
    fn peers(&mut self, n: &Node) -> Option<Vec<IpAddr>> {
        let children = self.block(n)?;
        let mut out = Vec::new();
        for c in children {
            if c.children.is_some() {
                self.d.error(&c.at, &c.name, "takes no block");
                continue;
            }
            if !c.args.is_empty() {
                self.d.error(
                    &c.at,
                    &c.name,
                    format!(
                        "{}: rvs accepts adverts only with TTL 255, from any peer",
                        c.args.join(" ")
                    ),
                );
                continue;
            }
            let name = c.name.clone();
            if let Some(a) = self.addr(c, &name) {
                out.push(a);
            }
        }
        if out.is_empty() {
            self.d.warn(
                &n.at,
                &n.name,
                "not imported: no peer listed, so the adverts are multicast (as keepalived up to \
                 2.2.4 does)",
            );
            return None;
        }
        Some(out)
    }

    /// `authentication { auth_type PASS; auth_pass X }`: the block, the
    /// `auth_pass` line and the password when it is a PASS password.
    fn authentication<'n>(
        &mut self,
        n: &'n Node,
    ) -> Option<(&'n Node, Option<&'n Node>, Option<String>)> {
        let children = self.block(n)?;
        let mut kind = None;
        let mut pass = None;
        for c in children {
            match c.name.as_str() {
                "auth_type" => match self.one(c) {
                    Some("PASS") => kind = Some("PASS"),
                    Some("AH") => {
                        self.d.error(
                            &c.at,
                            &c.name,
                            "IPsec AH authentication has no rvs equivalent (rvs has PASS, as \
                             auth_pass)",
                        );
                        return None;
                    }
                    Some(_) => {
                        self.d.error(&c.at, &c.name, "must be PASS or AH");
                        return None;
                    }
                    None => return None,
                },
                "auth_pass" => {
                    if let Some(p) = self.one(c) {
                        pass = Some((c, p.to_string()));
                    }
                }
                _ => self
                    .d
                    .error(&c.at, &c.name, "unknown authentication keyword"),
            }
        }
        match (kind, pass) {
            (Some(_), Some((c, p))) if p.is_empty() => {
                self.d.error(&c.at, &c.name, "an empty password");
                None
            }
            (Some(_), Some((c, p))) => Some((n, Some(c), Some(p))),
            (Some(_), None) => {
                self.d.error(
                    &n.at,
                    &n.name,
                    "auth_type PASS without auth_pass (rvs needs a 1 to 8 byte password)",
                );
                None
            }
            (None, Some((c, _))) => {
                self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: without auth_type keepalived sends no password",
                );
                None
            }
            (None, None) => None,
        }
    }
}

/// A default value, traced to the instance.
fn at_node<T>(n: &Node, v: T) -> At<T> {
    At::new(v, &n.at, "vrrp_instance")
}
