//! Health checks in the daemon: the [`HealthState`] of the configuration
//! file, the driver thread that runs the checks (`rvs-health`), and the
//! status report `rvsctl status` and the HTTP API show.
//!
//! Lock order: the health state, then the control state (`Shared`), then
//! the director. The driver applies table changes with the health lock
//! held; a reload takes the health lock before the control state; requests
//! that read the health state take it without holding the control state.

use rvs_check::Health;
use rvs_config::Config;
use rvs_core::Time;
use rvs_ctl::{CheckEntry, CheckOutcome, HealthReport, ServerHealthEntry, ServiceHealthEntry};
use rvs_health::HealthState;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The health state shared by the driver, reloads and status requests.
pub type SharedHealth = Arc<Mutex<HealthState>>;

fn state_name(h: Health) -> String {
    match h {
        Health::Up => "up".into(),
        Health::Down => "down".into(),
    }
}

/// A converter from the monitor's clock (ms since `epoch`) to Unix ms,
/// fixed at start so that a time always converts the same way.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    unix_at_epoch: u64,
}

impl Clock {
    pub fn new(epoch: Instant) -> Self {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            unix_at_epoch: now_unix.saturating_sub(epoch.elapsed().as_millis() as u64),
        }
    }

    pub fn unix_ms(&self, t: Time) -> u64 {
        self.unix_at_epoch + t
    }
}

/// What `rvsctl status` shows: every checked real server with its checks,
/// and every service with checks or a fallback with its quorum.
pub fn report(st: &HealthState, clock: &Clock) -> HealthReport {
    let m = st.monitor();
    let applied = st.applied();
    let mut services = Vec::new();
    for s in &m.config().services {
        let has_checks =
            !s.health.checks.is_empty() || s.real_servers.iter().any(|r| !r.checks.is_empty());
        if !has_checks && s.health.fallback.is_none() {
            continue;
        }
        let fallback = s
            .health
            .fallback
            .as_ref()
            .map(|f| (f.dest.addr, f.dest.port));
        let fallback_active = fallback.is_some_and(|(a, p)| {
            applied
                .service(&s.key)
                .is_some_and(|a_s| a_s.real_server(&a, p).is_some())
        });
        let live_weight = m.live_weight(s);
        services.push(ServiceHealthEntry {
            service: s.key,
            on_failure: s.health.on_failure.name().into(),
            quorum: s.health.quorum,
            quorum_hysteresis: s.health.quorum_hysteresis,
            quorum_up: m.quorum(&s.key),
            live_weight,
            fallback,
            fallback_active,
        });
    }
    let servers = m
        .status()
        .into_iter()
        .map(|st| {
            let configured_weight = m
                .real_server(&st.server)
                .map(|(_, rs)| rs.dest.weight)
                .unwrap_or(0);
            let target_rs = m.real_server(&st.server).map(|(_, rs)| rs.clone());
            ServerHealthEntry {
                service: st.server.service,
                addr: st.server.addr,
                port: st.server.port,
                state: state_name(st.health),
                since_ms: clock.unix_ms(st.since),
                configured_weight,
                check_weight: st.weight,
                checks: st
                    .checks
                    .into_iter()
                    .map(|c| CheckEntry {
                        kind: c.spec.kind.name().into(),
                        target: describe(&c.spec, target_rs.as_ref()),
                        state: state_name(c.health),
                        streak: c.streak,
                        fall: c.spec.fall,
                        rise: c.spec.rise,
                        interval_ms: c.spec.interval_ms,
                        timeout_ms: c.spec.timeout_ms,
                        last: c.last.map(|(at, r)| CheckOutcome {
                            at_ms: clock.unix_ms(at),
                            ok: r.ok,
                            reason: r.reason.to_string(),
                        }),
                        duration_ms: c.duration,
                    })
                    .collect(),
            }
        })
        .collect();
    HealthReport {
        enabled: m.check_count() > 0
            || m.config()
                .services
                .iter()
                .any(|s| s.health.fallback.is_some()),
        services,
        servers,
    }
}

/// `http 198.18.1.1:80/health`, `command /bin/check`, for listings.
fn describe(c: &rvs_config::Check, rs: Option<&rvs_config::RealServer>) -> String {
    use rvs_config::CheckKind;
    let target = rs
        .and_then(|rs| rvs_health::checkers::target(rs, c))
        .map(|t| t.to_string())
        .unwrap_or_else(|| "?".into());
    match &c.kind {
        CheckKind::Http(p) | CheckKind::Https { http: p, .. } => {
            format!("{} {target}{}", c.kind.name(), p.path)
        }
        CheckKind::Dns { name, query_type } => format!("dns {target} {name} {query_type}"),
        CheckKind::Command { argv, .. } => format!("command {}", argv.join(" ")),
        _ => format!("{} {target}", c.kind.name()),
    }
}

/// A new health state for `config`, at time 0 of the daemon's clock.
pub fn state(config: &Config) -> SharedHealth {
    Arc::new(Mutex::new(HealthState::new(config.clone(), 0)))
}

/// Starts the driver thread; table changes go through `Shared` like any
/// rvsadm request.
pub fn start(
    health: SharedHealth,
    shared: Arc<Mutex<crate::server::Shared>>,
    epoch: Instant,
) -> Result<rvs_health::Driver, String> {
    let apply: rvs_health::Apply = Box::new(move |st, reqs| {
        let now = epoch.elapsed().as_millis() as Time;
        shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply_health(reqs, now);
        track_pool(st);
    });
    rvs_health::spawn(health, epoch, apply).map_err(|e| format!("cannot start health checks: {e}"))
}

/// Feeds the pool's health into each VRRP instance's priority: the sum of
/// the weights of its `[[vrrp.track_service]]` entries whose service has
/// lost quorum (0 when every tracked service has quorum).
pub fn track_pool(st: &HealthState) {
    let m = st.monitor();
    for v in &m.config().vrrp {
        if v.track_services.is_empty() {
            continue;
        }
        let delta: i32 = v
            .track_services
            .iter()
            .filter(|t| !m.quorum(&t.service))
            .map(|t| t.weight)
            .sum();
        crate::failover::set_pool_delta(Some(&v.name), delta);
    }
}
