//! The failover part of rvs.toml: `[[vrrp]]` with its
//! `[[vrrp.track_interface]]` and `[[vrrp.track_script]]` (see
//! `docs/config.md`, "Failover (VRRP)"). Same rules as the rest of the
//! file: every problem at its line and column, unknown keys are errors, and
//! so are the combinations keepalived accepts silently and then misbehaves
//! on (a password with VRRPv3, unicast peers of the other family, a
//! duplicate virtual router id, a sub-second interval with VRRPv2).

use super::{article, Reader, Table, Val};
use crate::vrrp::*;
use rvs_core::ServiceKey;
use std::collections::HashMap;
use std::net::IpAddr;
use toml::de::DeValue;

const VRRP_KEYS: &[&str] = &[
    "name",
    "interface",
    "virtual_router_id",
    "priority",
    "version",
    "advert_interval",
    "vips",
    "unicast_src",
    "unicast_peers",
    "auth_pass",
    "preempt",
    "preempt_delay",
    "checksum",
    "down_timer_adverts",
    "garp_repeat",
    "garp_delay",
    "garp_refresh",
    "track_interface",
    "track_script",
    "track_service",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "notify_timeout",
];
const TRACK_INTERFACE_KEYS: &[&str] = &["name", "weight"];
const TRACK_SERVICE_KEYS: &[&str] = &["service", "weight"];
const TRACK_SCRIPT_KEYS: &[&str] = &[
    "name", "command", "interval", "timeout", "rise", "fall", "weight",
];

fn interface_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && !s.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
}

