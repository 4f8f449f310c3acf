//! `rvsctl status`, `rvsctl failover` and `rvsctl reload`: rvsd's own state
//! (engine, reloads, failover instances), what its health checks say about
//! every real server, and re-reading its configuration file, over the
//! control socket (`--socket`, `RVS_SOCKET`, default /run/rvs/rvsd.sock).

use rvs_ctl::{Client, DaemonStatus, HealthReport, Request, Response, ServerHealthEntry};
use std::fmt::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn call(socket: &Path, req: Request) -> Result<Response, String> {
    let mut c = Client::connect(socket)
        .map_err(|e| format!("cannot reach rvsd at {}: {e}", socket.display()))?;
    c.call(&req)
        .map_err(|e| format!("rvsd at {}: {e}", socket.display()))
}

/// Fetches the health report.
pub fn fetch(socket: &Path) -> Result<HealthReport, String> {
    match call(socket, Request::GetHealth)? {
        Response::Health(r) => Ok(r),
        other => Err(format!("unexpected answer from rvsd: {other:?}")),
    }
}

/// Fetches rvsd's own state.
pub fn fetch_daemon(socket: &Path) -> Result<DaemonStatus, String> {
    match call(socket, Request::GetStatus)? {
        Response::Status(d) => Ok(d),
        other => Err(format!("unexpected answer from rvsd: {other:?}")),
    }
}

/// rvsd's own state for people, as of `now` (Unix ms).
pub fn render_daemon(d: &DaemonStatus, now: u64) -> String {
    let mut o = String::new();
    let config = d
        .config
        .as_ref()
        .map_or("no configuration file".to_string(), |c| {
            format!("config {c}")
        });
    let _ = writeln!(
        o,
        "rvsd {}, engine {}, {config}, up {}",
        d.version,
        d.engine,
        age(now.saturating_sub(d.started_ms))
    );
    if let Some(r) = &d.last_reload {
        let _ = writeln!(
            o,
            "reloads: {} applied, {} refused; last {} ago {}: {}",
            d.reloads_ok,
            d.reloads_failed,
            age(now.saturating_sub(r.at_ms)),
            if r.ok { "applied" } else { "REFUSED" },
            r.message.lines().next().unwrap_or("")
        );
    }
    o.push_str(&render_failover(d, now));
    o
}

/// The failover instances for people.
pub fn render_failover(d: &DaemonStatus, now: u64) -> String {
    let mut o = String::new();
    for v in &d.failover {
        let prio = if v.priority == v.base_priority {
            format!("priority {}", v.priority)
        } else {
            format!("priority {} (configured {})", v.priority, v.base_priority)
        };
        let master = match (v.state.as_str(), v.master) {
            ("MASTER", _) => String::new(),
            (_, Some(m)) => format!(", master {m}"),
            _ => String::new(),
        };
        let fault = v
            .fault
            .as_ref()
            .map_or(String::new(), |f| format!(" ({f})"));
        let _ = writeln!(
            o,
            "failover {} on {} vrid {}: {}{fault} for {}, {prio}{master}, VIPs {}",
            v.name,
            v.interface,
            v.vrid,
            v.state,
            age(now.saturating_sub(v.since_ms)),
            v.vips.join(" ")
        );
    }
    o
}

