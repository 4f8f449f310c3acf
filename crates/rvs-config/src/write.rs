//! Writing a [`Config`] back as rvs.toml. Defaults are left out, except
//! the keys that say what a thing is (engine, scheduler, method, weight),
//! so that `parse(to_toml(c)) == c` holds whatever the engine.

use crate::addr::format_endpoint;
use crate::health::*;
use crate::model::*;
use crate::parse::{method_name, tun_name};
use rvs_core::dest::{TUN_F_CSUM, TUN_F_REMCSUM};
use rvs_core::service::{SVC_F_ONEPACKET, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3};
use rvs_core::{Af, FwdMethod, ServiceKey, TunType};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The scheduler flag names of `flags` for `scheduler`, as `-b` takes them.
pub(crate) fn sched_flag_names(scheduler: &str, flags: u32) -> Vec<&'static str> {
    let (one, two) = match scheduler {
        "sh" => ("sh-fallback", "sh-port"),
        "mh" => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let mut v = Vec::new();
    if flags & SVC_F_SCHED1 != 0 {
        v.push(one);
    }
    if flags & SVC_F_SCHED2 != 0 {
        v.push(two);
    }
    if flags & SVC_F_SCHED3 != 0 {
        v.push("flag-3");
    }
    v
}

/// The configuration as an rvs.toml file.
pub fn to_toml(c: &Config) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "engine = {}", quote(c.engine.name()));
    if !c.enable_schedulers.is_empty() {
        let names: Vec<String> = c.enable_schedulers.iter().map(|s| quote(s)).collect();
        let _ = writeln!(o, "enable_schedulers = [{}]", names.join(", "));
    }
    if c.proxy != ProxyEngine::default() {
        let _ = writeln!(o, "\n[proxy]");
        let _ = writeln!(o, "workers = {}", c.proxy.workers);
        let _ = writeln!(o, "connect_timeout = {}", c.proxy.connect_timeout);
    }
    if let Some(i) = &c.xdp.interface {
        let _ = writeln!(o, "\n[xdp]\ninterface = {}", quote(i));
    }
    if c.timeouts != rvs_ctl::Timeouts::default() {
        let t = c.timeouts;
        let _ = writeln!(o, "\n[timeouts]");
        let _ = writeln!(
            o,
            "tcp = {}\ntcpfin = {}\nudp = {}",
            t.tcp, t.tcp_fin, t.udp
        );
    }
    if c.sysctl != Sysctl::default() {
        let s = c.sysctl;
        let _ = writeln!(o, "\n[sysctl]");
        let _ = writeln!(o, "expire_nodest_conn = {}", s.expire_nodest_conn);
        let _ = writeln!(
            o,
            "expire_quiescent_template = {}",
            s.expire_quiescent_template
        );
        let _ = writeln!(o, "conn_reuse_mode = {}", s.conn_reuse_mode);
        let _ = writeln!(o, "secure_tcp = {}", s.secure_tcp);
        let _ = writeln!(o, "amemthresh = {}", s.amemthresh);
    }
    for s in &c.services {
        service(&mut o, s, c.matches_of(&s.key));
    }
    crate::vrrp::write_vrrp(&mut o, &c.vrrp);
    o
}

fn service(o: &mut String, s: &Service, matches: &[MarkMatch]) {
    let _ = writeln!(o, "\n[[service]]");
    match s.key {
        ServiceKey::Addr { proto, addr, port } => {
            let _ = writeln!(
                o,
                "{} = {}",
                proto.service_proto(),
                quote(&format_endpoint(&addr, port))
            );
        }
        ServiceKey::Fwmark { mark, af } => {
            let _ = writeln!(o, "fwmark = {mark}");
            if af == Af::Inet6 {
                let _ = writeln!(o, "ipv6 = true");
            }
            if !matches.is_empty() {
                let list: Vec<String> = matches.iter().map(|m| quote(&m.to_string())).collect();
                let _ = writeln!(o, "match = [{}]", list.join(", "));
            }
        }
    }
    let c = &s.config;
    let _ = writeln!(o, "scheduler = {}", quote(&c.scheduler));
    let flags = sched_flag_names(&c.scheduler, c.flags);
    if !flags.is_empty() {
        let names: Vec<String> = flags.iter().map(|f| quote(f)).collect();
        let _ = writeln!(o, "sched_flags = [{}]", names.join(", "));
    }
    if c.is_persistent() {
        let _ = writeln!(o, "persistent = {}", c.timeout);
        let af = s.key.af();
        if c.netmask != default_netmask(af) {
            match af {
                Af::Inet => {
                    let m = Ipv4Addr::from(c.netmask).to_string();
                    let _ = writeln!(o, "netmask = {}", quote(&m));
                }
                Af::Inet6 => {
                    let _ = writeln!(o, "netmask = {}", c.netmask);
                }
            }
        }
    }
    if let Some(pe) = &c.pe_name {
        let _ = writeln!(o, "pe = {}", quote(pe));
    }
    if c.flags & SVC_F_ONEPACKET != 0 {
        let _ = writeln!(o, "one_packet = true");
    }
    if s.proxy_protocol != ProxyProtocol::None {
        let _ = writeln!(o, "proxy_protocol = {}", quote(s.proxy_protocol.name()));
    }
    if s.transparent {
        let _ = writeln!(o, "transparent = true");
    }
    if let Some(p) = s.tproxy_port {
        let _ = writeln!(o, "tproxy_port = {p}");
    }
    let h = &s.health;
    let d = ServiceHealth::default();
    if h.on_failure != d.on_failure {
        let _ = writeln!(o, "on_failure = {}", quote(h.on_failure.name()));
    }
    if h.initial != d.initial {
        let _ = writeln!(o, "initial = {}", quote(h.initial.name()));
    }
    if h.quorum != d.quorum {
        let _ = writeln!(o, "quorum = {}", h.quorum);
    }
    if h.quorum_hysteresis != d.quorum_hysteresis {
        let _ = writeln!(o, "quorum_hysteresis = {}", h.quorum_hysteresis);
    }
    if !h.quorum_up.is_empty() {
        let _ = writeln!(o, "quorum_up = {}", strings(&h.quorum_up));
    }
    if !h.quorum_down.is_empty() {
        let _ = writeln!(o, "quorum_down = {}", strings(&h.quorum_down));
    }
    for c in &h.checks {
        check(o, "service.check", c);
    }
    if let Some(f) = &h.fallback {
        let _ = writeln!(o, "\n[service.fallback]");
        dest_keys(o, f);
    }
    for r in &s.real_servers {
        real_server(o, r);
    }
}

