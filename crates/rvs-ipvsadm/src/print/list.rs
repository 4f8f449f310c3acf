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

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::dest::{DestConfig, TUN_F_CSUM, TUN_F_REMCSUM};
    use rvs_core::service::{ServiceConfig, SVC_F_PERSISTENT};
    use rvs_core::{Counters, Rates};
    use std::net::IpAddr;

    fn entry(
        key: ServiceKey,
        scheduler: &str,
        persistent: Option<u32>,
        dests: Vec<DestConfig>,
    ) -> ServiceEntry {
        let mut config = ServiceConfig::defaults(key.af());
        config.scheduler = scheduler.to_string();
        if let Some(t) = persistent {
            config.flags |= SVC_F_PERSISTENT;
            config.timeout = t;
        }
        ServiceEntry {
            key,
            config,
            stats: Counters::default(),
            rates: Rates::default(),
            // The kernel lists real servers newest first.
            dests: dests
                .into_iter()
                .rev()
                .map(|config| DestEntry {
                    config,
                    activeconns: 0,
                    inactconns: 0,
                    persistconns: 0,
                    stats: Counters::default(),
                    rates: Rates::default(),
                })
                .collect(),
        }
    }

    fn d(addr: &str, port: u16, fwd: FwdMethod, weight: i32) -> DestConfig {
        let mut c = DestConfig::new(addr.parse::<IpAddr>().unwrap(), port);
        c.fwd = fwd;
        c.weight = weight;
        c
    }

    fn tun(addr: &str, port: u16, t: TunType, tun_port: u16, flags: u16) -> DestConfig {
        let mut c = d(addr, port, FwdMethod::Tunnel, 1);
        c.tun_type = t;
        c.tun_port = tun_port;
        c.tun_flags = flags;
        c
    }

    /// The table realservers.cmds builds, as the kernel would report it.
    fn realservers() -> Vec<ServiceEntry> {
        use FwdMethod::*;
        let tcp = |a: &str, port| ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: a.parse().unwrap(),
            port,
        };
        let mut thr7 = d("192.168.1.7", 80, Masq, 3);
        thr7.u_threshold = 100;
        thr7.l_threshold = 50;
        let mut thr9 = d("192.168.1.9", 9000, Masq, 7);
        thr9.u_threshold = 10;
        thr9.l_threshold = 5;
        vec![
            entry(
                tcp("10.0.0.1", 80),
                "wrr",
                None,
                vec![
                    d("192.168.1.1", 80, Route, 1),
                    d("192.168.1.2", 80, Route, 1),
                    tun("192.168.1.3", 80, TunType::Ipip, 0, 0),
                    d("192.168.1.4", 8080, Masq, 1),
                    d("192.168.1.5", 80, Masq, 0),
                    d("192.168.1.6", 80, Masq, 65535),
                    thr7,
                    d("192.168.1.8", 8080, Masq, 1),
                    thr9,
                    d("127.0.0.1", 80, Masq, 1),
                    tun("192.168.1.10", 80, TunType::Gue, 6080, 0),
                    tun("192.168.1.11", 80, TunType::Gue, 6081, TUN_F_CSUM),
                    tun("192.168.1.12", 80, TunType::Gue, 6082, TUN_F_REMCSUM),
                    tun("192.168.1.13", 80, TunType::Gre, 0, TUN_F_CSUM),
                    tun("192.168.1.14", 80, TunType::Gre, 0, 0),
                    tun("192.168.1.15", 80, TunType::Ipip, 0, 0),
                ],
            ),
            entry(
                tcp("2001:db8::1", 443),
                "rr",
                None,
                vec![
                    d("2001:db8::10", 8443, Masq, 2),
                    tun("192.168.1.20", 443, TunType::Ipip, 0, 0),
                ],
            ),
            entry(
                tcp("10.0.0.1", 0),
                "wlc",
                Some(360),
                vec![d("192.168.3.1", 0, Masq, 1), d("192.168.3.2", 80, Masq, 1)],
            ),
            entry(
                ServiceKey::Fwmark {
                    mark: 5,
                    af: Af::Inet,
                },
                "rr",
                None,
                vec![
                    d("192.168.2.1", 0, Route, 1),
                    d("192.168.2.2", 8080, Masq, 1),
                    d("192.168.2.3", 8080, Route, 1),
                ],
            ),
        ]
    }

    fn text(format: u32) -> String {
        let info = Info {
            version: rvs_core::IPVS_VERSION,
            conn_tab_size: rvs_core::CONN_TAB_SIZE,
        };
        String::from_utf8(list_all(&info, &realservers(), format, &NameDb::default())).unwrap()
    }

    /// `ipvsadm -L -n` in realservers.out.
    #[test]
    fn realservers_l_n() {
        let want = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  10.0.0.1:0 wlc persistent 360\n",
            "  -> 192.168.3.1:0                Masq    1      0          0         \n",
            "  -> 192.168.3.2:80               Masq    1      0          0         \n",
            "TCP  10.0.0.1:80 wrr\n",
            "  -> 127.0.0.1:80                 Masq    1      0          0         \n",
            "  -> 192.168.1.1:80               Route   1      0          0         \n",
            "  -> 192.168.1.2:80               Route   1      0          0         \n",
            "  -> 192.168.1.3:80               Tunnel  1      0          0         \n",
            "  -> 192.168.1.4:8080             Masq    1      0          0         \n",
            "  -> 192.168.1.5:80               Masq    0      0          0         \n",
            "  -> 192.168.1.6:80               Masq    65535  0          0         \n",
            "  -> 192.168.1.7:80               Masq    3      0          0         \n",
            "  -> 192.168.1.8:8080             Masq    1      0          0         \n",
            "  -> 192.168.1.9:9000             Masq    7      0          0         \n",
            "  -> 192.168.1.10:80              Tunnel  1      0          0         \n",
            "  -> 192.168.1.11:80              Tunnel  1      0          0         \n",
            "  -> 192.168.1.12:80              Tunnel  1      0          0         \n",
            "  -> 192.168.1.13:80              Tunnel  1      0          0         \n",
            "  -> 192.168.1.14:80              Tunnel  1      0          0         \n",
            "  -> 192.168.1.15:80              Tunnel  1      0          0         \n",
            "TCP  [2001:db8::1]:443 rr\n",
            "  -> 192.168.1.20:443             Tunnel  1      0          0         \n",
            "  -> [2001:db8::10]:8443          Masq    2      0          0         \n",
            "FWM  5 rr\n",
            "  -> 192.168.2.1:0                Route   1      0          0         \n",
            "  -> 192.168.2.2:8080             Masq    1      0          0         \n",
            "  -> 192.168.2.3:8080             Route   1      0          0         \n",
        );
        assert_eq!(text(fmt::NUMERIC), want);
    }

    /// `ipvsadm -L -n --tun-info` in realservers.out.
    #[test]
    fn realservers_l_n_tuninfo() {
        let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        "TCP  10.0.0.1:0 wlc persistent 360\n",
        "  -> 192.168.3.1:0                Masq    n/a           1      0          0         \n",
        "  -> 192.168.3.2:80               Masq    n/a           1      0          0         \n",
        "TCP  10.0.0.1:80 wrr\n",
        "  -> 127.0.0.1:80                 Masq    n/a           1      0          0         \n",
        "  -> 192.168.1.1:80               Route   n/a           1      0          0         \n",
        "  -> 192.168.1.2:80               Route   n/a           1      0          0         \n",
        "  -> 192.168.1.3:80               Tunnel  ipip          1      0          0         \n",
        "  -> 192.168.1.4:8080             Masq    n/a           1      0          0         \n",
        "  -> 192.168.1.5:80               Masq    n/a           0      0          0         \n",
        "  -> 192.168.1.6:80               Masq    n/a           65535  0          0         \n",
        "  -> 192.168.1.7:80               Masq    n/a           3      0          0         \n",
        "  -> 192.168.1.8:8080             Masq    n/a           1      0          0         \n",
        "  -> 192.168.1.9:9000             Masq    n/a           7      0          0         \n",
        "  -> 192.168.1.10:80              Tunnel  gue:6080:-c   1      0          0         \n",
        "  -> 192.168.1.11:80              Tunnel  gue:6081:+c   1      0          0         \n",
        "  -> 192.168.1.12:80              Tunnel  gue:6082:r+c  1      0          0         \n",
        "  -> 192.168.1.13:80              Tunnel  gre:+c        1      0          0         \n",
        "  -> 192.168.1.14:80              Tunnel  gre:-c        1      0          0         \n",
        "  -> 192.168.1.15:80              Tunnel  ipip          1      0          0         \n",
        "TCP  [2001:db8::1]:443 rr\n",
        "  -> 192.168.1.20:443             Tunnel  ipip          1      0          0         \n",
        "  -> [2001:db8::10]:8443          Masq    n/a           2      0          0         \n",
        "FWM  5 rr\n",
        "  -> 192.168.2.1:0                Route   n/a           1      0          0         \n",
        "  -> 192.168.2.2:8080             Masq    n/a           1      0          0         \n",
        "  -> 192.168.2.3:8080             Route   n/a           1      0          0         \n",
        );
        assert_eq!(text(fmt::NUMERIC | fmt::TUN_INFO), want);
    }

    /// `ipvsadm -L -n --thresholds` in realservers.out.
    #[test]
    fn realservers_l_n_thresholds() {
        let want = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.1:0 wlc persistent 360\n",
            "  -> 192.168.3.1:0                0          0          0          0         \n",
            "  -> 192.168.3.2:80               0          0          0          0         \n",
            "TCP  10.0.0.1:80 wrr\n",
            "  -> 127.0.0.1:80                 0          0          0          0         \n",
            "  -> 192.168.1.1:80               0          0          0          0         \n",
            "  -> 192.168.1.2:80               0          0          0          0         \n",
            "  -> 192.168.1.3:80               0          0          0          0         \n",
            "  -> 192.168.1.4:8080             0          0          0          0         \n",
            "  -> 192.168.1.5:80               0          0          0          0         \n",
            "  -> 192.168.1.6:80               0          0          0          0         \n",
            "  -> 192.168.1.7:80               100        50         0          0         \n",
            "  -> 192.168.1.8:8080             0          0          0          0         \n",
            "  -> 192.168.1.9:9000             10         5          0          0         \n",
            "  -> 192.168.1.10:80              0          0          0          0         \n",
            "  -> 192.168.1.11:80              0          0          0          0         \n",
            "  -> 192.168.1.12:80              0          0          0          0         \n",
            "  -> 192.168.1.13:80              0          0          0          0         \n",
            "  -> 192.168.1.14:80              0          0          0          0         \n",
            "  -> 192.168.1.15:80              0          0          0          0         \n",
            "TCP  [2001:db8::1]:443 rr\n",
            "  -> 192.168.1.20:443             0          0          0          0         \n",
            "  -> [2001:db8::10]:8443          0          0          0          0         \n",
            "FWM  5 rr\n",
            "  -> 192.168.2.1:0                0          0          0          0         \n",
            "  -> 192.168.2.2:8080             0          0          0          0         \n",
            "  -> 192.168.2.3:8080             0          0          0          0         \n",
        );
        assert_eq!(text(fmt::NUMERIC | fmt::THRESHOLDS), want);
    }

    /// `ipvsadm -L -n --persistent-conn` in realservers.out.
    #[test]
    fn realservers_l_n_persistentconn() {
        let want = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.1:0 wlc persistent 360\n",
            "  -> 192.168.3.1:0                1         0           0          0         \n",
            "  -> 192.168.3.2:80               1         0           0          0         \n",
            "TCP  10.0.0.1:80 wrr\n",
            "  -> 127.0.0.1:80                 1         0           0          0         \n",
            "  -> 192.168.1.1:80               1         0           0          0         \n",
            "  -> 192.168.1.2:80               1         0           0          0         \n",
            "  -> 192.168.1.3:80               1         0           0          0         \n",
            "  -> 192.168.1.4:8080             1         0           0          0         \n",
            "  -> 192.168.1.5:80               0         0           0          0         \n",
            "  -> 192.168.1.6:80               65535     0           0          0         \n",
            "  -> 192.168.1.7:80               3         0           0          0         \n",
            "  -> 192.168.1.8:8080             1         0           0          0         \n",
            "  -> 192.168.1.9:9000             7         0           0          0         \n",
            "  -> 192.168.1.10:80              1         0           0          0         \n",
            "  -> 192.168.1.11:80              1         0           0          0         \n",
            "  -> 192.168.1.12:80              1         0           0          0         \n",
            "  -> 192.168.1.13:80              1         0           0          0         \n",
            "  -> 192.168.1.14:80              1         0           0          0         \n",
            "  -> 192.168.1.15:80              1         0           0          0         \n",
            "TCP  [2001:db8::1]:443 rr\n",
            "  -> 192.168.1.20:443             1         0           0          0         \n",
            "  -> [2001:db8::10]:8443          2         0           0          0         \n",
            "FWM  5 rr\n",
            "  -> 192.168.2.1:0                1         0           0          0         \n",
            "  -> 192.168.2.2:8080             1         0           0          0         \n",
            "  -> 192.168.2.3:8080             1         0           0          0         \n",
        );
        assert_eq!(text(fmt::NUMERIC | fmt::PERSISTENTCONN), want);
    }

    /// `ipvsadm -S -n` in realservers.out.
    #[test]
    fn realservers_s_n() {
        let want = concat!(
        "-A -t 10.0.0.1:0 -s wlc -p 360\n",
        "-a -t 10.0.0.1:0 -r 192.168.3.1:0 -m -w 1\n",
        "-a -t 10.0.0.1:0 -r 192.168.3.2:80 -m -w 1\n",
        "-A -t 10.0.0.1:80 -s wrr\n",
        "-a -t 10.0.0.1:80 -r 127.0.0.1:80 -m -w 1\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.1:80 -g -w 1\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.2:80 -g -w 1\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.3:80 -i -w 1 --tun-type ipip\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.4:8080 -m -w 1\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.5:80 -m -w 0\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.6:80 -m -w 65535\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.7:80 -m -w 3\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.8:8080 -m -w 1\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.9:9000 -m -w 7\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.10:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.11:80 -i -w 1 --tun-type gue --tun-port 6081 --tun-csum\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.12:80 -i -w 1 --tun-type gue --tun-port 6082 --tun-remcsum\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.13:80 -i -w 1 --tun-type gre --tun-csum\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.14:80 -i -w 1 --tun-type gre --tun-nocsum\n",
        "-a -t 10.0.0.1:80 -r 192.168.1.15:80 -i -w 1 --tun-type ipip\n",
        "-A -t [2001:db8::1]:443 -s rr\n",
        "-a -t [2001:db8::1]:443 -r 192.168.1.20:443 -i -w 1 --tun-type ipip\n",
        "-a -t [2001:db8::1]:443 -r [2001:db8::10]:8443 -m -w 2\n",
        "-A -f 5 -s rr\n",
        "-a -f 5 -r 192.168.2.1:0 -g -w 1\n",
        "-a -f 5 -r 192.168.2.2:8080 -m -w 1\n",
        "-a -f 5 -r 192.168.2.3:8080 -g -w 1\n",
        );
        assert_eq!(text(fmt::NUMERIC | fmt::RULE), want);
    }

    /// `-L -n --stats` and `--rate` lines of sched-rr.out (live counters).
    #[test]
    fn stats_and_rate_columns() {
        let mut e = entry(
            ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr: "198.18.0.100".parse().unwrap(),
                port: 80,
            },
            "rr",
            None,
            vec![d("198.19.1.2", 80, FwdMethod::Masq, 1)],
        );
        e.stats = Counters {
            conns: 12,
            inpkts: 53,
            outpkts: 50,
            inbytes: 2852,
            outbytes: 2720,
        };
        e.rates = Rates {
            cps: 1,
            inpps: 5,
            outpps: 5,
            inbps: 267,
            outbps: 255,
        };
        e.dests[0].stats = Counters {
            conns: 4,
            inpkts: 18,
            outpkts: 17,
            inbytes: 968,
            outbytes: 920,
        };
        e.dests[0].rates = Rates {
            cps: 0,
            inpps: 2,
            outpps: 2,
            inbps: 91,
            outbps: 86,
        };
        let db = NameDb::default();
        let mut out = Vec::new();
        service_entry(&mut out, &e, fmt::NUMERIC | fmt::STATS, &db);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TCP  198.18.0.100:80                    12       53       50     2852     2720\n\
             \x20 -> 198.19.1.2:80                       4       18       17      968      920\n"
        );
        let mut out = Vec::new();
        service_entry(&mut out, &e, fmt::NUMERIC | fmt::RATE, &db);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TCP  198.18.0.100:80                     1        5        5      267      255\n\
             \x20 -> 198.19.1.2:80                       0        2        2       91       86\n"
        );
        e.stats.inbytes = 123_456_789_012;
        let mut out = Vec::new();
        service_entry(&mut out, &e, fmt::NUMERIC | fmt::STATS | fmt::EXACT, &db);
        let line = String::from_utf8(out).unwrap();
        assert!(line.starts_with("TCP  198.18.0.100:80                    12       53       50 123456789012     2720\n"), "{line}");
    }

    #[test]
    fn sched_flag_names() {
        let mut e = entry(
            ServiceKey::Fwmark {
                mark: 1,
                af: Af::Inet,
            },
            "sh",
            None,
            vec![],
        );
        e.config.flags = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;
        assert_eq!(sched_flags_text(&e), "sh-fallback,sh-port");
        e.config.scheduler = "mh".into();
        e.config.flags = SVC_F_SCHED3;
        assert_eq!(sched_flags_text(&e), "");
        e.config.scheduler = "wlc".into();
        e.config.flags = SVC_F_SCHED2 | SVC_F_SCHED3;
        assert_eq!(sched_flags_text(&e), "flag-2,flag-3");
    }

    #[test]
    fn truncation_and_signed_fwmarks() {
        let db = NameDb::from_text(
            "10.0.0.5 a-very-long-virtual-service-name.example.com\n",
            "http 80/tcp\n",
        );
        let e = entry(
            ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr: "10.0.0.5".parse().unwrap(),
                port: 80,
            },
            "rr",
            None,
            vec![],
        );
        assert_eq!(svc_name(&e, 0, &db), b"TCP  a-very-long-virtual-service-");
        assert_eq!(
            svc_name(&e, fmt::RULE, &db),
            b"-t a-very-long-virtual-service-name.example.com:http"
        );
        let f = entry(
            ServiceKey::Fwmark {
                mark: u32::MAX,
                af: Af::Inet6,
            },
            "rr",
            None,
            vec![],
        );
        assert_eq!(svc_name(&f, 0, &db), b"FWM  -1 IPv6");
        assert_eq!(svc_name(&f, fmt::RULE, &db), b"-f -1 -6");
    }

    #[test]
    fn daemon_and_timeout_lines() {
        assert_eq!(
            timeout_line(&Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }),
            "Timeout (tcp tcpfin udp): 900 120 300\n"
        );
        let backup = DaemonConfig {
            role: SyncRole::Backup,
            mcast_ifn: "sync0".into(),
            syncid: 0,
            sync_maxlen: 1452,
            mcast_group: Some("ff02::1:2".parse().unwrap()),
            mcast_port: 9001,
            mcast_ttl: 1,
        };
        let master = DaemonConfig {
            role: SyncRole::Master,
            sync_maxlen: 1472,
            mcast_group: Some("224.0.0.81".parse().unwrap()),
            mcast_port: 8848,
            ..backup.clone()
        };
        assert_eq!(
            daemon_lines(&[backup, master]),
            "master sync daemon (mcast=sync0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n\
             backup sync daemon (mcast=sync0, syncid=0, maxlen=1452, group=ff02::1:2, port=9001, ttl=1)\n"
        );
    }
}