impl Reader<'_> {
    /// The `vrrp` key: every instance, checked alone and against the others.
    pub(super) fn vrrp(&mut self, v: &Val<'_>, services: &[ServiceKey]) -> Vec<VrrpInstance> {
        let mut out = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut routers: HashMap<(String, u8, bool), usize> = HashMap::new();
        for t in self.array_of_tables(v, "vrrp", "[[vrrp]]") {
            let Some(inst) = self.vrrp_instance(&t, services) else {
                continue;
            };
            let line = self.errs.line_of(&t.span);
            if let Some(first) = names.get(&inst.name) {
                let at = t.key_span("name");
                self.errs.at(
                    &at,
                    format!(
                        "a [[vrrp]] named `{}` is already declared at line {first}",
                        inst.name
                    ),
                );
                continue;
            }
            let family = inst.vips[0].addr.is_ipv6();
            let router = (inst.interface.clone(), inst.virtual_router_id, family);
            if let Some(first) = routers.get(&router) {
                let at = t.key_span("virtual_router_id");
                self.errs.at(
                    &at,
                    format!(
                        "virtual_router_id {} on {} ({}) is already used at line {first}",
                        inst.virtual_router_id,
                        inst.interface,
                        if family { "IPv6" } else { "IPv4" }
                    ),
                );
                continue;
            }
            names.insert(inst.name.clone(), line);
            routers.insert(router, line);
            out.push(inst);
        }
        out
    }

    fn vrrp_instance(
        &mut self,
        t: &Table<'_, '_>,
        services: &[ServiceKey],
    ) -> Option<VrrpInstance> {
        self.check_keys(t, VRRP_KEYS);
        let before = self.errs.list.len();
        let name = self.vrrp_required_string(t, "name");
        if let Some(n) = &name {
            if n.is_empty() || n.contains(|c: char| c.is_whitespace() || c.is_control()) {
                self.errs.at(
                    &t.get("name").map_or(t.span.clone(), |v| v.span()),
                    "name must be a non-empty word (no blanks)",
                );
            }
        }
        let interface = self.vrrp_required_string(t, "interface");
        if let (Some(i), Some(v)) = (&interface, t.get("interface")) {
            if !interface_name_ok(i) {
                self.errs.at(
                    &v.span(),
                    "interface must be an interface name (1 to 15 bytes, no `/`, `:` or blanks)",
                );
            }
        }
        let vrid = match t.get("virtual_router_id") {
            Some(v) => self.integer(v, "virtual_router_id", 1, 255, ""),
            None => {
                self.errs
                    .at(&t.span, "[[vrrp]] needs virtual_router_id (1..=255)");
                None
            }
        };
        let vips = self.vrrp_vips(t);
        let v6 = vips
            .as_ref()
            .and_then(|v| v.first())
            .is_some_and(|v| v.addr.is_ipv6());
        let mut inst = VrrpInstance::new(
            name.as_deref().unwrap_or(""),
            interface.as_deref().unwrap_or(""),
            vrid.unwrap_or(1) as u8,
            vips.clone().unwrap_or_default(),
        );
        if let Some(v) = t.get("priority") {
            if let Some(p) = self.integer(v, "priority", 1, 255, " (255: the address owner)") {
                inst.priority = p as u8;
            }
        }
        if let Some(v) = t.get("version") {
            match self.integer(v, "version", 2, 3, "") {
                Some(2) if v6 => self.errs.at(
                    &v.span(),
                    "IPv6 VIPs need version = 3 (VRRPv2 is IPv4 only)",
                ),
                Some(2) => inst.version = VrrpVersion::V2,
                Some(_) => inst.version = VrrpVersion::V3,
                None => {}
            }
        }
        let v3 = inst.version == VrrpVersion::V3;
        if let Some(v) = t.get("advert_interval") {
            if let Some(cs) = self.vrrp_interval(v, v3) {
                inst.advert_interval_cs = cs;
            }
        }
        let family_ok = |a: &IpAddr| vips.as_ref().is_none_or(|_| a.is_ipv6() == v6);
        if let Some(v) = t.get("unicast_src") {
            if let Some(a) = self.vrrp_addr(v, "unicast_src") {
                if !family_ok(&a) {
                    self.errs
                        .at(&v.span(), "unicast_src must be of the VIPs' address family");
                } else {
                    inst.unicast_src = Some(a);
                }
            }
        }
        if let Some(v) = t.get("unicast_peers") {
            match v.get_ref() {
                DeValue::Array(items) if !items.is_empty() => {
                    for item in items.iter() {
                        let Some(a) = self.vrrp_addr(item, "each of unicast_peers") else { continue };
                        if !family_ok(&a) {
                            self.errs.at(&item.span(), "unicast peers must be of the VIPs' address family");
                        } else if inst.unicast_peers.contains(&a) {
                            self.errs.at(&item.span(), format!("unicast peer {a} is listed twice"));
                        } else if inst.unicast_src == Some(a) {
                            self.errs.at(&item.span(), format!("unicast peer {a} is unicast_src itself"));
                        } else {
                            inst.unicast_peers.push(a);
                        }
                    }
                }
                _ => self.errs.at(
                    &v.span(),
                    "unicast_peers must be a non-empty array of addresses (leave it out for multicast)",
                ),
            }
        }
        if let Some(v) = t.get("auth_pass") {
            if let Some(p) = self.string(v, "auth_pass") {
                if v3 {
                    self.errs.at(
                        &v.span(),
                        "auth_pass needs version = 2 (VRRPv3 has no authentication)",
                    );
                } else if p.is_empty() || p.len() > 8 {
                    self.errs.at(
                        &v.span(),
                        "auth_pass must be 1 to 8 bytes (keepalived sends only 8)",
                    );
                } else {
                    inst.auth_pass = Some(p.to_string());
                }
            }
        }
        if let Some(b) = t.get("preempt").and_then(|v| self.boolean(v, "preempt")) {
            inst.preempt = b;
        }
        if let Some(v) = t.get("preempt_delay") {
            if let Some(ms) = self.vrrp_seconds(v, "preempt_delay", VRRP_MAX_PREEMPT_DELAY_S, true)
            {
                if ms > 0 && !inst.preempt {
                    self.errs
                        .at(&v.span(), "preempt_delay needs preempt = true");
                } else {
                    inst.preempt_delay_ms = ms;
                }
            }
        }
        if let Some(v) = t.get("checksum") {
            let c = self.choice(
                v,
                "checksum",
                &[
                    ("keepalived", VrrpChecksum::Keepalived),
                    ("rfc9568", VrrpChecksum::Rfc9568),
                ],
            );
            if let Some(c) = c {
                if !v3 {
                    self.errs.at(
                        &v.span(),
                        "checksum needs version = 3 (VRRPv2 has one form)",
                    );
                } else {
                    inst.checksum = c;
                }
            }
        }
        if let Some(n) = t
            .get("down_timer_adverts")
            .and_then(|v| self.integer(v, "down_timer_adverts", 1, 100, ""))
        {
            inst.down_timer_adverts = n as u32;
        }
        if let Some(n) = t
            .get("garp_repeat")
            .and_then(|v| self.integer(v, "garp_repeat", 1, 100, ""))
        {
            inst.garp_repeat = n as u32;
        }
        if let Some(ms) = t
            .get("garp_delay")
            .and_then(|v| self.vrrp_seconds(v, "garp_delay", 86_400.0, true))
        {
            inst.garp_delay_ms = ms;
        }
        if let Some(ms) = t
            .get("garp_refresh")
            .and_then(|v| self.vrrp_seconds(v, "garp_refresh", 86_400.0, true))
        {
            inst.garp_refresh_ms = ms;
        }
        for (key, slot) in [
            ("notify_master", &mut inst.notify.master),
            ("notify_backup", &mut inst.notify.backup),
            ("notify_fault", &mut inst.notify.fault),
            ("notify_stop", &mut inst.notify.stop),
            ("notify", &mut inst.notify.any),
        ] {
            if let Some(argv) = t.get(key).and_then(|v| self.vrrp_argv(v, key)) {
                *slot = argv;
            }
        }
        if let Some(ms) = t
            .get("notify_timeout")
            .and_then(|v| self.vrrp_seconds(v, "notify_timeout", 3600.0, false))
        {
            inst.notify.timeout_ms = ms;
        }
        if let Some(v) = t.get("track_interface") {
            for tt in self.array_of_tables(v, "track_interface", "[[vrrp.track_interface]]") {
                self.check_keys(&tt, TRACK_INTERFACE_KEYS);
                let name = self.vrrp_required_string(&tt, "name");
                if let (Some(n), Some(v)) = (&name, tt.get("name")) {
                    if !interface_name_ok(n) {
                        self.errs
                            .at(&v.span(), "name must be an interface name (1 to 15 bytes)");
                    }
                }
                let weight = self.vrrp_weight(&tt);
                if let (Some(name), Some(weight)) = (name, weight) {
                    inst.track_interfaces
                        .push(VrrpTrackInterface { name, weight });
                }
            }
        }
        if let Some(v) = t.get("track_service") {
            for tt in self.array_of_tables(v, "track_service", "[[vrrp.track_service]]") {
                self.check_keys(&tt, TRACK_SERVICE_KEYS);
                let service = match tt.get("service") {
                    None => {
                        self.errs.at(
                            &tt.span,
                            "[[vrrp.track_service]] needs service = \"tcp:ADDR:PORT\" (or udp:, sctp:, fwmark:)",
                        );
                        None
                    }
                    Some(sv) => match self
                        .string(sv, "service")
                        .map(crate::addr::parse_service_name)
                    {
                        Some(Ok(k)) if services.contains(&k) => Some(k),
                        Some(Ok(k)) => {
                            self.errs.at(
                                &sv.span(),
                                format!(
                                    "service {} is not declared in this file",
                                    super::describe(&k)
                                ),
                            );
                            None
                        }
                        Some(Err(e)) => {
                            self.errs.at(&sv.span(), format!("service {e}"));
                            None
                        }
                        None => None,
                    },
                };
                let weight = match tt.get("weight") {
                    None => {
                        self.errs.at(
                            &tt.span,
                            "[[vrrp.track_service]] needs a negative weight (-253..=-1), added to the priority while the service has lost quorum",
                        );
                        None
                    }
                    Some(wv) => self
                        .integer(
                            wv,
                            "weight",
                            -VRRP_MAX_WEIGHT,
                            -1,
                            " (added while the service has lost quorum)",
                        )
                        .map(|w| w as i32),
                };
                if let (Some(service), Some(weight)) = (service, weight) {
                    inst.track_services
                        .push(VrrpTrackService { service, weight });
                }
            }
        }
        if let Some(v) = t.get("track_script") {
            for tt in self.array_of_tables(v, "track_script", "[[vrrp.track_script]]") {
                if let Some(s) = self.vrrp_track_script(&tt) {
                    inst.track_scripts.push(s);
                }
            }
        }
        if self.errs.list.len() != before
            || name.is_none()
            || interface.is_none()
            || vrid.is_none()
            || vips.is_none()
        {
            return None;
        }
        Some(inst)
    }

    fn vrrp_track_script(&mut self, t: &Table<'_, '_>) -> Option<VrrpTrackScript> {
        self.check_keys(t, TRACK_SCRIPT_KEYS);
        let command = match t.get("command") {
            Some(v) => self.vrrp_argv(v, "command"),
            None => {
                self.errs.at(
                    &t.span,
                    "[[vrrp.track_script]] needs command = [\"program\", \"arg\"...]",
                );
                None
            }
        };
        let mut s = VrrpTrackScript {
            name: String::new(),
            command: command.clone().unwrap_or_default(),
            interval_ms: 1000,
            timeout_ms: 0,
            rise: 1,
            fall: 1,
            weight: 0,
        };
        s.name = match t.get("name") {
            Some(v) => self.string(v, "name").unwrap_or("").to_string(),
            None => command
                .as_ref()
                .and_then(|c| c.first())
                .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
                .unwrap_or_default(),
        };
        if let Some(ms) = t
            .get("interval")
            .and_then(|v| self.vrrp_seconds(v, "interval", 3600.0, false))
        {
            s.interval_ms = ms;
        }
        s.timeout_ms = s.interval_ms;
        if let Some(v) = t.get("timeout") {
            if let Some(ms) = self.vrrp_seconds(v, "timeout", 3600.0, false) {
                if ms > s.interval_ms {
                    self.errs
                        .at(&v.span(), "timeout must not be longer than interval");
                } else {
                    s.timeout_ms = ms;
                }
            }
        }
        if let Some(n) = t
            .get("rise")
            .and_then(|v| self.integer(v, "rise", 1, 1000, ""))
        {
            s.rise = n as u32;
        }
        if let Some(n) = t
            .get("fall")
            .and_then(|v| self.integer(v, "fall", 1, 1000, ""))
        {
            s.fall = n as u32;
        }
        s.weight = self.vrrp_weight(t)?;
        command.map(|_| s)
    }

    fn vrrp_weight(&mut self, t: &Table<'_, '_>) -> Option<i32> {
        match t.get("weight") {
            None => Some(0),
            Some(v) => self
                .integer(
                    v,
                    "weight",
                    -VRRP_MAX_WEIGHT,
                    VRRP_MAX_WEIGHT,
                    " (0: FAULT while failing)",
                )
                .map(|w| w as i32),
        }
    }

    fn vrrp_required_string(&mut self, t: &Table<'_, '_>, key: &str) -> Option<String> {
        match t.get(key) {
            Some(v) => self.string(v, key).map(str::to_string),
            None => {
                self.errs.at(&t.span, format!("{} needs {key}", t.name));
                None
            }
        }
    }

    fn vrrp_addr(&mut self, v: &Val<'_>, key: &str) -> Option<IpAddr> {
        let s = self.string(v, key)?;
        match s.parse::<IpAddr>() {
            Ok(a) if !a.is_unspecified() && !a.is_multicast() => Some(a),
            _ => {
                self.errs.at(
                    &v.span(),
                    format!("{key} must be a unicast IPv4 or IPv6 address, not \"{s}\""),
                );
                None
            }
        }
    }

    /// `vips`: a non-empty array of `address[/prefix]`, one family, no
    /// duplicates.
    fn vrrp_vips(&mut self, t: &Table<'_, '_>) -> Option<Vec<VrrpVip>> {
        let Some(v) = t.get("vips") else {
            self.errs
                .at(&t.span, "[[vrrp]] needs vips = [\"address/prefix\", ...]");
            return None;
        };
        let items = match v.get_ref() {
            DeValue::Array(items) if !items.is_empty() && items.len() <= 255 => items,
            other => {
                self.errs.at(
                    &v.span(),
                    format!(
                        "vips must be an array of 1 to 255 addresses, not {}",
                        article(other)
                    ),
                );
                return None;
            }
        };
        let mut out: Vec<VrrpVip> = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let Some(s) = self.string(item, "each of vips") else {
                ok = false;
                continue;
            };
            let (a, p) = match s.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (s, None),
            };
            let addr = match a.parse::<IpAddr>() {
                Ok(a) if !a.is_unspecified() && !a.is_multicast() => a,
                _ => {
                    self.errs.at(
                        &item.span(),
                        format!("\"{s}\" is not a unicast address[/prefix]"),
                    );
                    ok = false;
                    continue;
                }
            };
            let max = if addr.is_ipv6() { 128 } else { 32 };
            let prefix = match p.map(|p| p.parse::<u8>()) {
                None => max,
                Some(Ok(n)) if (1..=max).contains(&n) => n,
                Some(_) => {
                    self.errs.at(
                        &item.span(),
                        format!("the prefix of \"{s}\" must be 1..={max}"),
                    );
                    ok = false;
                    continue;
                }
            };
            if let Some(first) = out.first() {
                if first.addr.is_ipv6() != addr.is_ipv6() {
                    self.errs.at(
                        &item.span(),
                        "all vips of an instance must be of one address family",
                    );
                    ok = false;
                    continue;
                }
            }
            if out.iter().any(|x| x.addr == addr) {
                self.errs
                    .at(&item.span(), format!("{addr} is listed twice"));
                ok = false;
                continue;
            }
            out.push(VrrpVip { addr, prefix });
        }
        ok.then_some(out)
    }

    /// `advert_interval` in seconds: VRRPv2 whole seconds 1..=255, VRRPv3
    /// 0.01..=40.95 in steps of 0.01. Returns centiseconds.
    fn vrrp_interval(&mut self, v: &Val<'_>, v3: bool) -> Option<u16> {
        let secs = self.vrrp_number(v, "advert_interval")?;
        let cs = (secs * 100.0).round();
        let whole_cs = (secs * 100.0 - cs).abs() < 1e-6;
        if v3 {
            if !(whole_cs && (1.0..=4095.0).contains(&cs)) {
                self.errs.at(
                    &v.span(),
                    "advert_interval must be 0.01..=40.95 seconds in steps of 0.01 (VRRPv3)",
                );
                return None;
            }
        } else if !(whole_cs && cs % 100.0 == 0.0 && (100.0..=25500.0).contains(&cs)) {
            self.errs.at(
                &v.span(),
                "advert_interval must be whole seconds 1..=255 with version = 2 (use version = 3 for sub-second adverts)",
            );
            return None;
        }
        Some(cs as u16)
    }

    fn vrrp_number(&mut self, v: &Val<'_>, key: &str) -> Option<f64> {
        match v.get_ref() {
            DeValue::Integer(_) => self
                .integer(v, key, 0, i64::from(u32::MAX), " seconds")
                .map(|n| n as f64),
            DeValue::Float(f) => {
                let text: String = f.as_str().chars().filter(|c| *c != '_').collect();
                match text.parse::<f64>() {
                    Ok(x) if x.is_finite() => Some(x),
                    _ => {
                        self.errs
                            .at(&v.span(), format!("{key} must be a number of seconds"));
                        None
                    }
                }
            }
            other => {
                self.errs.at(
                    &v.span(),
                    format!("{key} must be a number of seconds, not {}", article(other)),
                );
                None
            }
        }
    }

    /// Seconds (integer or float) in ms, at most `max` s; 0 allowed only
    /// with `zero_ok`.
    fn vrrp_seconds(&mut self, v: &Val<'_>, key: &str, max: f64, zero_ok: bool) -> Option<u64> {
        let secs = self.vrrp_number(v, key)?;
        let ms = (secs * 1000.0).round();
        let ok = secs <= max && ms >= 0.0 && (zero_ok && secs == 0.0 || ms >= 1.0);
        if !ok {
            let low = if zero_ok { "0" } else { "0.001" };
            self.errs
                .at(&v.span(), format!("{key} must be {low}..={max} seconds"));
            return None;
        }
        Some(ms as u64)
    }

    /// A non-empty array of strings (argv, no shell).
    fn vrrp_argv(&mut self, v: &Val<'_>, key: &str) -> Option<Vec<String>> {
        let out: Option<Vec<String>> = match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .map(|i| match i.get_ref() {
                    DeValue::String(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        match out {
            Some(a) if !a.is_empty() && !a[0].is_empty() => Some(a),
            _ => {
                self.errs.at(
                    &v.span(),
                    format!(
                        "{key} must be a non-empty array of strings, the program and its arguments \
                         (no shell), e.g. [\"/usr/local/bin/notify\", \"--quiet\"]"
                    ),
                );
                None
            }
        }
    }
}
