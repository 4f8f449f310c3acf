//! The Prometheus text exposition (format 0.0.4) of the table: read at
//! scrape time from the same listing `ipvsadm -L --stats --rate` shows, so
//! the numbers are those of the director and cost nothing between scrapes.

use crate::view::{addr_port, family, service_name};
use rvs_core::{Counters, Rates, ServiceKey};
use rvs_ctl::ServiceEntry;
use std::fmt::Write;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: its samples are collected first, then written under
/// one `# HELP` / `# TYPE` header, as the format requires.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, u64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: &[(&str, &str)], value: u64) {
        self.samples.push((format_labels(labels), value));
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, v) in &self.samples {
            let _ = writeln!(out, "{}{} {}", self.name, labels, v);
        }
    }
}

/// `{a="x",b="y"}` with values escaped as the format says (`\\`, `\"`, `\n`).
fn format_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

/// The labels that name a service: `service="TCP 10.0.0.1:80"` and its
/// parts (`protocol`, `address`, `port`; `fwmark` for a mark service).
fn service_labels(key: &ServiceKey) -> Vec<(&'static str, String)> {
    let mut l = vec![("service", service_name(key))];
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            l.push(("protocol", proto.label().to_string()));
            l.push(("address", addr.to_string()));
            l.push(("port", port.to_string()));
        }
        ServiceKey::Fwmark { mark, .. } => {
            l.push(("protocol", "FWM".to_string()));
            l.push(("fwmark", mark.to_string()));
            l.push(("family", family(key).to_string()));
        }
    }
    l
}

/// Counter and rate families of one level (service or real server).
struct Level {
    conns: Family,
    packets: Family,
    bytes: Family,
    cps: Family,
    pps: Family,
    bps: Family,
    active: Family,
    inactive: Family,
}

impl Level {
    fn new(prefix: &str) -> Level {
        // Family names are 'static; the two levels are spelled out.
        let n = |svc: &'static str, rs: &'static str| if prefix == "service" { svc } else { rs };
        Level {
            conns: Family::new(
                n(
                    "rvs_service_connections_total",
                    "rvs_real_server_connections_total",
                ),
                "counter",
                "Connections scheduled (ipvsadm --stats Conns), since the last zeroing.",
            ),
            packets: Family::new(
                n("rvs_service_packets_total", "rvs_real_server_packets_total"),
                "counter",
                "Packets forwarded; direction=in is client to real server, out is the replies.",
            ),
            bytes: Family::new(
                n("rvs_service_bytes_total", "rvs_real_server_bytes_total"),
                "counter",
                "Bytes forwarded; direction=in is client to real server, out is the replies.",
            ),
            cps: Family::new(
                n(
                    "rvs_service_connection_rate",
                    "rvs_real_server_connection_rate",
                ),
                "gauge",
                "Connections per second, the kernel's 2 s estimator (ipvsadm --rate CPS).",
            ),
            pps: Family::new(
                n("rvs_service_packet_rate", "rvs_real_server_packet_rate"),
                "gauge",
                "Packets per second by direction, the kernel's 2 s estimator (ipvsadm --rate).",
            ),
            bps: Family::new(
                n("rvs_service_byte_rate", "rvs_real_server_byte_rate"),
                "gauge",
                "Bytes per second by direction, the kernel's 2 s estimator (ipvsadm --rate).",
            ),
            active: Family::new(
                n(
                    "rvs_service_active_connections",
                    "rvs_real_server_active_connections",
                ),
                "gauge",
                "Connections in an active state (ActiveConn).",
            ),
            inactive: Family::new(
                n(
                    "rvs_service_inactive_connections",
                    "rvs_real_server_inactive_connections",
                ),
                "gauge",
                "Connections in any other state (InActConn).",
            ),
        }
    }

