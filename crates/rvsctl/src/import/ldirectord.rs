//! ldirectord.cf → rvs.toml.
//!
//! The file is read the way ldirectord's `read_config` reads it: global
//! `key = value` lines start in column 0; `virtual =` (`virtual6 =`) opens
//! a block whose lines are indented by at least four spaces or a tab; an
//! unindented line or a blank line ends the block (so an indented line
//! after a blank one is an error, as in ldirectord); `#` starts a comment.
//! Global settings apply wherever they appear in the file (ldirectord reads
//! them when it sets the virtual services up, after the whole file), and a
//! virtual block's own settings override them. Host and service names are
//! looked up in the hosts and services files ([`NameDb`]), never in DNS.
//!
//! What ldirectord does at run time becomes rvs health-check keys: the
//! `checktype`/`service` pair becomes one check, `quiescent` becomes
//! `on_failure`, `fallback` the fallback server and `fallbackcommand` the
//! quorum commands. Whatever has no rvs equivalent is an error naming the
//! directive and its line; what is harmless to drop is a warning.

use super::model::*;
use super::{is_regex, reverse_name, split_plain_command};
use rvs_ipvsadm::NameDb;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;

/// A directive's value and where it was.
#[derive(Debug, Clone)]
struct At<T> {
    v: T,
    at: Origin,
}

fn at<T>(v: T, at: &Origin) -> At<T> {
    At { v, at: at.clone() }
}

/// A fallback server as written: `host[:port] [gate|masq|ipip]`.
#[derive(Debug, Clone)]
struct RawFallback {
    host: String,
    port: Option<String>,
    method: Option<Method>,
    v6: bool,
}

/// Settings that may appear both globally and in a virtual block.
#[derive(Debug, Clone, Default)]
struct Shared {
    checktimeout: Option<At<u32>>,
    negotiatetimeout: Option<At<u32>>,
    checkinterval: Option<At<u32>>,
    failurecount: Option<At<u32>>,
    quiescent: Option<At<bool>>,
    fallback: Option<At<RawFallback>>,
    fallbackcommand: Option<At<String>>,
}

/// A real server's own `"request", "receive"`.
type Probe = Option<(String, String)>;

#[derive(Debug, Clone)]
struct RawReal {
    at: Origin,
    text: String,
}

#[derive(Debug, Clone)]
struct Virtual {
    at: Origin,
    v6: bool,
    /// The text after `virtual =`.
    spec: String,
    shared: Shared,
    reals: Vec<RawReal>,
    request: Option<At<String>>,
    receive: Option<At<String>>,
    checktype: Option<At<String>>,
    checkcommand: Option<At<String>>,
    checkport: Option<At<u16>>,
    scheduler: Option<At<String>>,
    persistent: Option<At<u32>>,
    netmask: Option<At<String>>,
    protocol: Option<At<String>>,
    ops: Option<At<bool>>,
    service: Option<At<String>>,
    httpmethod: Option<At<String>>,
    virtualhost: Option<At<String>>,
    /// login, passwd, database, secret: only used by checks rvs lacks.
    credentials: Vec<At<String>>,
}

/// Splits `name = value` (or a bare `name`). The name is what ldirectord
/// matches on: letters, digits, `_` and `-`.
fn directive(s: &str) -> (&str, Option<&str>) {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(end);
    let rest = rest.trim_start();
    match rest.strip_prefix('=') {
        Some(v) => (name, Some(v.trim())),
        None if rest.is_empty() => (name, None),
        None => (s.trim(), None),
    }
}

/// A value without the double quotes ldirectord accepts around it.
fn unquote(v: &str) -> &str {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// `ld_port_to_service`: the negotiate check a virtual port implies.
fn port_to_service(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        25 => "smtp",
        53 => "dns",
        80 => "http",
        110 => "pop",
        119 => "nntp",
        143 => "imap",
        389 => "ldap",
        443 => "https",
        587 => "submission",
        993 => "imaps",
        995 => "pops",
        1521 => "oracle",
        1812 => "radius",
        3128 => "http_proxy",
        3306 => "mysql",
        5060 => "sip",
        5432 => "pgsql",
        _ => "none",
    }
}

const SERVICES: &[&str] = &[
    "dns",
    "ftp",
    "http",
    "https",
    "http_proxy",
    "imap",
    "imaps",
    "ldap",
    "nntp",
    "mysql",
    "none",
    "oracle",
    "pop",
    "pops",
    "radius",
    "pgsql",
    "sip",
    "smtp",
    "submission",
    "simpletcp",
];

/// Global directives ldirectord knows that only concern ldirectord itself.
const HARMLESS_GLOBAL: &[(&str, &str)] = &[
    ("logfile", "rvsd logs to stderr/journald"),
    ("supervised", "rvsd always runs in the foreground"),
    ("autoreload", "rvsd reloads on SIGHUP"),
    ("callback", "rvsd runs no script when its file changes"),
    (
        "readdquiescent",
        "rvsd keeps every configured real server in its table",
    ),
    ("emailalertfreq", "only used with emailalert"),
    ("emailalertstatus", "only used with emailalert"),
    ("emailalertfrom", "only used with emailalert"),
    ("smtp", "only used with emailalert"),
];

