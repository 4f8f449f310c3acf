//! Reading and validating rvs.toml.
//!
//! The file is parsed by the `toml` crate into a tree that remembers where
//! every key and value is ([`toml::de::DeTable`], values wrapped in
//! [`toml::Spanned`]), and then walked by hand rather than through a serde
//! derive, so that one pass reports every problem, each at its line and
//! column, instead of stopping at the first. Syntax errors come from the
//! `toml` crate's recovering parser (with [`toml::de::Error::span`]); when
//! there are any, nothing else is checked.
//!
//! The semantic checks are those ipvsadm and the kernel apply before
//! accepting `-A`/`-a` (see `docs/config.md` for the list), plus what the
//! chosen engine cannot carry.

use crate::addr::{format_endpoint, mask_from_prefix, parse_endpoint};
use crate::error::{ConfigError, Errors};
use crate::model::*;
use rvs_core::dest::{TUN_F_CSUM, TUN_F_NOCSUM, TUN_F_REMCSUM};
use rvs_core::service::{
    DEFAULT_PERSISTENT_TIMEOUT, DEFAULT_SCHEDULER, MAX_PERSISTENT_TIMEOUT, PERSISTENCE_ENGINES,
    SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
};
use rvs_core::table::is_valid_dest_addr;
use rvs_core::{Af, DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey, TunType};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

mod check;
mod vrrp;
pub use check::{dns_name_ok, PLACEHOLDERS, QUERY_TYPES};

type Val<'i> = Spanned<DeValue<'i>>;
/// A firewall-mark service's `match` entries with their spans.
type MatchList = (ServiceKey, Vec<(MarkMatch, Range<usize>)>);

/// One `match` entry: `PROTO:ADDRESS[/PREFIX]:PORT[-PORT]`, IPv6 in
/// brackets (`tcp:[2001:db8::]/64:443` or `tcp:[2001:db8::/64]:443`).
pub fn parse_match(s: &str) -> Result<MarkMatch, String> {
    let form = "write PROTO:ADDRESS[/PREFIX]:PORT[-PORT], e.g. tcp:198.18.0.100:80, \
                udp:198.18.0.0/24:5000-5100 or tcp:[2001:db8::]/64:443";
    let (proto, rest) = s.split_once(':').ok_or(form)?;
    let proto = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => return Err("the xdp engine classifies TCP and UDP, not SCTP".into()),
        other => return Err(format!("unknown protocol `{other}` (tcp or udp)")),
    };
    let (net, prefix, ports) = if let Some(r) = rest.strip_prefix('[') {
        let (inside, after) = r.split_once(']').ok_or("a `[` without its `]`")?;
        let (net, mut prefix) = match inside.split_once('/') {
            Some((n, p)) => (n, Some(p)),
            None => (inside, None),
        };
        let ports = match after.strip_prefix('/') {
            Some(a) if prefix.is_none() => {
                let (p, ports) = a.split_once(':').ok_or(form)?;
                prefix = Some(p);
                ports
            }
            _ => after.strip_prefix(':').ok_or(form)?,
        };
        let net: std::net::Ipv6Addr = net
            .parse()
            .map_err(|_| format!("`{net}` is not an IPv6 address"))?;
        (IpAddr::V6(net), prefix, ports)
    } else {
        let (net, ports) = rest.rsplit_once(':').ok_or(form)?;
        if net.contains(':') {
            return Err("write an IPv6 address in brackets, e.g. tcp:[2001:db8::1]:80".into());
        }
        let (net, prefix) = match net.split_once('/') {
            Some((n, p)) => (n, Some(p)),
            None => (net, None),
        };
        let net: Ipv4Addr = net
            .parse()
            .map_err(|_| format!("`{net}` is not an IPv4 address"))?;
        (IpAddr::V4(net), prefix, ports)
    };
    let max = if net.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("the prefix length must be 0..={max}, not `{p}`")),
        },
    };
    let port = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port (0..=65535)"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(ports)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(format!("the port range {lo}-{hi} is empty"));
    }
    let m = MarkMatch {
        proto,
        net,
        prefix,
        lo,
        hi,
    };
    if masked(net, prefix) != net {
        let clean = MarkMatch {
            net: masked(net, prefix),
            ..m
        };
        return Err(format!(
            "the address has bits set past the prefix (the network is {clean})"
        ));
    }
    Ok(m)
}

/// `a` with the bits past `prefix` cleared.
fn masked(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & m))
        }
        IpAddr::V6(v) => {
            let m = u128::MAX.checked_shl(128 - prefix as u32).unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v) & m))
        }
    }
}

/// Largest weight and threshold (Debian's ipvsadm: `INT_MAX`).
pub const MAX_WEIGHT: i64 = i32::MAX as i64;
/// Upper bound of each `--set` timeout, in seconds (ipvsadm's limit).
pub const MAX_TIMEOUT: i64 = MAX_PERSISTENT_TIMEOUT as i64;
/// Port ranges the xdp engine holds for one network of the firewall-mark
/// classification, those of the networks covering it included
/// (`rvs_xdp::marks::MARK_RANGES`).
pub const MAX_MARK_RANGES: usize = 16;
/// Most proxy worker threads a file may ask for.
pub const MAX_WORKERS: i64 = 1024;
/// Longest connect timeout, in seconds.
pub const MAX_CONNECT_TIMEOUT: i64 = 3600;

