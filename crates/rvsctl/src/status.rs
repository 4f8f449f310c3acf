//! `rvsctl status` and `rvsctl reload`: what rvsd's health checks say about
//! every real server, and re-reading rvsd's configuration file, over the
//! control socket (`--socket`, `RVS_SOCKET`, default /run/rvs/rvsd.sock).

use rvs_ctl::{Client, HealthReport, Request, Response, ServerHealthEntry};
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

/// `rvsctl status [--json]`.
pub fn status(socket: &Path, json: bool) -> Result<(), String> {
    let r = fetch(socket)?;
    if json {
        let text = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        print!("{}", render(&r, now));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_ctl::{CheckEntry, CheckOutcome, ServiceHealthEntry};

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