struct Parser<'a> {
    file: String,
    names: &'a NameDb,
    d: &'a mut Diags,
    global: Shared,
    fork: Option<At<bool>>,
    virtuals: Vec<Virtual>,
}

/// Reads an ldirectord.cf (its text and the name to report it by).
pub fn import(text: &str, file: &str, names: &NameDb, d: &mut Diags) -> Imported {
    let mut p = Parser {
        file: file.to_string(),
        names,
        d,
        global: Shared::default(),
        fork: None,
        virtuals: Vec::new(),
    };
    p.read(text);
    let mut out = Imported {
        source: file.to_string(),
        format: "ldirectord",
        ..Default::default()
    };
    let mut warned_quiescent = false;
    let virtuals = std::mem::take(&mut p.virtuals);
    for v in &virtuals {
        if let Some(s) = p.service(v, &mut warned_quiescent) {
            out.services.push(s);
        }
    }
    out
}

impl Parser<'_> {
    fn origin(&self, line: usize) -> Origin {
        Origin {
            file: self.file.clone(),
            line,
        }
    }

    fn read(&mut self, text: &str) {
        let mut current: Option<Virtual> = None;
        for (i, raw) in text.lines().enumerate() {
            let at = self.origin(i + 1);
            if let Some(v) = current.as_mut() {
                if raw.trim_start().starts_with('#') {
                    continue;
                }
                let line = raw.split('#').next().unwrap_or("").replace('\t', "    ");
                let indent = line.len() - line.trim_start_matches(' ').len();
                let body = line.trim();
                if indent >= 4 && !body.is_empty() {
                    Self::virtual_line(self.d, v, body, &at);
                    continue;
                }
                let v = current.take().expect("in a block");
                self.virtuals.push(v);
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let line = raw.split('#').next().unwrap_or("").trim_end();
            if let Some(rest) = line.strip_prefix("virtual") {
                let (v6, rest) = match rest.strip_prefix('6') {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                if let Some(spec) = rest.trim_start().strip_prefix('=') {
                    current = Some(Virtual {
                        at: at.clone(),
                        v6,
                        spec: spec.trim().to_string(),
                        shared: Shared::default(),
                        reals: Vec::new(),
                        request: None,
                        receive: None,
                        checktype: None,
                        checkcommand: None,
                        checkport: None,
                        scheduler: None,
                        persistent: None,
                        netmask: None,
                        protocol: None,
                        ops: None,
                        service: None,
                        httpmethod: None,
                        virtualhost: None,
                        credentials: Vec::new(),
                    });
                    continue;
                }
            }
            if line.starts_with([' ', '\t']) {
                let (name, _) = directive(line.trim());
                self.d.error(
                    &at,
                    name,
                    "indented line outside a virtual block (a blank or unindented line ends \
                     the block, as in ldirectord)",
                );
                continue;
            }
            self.global_line(line, &at);
        }
        if let Some(v) = current {
            self.virtuals.push(v);
        }
    }

    /// A setting both levels take; returns false when `name` is not one.
    fn shared_line(d: &mut Diags, s: &mut Shared, name: &str, value: &str, at: &Origin) -> bool {
        let count = |d: &mut Diags, what: &str| match value.parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                d.error(
                    at,
                    name,
                    format!("{what} must be a positive number of seconds"),
                );
                None
            }
        };
        match name {
            "checktimeout" => s.checktimeout = count(d, "checktimeout").map(|n| self::at(n, at)),
            "negotiatetimeout" => {
                s.negotiatetimeout = count(d, "negotiatetimeout").map(|n| self::at(n, at))
            }
            "checkinterval" => s.checkinterval = count(d, "checkinterval").map(|n| self::at(n, at)),
            "failurecount" => match value.parse::<u32>() {
                Ok(n) if n > 0 => s.failurecount = Some(self::at(n, at)),
                _ => d.error(at, name, "failurecount must be a positive number"),
            },
            "quiescent" => match yes_no(value) {
                Some(b) => s.quiescent = Some(self::at(b, at)),
                None => d.error(at, name, "quiescent must be yes or no"),
            },
            "fallback" | "fallback6" => match parse_fallback(value, name == "fallback6") {
                Some(f) => s.fallback = Some(self::at(f, at)),
                None => d.error(
                    at,
                    name,
                    format!("cannot read the fallback server {value:?}"),
                ),
            },
            "fallbackcommand" => {
                let v = unquote(value);
                if v.is_empty() {
                    d.error(at, name, "no command given");
                } else {
                    s.fallbackcommand = Some(self::at(v.to_string(), at));
                }
            }
            _ => return false,
        }
        true
    }

    fn global_line(&mut self, line: &str, at: &Origin) {
        let (name, value) = directive(line);
        let Some(value) = value else {
            if name == "supervised" {
                self.d
                    .warn(at, name, "not imported: rvsd always runs in the foreground");
            } else {
                self.d.error(
                    at,
                    name,
                    "unknown ldirectord directive (expected `name = value`)",
                );
            }
            return;
        };
        if Self::shared_line(self.d, &mut self.global, name, value, at) {
            return;
        }
        match name {
            "checkcount" => self.d.warn(
                at,
                name,
                "not imported: only used by ping checks, which rvs does not have",
            ),
            "fork" => match yes_no(value) {
                Some(b) => self.fork = Some(self::at(b, at)),
                None => self.d.error(at, name, "fork must be yes or no"),
            },
            "cleanstop" => match yes_no(value) {
                Some(true) => self.d.warn(
                    at,
                    name,
                    "not imported: rvsd removes its services when it stops, as cleanstop = yes",
                ),
                Some(false) => self.d.error(
                    at,
                    name,
                    "cleanstop = no (leave the table behind on exit) has no rvs equivalent",
                ),
                None => self.d.error(at, name, "cleanstop must be yes or no"),
            },
            "emailalert" => self.d.error(
                at,
                name,
                "e-mail alerts have no rvs equivalent (watch rvsd's metrics or logs instead)",
            ),
            "maintenancedir" => self.d.error(
                at,
                name,
                "maintenance files have no rvs equivalent (drain a server with \
                 `rvsadm -e ... -w 0` or the HTTP API instead)",
            ),
            "execute" => self.d.error(
                at,
                name,
                "starts another ldirectord for another file: import that file separately",
            ),
            "connecttimeout" | "timeout" => self.d.error(
                at,
                name,
                "deprecated and refused by ldirectord: use checktimeout or negotiatetimeout",
            ),
            _ => match HARMLESS_GLOBAL.iter().find(|(n, _)| *n == name) {
                Some((_, why)) => self.d.warn(at, name, format!("not imported: {why}")),
                None => self.d.error(at, name, "unknown ldirectord directive"),
            },
        }
    }

    fn virtual_line(d: &mut Diags, v: &mut Virtual, body: &str, at: &Origin) {
        let (name, value) = directive(body);
        let Some(value) = value else {
            d.error(
                at,
                name,
                "unknown directive in a virtual block (expected `name = value`)",
            );
            return;
        };
        if Self::shared_line(d, &mut v.shared, name, value, at) {
            return;
        }
        let text = |v: &str| self::at(unquote(v).to_string(), at);
        match name {
            "real" | "real6" => {
                if (name == "real6") != v.v6 {
                    let want = if v.v6 { "real6" } else { "real" };
                    d.error(
                        at,
                        name,
                        format!(
                            "use {want} in a {} block",
                            if v.v6 { "virtual6" } else { "virtual" }
                        ),
                    );
                    return;
                }
                v.reals.push(RawReal {
                    at: at.clone(),
                    text: value.to_string(),
                });
            }
            "request" => {
                let r = unquote(value);
                if r.is_empty() {
                    d.error(at, name, "no request string given");
                } else {
                    v.request = Some(text(value));
                }
            }
            "receive" => {
                if unquote(value).is_empty() {
                    d.error(at, name, "no receive string given");
                } else {
                    v.receive = Some(text(value));
                }
            }
            "checktype" => v.checktype = Some(self::at(value.to_string(), at)),
            "checkcommand" => v.checkcommand = Some(text(value)),
            "checkport" => match value.parse::<u16>() {
                Ok(p) if p > 0 => v.checkport = Some(self::at(p, at)),
                _ => d.error(at, name, "checkport must be 1..65535"),
            },
            "checkcount" => d.warn(
                at,
                name,
                "not imported: only used by ping checks, which rvs does not have",
            ),
            "login" | "passwd" | "database" | "secret" => {
                v.credentials.push(self::at(name.to_string(), at))
            }
            "scheduler" => v.scheduler = Some(self::at(value.to_string(), at)),
            "persistent" => match value.parse::<u32>() {
                Ok(p) => v.persistent = Some(self::at(p, at)),
                Err(_) => d.error(at, name, "persistent must be a number of seconds"),
            },
            "netmask" => v.netmask = Some(self::at(value.to_string(), at)),
            "protocol" => v.protocol = Some(self::at(value.to_string(), at)),
            "ops" => match yes_no(value) {
                Some(b) => v.ops = Some(self::at(b, at)),
                None => d.error(at, name, "ops must be yes or no"),
            },
            "service" => {
                if SERVICES.contains(&value) {
                    v.service = Some(self::at(value.to_string(), at));
                } else {
                    d.error(at, name, format!("unknown ldirectord service {value:?}"));
                }
            }
            "httpmethod" => v.httpmethod = Some(self::at(value.to_ascii_uppercase(), at)),
            "virtualhost" => v.virtualhost = Some(text(value)),
            "emailalert" => d.error(
                at,
                name,
                "e-mail alerts have no rvs equivalent (watch rvsd's metrics or logs instead)",
            ),
            "emailalertfreq" | "emailalertstatus" | "smtp" => {
                d.warn(at, name, "not imported: only used with emailalert")
            }
            "monitorfile" => d.warn(
                at,
                name,
                "not imported: rvsd logs check transitions and exports them as metrics",
            ),
            "cleanstop" => match yes_no(value) {
                Some(true) => d.warn(
                    at,
                    name,
                    "not imported: rvsd removes its services when it stops",
                ),
                Some(false) => d.error(
                    at,
                    name,
                    "cleanstop = no (leave the table behind on exit) has no rvs equivalent",
                ),
                None => d.error(at, name, "cleanstop must be yes or no"),
            },
            "connecttimeout" => d.error(
                at,
                name,
                "deprecated and refused by ldirectord: use checktimeout or negotiatetimeout",
            ),
            "load" => d.error(at, name, "load checks have no rvs equivalent"),
            _ => d.error(at, name, "unknown directive in a virtual block"),
        }
    }

    /// A host as ldirectord resolves it: an address, or a name from the
    /// hosts file (IPv4 only, as `gethostbyname`).
    fn host(&mut self, h: &str, v6: bool, at: &Origin, directive: &str) -> Option<IpAddr> {
        if v6 {
            let inner = h.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
            return match inner.and_then(|x| x.parse::<Ipv6Addr>().ok()) {
                Some(a) => Some(IpAddr::V6(a)),
                None => {
                    self.d.error(
                        at,
                        directive,
                        format!("{h:?} is not a bracketed IPv6 address"),
                    );
                    None
                }
            };
        }
        if let Ok(a) = h.parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(a));
        }
        match self.names.host_to_v4(h) {
            Some(a) => Some(IpAddr::V4(a)),
            None => {
                self.d.error(
                    at,
                    directive,
                    format!(
                        "cannot resolve {h:?} from the hosts file (rvs.toml takes addresses only)"
                    ),
                );
                None
            }
        }
    }

    /// A port number or a service name from the services file.
    fn port(&mut self, p: &str, proto: u16, at: &Origin, directive: &str) -> Option<u16> {
        if let Ok(n) = p.parse::<u16>() {
            return Some(n);
        }
        let found = self
            .names
            .service_to_port(p, proto)
            .or_else(|| self.names.service_to_port(p, IPPROTO_TCP))
            .or_else(|| self.names.service_to_port(p, IPPROTO_UDP));
        if found.is_none() {
            self.d
                .error(at, directive, format!("unknown port or service name {p:?}"));
        }
        found
    }

    fn service(&mut self, v: &Virtual, warned_quiescent: &mut bool) -> Option<Service> {
        let d_before = self.d.errors.len();
        let at = v.at.clone();
        let directive = if v.v6 { "virtual6" } else { "virtual" };
        // The identity: fwmark, or host:port.
        let (host, port_text) = if v.v6 {
            match v.spec.rfind("]:") {
                Some(i) => (Some(&v.spec[..=i]), Some(&v.spec[i + 2..])),
                None => (None, None),
            }
        } else {
            match v.spec.rsplit_once(':') {
                Some((h, p)) => (Some(h), Some(p)),
                None => (None, None),
            }
        };
        let mark = if host.is_none() {
            match v.spec.parse::<u32>() {
                Ok(m) if m > 0 => Some(m),
                _ => {
                    self.d.error(
                        &at,
                        directive,
                        format!("cannot read the virtual service {:?}", v.spec),
                    );
                    return None;
                }
            }
        } else {
            None
        };
        let port_is_dns = port_text.is_some_and(|p| p == "53" || p == "domain");
        let proto = match &v.protocol {
            Some(p) => match (p.v.as_str(), mark.is_some()) {
                ("fwm", true) => "fwm",
                ("tcp", false) => "tcp",
                ("udp", false) => "udp",
                (_, true) => {
                    self.d.error(
                        &p.at,
                        "protocol",
                        "a fwmark virtual service takes protocol = fwm",
                    );
                    "fwm"
                }
                _ => {
                    self.d
                        .error(&p.at, "protocol", "protocol must be tcp or udp");
                    "tcp"
                }
            },
            None if mark.is_some() => "fwm",
            None if port_is_dns => "udp",
            None => "tcp",
        };
        let pnum = if proto == "udp" {
            IPPROTO_UDP
        } else {
            IPPROTO_TCP
        };
        let key = match (mark, host, port_text) {
            (Some(mark), _, _) => Key::Fwmark { mark, ipv6: v.v6 },
            (None, Some(h), Some(p)) => {
                let addr = self.host(h, v.v6, &at, directive);
                let port = self.port(p, pnum, &at, directive);
                let (Some(addr), Some(port)) = (addr, port) else {
                    return None;
                };
                Key::Addr {
                    proto: if proto == "udp" { "udp" } else { "tcp" },
                    addr,
                    port,
                }
            }
            _ => unreachable!("a host without a port is a fwmark or an error"),
        };
        let vport = key.port();
        let mut s = Service {
            origin: at.clone(),
            title: format!("{directive} = {}", v.spec),
            key: key.clone(),
            scheduler: v
                .scheduler
                .as_ref()
                .map_or("wrr".to_string(), |x| x.v.clone()),
            sched_flags: Vec::new(),
            persistent: v.persistent.as_ref().map(|p| p.v),
            netmask: None,
            pe: None,
            one_packet: false,
            remove_on_failure: None,
            quorum: None,
            hysteresis: None,
            quorum_up: Vec::new(),
            quorum_down: Vec::new(),
            initial_down: false,
            fallback: None,
            checks: Vec::new(),
            reals: Vec::new(),
        };
        if let Some(n) = &v.netmask {
            if v.persistent.is_none() {
                self.d.warn(
                    &n.at,
                    "netmask",
                    "not imported: ldirectord ignores it without persistent",
                );
            } else if v.v6 {
                match n.v.parse::<u8>() {
                    Ok(p) if (1..=128).contains(&p) => s.netmask = Some(Netmask::Prefix(p)),
                    _ => self.d.error(
                        &n.at,
                        "netmask",
                        "an IPv6 netmask is a prefix length 1..128",
                    ),
                }
            } else {
                match n.v.parse::<Ipv4Addr>() {
                    Ok(m) => s.netmask = Some(Netmask::V4(m)),
                    Err(_) => self
                        .d
                        .error(&n.at, "netmask", "an IPv4 netmask is a dotted quad"),
                }
            }
        }
        if let Some(o) = &v.ops {
            if o.v && proto == "udp" {
                s.one_packet = true;
            } else if o.v {
                self.d.warn(
                    &o.at,
                    "ops",
                    "not imported: ldirectord applies ops to UDP services only",
                );
            }
        }
        // Failure handling.
        let quiescent = v
            .shared
            .quiescent
            .as_ref()
            .or(self.global.quiescent.as_ref());
        match quiescent {
            Some(q) => s.remove_on_failure = Some(!q.v),
            None => {
                s.remove_on_failure = Some(true);
                if !*warned_quiescent {
                    *warned_quiescent = true;
                    self.d.warn(
                        &at,
                        "quiescent",
                        "not set: ldirectord's code removes failed real servers (quiescent = no) \
                         although its manual says the default is yes; imported as \
                         on_failure = \"remove\" (add quiescent = yes to the file to quiesce)",
                    );
                }
            }
        }
        // Fallback server: the block's, or the global one of the same family.
        let fb = match &v.shared.fallback {
            Some(f) if f.v.v6 != v.v6 => {
                let want = if v.v6 { "fallback6" } else { "fallback" };
                self.d
                    .error(&f.at, "fallback", format!("use {want} in this block"));
                None
            }
            Some(f) => Some(f.clone()),
            None => self.global.fallback.clone().filter(|f| f.v.v6 == v.v6),
        };
        if let Some(f) = fb {
            let addr = self.host(&f.v.host, f.v.v6, &f.at, "fallback");
            let port = match &f.v.port {
                Some(p) => self.port(p, pnum, &f.at, "fallback"),
                None => Some(vport),
            };
            if let (Some(addr), Some(port)) = (addr, port) {
                s.fallback = Some(Fallback {
                    origin: f.at.clone(),
                    addr,
                    port: (port != 0).then_some(port),
                    method: f.v.method.clone(),
                    weight: 1,
                });
            }
        }
        if let Some(cmd) = v
            .shared
            .fallbackcommand
            .as_ref()
            .or(self.global.fallbackcommand.as_ref())
        {
            match split_plain_command(&cmd.v) {
                Ok(argv) => {
                    let vs = match &key {
                        Key::Addr {
                            addr: IpAddr::V6(a),
                            port,
                            ..
                        } => format!("[{a}]:{port}"),
                        Key::Addr { addr, port, .. } => format!("{addr}:{port}"),
                        Key::Fwmark { mark, .. } => mark.to_string(),
                    };
                    let tail = |what: &str| {
                        let mut a = argv.clone();
                        a.extend([what.to_string(), vs.clone(), proto.to_string()]);
                        a
                    };
                    s.quorum_down = tail("start");
                    s.quorum_up = tail("stop");
                }
                Err(e) => self.d.error(&cmd.at, "fallbackcommand", e),
            }
        }
        // Real servers, with their own request/receive if any.
        let mut reals = Vec::new();
        for r in &v.reals {
            self.reals(r, v, &key, pnum, &mut reals);
        }
        let probes: Vec<Probe> = reals.iter().map(|(_, p)| p.clone()).collect();
        s.reals = reals.into_iter().map(|(r, _)| r).collect();
        // Checks.
        self.checks(v, &mut s, &probes, proto, vport);
        if self.d.errors.len() > d_before {
            return None;
        }
        Some(s)
    }

    /// One `real =` line, which may name a range of IPv4 addresses.
    fn reals(
        &mut self,
        r: &RawReal,
        v: &Virtual,
        key: &Key,
        pnum: u16,
        out: &mut Vec<(Real, Probe)>,
    ) {
        let dir = if v.v6 { "real6" } else { "real" };
        let text = r.text.trim();
        let (target, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        // target: host[->host][:port]
        let (hosts, port) = if v.v6 {
            match target.rfind("]:") {
                Some(i) => (&target[..=i], Some(&target[i + 2..])),
                None => (target, None),
            }
        } else {
            match target.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (target, None),
            }
        };
        let (first, last) = match hosts.split_once("->") {
            Some((a, b)) => (a, Some(b)),
            None => (hosts, None),
        };
        let Some(a) = self.host(first, v.v6, &r.at, dir) else {
            return;
        };
        let range_end = match last {
            Some(b) => match self.host(b, v.v6, &r.at, dir) {
                Some(b) => Some(b),
                None => return,
            },
            None => None,
        };
        let port = match port {
            Some(p) => match self.port(p, pnum, &r.at, dir) {
                Some(p) => p,
                None => return,
            },
            None => 0,
        };
        // Flags: gate|masq|ipip [weight] ["request", "receive"]
        let rest = rest.trim();
        let (m, mut rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let method = match m {
            "gate" => Method::Route,
            "masq" => Method::Masq,
            "ipip" => Method::Tunnel(Tunnel {
                kind: "ipip",
                port: None,
                checksum: None,
            }),
            _ => {
                self.d.error(
                    &r.at,
                    dir,
                    "the forwarding method must be gate, masq or ipip",
                );
                return;
            }
        };
        rest = rest.trim_start();
        let mut weight = 1;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits > 0 {
            match rest[..digits].parse::<u32>() {
                Ok(w) if w <= i32::MAX as u32 => weight = w,
                _ => {
                    self.d.error(&r.at, dir, "weight must be 0..=2147483647");
                    return;
                }
            }
            rest = rest[digits..].trim_start();
        }
        let mut pair = None;
        if !rest.is_empty() {
            match request_receive(rest) {
                Some(p) => pair = Some(p),
                None => {
                    self.d.error(
                        &r.at,
                        dir,
                        format!("cannot read {rest:?} (expected \"request\", \"receive\")"),
                    );
                    return;
                }
            }
        }
        // Direct routing and tunnelling cannot change the port: ldirectord
        // (through ipvsadm) uses the virtual service's.
        let vport = key.port();
        let port = if method != Method::Masq
            && !matches!(key, Key::Fwmark { .. })
            && port != 0
            && port != vport
        {
            self.d.warn(
                &r.at,
                dir,
                format!("port {port} replaced by the virtual service's {vport}: {} cannot change ports (ipvsadm does the same)", if method == Method::Route { "gate" } else { "ipip" }),
            );
            vport
        } else {
            port
        };
        let addrs: Vec<IpAddr> = match range_end {
            None => vec![a],
            Some(b) => match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) if u32::from(a) <= u32::from(b) => {
                    let n = u32::from(b) - u32::from(a);
                    if n >= 1024 {
                        self.d.error(
                            &r.at,
                            dir,
                            "a range of more than 1024 real servers is not expanded",
                        );
                        return;
                    }
                    (u32::from(a)..=u32::from(b))
                        .map(|x| IpAddr::V4(Ipv4Addr::from(x)))
                        .collect()
                }
                (IpAddr::V4(_), IpAddr::V4(_)) => {
                    self.d
                        .error(&r.at, dir, "the range's first address is above its last");
                    return;
                }
                _ => {
                    self.d.error(
                        &r.at,
                        dir,
                        "address ranges are IPv4 only (as in ldirectord)",
                    );
                    return;
                }
            },
        };
        for addr in addrs {
            let real = Real {
                origin: r.at.clone(),
                addr,
                port: (port != 0).then_some(port),
                method: method.clone(),
                weight,
                u_threshold: 0,
                l_threshold: 0,
                checks: Vec::new(),
            };
            out.push((real, pair.clone()));
        }
    }

    /// The check a virtual block asks for, at the service (and at real
    /// servers with their own request/receive).
    fn checks(&mut self, v: &Virtual, s: &mut Service, probes: &[Probe], proto: &str, vport: u16) {
        let g = &self.global;
        let checktimeout = v
            .shared
            .checktimeout
            .as_ref()
            .or(v.shared.negotiatetimeout.as_ref())
            .or(g.checktimeout.as_ref())
            .or(g.negotiatetimeout.as_ref())
            .map_or(5, |x| x.v);
        let negotiatetimeout = v
            .shared
            .negotiatetimeout
            .as_ref()
            .or(v.shared.checktimeout.as_ref())
            .or(g.negotiatetimeout.as_ref())
            .or(g.checktimeout.as_ref())
            .map_or(30, |x| x.v);
        let checktimeout_set = v.shared.checktimeout.is_some()
            || v.shared.negotiatetimeout.is_some()
            || g.checktimeout.is_some()
            || g.negotiatetimeout.is_some();
        let negotiatetimeout_set = checktimeout_set;
        let forking = self.fork.as_ref().is_some_and(|f| f.v);
        let interval = match (&v.shared.checkinterval, forking) {
            (Some(ci), true) => ci.v,
            (Some(ci), false) => {
                self.d.warn(
                    &ci.at,
                    "checkinterval",
                    "ignored in a virtual block unless fork = yes (as ldirectord does); the global checkinterval applies",
                );
                g.checkinterval.as_ref().map_or(10, |x| x.v)
            }
            (None, _) => g.checkinterval.as_ref().map_or(10, |x| x.v),
        };
        let fall = v
            .shared
            .failurecount
            .as_ref()
            .or(g.failurecount.as_ref())
            .map_or(1, |x| x.v);
        let (ct_at, checktype) = match &v.checktype {
            Some(c) => (c.at.clone(), c.v.clone()),
            None => (v.at.clone(), "negotiate".to_string()),
        };
        let service_from_port = v.service.is_none();
        let service = v.service.as_ref().map_or_else(
            || {
                if matches!(s.key, Key::Fwmark { .. }) {
                    "none"
                } else {
                    port_to_service(vport)
                }
                .to_string()
            },
            |x| x.v.clone(),
        );
        let svc_at = v.service.as_ref().map_or(ct_at.clone(), |x| x.at.clone());
        let svc_dir = if service_from_port {
            "checktype"
        } else {
            "service"
        };
        let combined = checktype.parse::<u32>().is_ok();
        let negotiate = checktype == "negotiate" || combined;
        if combined {
            self.d.warn(
                &ct_at,
                "checktype",
                format!("checktype = {checktype} (connect checks with a negotiate check every {checktype}th time): rvs runs the negotiate check every time"),
            );
        }
        let mut unused_credentials = true;
        let errors_before = self.d.errors.len();
        let timeout;
        let kind: Option<CheckKind> = if negotiate {
            timeout = negotiatetimeout;
            match service.as_str() {
                "http" | "https" => {
                    let mut h = Http {
                        https: service == "https",
                        ..Default::default()
                    };
                    if let Some(host) = &v.virtualhost {
                        h.host = Some(host.v.clone());
                    }
                    if let Some(m) = &v.httpmethod {
                        if m.v == "HEAD" {
                            self.d.warn(
                                &m.at,
                                "httpmethod",
                                "HEAD: rvs checks with GET (same status; the body is read)",
                            );
                        } else if m.v != "GET" {
                            self.d
                                .error(&m.at, "httpmethod", "httpmethod must be GET or HEAD");
                        }
                    }
                    Some(CheckKind::Http(h))
                }
                "dns" => {
                    if proto == "tcp" {
                        self.d.warn(&svc_at, svc_dir, "ldirectord queries a TCP service over TCP; rvs's dns check queries over UDP");
                    }
                    Some(CheckKind::Dns {
                        name: None,
                        query_type: None,
                    })
                }
                "none" => {
                    self.d.warn(
                        &svc_at,
                        svc_dir,
                        "service none: ldirectord's negotiate check does nothing and the real \
                         servers are always up; imported without a check",
                    );
                    None
                }
                other => {
                    let why = if service_from_port {
                        format!("the service defaults to {other} for port {vport}; ")
                    } else {
                        String::new()
                    };
                    self.d.error(
                        &svc_at,
                        svc_dir,
                        format!("{why}{other} negotiate checks have no rvs equivalent (use checktype = connect, or external with a script)"),
                    );
                    unused_credentials = false;
                    None
                }
            }
        } else {
            timeout = checktimeout;
            match checktype.as_str() {
                "connect" if proto == "udp" => {
                    self.d.error(&ct_at, "checktype", "a connect check of a UDP service is a ping in ldirectord; rvs has no ICMP check");
                    None
                }
                "connect" => Some(CheckKind::Tcp),
                "external" | "external-perl" => {
                    if checktype == "external-perl" {
                        self.d.warn(&ct_at, "checktype", "external-perl: rvs executes the script as a program (it needs a #! line and the execute bit)");
                    }
                    let cmd = v
                        .checkcommand
                        .as_ref()
                        .map_or("/bin/true".to_string(), |c| c.v.clone());
                    Some(CheckKind::Command {
                        argv: vec![
                            cmd,
                            "{vip}".into(),
                            "{vport}".into(),
                            "{rip}".into(),
                            "{rport}".into(),
                        ],
                        dynamic_weight: false,
                    })
                }
                "on" => None,
                "off" => {
                    self.d.error(&ct_at, "checktype", "checktype = off (no real or fallback server is ever added) has no rvs equivalent: set the weights to 0 or leave the service out");
                    None
                }
                "ping" => {
                    self.d
                        .error(&ct_at, "checktype", "rvs has no ICMP (ping) check");
                    None
                }
                other => {
                    self.d
                        .error(&ct_at, "checktype", format!("unknown checktype {other:?}"));
                    None
                }
            }
        };
        if !unused_credentials || self.d.errors.len() > errors_before {
            // The check itself is refused: what it would have used is moot.
            return;
        }
        let uses_http = matches!(kind, Some(CheckKind::Http(_)));
        let uses_dns = matches!(kind, Some(CheckKind::Dns { .. }));
        {
            for c in &v.credentials {
                self.d.warn(
                    &c.at,
                    &c.v,
                    "not imported: only used by checks rvs does not have",
                );
            }
        }
        if !uses_http {
            for (x, n) in [
                (&v.virtualhost, "virtualhost"),
                (&v.httpmethod, "httpmethod"),
            ] {
                if let Some(x) = x {
                    self.d
                        .warn(&x.at, n, "not imported: only used by HTTP checks");
                }
            }
        }
        if !(uses_http || uses_dns) {
            for (x, n) in [(&v.request, "request"), (&v.receive, "receive")] {
                if let Some(x) = x {
                    self.d
                        .warn(&x.at, n, "not imported: only used by negotiate checks");
                }
            }
        }
        if !matches!(kind, Some(CheckKind::Command { .. })) {
            if let Some(c) = &v.checkcommand {
                self.d.warn(
                    &c.at,
                    "checkcommand",
                    "not imported: only used by external checks",
                );
            }
        }
        let Some(kind) = kind else {
            return;
        };
        let (mut interval_s, mut timeout_s) = (f64::from(interval), f64::from(timeout));
        if timeout_s > interval_s {
            let (name, set) = if negotiate {
                ("negotiatetimeout", negotiatetimeout_set)
            } else {
                ("checktimeout", checktimeout_set)
            };
            let what = if set {
                format!("{name} {timeout} s")
            } else {
                format!("{name} (ldirectord's default, {timeout} s)")
            };
            self.d.warn(
                &ct_at,
                name,
                format!(
                    "{what} exceeds the check interval {interval} s; rvs needs timeout <= \
                     interval: imported as timeout = {interval}"
                ),
            );
            timeout_s = interval_s;
        }
        if interval_s > 86_400.0 {
            self.d.error(
                &ct_at,
                "checkinterval",
                "rvs checks at least once a day (interval <= 86400)",
            );
            interval_s = 86_400.0;
        }
        let base = Check {
            origin: ct_at.clone(),
            directive: if v.checktype.is_some() {
                format!("checktype = {checktype}")
            } else {
                format!("checktype = negotiate (default), service = {service}")
            },
            kind,
            interval: interval_s,
            timeout: timeout_s,
            fall,
            rise: 1,
            initial_down: None,
            address: None,
            port: v.checkport.as_ref().map(|p| p.v),
        };
        let request = v.request.as_ref().map(|r| (r.v.clone(), r.at.clone()));
        let receive = v.receive.as_ref().map(|r| (r.v.clone(), r.at.clone()));
        if let Some(c) = self.probe(&base, request.clone(), receive.clone()) {
            s.checks.push(c);
        }
        for (r, own) in s.reals.iter_mut().zip(probes) {
            let Some((req, rec)) = own else { continue };
            let dir = if v.v6 { "real6" } else { "real" };
            if !(uses_http || uses_dns) {
                self.d.warn(
                    &r.origin,
                    dir,
                    "request/receive not imported: only used by negotiate checks",
                );
                continue;
            }
            let mut c = base.clone();
            c.origin = r.origin.clone();
            c.directive = format!("{dir} request/receive");
            if let Some(c) = self.probe(
                &c,
                Some((req.clone(), r.origin.clone())),
                Some((rec.clone(), r.origin.clone())),
            ) {
                r.checks.push(c);
            }
        }
    }

    /// Fills a negotiate check's request and receive in.
    fn probe(
        &mut self,
        base: &Check,
        request: Option<(String, Origin)>,
        receive: Option<(String, Origin)>,
    ) -> Option<Check> {
        let mut c = base.clone();
        match &mut c.kind {
            CheckKind::Http(h) => {
                if let Some((req, at)) = request {
                    if req.contains("://") {
                        self.d.error(&at, "request", "an absolute URL (another host or port) has no rvs equivalent: use checkport and virtualhost");
                        return None;
                    }
                    h.path = Some(if req.starts_with('/') {
                        req
                    } else {
                        format!("/{req}")
                    });
                }
                if let Some((rec, at)) = receive {
                    if rec.is_empty() {
                    } else if is_regex(&rec) {
                        if let Err(e) = regex_lite::Regex::new(&rec) {
                            self.d.error(&at, "receive", format!("the regular expression does not compile in rvs (Rust regex syntax): {e}"));
                            return None;
                        }
                        h.regex = Some(rec);
                    } else {
                        h.expect = Some(rec);
                    }
                }
            }
            CheckKind::Dns { name, query_type } => {
                let (req, at) = request.unwrap_or(("/".into(), base.origin.clone()));
                let q = req.trim_start_matches('/');
                if q.is_empty() {
                    self.d.error(
                        &at,
                        "request",
                        "a DNS check needs the name to look up in request",
                    );
                    return None;
                }
                if let Ok(a) = q.parse::<IpAddr>() {
                    *name = Some(reverse_name(&a));
                    *query_type = Some("PTR".into());
                } else {
                    *name = Some(q.to_string());
                    *query_type = Some("A".into());
                }
                match receive {
                    Some((rec, at)) if !rec.is_empty() => {
                        self.d.error(&at, "receive", format!("rvs's dns check only requires a NOERROR answer and cannot require the answer {rec:?}; use checktype = external with a script (e.g. dig) to keep that"));
                        return None;
                    }
                    _ => {
                        self.d.error(&at, "receive", "not set: ldirectord's dns check then never succeeds (it compares the answer with an empty string)");
                        return None;
                    }
                }
            }
            _ => {}
        }
        Some(c)
    }
}