    fn push(&mut self, labels: &[(&str, &str)], c: &Counters, r: &Rates, act: u64, inact: u64) {
        let with = |dir: &'static str| {
            let mut l = labels.to_vec();
            l.push(("direction", dir));
            l
        };
        self.conns.push(labels, c.conns);
        self.packets.push(&with("in"), c.inpkts);
        self.packets.push(&with("out"), c.outpkts);
        self.bytes.push(&with("in"), c.inbytes);
        self.bytes.push(&with("out"), c.outbytes);
        self.cps.push(labels, r.cps);
        self.pps.push(&with("in"), r.inpps);
        self.pps.push(&with("out"), r.outpps);
        self.bps.push(&with("in"), r.inbps);
        self.bps.push(&with("out"), r.outbps);
        self.active.push(labels, act);
        self.inactive.push(labels, inact);
    }

    fn write(&self, out: &mut String) {
        for f in [
            &self.conns,
            &self.packets,
            &self.bytes,
            &self.cps,
            &self.pps,
            &self.bps,
            &self.active,
            &self.inactive,
        ] {
            f.write(out);
        }
    }
}

/// What the proxy engine reports besides the table.
#[derive(Debug, Clone, Default)]
pub struct ProxyInfo {
    /// How TCP is relayed (`io_uring`, `epoll`, `mixed`): a label of
    /// `rvs_engine_info`.
    pub relay: String,
    /// Sockets held as io_uring direct descriptors (outside the open-files
    /// limit).
    pub direct_sockets: u64,
}

/// The whole exposition: rvsd's own health, then every service and real
/// server. `services` is `None` when the table could not be read (the
/// exposition then says `rvs_up 0`).
pub fn render(
    engine: &str,
    proxy: Option<&ProxyInfo>,
    services: Option<&[ServiceEntry]>,
) -> String {
    let mut out = String::new();
    let mut up = Family::new(
        "rvs_up",
        "gauge",
        "1 if rvsd answered this scrape from its table.",
    );
    up.push(&[], services.is_some() as u64);
    up.write(&mut out);
    let mut info = Family::new(
        "rvs_engine_info",
        "gauge",
        "The data path carrying the traffic (always 1; the engine, and the proxy engine's TCP relay, are labels).",
    );
    match proxy {
        Some(p) => info.push(&[("engine", engine), ("relay", &p.relay)], 1),
        None => info.push(&[("engine", engine)], 1),
    }
    info.write(&mut out);
    if let Some(p) = proxy {
        let mut direct = Family::new(
            "rvs_proxy_direct_sockets",
            "gauge",
            "Sockets the io_uring relay holds as direct descriptors: connections past half the open-files limit move there.",
        );
        direct.push(&[], p.direct_sockets);
        direct.write(&mut out);
    }
    let services = services.unwrap_or(&[]);
    let mut count = Family::new("rvs_services", "gauge", "Virtual services in the table.");
    count.push(&[], services.len() as u64);
    count.write(&mut out);
    let mut rs_count = Family::new(
        "rvs_service_real_servers",
        "gauge",
        "Real servers of the service.",
    );
    let mut svc = Level::new("service");
    let mut rs = Level::new("real_server");
    let mut weight = Family::new(
        "rvs_real_server_weight",
        "gauge",
        "Scheduling weight; 0 means drained (no new connections).",
    );
    let mut persist = Family::new(
        "rvs_real_server_persistent_connections",
        "gauge",
        "Persistence templates pointing at the real server (PersistConn).",
    );
    for s in services {
        let owned = service_labels(&s.key);
        let labels: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let act = s.dests.iter().map(|d| d.activeconns as u64).sum();
        let inact = s.dests.iter().map(|d| d.inactconns as u64).sum();
        svc.push(&labels, &s.stats, &s.rates, act, inact);
        rs_count.push(&labels, s.dests.len() as u64);
        for d in &s.dests {
            let name = addr_port(&d.config.addr, d.config.port);
            let (addr, port) = (d.config.addr.to_string(), d.config.port.to_string());
            let mut l = labels.clone();
            l.push(("real_server", &name));
            l.push(("real_address", &addr));
            l.push(("real_port", &port));
            rs.push(
                &l,
                &d.stats,
                &d.rates,
                d.activeconns as u64,
                d.inactconns as u64,
            );
            // Weights are never negative in the table (ERANGE).
            weight.push(&l, d.config.weight.max(0) as u64);
            persist.push(&l, d.persistconns as u64);
        }
    }
    rs_count.write(&mut out);
    svc.write(&mut out);
    rs.write(&mut out);
    weight.write(&mut out);
    persist.write(&mut out);
    out
}