const TOP_KEYS: &[&str] = &[
    "engine",
    "enable_schedulers",
    "proxy",
    "xdp",
    "timeouts",
    "sysctl",
    "service",
    "vrrp",
];
const PROXY_KEYS: &[&str] = &["workers", "connect_timeout"];
const XDP_KEYS: &[&str] = &["interface"];
const TIMEOUT_KEYS: &[&str] = &["tcp", "tcpfin", "udp"];
const SYSCTL_KEYS: &[&str] = &[
    "expire_nodest_conn",
    "expire_quiescent_template",
    "conn_reuse_mode",
    "secure_tcp",
    "amemthresh",
];
const SERVICE_KEYS: &[&str] = &[
    "tcp",
    "udp",
    "sctp",
    "fwmark",
    "ipv6",
    "scheduler",
    "sched_flags",
    "persistent",
    "netmask",
    "pe",
    "one_packet",
    "proxy_protocol",
    "transparent",
    "tproxy_port",
    "match",
    "real_server",
    "on_failure",
    "quorum",
    "quorum_hysteresis",
    "quorum_up",
    "quorum_down",
    "initial",
    "fallback",
    "check",
];
const REAL_SERVER_KEYS: &[&str] = &[
    "address",
    "method",
    "weight",
    "u_threshold",
    "l_threshold",
    "tunnel_type",
    "tunnel_port",
    "tunnel_checksum",
    "proxy_protocol",
    "check",
];

/// Parses and validates a configuration file. `path` is only used in the
/// error messages (`path:line:column: message`). Every error found is
/// returned, in file order.
pub fn parse(text: &str, path: &str) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Errors::new(text, path);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in &syntax {
            errs.at(&e.span().unwrap_or(0..0), e.message());
        }
        return Err(errs.finish());
    }
    let mut r = Reader { errs };
    let cfg = r.config(root.get_ref(), root.span());
    let errs = r.errs.finish();
    if errs.is_empty() {
        Ok(cfg)
    } else {
        Err(errs)
    }
}

/// A table with the span that introduced it (its header, or the whole
/// inline table) and a name for messages (`[[service]]`).
struct Table<'t, 'i> {
    map: &'t DeTable<'i>,
    span: Range<usize>,
    name: &'static str,
}

impl<'t, 'i> Table<'t, 'i> {
    fn get(&self, key: &str) -> Option<&'t Val<'i>> {
        self.map.get(key)
    }

    fn key_span(&self, key: &str) -> Range<usize> {
        self.map
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map_or(self.span.clone(), |(k, _)| k.span())
    }
}

/// The closest known key, for "did you mean".
fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// A service's name in messages: `tcp 10.0.0.1:80`, `fwmark 5 (ipv6)`.
pub fn describe(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            format!("{} {}", proto.service_proto(), format_endpoint(addr, *port))
        }
        ServiceKey::Fwmark { mark, af } => match af {
            Af::Inet => format!("fwmark {mark}"),
            Af::Inet6 => format!("fwmark {mark} (ipv6)"),
        },
    }
}

/// What a service's real servers need to know about it.
struct SvcCtx {
    key: ServiceKey,
    engine: Option<Engine>,
}

struct Reader<'a> {
    errs: Errors<'a>,
}