/// A TOML array of strings.
fn strings(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Seconds as TOML: an integer when whole, else a float.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}", ms as f64 / 1000.0)
    }
}

fn check(o: &mut String, table: &str, c: &Check) {
    let _ = writeln!(o, "\n[[{table}]]");
    let _ = writeln!(o, "type = {}", quote(c.kind.name()));
    let _ = writeln!(o, "interval = {}", seconds(c.interval_ms));
    let _ = writeln!(o, "timeout = {}", seconds(c.timeout_ms));
    let _ = writeln!(o, "fall = {}\nrise = {}", c.fall, c.rise);
    if let Some(i) = c.initial {
        let _ = writeln!(o, "initial = {}", quote(i.name()));
    }
    if let Some(a) = c.address {
        let _ = writeln!(o, "address = {}", quote(&a.to_string()));
    }
    if let Some(p) = c.port {
        let _ = writeln!(o, "port = {p}");
    }
    let http = |o: &mut String, p: &HttpProbe| {
        let _ = writeln!(o, "path = {}", quote(&p.path));
        if let Some(h) = &p.host {
            let _ = writeln!(o, "host = {}", quote(h));
        }
        let codes: Vec<String> = p
            .status
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    quote(&format!("{a}-{b}"))
                }
            })
            .collect();
        let _ = writeln!(o, "status = [{}]", codes.join(", "));
        if let Some(e) = &p.expect {
            let _ = writeln!(o, "expect = {}", quote(e));
        }
        if let Some(r) = &p.regex {
            let _ = writeln!(o, "regex = {}", quote(r));
            if p.regex_no_match {
                let _ = writeln!(o, "regex_no_match = true");
            }
        }
        if let Some(d) = &p.digest {
            let _ = writeln!(o, "digest = {}", quote(d));
        }
    };
    match &c.kind {
        CheckKind::Tcp => {}
        CheckKind::Http(p) => http(o, p),
        CheckKind::Https {
            http: p,
            sni,
            verify,
        } => {
            http(o, p);
            if let Some(s) = sni {
                let _ = writeln!(o, "sni = {}", quote(s));
            }
            let _ = writeln!(o, "verify = {verify}");
        }
        CheckKind::Udp { payload, expect } => {
            let _ = writeln!(o, "payload_hex = {}", quote(&hex(payload)));
            if let Some(e) = expect {
                let _ = writeln!(o, "expect_hex = {}", quote(&hex(e)));
            }
        }
        CheckKind::Dns { name, query_type } => {
            let _ = writeln!(
                o,
                "name = {}\nquery_type = {}",
                quote(name),
                quote(query_type)
            );
        }
        CheckKind::Command {
            argv,
            dynamic_weight,
        } => {
            let _ = writeln!(o, "command = {}", strings(argv));
            if *dynamic_weight {
                let _ = writeln!(o, "dynamic_weight = true");
            }
        }
    }
}

fn real_server(o: &mut String, r: &RealServer) {
    let _ = writeln!(o, "\n[[service.real_server]]");
    dest_keys(o, r);
    for c in &r.checks {
        check(o, "service.real_server.check", c);
    }
}

fn dest_keys(o: &mut String, r: &RealServer) {
    let d = &r.dest;
    let _ = writeln!(o, "address = {}", quote(&format_endpoint(&d.addr, d.port)));
    let _ = writeln!(o, "method = {}", quote(method_name(d.fwd)));
    let _ = writeln!(o, "weight = {}", d.weight);
    if d.u_threshold != 0 {
        let _ = writeln!(o, "u_threshold = {}", d.u_threshold);
    }
    if d.l_threshold != 0 {
        let _ = writeln!(o, "l_threshold = {}", d.l_threshold);
    }
    if d.fwd == FwdMethod::Tunnel && d.tun_type != TunType::Ipip {
        let _ = writeln!(o, "tunnel_type = {}", quote(tun_name(d.tun_type)));
        if d.tun_type == TunType::Gue {
            let _ = writeln!(o, "tunnel_port = {}", d.tun_port);
        }
        let csum = match d.tun_flags {
            TUN_F_CSUM => "csum",
            TUN_F_REMCSUM => "remcsum",
            _ => "nocsum",
        };
        let _ = writeln!(o, "tunnel_checksum = {}", quote(csum));
    }
    if let Some(p) = r.proxy_protocol {
        let _ = writeln!(o, "proxy_protocol = {}", quote(p.name()));
    }
}