/// The health-check families: each checked real server's state, each
/// check's state and last duration, each service's quorum and fallback.
/// Appended to [`render`]'s exposition; nothing when no checks run.
pub fn render_health(out: &mut String, h: &rvs_ctl::HealthReport) {
    if !h.enabled {
        return;
    }
    let mut server_up = Family::new(
        "rvs_real_server_healthy",
        "gauge",
        "1 if every health check of the real server passes (it is in the pool), 0 if it is down.",
    );
    let mut check_up = Family::new(
        "rvs_check_up",
        "gauge",
        "1 if the check is up (after rise/fall), 0 if down.",
    );
    let mut streak = Family::new(
        "rvs_check_streak",
        "gauge",
        "Consecutive results against the check's state (soft failures while up).",
    );
    let mut durations = Vec::new();
    for e in &h.servers {
        let owned = service_labels(&e.service);
        let mut l: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let name = addr_port(&e.addr, e.port);
        let (addr, port) = (e.addr.to_string(), e.port.to_string());
        l.push(("real_server", &name));
        l.push(("real_address", &addr));
        l.push(("real_port", &port));
        server_up.push(&l, (e.state == "up") as u64);
        for (i, c) in e.checks.iter().enumerate() {
            let idx = (i + 1).to_string();
            let mut cl = l.clone();
            cl.push(("check", &idx));
            cl.push(("type", &c.kind));
            check_up.push(&cl, (c.state == "up") as u64);
            streak.push(&cl, c.streak as u64);
            if let Some(d) = c.duration_ms {
                durations.push((format_labels(&cl), d));
            }
        }
    }
    server_up.write(out);
    check_up.write(out);
    streak.write(out);
    out.push_str("# HELP rvs_check_duration_seconds How long the check's last run took.\n");
    out.push_str("# TYPE rvs_check_duration_seconds gauge\n");
    for (labels, ms) in durations {
        out.push_str(&format!(
            "rvs_check_duration_seconds{labels} {}.{:03}\n",
            ms / 1000,
            ms % 1000
        ));
    }
    let mut quorum = Family::new(
        "rvs_service_quorum_up",
        "gauge",
        "1 if the live weight of the service's real servers meets its quorum.",
    );
    let mut live = Family::new(
        "rvs_service_live_weight",
        "gauge",
        "Sum of the weights of the service's live real servers.",
    );
    let mut fallback = Family::new(
        "rvs_service_fallback_active",
        "gauge",
        "1 while the service's fallback (sorry) server is in the table.",
    );
    for s in &h.services {
        let owned = service_labels(&s.service);
        let l: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        quorum.push(&l, s.quorum_up as u64);
        live.push(&l, s.live_weight.max(0) as u64);
        fallback.push(&l, s.fallback_active as u64);
    }
    quorum.write(out);
    live.write(out);
    fallback.write(out);
}