impl Reader<'_> {
    fn check_keys(&mut self, t: &Table, known: &[&str]) {
        for (k, _) in t.map.iter() {
            let name = k.get_ref().as_ref();
            if known.contains(&name) {
                continue;
            }
            let msg = match suggest(name, known) {
                Some(s) => format!("unknown key `{name}` in {}; did you mean `{s}`?", t.name),
                None => format!(
                    "unknown key `{name}` in {} (known keys: {})",
                    t.name,
                    known.join(", ")
                ),
            };
            self.errs.at(&k.span(), msg);
        }
    }

    fn table<'t, 'i>(
        &mut self,
        v: &'t Val<'i>,
        key: &str,
        name: &'static str,
    ) -> Option<Table<'t, 'i>> {
        match v.get_ref() {
            DeValue::Table(map) => Some(Table {
                map,
                span: v.span(),
                name,
            }),
            other => {
                self.errs.at(
                    &v.span(),
                    format!("`{key}` must be a table ({name}), not {}", article(other)),
                );
                None
            }
        }
    }

    fn string<'t>(&mut self, v: &'t Val<'_>, key: &str) -> Option<&'t str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.errs.at(
                    &v.span(),
                    format!("{key} must be a string, not {}", article(other)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, v: &Val<'_>, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.errs.at(
                    &v.span(),
                    format!("{key} must be true or false, not {}", article(other)),
                );
                None
            }
        }
    }

    /// An integer in `min..=max`; `unit` follows the range in messages.
    fn integer(&mut self, v: &Val<'_>, key: &str, min: i64, max: i64, unit: &str) -> Option<i64> {
        let range_msg = format!("{key} must be {min}..={max}{unit}");
        match v.get_ref() {
            DeValue::Integer(i) => {
                let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
                match i128::from_str_radix(&digits, i.radix()) {
                    Ok(n) if (min as i128..=max as i128).contains(&n) => Some(n as i64),
                    _ => {
                        self.errs.at(&v.span(), range_msg);
                        None
                    }
                }
            }
            other => {
                self.errs.at(
                    &v.span(),
                    format!("{key} must be an integer, not {}", article(other)),
                );
                None
            }
        }
    }

    /// One of `names` (the values of an enum-like key).
    fn choice<T: Copy>(&mut self, v: &Val<'_>, key: &str, names: &[(&str, T)]) -> Option<T> {
        let s = self.string(v, key)?;
        if let Some((_, t)) = names.iter().find(|(n, _)| *n == s) {
            return Some(*t);
        }
        let list: Vec<String> = names.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let list = match list.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => list.join(""),
        };
        self.errs
            .at(&v.span(), format!("{key} must be {list}, not \"{s}\""));
        None
    }

    fn config(&mut self, root: &DeTable<'_>, span: Range<usize>) -> Config {
        let top = Table {
            map: root,
            span,
            name: "the top level",
        };
        self.check_keys(&top, TOP_KEYS);
        let mut cfg = Config::default();

        let engine = match top.get("engine") {
            None => Some(Engine::Proxy),
            Some(v) => self.choice(
                v,
                "engine",
                &[("proxy", Engine::Proxy), ("xdp", Engine::Xdp)],
            ),
        };
        cfg.engine = engine.unwrap_or_default();

        if let Some(v) = top.get("enable_schedulers") {
            cfg.enable_schedulers = self.enable_schedulers(v);
        }
        if let Some(t) = top
            .get("proxy")
            .and_then(|v| self.table(v, "proxy", "[proxy]"))
        {
            self.check_keys(&t, PROXY_KEYS);
            if let Some(v) = t.get("workers") {
                if let Some(n) = self.integer(v, "workers", 0, MAX_WORKERS, " (0: one per CPU)") {
                    cfg.proxy.workers = n as u32;
                }
            }
            if let Some(v) = t.get("connect_timeout") {
                if let Some(n) =
                    self.integer(v, "connect_timeout", 1, MAX_CONNECT_TIMEOUT, " seconds")
                {
                    cfg.proxy.connect_timeout = n as u32;
                }
            }
        }
        if let Some(t) = top.get("xdp").and_then(|v| self.table(v, "xdp", "[xdp]")) {
            self.check_keys(&t, XDP_KEYS);
            if let Some(v) = t.get("interface") {
                if let Some(s) = self.string(v, "interface") {
                    if s.is_empty()
                        || s.len() > 15
                        || s.contains(|c: char| c == '/' || c.is_whitespace())
                    {
                        self.errs.at(
                            &v.span(),
                            "interface must be an interface name (1 to 15 bytes, no `/` or blanks)",
                        );
                    } else {
                        cfg.xdp.interface = Some(s.to_string());
                    }
                }
            }
        }
        if let Some(t) = top
            .get("timeouts")
            .and_then(|v| self.table(v, "timeouts", "[timeouts]"))
        {
            self.check_keys(&t, TIMEOUT_KEYS);
            let slots: [(&str, &mut u32); 3] = [
                ("tcp", &mut cfg.timeouts.tcp),
                ("tcpfin", &mut cfg.timeouts.tcp_fin),
                ("udp", &mut cfg.timeouts.udp),
            ];
            for (key, slot) in slots {
                if let Some(v) = t.get(key) {
                    let name = format!("timeouts.{key}");
                    if let Some(n) = self.integer(v, &name, 1, MAX_TIMEOUT, " seconds") {
                        *slot = n as u32;
                    }
                }
            }
        }
        if let Some(t) = top
            .get("sysctl")
            .and_then(|v| self.table(v, "sysctl", "[sysctl]"))
        {
            self.check_keys(&t, SYSCTL_KEYS);
            if let Some(b) = t
                .get("expire_nodest_conn")
                .and_then(|v| self.boolean(v, "expire_nodest_conn"))
            {
                cfg.sysctl.expire_nodest_conn = b;
            }
            if let Some(b) = t
                .get("expire_quiescent_template")
                .and_then(|v| self.boolean(v, "expire_quiescent_template"))
            {
                cfg.sysctl.expire_quiescent_template = b;
            }
            if let Some(n) = t
                .get("conn_reuse_mode")
                .and_then(|v| self.integer(v, "conn_reuse_mode", 0, 3, ""))
            {
                cfg.sysctl.conn_reuse_mode = n as u8;
            }
            // 2 is the automatic mode's "on" state, which the defence
            // routine sets; a file asks for 0, 1 or 3 (as the kernel's
            // sysctl accepts any of 0..=3, 2 is taken as automatic too).
            if let Some(n) = t
                .get("secure_tcp")
                .and_then(|v| self.integer(v, "secure_tcp", 0, 3, ""))
            {
                cfg.sysctl.secure_tcp = if n == 2 { 1 } else { n as u8 };
            }
            if let Some(n) = t
                .get("amemthresh")
                .and_then(|v| self.integer(v, "amemthresh", 0, i64::MAX, ""))
            {
                cfg.sysctl.amemthresh = n as u64;
            }
        }

        if let Some(v) = top.get("service") {
            let mut seen: HashMap<ServiceKey, usize> = HashMap::new();
            let mut matches = Vec::new();
            for item in self.array_of_tables(v, "service", "[[service]]") {
                if let Some(s) = self.service(
                    item,
                    engine,
                    &cfg.enable_schedulers,
                    &mut seen,
                    &mut matches,
                ) {
                    cfg.services.push(s);
                }
            }
            self.check_matches(&matches);
            cfg.matches = matches
                .into_iter()
                .map(|(k, m)| (k, m.into_iter().map(|(m, _)| m).collect()))
                .collect();
        }
        if let Some(v) = top.get("vrrp") {
            let keys: Vec<ServiceKey> = cfg.services.iter().map(|s| s.key).collect();
            cfg.vrrp = self.vrrp(v, &keys);
        }
        cfg
    }

    fn array_of_tables<'t, 'i>(
        &mut self,
        v: &'t Val<'i>,
        key: &str,
        name: &'static str,
    ) -> Vec<Table<'t, 'i>> {
        let DeValue::Array(items) = v.get_ref() else {
            let found = article(v.get_ref());
            self.errs.at(
                &v.span(),
                format!("`{key}` must be an array of tables ({name}), not {found}"),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.table(item, key, name))
            .collect()
    }

    fn enable_schedulers(&mut self, v: &Val<'_>) -> Vec<String> {
        let DeValue::Array(items) = v.get_ref() else {
            self.errs.at(
                &v.span(),
                format!(
                    "enable_schedulers must be an array of names, not {}",
                    article(v.get_ref())
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            let Some(name) = self.string(item, "each of enable_schedulers") else {
                continue;
            };
            if !rvs_sched::NAMES.contains(&name) {
                self.errs.at(
                    &item.span(),
                    format!(
                        "unknown scheduler `{name}` (schedulers: {})",
                        rvs_sched::NAMES.join(", ")
                    ),
                );
            } else if !out.iter().any(|s: &String| s == name) {
                out.push(name.to_string());
            }
        }
        out
    }

    fn service(
        &mut self,
        t: Table<'_, '_>,
        engine: Option<Engine>,
        enabled: &[String],
        seen: &mut HashMap<ServiceKey, usize>,
        matches: &mut Vec<MatchList>,
    ) -> Option<Service> {
        self.check_keys(&t, SERVICE_KEYS);
        let (key, key_span) = self.service_key(&t)?;
        let af = key.af();
        let mut config = ServiceConfig::defaults(af);
        let mut ok = true;

        if let Some(v) = t.get("scheduler") {
            match self.string(v, "scheduler") {
                Some(name)
                    if LINUX_SCHEDULERS.contains(&name) || enabled.iter().any(|e| e == name) =>
                {
                    config.scheduler = name.to_string();
                }
                Some(name) if rvs_sched::NAMES.contains(&name) => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        format!(
                            "scheduler `{name}` is not in Linux 6.1; enable it with \
                             enable_schedulers = [\"{name}\"] at the top level"
                        ),
                    );
                }
                Some(name) => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        format!(
                            "unknown scheduler `{name}` (schedulers: {})",
                            rvs_sched::NAMES.join(", ")
                        ),
                    );
                }
                None => ok = false,
            }
        } else {
            config.scheduler = DEFAULT_SCHEDULER.to_string();
        }

        if let Some(v) = t.get("sched_flags") {
            match self.sched_flags(v, &config.scheduler) {
                Some(f) => config.flags |= f,
                None => ok = false,
            }
        }

        if let Some(v) = t.get("persistent") {
            let timeout = match v.get_ref() {
                DeValue::Boolean(true) => Some(DEFAULT_PERSISTENT_TIMEOUT),
                DeValue::Boolean(false) => None,
                _ => match self.integer(
                    v,
                    "persistent",
                    1,
                    MAX_PERSISTENT_TIMEOUT as i64,
                    " seconds (or true for 360)",
                ) {
                    Some(n) => Some(n as u32),
                    None => {
                        ok = false;
                        None
                    }
                },
            };
            if let Some(timeout) = timeout {
                config.flags |= SVC_F_PERSISTENT;
                config.timeout = timeout;
            }
        }

        if let Some(v) = t.get("netmask") {
            if config.flags & SVC_F_PERSISTENT == 0 {
                ok = false;
                self.errs.at(
                    &t.key_span("netmask"),
                    "netmask only applies with persistent",
                );
            } else {
                match self.netmask(v, af) {
                    Some(m) => config.netmask = m,
                    None => ok = false,
                }
            }
        }

        if let Some(v) = t.get("pe") {
            match self.string(v, "pe") {
                Some(pe) if PERSISTENCE_ENGINES.contains(&pe) => config.pe_name = Some(pe.into()),
                Some(pe) => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        format!(
                            "unknown persistence engine `{pe}` (engines: {})",
                            PERSISTENCE_ENGINES.join(", ")
                        ),
                    );
                }
                None => ok = false,
            }
        }

        if let Some(v) = t.get("one_packet") {
            match self.boolean(v, "one_packet") {
                Some(true) => {
                    if !key.is_fwmark() && key.protocol() != Protocol::Udp {
                        ok = false;
                        self.errs.at(
                            &v.span(),
                            "one_packet (One-Packet Scheduling) is only for UDP virtual services",
                        );
                    } else {
                        config.flags |= SVC_F_ONEPACKET;
                    }
                }
                Some(false) => {}
                None => ok = false,
            }
        }

        if !key.is_fwmark() && key.port() == 0 && config.flags & SVC_F_PERSISTENT == 0 {
            ok = false;
            self.errs.at(
                &key_span,
                "port 0 is only allowed for a persistent service (set persistent)",
            );
        }

        let mut proxy_protocol = ProxyProtocol::None;
        if let Some(v) = t.get("proxy_protocol") {
            match self.proxy_protocol(v, engine) {
                Some(p) => proxy_protocol = p,
                None => ok = false,
            }
        }
        let mut transparent = false;
        if let Some(v) = t.get("transparent") {
            match self.boolean(v, "transparent") {
                Some(true) if engine == Some(Engine::Xdp) => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        "transparent applies to the proxy engine (engine = \"proxy\"); \
                         the xdp engine keeps the client's address anyway",
                    );
                }
                Some(b) => transparent = b,
                None => ok = false,
            }
        }

        let mut tproxy_port = None;
        if let Some(v) = t.get("tproxy_port") {
            let any_port = matches!(
                key,
                ServiceKey::Addr {
                    proto: Protocol::Tcp,
                    port: 0,
                    ..
                }
            );
            if engine == Some(Engine::Xdp) {
                ok = false;
                self.errs.at(
                    &v.span(),
                    "tproxy_port applies to the proxy engine (engine = \"proxy\"); \
                     the xdp engine needs no listener",
                );
            } else if !key.is_fwmark() && !any_port {
                ok = false;
                self.errs.at(
                    &v.span(),
                    format!(
                        "tproxy_port is for firewall-mark and port-0 TCP services \
                         (their TPROXY listener); {} listens on its own port",
                        describe(&key)
                    ),
                );
            } else {
                match self.integer(v, "tproxy_port", 1, 65535, "") {
                    Some(p) => tproxy_port = Some(p as u16),
                    None => ok = false,
                }
            }
        }

        if let Some(v) = t.get("match") {
            if !key.is_fwmark() {
                ok = false;
                self.errs.at(
                    &t.key_span("match"),
                    "match is for firewall-mark services (fwmark = N): an address service \
                     already names its protocol, address and port",
                );
            } else if engine != Some(Engine::Xdp) {
                ok = false;
                self.errs.at(
                    &t.key_span("match"),
                    "match classifies packets for a firewall-mark service on the xdp engine \
                     (engine = \"xdp\"); with the proxy engine netfilter marks them \
                     (docs/engines.md)",
                );
            } else {
                match self.match_list(v, key.af()) {
                    Some(m) => matches.push((key, m)),
                    None => ok = false,
                }
            }
        }

        match seen.get(&key) {
            Some(&line) => {
                ok = false;
                self.errs.at(
                    &key_span,
                    format!(
                        "duplicate service {} (first declared at line {line})",
                        describe(&key)
                    ),
                );
            }
            None => {
                seen.insert(key, self.errs.line_of(&key_span));
            }
        }

        let svc = SvcCtx { key, engine };
        let mut real_servers = Vec::new();
        if let Some(v) = t.get("real_server") {
            let mut seen_rs: HashMap<(IpAddr, u16), usize> = HashMap::new();
            for item in self.array_of_tables(v, "real_server", "[[service.real_server]]") {
                match self.real_server(item, &svc, &mut seen_rs) {
                    Some(r) => real_servers.push(r),
                    None => ok = false,
                }
            }
        }

        let health = self.service_health(&t, &svc, &real_servers);
        ok &= health.is_some();
        if let Some(h) = &health {
            for rs in real_servers.iter().filter(|r| r.dest.port == 0) {
                let checks = if rs.checks.is_empty() {
                    &h.checks
                } else {
                    &rs.checks
                };
                if let Some(c) = checks.iter().find(|c| {
                    c.port.is_none() && !matches!(c.kind, crate::health::CheckKind::Command { .. })
                }) {
                    ok = false;
                    self.errs.at(
                        &key_span,
                        format!(
                            "real server {} of {} has port 0, so its {} check needs a port",
                            rs.dest.addr,
                            describe(&key),
                            c.kind.name()
                        ),
                    );
                }
            }
        }

        ok.then(|| Service {
            key,
            config,
            proxy_protocol,
            transparent,
            tproxy_port,
            real_servers,
            health: health.unwrap_or_default(),
        })
    }

    /// `tcp`/`udp`/`sctp` = address, or `fwmark` (+ `ipv6`); returns the
    /// key and the span of the value that names it.
    fn service_key(&mut self, t: &Table<'_, '_>) -> Option<(ServiceKey, Range<usize>)> {
        let kinds = ["tcp", "udp", "sctp", "fwmark"];
        let mut present: Vec<(&str, &Val)> = kinds
            .iter()
            .filter_map(|k| t.get(k).map(|v| (*k, v)))
            .collect();
        present.sort_by_key(|(k, _)| t.key_span(k).start);
        let Some(&(kind, v)) = present.first() else {
            self.errs.at(
                &t.span,
                "a service needs one of tcp, udp, sctp or fwmark (e.g. tcp = \"10.0.0.1:80\")",
            );
            return None;
        };
        if let Some(&(second, _)) = present.get(1) {
            self.errs.at(
                &t.key_span(second),
                format!(
                    "a service has one of tcp, udp, sctp or fwmark, not both {kind} and {second}"
                ),
            );
            return None;
        }
        let ipv6 = match t.get("ipv6") {
            Some(_) if kind != "fwmark" => {
                self.errs.at(
                    &t.key_span("ipv6"),
                    "ipv6 is only for fwmark services (an address says its own family)",
                );
                return None;
            }
            Some(iv) => self.boolean(iv, "ipv6")?,
            None => false,
        };
        let key = if kind == "fwmark" {
            let mark = self.integer(v, "fwmark", 1, u32::MAX as i64, "")? as u32;
            let af = if ipv6 { Af::Inet6 } else { Af::Inet };
            ServiceKey::Fwmark { mark, af }
        } else {
            let s = self.string(v, kind)?;
            let (addr, port) = match parse_endpoint(s) {
                Ok(x) => x,
                Err(e) => {
                    self.errs.at(&v.span(), format!("{kind}: {e}"));
                    return None;
                }
            };
            let Some(port) = port else {
                self.errs.at(
                    &v.span(),
                    format!(
                        "{kind}: `{s}` needs a port, as {}",
                        format_endpoint(&addr, 80)
                    ),
                );
                return None;
            };
            let proto = match kind {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => Protocol::Sctp,
            };
            ServiceKey::Addr { proto, addr, port }
        };
        Some((key, v.span()))
    }

    /// `match = ["tcp:ADDR[/PREFIX]:PORT[-PORT]", ...]` of a firewall-mark
    /// service of family `af`.
    fn match_list(&mut self, v: &Val<'_>, af: Af) -> Option<Vec<(MarkMatch, Range<usize>)>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.errs.at(
                &v.span(),
                format!(
                    "match must be an array of \"proto:address:port\" strings, not {}",
                    article(v.get_ref())
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.errs.at(
                &v.span(),
                "match needs at least one entry (e.g. \"tcp:198.18.0.100:80\")",
            );
            return None;
        }
        let mut out: Vec<(MarkMatch, Range<usize>)> = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let Some(text) = self.string(item, "each entry of match") else {
                ok = false;
                continue;
            };
            match parse_match(text) {
                Ok(m) if Af::of(&m.net) != af => {
                    ok = false;
                    let want = if af == Af::Inet6 {
                        "IPv6 (ipv6 = true)"
                    } else {
                        "IPv4"
                    };
                    self.errs.at(
                        &item.span(),
                        format!("match: `{text}`: the service is {want}; the address must be too"),
                    );
                }
                Ok(m) => match out.iter().find(|(o, _)| *o == m) {
                    Some(_) => {
                        ok = false;
                        self.errs
                            .at(&item.span(), format!("match: `{text}` is listed twice"));
                    }
                    None => out.push((m, item.span())),
                },
                Err(e) => {
                    ok = false;
                    self.errs.at(&item.span(), format!("match: `{text}`: {e}"));
                }
            }
        }
        ok.then_some(out)
    }

    /// Across services: a packet has one mark, so no two services'
    /// entries may overlap; and one network (with the networks covering
    /// it) may have at most [`MAX_MARK_RANGES`] port ranges.
    fn check_matches(&mut self, lists: &[MatchList]) {
        let all: Vec<(ServiceKey, MarkMatch, Range<usize>)> = lists
            .iter()
            .flat_map(|(k, ms)| ms.iter().map(move |(m, sp)| (*k, *m, sp.clone())))
            .collect();
        for (i, (k, m, sp)) in all.iter().enumerate() {
            if let Some((ok_, om, osp)) = all[..i]
                .iter()
                .find(|(ok_, om, _)| ok_ != k && om.overlaps(m))
            {
                let line = self.errs.line_of(osp);
                self.errs.at(
                    sp,
                    format!(
                        "match: `{m}` overlaps `{om}` of {} (line {line}): a packet gets one mark",
                        describe(ok_)
                    ),
                );
            }
        }
        let mut reported = Vec::new();
        for (_, m, sp) in &all {
            let key = (m.proto, m.net, m.prefix);
            if reported.contains(&key) {
                continue;
            }
            let n = all
                .iter()
                .filter(|(_, o, _)| o.proto == m.proto && o.prefix <= m.prefix && o.covers(&m.net))
                .count();
            if n > MAX_MARK_RANGES {
                reported.push(key);
                self.errs.at(
                    sp,
                    format!(
                        "match: {n} port ranges apply to {}/{} (its own and those of the \
                         networks covering it); the xdp engine holds at most {MAX_MARK_RANGES}",
                        m.net, m.prefix
                    ),
                );
            }
        }
    }

    /// `sched_flags = ["sh-port", ...]`, ipvsadm's `-b` names.
    fn sched_flags(&mut self, v: &Val<'_>, scheduler: &str) -> Option<u32> {
        let DeValue::Array(items) = v.get_ref() else {
            self.errs.at(
                &v.span(),
                format!(
                    "sched_flags must be an array of flag names, not {}",
                    article(v.get_ref())
                ),
            );
            return None;
        };
        let mut flags = 0;
        let mut ok = true;
        for item in items.iter() {
            let Some(name) = self.string(item, "each of sched_flags") else {
                ok = false;
                continue;
            };
            let (bit, only) = match name {
                "flag-1" => (SVC_F_SCHED1, None),
                "flag-2" => (SVC_F_SCHED2, None),
                "flag-3" => (SVC_F_SCHED3, None),
                "sh-fallback" => (SVC_F_SCHED1, Some("sh")),
                "sh-port" => (SVC_F_SCHED2, Some("sh")),
                "mh-fallback" => (SVC_F_SCHED1, Some("mh")),
                "mh-port" => (SVC_F_SCHED2, Some("mh")),
                _ => {
                    ok = false;
                    self.errs.at(
                        &item.span(),
                        format!(
                            "unknown scheduler flag `{name}` (flag-1, flag-2, flag-3, \
                             sh-fallback, sh-port, mh-fallback, mh-port)"
                        ),
                    );
                    continue;
                }
            };
            match only {
                Some(s) if s != scheduler => {
                    ok = false;
                    self.errs.at(
                        &item.span(),
                        format!(
                            "scheduler flag `{name}` is for the {s} scheduler, not {scheduler}"
                        ),
                    );
                }
                _ => flags |= bit,
            }
        }
        ok.then_some(flags)
    }

    /// IPv4: a dotted netmask or a prefix length; IPv6: a prefix length.
    fn netmask(&mut self, v: &Val<'_>, af: Af) -> Option<u32> {
        match (af, v.get_ref()) {
            (Af::Inet, DeValue::String(s)) => {
                let Ok(a) = s.parse::<Ipv4Addr>() else {
                    self.errs.at(
                        &v.span(),
                        format!(
                            "netmask `{s}` is not a dotted IPv4 netmask (e.g. \"255.255.255.0\")"
                        ),
                    );
                    return None;
                };
                // Like the kernel, any mask is taken, contiguous or not.
                Some(u32::from(a))
            }
            (Af::Inet, DeValue::Integer(_)) => self
                .integer(v, "an IPv4 netmask prefix", 0, 32, "")
                .map(|n| mask_from_prefix(n as u32)),
            (Af::Inet6, DeValue::Integer(_)) => self
                .integer(v, "an IPv6 netmask (prefix length)", 1, 128, "")
                .map(|n| n as u32),
            (Af::Inet6, other) => {
                self.errs.at(
                    &v.span(),
                    format!(
                        "an IPv6 service's netmask is a prefix length 1..=128, not {}",
                        article(other)
                    ),
                );
                None
            }
            (Af::Inet, other) => {
                self.errs.at(
                    &v.span(),
                    format!(
                        "netmask must be a dotted netmask or a prefix length, not {}",
                        article(other)
                    ),
                );
                None
            }
        }
    }

    fn proxy_protocol(&mut self, v: &Val<'_>, engine: Option<Engine>) -> Option<ProxyProtocol> {
        let p = self.choice(
            v,
            "proxy_protocol",
            &[
                ("none", ProxyProtocol::None),
                ("v1", ProxyProtocol::V1),
                ("v2", ProxyProtocol::V2),
            ],
        )?;
        if p != ProxyProtocol::None && engine == Some(Engine::Xdp) {
            self.errs.at(
                &v.span(),
                "proxy_protocol needs the proxy engine (engine = \"proxy\"); \
                 the xdp engine forwards packets unchanged",
            );
            return None;
        }
        Some(p)
    }

    fn real_server(
        &mut self,
        t: Table<'_, '_>,
        svc: &SvcCtx,
        seen: &mut HashMap<(IpAddr, u16), usize>,
    ) -> Option<RealServer> {
        self.check_keys(&t, REAL_SERVER_KEYS);
        let Some(av) = t.get("address") else {
            self.errs.at(
                &t.span,
                "a real server needs an address (e.g. address = \"10.0.0.2:80\")",
            );
            return None;
        };
        let s = self.string(av, "address")?;
        let (addr, port) = match parse_endpoint(s) {
            Ok(x) => x,
            Err(e) => {
                self.errs.at(&av.span(), format!("address: {e}"));
                return None;
            }
        };
        let mut ok = true;

        let engine = svc.engine.unwrap_or_default();
        let method = match t.get("method") {
            None => Some(engine.default_method()),
            Some(v) => self.choice(
                v,
                "method",
                &[
                    ("masq", FwdMethod::Masq),
                    ("route", FwdMethod::Route),
                    ("tunnel", FwdMethod::Tunnel),
                ],
            ),
        };
        let method = method.unwrap_or_else(|| {
            ok = false;
            engine.default_method()
        });
        if method != FwdMethod::Masq && svc.engine == Some(Engine::Proxy) {
            ok = false;
            self.errs.at(
                &t.get("method").map_or(av.span(), |v| v.span()),
                format!(
                    "method \"{}\" needs the xdp engine (engine = \"xdp\"); \
                     the proxy engine only masquerades (method = \"masq\")",
                    method_name(method)
                ),
            );
        }

        let svc_port = svc.key.port();
        let port = match port {
            None => svc_port,
            Some(p) => {
                if !svc.key.is_fwmark() && method != FwdMethod::Masq && p != svc_port {
                    ok = false;
                    self.errs.at(
                        &av.span(),
                        format!(
                            "a {} real server receives the service's port {svc_port}, not {p} \
                             (only masq maps ports); write {} or use method = \"masq\"",
                            method_name(method),
                            format_endpoint(&addr, svc_port)
                        ),
                    );
                }
                p
            }
        };
        if Af::of(&addr) != svc.key.af() && method != FwdMethod::Tunnel {
            ok = false;
            self.errs.at(
                &av.span(),
                format!(
                    "{} is not of the service's address family; a different family is \
                     allowed only for tunnel real servers",
                    addr
                ),
            );
        }
        if !is_valid_dest_addr(&addr) {
            ok = false;
            self.errs.at(
                &av.span(),
                format!("{addr} is not a unicast address a real server can have"),
            );
        }

        let mut dest = DestConfig::new(addr, port);
        dest.fwd = method;
        let mut int = |this: &mut Self, key: &str, min: i64| -> Option<i64> {
            let v = t.get(key)?;
            let r = this.integer(v, key, min, MAX_WEIGHT, "");
            if r.is_none() {
                ok = false;
            }
            r
        };
        if let Some(w) = int(self, "weight", 0) {
            dest.weight = w as i32;
        }
        if let Some(u) = int(self, "u_threshold", 0) {
            dest.u_threshold = u as u32;
        }
        if let Some(l) = int(self, "l_threshold", 0) {
            dest.l_threshold = l as u32;
        }
        if dest.l_threshold > dest.u_threshold {
            ok = false;
            self.errs.at(
                &t.key_span("l_threshold"),
                format!(
                    "l_threshold {} is above u_threshold {} (the kernel refuses it; \
                     u_threshold 0 means no limit and allows no l_threshold)",
                    dest.l_threshold, dest.u_threshold
                ),
            );
        }

        if !self.tunnel(&t, &mut dest) {
            ok = false;
        }

        let mut proxy_protocol = None;
        if let Some(v) = t.get("proxy_protocol") {
            match self.proxy_protocol(v, svc.engine) {
                Some(p) => proxy_protocol = Some(p),
                None => ok = false,
            }
        }

        match seen.get(&(addr, port)) {
            Some(&line) => {
                ok = false;
                self.errs.at(
                    &av.span(),
                    format!(
                        "duplicate real server {} in {} (first declared at line {line})",
                        format_endpoint(&addr, port),
                        describe(&svc.key)
                    ),
                );
            }
            None => {
                seen.insert((addr, port), self.errs.line_of(&av.span()));
            }
        }

        let mut checks = Vec::new();
        if let Some(v) = t.get("check") {
            match self.checks(v, "[[service.real_server.check]]") {
                Some(c) => checks = c,
                None => ok = false,
            }
        }

        ok.then_some(RealServer {
            dest,
            proxy_protocol,
            checks,
        })
    }

    /// `tunnel_type`, `tunnel_port`, `tunnel_checksum`, with ipvsadm's
    /// rules: only for tunnel servers; ipip takes neither port nor
    /// checksum option; gue needs a port; gre has no remote checksum.
    fn tunnel(&mut self, t: &Table<'_, '_>, dest: &mut DestConfig) -> bool {
        let keys = ["tunnel_type", "tunnel_port", "tunnel_checksum"];
        if dest.fwd != FwdMethod::Tunnel {
            if let Some(k) = keys.iter().find(|k| t.get(k).is_some()) {
                self.errs.at(
                    &t.key_span(k),
                    format!("{k} applies only to method = \"tunnel\""),
                );
                return false;
            }
            return true;
        }
        let mut ok = true;
        let ty = match t.get("tunnel_type") {
            None => Some(TunType::Ipip),
            Some(v) => self.choice(
                v,
                "tunnel_type",
                &[
                    ("ipip", TunType::Ipip),
                    ("gue", TunType::Gue),
                    ("gre", TunType::Gre),
                ],
            ),
        };
        let Some(ty) = ty else { return false };
        dest.tun_type = ty;
        if let Some(v) = t.get("tunnel_port") {
            match self.integer(v, "tunnel_port", 1, 65535, "") {
                Some(p) if ty == TunType::Gue => dest.tun_port = p as u16,
                Some(_) => {
                    ok = false;
                    self.errs.at(
                        &t.key_span("tunnel_port"),
                        format!(
                            "tunnel_port applies only to the gue tunnel type, not {}",
                            tun_name(ty)
                        ),
                    );
                }
                None => ok = false,
            }
        } else if ty == TunType::Gue {
            ok = false;
            self.errs.at(
                &t.key_span("tunnel_type"),
                "the gue tunnel type needs tunnel_port",
            );
        }
        if let Some(v) = t.get("tunnel_checksum") {
            let c = self.choice(
                v,
                "tunnel_checksum",
                &[
                    ("nocsum", TUN_F_NOCSUM),
                    ("csum", TUN_F_CSUM),
                    ("remcsum", TUN_F_REMCSUM),
                ],
            );
            match (ty, c) {
                (_, None) => ok = false,
                (TunType::Ipip, Some(_)) => {
                    ok = false;
                    self.errs.at(
                        &t.key_span("tunnel_checksum"),
                        "tunnel_checksum does not apply to the ipip tunnel type",
                    );
                }
                (TunType::Gre, Some(TUN_F_REMCSUM)) => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        "remcsum is only for the gue tunnel type (gre: nocsum or csum)",
                    );
                }
                (_, Some(c)) => dest.tun_flags = c,
            }
        }
        ok
    }
}

/// `a string`, `an integer`... for messages.
fn article(v: &DeValue<'_>) -> String {
    let t = v.type_str();
    let a = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{a} {t}")
}

pub(crate) fn method_name(m: FwdMethod) -> &'static str {
    match m {
        FwdMethod::Masq => "masq",
        FwdMethod::Tunnel => "tunnel",
        // Local and Bypass never come from a file; they list as Route.
        FwdMethod::Route | FwdMethod::Local | FwdMethod::Bypass => "route",
    }
}

pub(crate) fn tun_name(t: TunType) -> &'static str {
    match t {
        TunType::Ipip => "ipip",
        TunType::Gue => "gue",
        TunType::Gre => "gre",
    }
}
