//! `-L` listings: the version line, the title block of each mode, service
//! and real-server lines (default, `--stats`, `--rate`, `--thresholds`,
//! `--persistent-conn`, `--tun-info`), `--timeout` and `--daemon`.

use super::save::{dest_rule, service_rule};
use super::sort::{sort_dests, sort_services};
use super::{addrport_to_anyname, fwd_name, largenum, pad_right, proto_number};
use crate::options::fmt;
use crate::resolve::NameDb;
use rvs_core::dest::{FwdMethod, TunType};
use rvs_core::service::{
    SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
};
use rvs_core::{Af, Protocol, ServiceKey};
use rvs_ctl::{DaemonConfig, DestEntry, Info, ServiceEntry, SyncRole, Timeouts};
use std::net::Ipv4Addr;

/// `print_title`: the column headings of the chosen mode (none for `-S`).
pub fn title(format: u32) -> String {
    if format & fmt::STATS != 0 {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if format & fmt::RATE != 0 {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if format & fmt::THRESHOLDS != 0 {
        format!(
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format & fmt::PERSISTENTCONN != 0 {
        format!(
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if format & fmt::RULE != 0 {
        String::new()
    } else if format & fmt::TUN_INFO != 0 {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"
            .to_string()
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            .to_string()
    }
}

/// "IP Virtual Server version 1.2.1 (size=4096)".
pub fn version_line(info: &Info) -> String {
    format!(
        "IP Virtual Server version {}.{}.{} (size={})\n",
        (info.version >> 16) & 0xff,
        (info.version >> 8) & 0xff,
        info.version & 0xff,
        info.conn_tab_size as i32
    )
}

/// The service part of a line: `TCP  addr:port` (cut to 33 bytes for IPv4),
/// `FWM  %d [IPv6]`, or the `-t/-u/--sctp-service/-f` key of `-S`.
pub fn svc_name(se: &ServiceEntry, format: u32, names: &NameDb) -> Vec<u8> {
    let rule = format & fmt::RULE != 0;
    match se.key {
        ServiceKey::Fwmark { mark, af } => {
            let v6 = af == Af::Inet6;
            let s = match (rule, v6) {
                (true, true) => format!("-f {} -6", mark as i32),
                (true, false) => format!("-f {}", mark as i32),
                (false, true) => format!("FWM  {} IPv6", mark as i32),
                (false, false) => format!("FWM  {}", mark as i32),
            };
            s.into_bytes()
        }
        ServiceKey::Addr { proto, addr, port } => {
            let vname = addrport_to_anyname(&addr, port, proto_number(proto), format, names);
            let mut out = Vec::new();
            if rule {
                let opt = match proto {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                out.extend_from_slice(opt.as_bytes());
                out.push(b' ');
                out.extend_from_slice(&vname);
            } else {
                pad_right(&mut out, proto.label().as_bytes(), 4);
                out.push(b' ');
                out.extend_from_slice(&vname);
                if addr.is_ipv4() {
                    out.truncate(33);
                }
            }
            out
        }
    }
}

/// `print_sched_flags`: comma-joined flag names (sh and mh name their own
/// two flags and never show flag-3).
pub fn sched_flags_text(se: &ServiceEntry) -> String {
    let f = se.config.flags;
    let mut names: Vec<&str> = Vec::new();
    match se.config.scheduler.as_str() {
        s @ ("sh" | "mh") => {
            if f & SVC_F_SCHED1 != 0 {
                names.push(if s == "sh" {
                    "sh-fallback"
                } else {
                    "mh-fallback"
                });
            }
            if f & SVC_F_SCHED2 != 0 {
                names.push(if s == "sh" { "sh-port" } else { "mh-port" });
            }
        }
        _ => {
            if f & SVC_F_SCHED1 != 0 {
                names.push("flag-1");
            }
            if f & SVC_F_SCHED2 != 0 {
                names.push("flag-2");
            }
            if f & SVC_F_SCHED3 != 0 {
                names.push("flag-3");
            }
        }
    }
    names.join(",")
}

pub(crate) const SCHED_FLAGS: u32 = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;

/// The persistence netmask as ipvsadm prints it, if not the full mask.
pub(crate) fn mask_text(se: &ServiceEntry) -> Option<String> {
    let m = se.config.netmask;
    match se.key.af() {
        Af::Inet if m != 0xffff_ffff => Some(Ipv4Addr::from(m).to_string()),
        Af::Inet6 if m != 128 => Some((m as i32).to_string()),
        _ => None,
    }
}

/// The tunnel column of `--tun-info`.
pub fn tun_info(d: &DestEntry) -> String {
    let c = &d.config;
    if c.fwd != FwdMethod::Tunnel {
        return "n/a".to_string();
    }
    let csum = match c.tun_flags {
        0 => "-c",
        1 => "+c",
        2 => "r+c",
        _ => "(null)",
    };
    let s = match c.tun_type {
        TunType::Ipip => "ipip".to_string(),
        TunType::Gue => format!("gue:{}:{}", c.tun_port, csum),
        TunType::Gre => format!("gre:{csum}"),
    };
    let mut b = s.into_bytes();
    b.truncate(15);
    String::from_utf8_lossy(&b).into_owned()
}

fn push(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// `print_service_entry`: the service line and its real servers.
pub fn service_entry(out: &mut Vec<u8>, se: &ServiceEntry, format: u32, names: &NameDb) {
    let name = svc_name(se, format, names);
    if format & fmt::RULE != 0 {
        service_rule(out, se, &name);
    } else if format & (fmt::STATS | fmt::RATE) != 0 {
        pad_right(out, &name, 33);
        let v = if format & fmt::STATS != 0 {
            let s = &se.stats;
            [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
        } else {
            let r = &se.rates;
            [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]
        };
        for x in v {
            push(out, &largenum(x, format));
        }
    } else {
        out.extend_from_slice(&name);
        push(out, &format!(" {}", se.config.scheduler));
        if se.config.flags & SCHED_FLAGS != 0 {
            push(out, &format!(" ({})", sched_flags_text(se)));
        }
        if se.config.flags & SVC_F_PERSISTENT != 0 {
            push(out, &format!(" persistent {}", se.config.timeout));
            if let Some(m) = mask_text(se) {
                push(out, &format!(" mask {m}"));
            }
            if let Some(pe) = se.config.pe_name.as_deref().filter(|p| !p.is_empty()) {
                push(out, &format!(" pe {pe}"));
            }
        }
        if se.config.flags & SVC_F_ONEPACKET != 0 {
            push(out, " ops");
        }
    }
    out.push(b'\n');

    let mut dests = se.dests.clone();
    if format & fmt::NOSORT == 0 {
        sort_dests(&mut dests);
    }
    // The kernel reports no protocol for fwmark services, so their real
    // servers' ports never get service names.
    let proto = if se.key.is_fwmark() {
        0
    } else {
        proto_number(se.key.protocol())
    };
    for d in &dests {
        let c = &d.config;
        let mut dname = addrport_to_anyname(&c.addr, c.port, proto, format, names);
        if format & fmt::RULE == 0 && c.addr.is_ipv4() {
            dname.truncate(28);
        }
        if format & fmt::RULE != 0 {
            dest_rule(out, &name, &dname, d);
            continue;
        }
        push(out, "  -> ");
        pad_right(out, &dname, 28);
        if format & fmt::STATS != 0 {
            let s = &d.stats;
            for x in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                push(out, &largenum(x, format));
            }
            push(out, "\n");
        } else if format & fmt::RATE != 0 {
            let r = &d.rates;
            push(
                out,
                &format!(" {:>8} {:>8} {:>8}", r.cps, r.inpps, r.outpps),
            );
            push(out, &largenum(r.inbps, format));
            push(out, &largenum(r.outbps, format));
            push(out, "\n");
        } else if format & fmt::THRESHOLDS != 0 {
            push(
                out,
                &format!(
                    " {:<10} {:<10} {:<10} {:<10}\n",
                    c.u_threshold, c.l_threshold, d.activeconns, d.inactconns
                ),
            );
        } else if format & fmt::PERSISTENTCONN != 0 {
            push(
                out,
                &format!(
                    " {:<9} {:<11} {:<10} {:<10}\n",
                    c.weight as u32, d.persistconns, d.activeconns, d.inactconns
                ),
            );
        } else if format & fmt::TUN_INFO != 0 {
            push(
                out,
                &format!(
                    " {:<7} {:<13} {:<6} {:<10} {:<10}\n",
                    fwd_name(c.fwd),
                    tun_info(d),
                    c.weight,
                    d.activeconns,
                    d.inactconns
                ),
            );
        } else {
            push(
                out,
                &format!(
                    " {:<7} {:<6} {:<10} {:<10}\n",
                    fwd_name(c.fwd),
                    c.weight,
                    d.activeconns,
                    d.inactconns
                ),
            );
        }
    }
}

/// `list_all` after the table was fetched: version line (not for `-S`),
/// sorted services (unless `--nosort`), title, entries.
pub fn list_all(info: &Info, services: &[ServiceEntry], format: u32, names: &NameDb) -> Vec<u8> {
    let mut out = Vec::new();
    if format & fmt::RULE == 0 {
        push(&mut out, &version_line(info));
    }
    let mut services = services.to_vec();
    if format & fmt::NOSORT == 0 {
        sort_services(&mut services);
    }
    push(&mut out, &title(format));
    for se in &services {
        service_entry(&mut out, se, format, names);
    }
    out
}

/// `list_service`: title and one entry, no version line.
pub fn list_service(se: &ServiceEntry, format: u32, names: &NameDb) -> Vec<u8> {
    let mut out = title(format).into_bytes();
    service_entry(&mut out, se, format, names);
    out
}

/// `-L --timeout`.
pub fn timeout_line(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp as i32, t.tcp_fin as i32, t.udp as i32
    )
}

/// `-L --daemon`: one line per running sync daemon, master first.
pub fn daemon_lines(daemons: &[DaemonConfig]) -> String {
    let mut out = String::new();
    for role in [SyncRole::Master, SyncRole::Backup] {
        let Some(d) = daemons.iter().find(|d| d.role == role) else {
            continue;
        };
        out.push_str(&format!(
            "{} sync daemon (mcast={}, syncid={}",
            role.name(),
            d.mcast_ifn,
            d.syncid as i32
        ));
        if d.sync_maxlen != 0 {
            out.push_str(&format!(", maxlen={}", d.sync_maxlen));
        }
        if let Some(g) = d.mcast_group {
            out.push_str(&format!(", group={}", crate::addr::inet_ntop(&g)));
        }
        if d.mcast_port != 0 {
            out.push_str(&format!(", port={}", d.mcast_port));
        }
        if d.mcast_ttl != 0 {
            out.push_str(&format!(", ttl={}", d.mcast_ttl));
        }
        out.push_str(")\n");
    }
    out
}
