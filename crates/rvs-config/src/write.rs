//! Writing a [`Config`] back as rvs.toml. Defaults are left out, except
//! the keys that say what a thing is (engine, scheduler, method, weight),
//! so that `parse(to_toml(c)) == c` holds whatever the engine.

use crate::addr::format_endpoint;
use crate::model::*;
use crate::parse::{method_name, tun_name};
use rvs_core::dest::{TUN_F_CSUM, TUN_F_REMCSUM};
use rvs_core::service::{SVC_F_ONEPACKET, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3};
use rvs_core::{Af, FwdMethod, ServiceKey, TunType};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// A TOML basic string.
fn quote(s: &str) -> String {
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
    }
    for s in &c.services {
        service(&mut o, s);
    }
    o
}

fn service(o: &mut String, s: &Service) {
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
    for r in &s.real_servers {
        real_server(o, r);
    }
}

fn real_server(o: &mut String, r: &RealServer) {
    let d = &r.dest;
    let _ = writeln!(o, "\n[[service.real_server]]");
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