/// `rvsctl failover [--json]`.
pub fn failover(socket: &Path, json: bool) -> Result<(), String> {
    let d = fetch_daemon(socket)?;
    if json {
        let text = serde_json::to_string_pretty(&d.failover).map_err(|e| e.to_string())?;
        println!("{text}");
    } else if d.failover.is_empty() {
        println!("no failover instances (no [[vrrp]] in rvsd's configuration)");
    } else {
        print!("{}", render_failover(&d, now_ms()));
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `rvsctl reload`.
pub fn reload(socket: &Path) -> Result<(), String> {
    match call(socket, Request::Reload)? {
        Response::Ok => {
            println!("reloaded");
            Ok(())
        }
        Response::Refused(m) => Err(m),
        other => Err(format!("unexpected answer from rvsd: {other:?}")),
    }
}

/// `3s`, `5m12s`, `2h03m`, `4d07h`.
pub fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

fn server_line(o: &mut String, s: &ServerHealthEntry, now: u64) {
    let state = s.state.to_uppercase();
    let weight = match s.check_weight {
        Some(w) => format!(
            "weight {w} (set by check; configured {})",
            s.configured_weight
        ),
        None => format!("weight {}", s.configured_weight),
    };
    let _ = writeln!(
        o,
        "  {:<24} {:<5} for {:<8} {weight}",
        rvs_config::format_endpoint(&s.addr, s.port),
        state,
        age(now.saturating_sub(s.since_ms)),
    );
    for c in &s.checks {
        let last = match &c.last {
            Some(l) => format!(
                "{} {} ago{}",
                if l.ok { "ok" } else { "FAIL" },
                age(now.saturating_sub(l.at_ms)),
                if l.ok && l.reason == "passed" {
                    String::new()
                } else {
                    format!(": {}", l.reason)
                }
            ),
            None => "not run yet".into(),
        };
        let toward = if c.streak > 0 {
            let (n, what) = if c.state == "up" {
                (c.fall, "down")
            } else {
                (c.rise, "up")
            };
            format!(" ({}/{} toward {what})", c.streak, n)
        } else {
            String::new()
        };
        let took = c
            .duration_ms
            .map_or(String::new(), |d| format!(", took {d} ms"));
        let _ = writeln!(
            o,
            "      {:<40} {:<4} last {last}{took}{toward}",
            c.target, c.state
        );
    }
}

/// The report for people, as of `now` (Unix ms).
pub fn render(r: &HealthReport, now: u64) -> String {
    let mut o = String::new();
    if !r.enabled {
        o.push_str("no health checks (rvsd has no configuration file with checks or fallbacks)\n");
        return o;
    }
    for svc in &r.services {
        let quorum = if svc.quorum_up {
            "quorum up"
        } else {
            "QUORUM LOST"
        };
        let fallback = match svc.fallback {
            Some((a, p)) => format!(
                ", fallback {} {}",
                rvs_config::format_endpoint(&a, p),
                if svc.fallback_active {
                    "ACTIVE"
                } else {
                    "standby"
                }
            ),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "{}  {quorum} (live weight {}, quorum {}±{}), on failure {}{fallback}",
            rvs_config::describe(&svc.service),
            svc.live_weight,
            svc.quorum,
            svc.quorum_hysteresis,
            svc.on_failure
        );
        for s in r.servers.iter().filter(|s| s.service == svc.service) {
            server_line(&mut o, s, now);
        }
    }
    o
}

/// `rvsctl status [--json]`: rvsd's own state, then the health checks.
/// The JSON form is `{"daemon": DaemonStatus, "health": HealthReport}`.
pub fn status(socket: &Path, json: bool) -> Result<(), String> {
    let d = fetch_daemon(socket)?;
    let r = fetch(socket)?;
    if json {
        let v = serde_json::json!({ "daemon": d, "health": r });
        let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        let now = now_ms();
        print!("{}\n{}", render_daemon(&d, now), render(&r, now));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_ctl::{CheckEntry, CheckOutcome, ServiceHealthEntry};

    #[test]
    fn renders_the_daemon_and_its_failover_instances() {
        let d = DaemonStatus {
            version: "0.1.0".into(),
            engine: "xdp".into(),
            config: Some("/etc/rvs/rvs.toml".into()),
            started_ms: 1_000,
            reloads_ok: 2,
            reloads_failed: 1,
            last_reload: Some(rvs_ctl::ReloadOutcome {
                at_ms: 61_000,
                ok: false,
                message: "reload refused, nothing changed:\nrvs.toml:3:1: unknown key".into(),
            }),
            failover: vec![rvs_ctl::VrrpStatus {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: 51,
                state: "BACKUP".into(),
                priority: 90,
                base_priority: 150,
                master: Some("198.18.0.2".parse().unwrap()),
                since_ms: 31_000,
                transitions: 3,
                fault: None,
                vips: vec!["198.18.0.100/24".into()],
            }],
        };
        assert_eq!(
            render_daemon(&d, 121_000),
            "rvsd 0.1.0, engine xdp, config /etc/rvs/rvs.toml, up 2m00s\n\
             reloads: 2 applied, 1 refused; last 1m00s ago REFUSED: reload refused, nothing changed:\n\
             failover VI_1 on eth0 vrid 51: BACKUP for 1m30s, priority 90 (configured 150), master 198.18.0.2, VIPs 198.18.0.100/24\n"
        );
    }

    #[test]
    fn ages() {
        assert_eq!(age(999), "0s");
        assert_eq!(age(59_000), "59s");
        assert_eq!(age(312_000), "5m12s");
        assert_eq!(age(7_380_000), "2h03m");
        assert_eq!(age(370_800_000), "4d07h");
    }

    #[test]
    fn renders_a_down_server_with_its_reason() {
        let key = rvs_core::ServiceKey::Addr {
            proto: rvs_core::Protocol::Tcp,
            addr: "198.18.0.1".parse().unwrap(),
            port: 80,
        };
        let r = HealthReport {
            enabled: true,
            services: vec![ServiceHealthEntry {
                service: key,
                on_failure: "quiesce".into(),
                quorum: 1,
                quorum_hysteresis: 0,
                quorum_up: false,
                live_weight: 0,
                fallback: Some(("127.0.0.1".parse().unwrap(), 8080)),
                fallback_active: true,
            }],
            servers: vec![ServerHealthEntry {
                service: key,
                addr: "198.18.1.1".parse().unwrap(),
                port: 80,
                state: "down".into(),
                since_ms: 10_000,
                configured_weight: 5,
                check_weight: None,
                checks: vec![CheckEntry {
                    kind: "http".into(),
                    target: "http 198.18.1.1:80/health".into(),
                    state: "down".into(),
                    streak: 1,
                    fall: 3,
                    rise: 2,
                    interval_ms: 1000,
                    timeout_ms: 500,
                    last: Some(CheckOutcome {
                        at_ms: 70_000,
                        ok: true,
                        reason: "passed".into(),
                    }),
                    duration_ms: Some(3),
                }],
            }],
        };
        let text = render(&r, 72_000);
        assert_eq!(
            text,
            "tcp 198.18.0.1:80  QUORUM LOST (live weight 0, quorum 1±0), on failure quiesce, fallback 127.0.0.1:8080 ACTIVE\n\
             \x20 198.18.1.1:80            DOWN  for 1m02s    weight 5\n\
             \x20     http 198.18.1.1:80/health                down last ok 2s ago, took 3 ms (1/2 toward up)\n"
        );
    }
}