/// `"request", "receive"` (or separated by a space) at the end of a
/// `real =` line.
fn request_receive(s: &str) -> Option<(String, String)> {
    let s = s.strip_prefix('"')?;
    let end_req = s.find('"')?;
    let req = &s[..end_req];
    let rest = s[end_req + 1..].trim_start();
    let rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.rfind('"')?;
    if !rest[end + 1..].trim().is_empty() {
        return None;
    }
    let req = if req.starts_with('/') {
        req.to_string()
    } else {
        format!("/{req}")
    };
    Some((req, rest[..end].to_string()))
}

/// `host[:port] [gate|masq|ipip]` (IPv6: `[addr][:port]`).
fn parse_fallback(v: &str, v6: bool) -> Option<RawFallback> {
    let mut words = v.split_whitespace();
    let target = words.next()?;
    let method = match words.next() {
        None => None,
        Some("gate") => Some(Method::Route),
        Some("masq") => Some(Method::Masq),
        Some("ipip") => Some(Method::Tunnel(Tunnel {
            kind: "ipip",
            port: None,
            checksum: None,
        })),
        Some(_) => return None,
    };
    if words.next().is_some() {
        return None;
    }
    let (host, port) = if v6 {
        match target.rfind("]:") {
            Some(i) => (&target[..=i], Some(&target[i + 2..])),
            None => (target, None),
        }
    } else {
        match target.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (target, None),
        }
    };
    Some(RawFallback {
        host: host.to_string(),
        port: port.map(str::to_string),
        method,
        v6,
    })
}