/// rvsd's own families: start time, configuration reloads and failover
/// (VRRP) instances. Appended to [`render`]'s exposition.
pub fn render_daemon(out: &mut String, d: &rvs_ctl::DaemonStatus) {
    let secs = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
    if d.started_ms > 0 {
        out.push_str("# HELP rvs_start_time_seconds When rvsd started, Unix time.\n");
        out.push_str("# TYPE rvs_start_time_seconds gauge\n");
        out.push_str(&format!("rvs_start_time_seconds {}\n", secs(d.started_ms)));
    }
    let mut reloads = Family::new(
        "rvs_config_reloads_total",
        "counter",
        "Configuration reloads (SIGHUP, rvsctl reload): applied (result=\"ok\") or refused (result=\"error\", nothing changed).",
    );
    reloads.push(&[("result", "ok")], d.reloads_ok);
    reloads.push(&[("result", "error")], d.reloads_failed);
    reloads.write(out);
    if let Some(r) = &d.last_reload {
        let mut ok = Family::new(
            "rvs_config_last_reload_successful",
            "gauge",
            "1 if the last configuration reload was applied, 0 if it was refused.",
        );
        ok.push(&[], r.ok as u64);
        ok.write(out);
        out.push_str("# HELP rvs_config_last_reload_timestamp_seconds When the last reload was attempted, Unix time.\n");
        out.push_str("# TYPE rvs_config_last_reload_timestamp_seconds gauge\n");
        out.push_str(&format!(
            "rvs_config_last_reload_timestamp_seconds {}\n",
            secs(r.at_ms)
        ));
    }
    if d.failover.is_empty() {
        return;
    }
    let mut state = Family::new(
        "rvs_vrrp_state",
        "gauge",
        "1 for the VRRP instance's current state (INIT, BACKUP, MASTER, FAULT, STOP), 0 for the others.",
    );
    let mut master = Family::new(
        "rvs_vrrp_master",
        "gauge",
        "1 while this director is MASTER of the instance (holds its VIPs).",
    );
    let mut prio = Family::new(
        "rvs_vrrp_priority",
        "gauge",
        "The priority advertised now (configured plus tracking).",
    );
    let mut base = Family::new(
        "rvs_vrrp_configured_priority",
        "gauge",
        "The configured priority.",
    );
    let mut transitions = Family::new(
        "rvs_vrrp_transitions_total",
        "counter",
        "State changes of the instance since rvsd started.",
    );
    for v in &d.failover {
        let vrid = v.vrid.to_string();
        let l = [
            ("instance", v.name.as_str()),
            ("interface", v.interface.as_str()),
            ("vrid", vrid.as_str()),
        ];
        for s in ["INIT", "BACKUP", "MASTER", "FAULT", "STOP"] {
            let mut ls = l.to_vec();
            ls.push(("state", s));
            state.push(&ls, (v.state == s) as u64);
        }
        master.push(&l, (v.state == "MASTER") as u64);
        prio.push(&l, v.priority as u64);
        base.push(&l, v.base_priority as u64);
        transitions.push(&l, v.transitions);
    }
    state.write(out);
    master.write(out);
    prio.write(out);
    base.write(out);
    transitions.write(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            format_labels(&[("a", "x\"y\\z\nw"), ("b", "")]),
            r#"{a="x\"y\\z\nw",b=""}"#
        );
        assert_eq!(format_labels(&[]), "");
    }

    #[test]
    fn empty_table_still_reports_health() {
        let m = render("proxy", None, Some(&[]));
        let p = ProxyInfo {
            relay: "io_uring".into(),
            direct_sockets: 6,
        };
        assert!(render("proxy", Some(&p), Some(&[])).contains("rvs_proxy_direct_sockets 6\n"));
        assert!(render("proxy", Some(&p), Some(&[]))
            .contains("rvs_engine_info{engine=\"proxy\",relay=\"io_uring\"} 1\n"));
        assert!(m.contains("# TYPE rvs_up gauge\nrvs_up 1\n"), "{m}");
        assert!(m.contains("rvs_engine_info{engine=\"proxy\"} 1\n"), "{m}");
        assert!(m.contains("rvs_services 0\n"), "{m}");
        assert!(render("none", None, None).contains("rvs_up 0\n"));
    }

    #[test]
    fn health_families_say_who_is_down_and_why() {
        use rvs_ctl::*;
        let key = ServiceKey::Addr {
            proto: rvs_core::Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let check = |state: &str, d| CheckEntry {
            kind: "http".into(),
            target: "http 10.0.0.2:80/".into(),
            state: state.into(),
            streak: 1,
            fall: 3,
            rise: 2,
            interval_ms: 1000,
            timeout_ms: 500,
            last: None,
            duration_ms: d,
        };
        let h = HealthReport {
            enabled: true,
            services: vec![ServiceHealthEntry {
                service: key,
                on_failure: "quiesce".into(),
                quorum: 1,
                quorum_hysteresis: 0,
                quorum_up: true,
                live_weight: 3,
                fallback: None,
                fallback_active: false,
            }],
            servers: vec![ServerHealthEntry {
                service: key,
                addr: "10.0.0.2".parse().unwrap(),
                port: 80,
                state: "down".into(),
                since_ms: 0,
                configured_weight: 3,
                check_weight: None,
                checks: vec![check("down", Some(1234)), check("up", None)],
            }],
        };
        let mut out = String::new();
        render_health(&mut out, &h);
        let rs = r#"service="TCP 10.0.0.1:80",protocol="TCP",address="10.0.0.1",port="80",real_server="10.0.0.2:80",real_address="10.0.0.2",real_port="80""#;
        assert!(
            out.contains(&format!("rvs_real_server_healthy{{{rs}}} 0\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "rvs_check_up{{{rs},check=\"1\",type=\"http\"}} 0\n"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "rvs_check_up{{{rs},check=\"2\",type=\"http\"}} 1\n"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "rvs_check_duration_seconds{{{rs},check=\"1\",type=\"http\"}} 1.234\n"
            )),
            "{out}"
        );
        assert!(out.contains("rvs_service_quorum_up{service=\"TCP 10.0.0.1:80\",protocol=\"TCP\",address=\"10.0.0.1\",port=\"80\"} 1\n"), "{out}");
        let mut none = String::new();
        render_health(&mut none, &HealthReport::default());
        assert_eq!(none, "");
    }

    #[test]
    fn daemon_families_show_reloads_and_vrrp_state() {
        let d = rvs_ctl::DaemonStatus {
            version: "0.1.0".into(),
            engine: "proxy".into(),
            config: None,
            started_ms: 1_795_520_361_215,
            reloads_ok: 3,
            reloads_failed: 1,
            last_reload: Some(rvs_ctl::ReloadOutcome {
                at_ms: 1_795_520_400_000,
                ok: false,
                message: "x".into(),
            }),
            failover: vec![rvs_ctl::VrrpStatus {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: 51,
                state: "BACKUP".into(),
                priority: 90,
                base_priority: 150,
                master: None,
                since_ms: 0,
                transitions: 2,
                fault: None,
                vips: vec!["198.18.0.100/24".into()],
            }],
        };
        let mut out = String::new();
        render_daemon(&mut out, &d);
        for line in [
            "rvs_start_time_seconds 1795520361.215\n",
            "rvs_config_reloads_total{result=\"ok\"} 3\n",
            "rvs_config_reloads_total{result=\"error\"} 1\n",
            "rvs_config_last_reload_successful 0\n",
            "rvs_config_last_reload_timestamp_seconds 1795520400.000\n",
            "rvs_vrrp_state{instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",state=\"BACKUP\"} 1\n",
            "rvs_vrrp_state{instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",state=\"MASTER\"} 0\n",
            "rvs_vrrp_master{instance=\"VI_1\",interface=\"eth0\",vrid=\"51\"} 0\n",
            "rvs_vrrp_priority{instance=\"VI_1\",interface=\"eth0\",vrid=\"51\"} 90\n",
            "rvs_vrrp_transitions_total{instance=\"VI_1\",interface=\"eth0\",vrid=\"51\"} 2\n",
        ] {
            assert!(out.contains(line), "missing {line}in\n{out}");
        }
    }
}
