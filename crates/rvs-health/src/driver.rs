//! The I/O edge: a thread with a single-threaded tokio runtime that runs the
//! checks the [`Monitor`] asks for, feeds their results back, logs every
//! transition with its reason, runs the quorum commands, and hands the
//! table requests that follow to the daemon.
//!
//! Lock order: the [`HealthState`] lock is taken first, then whatever the
//! daemon's `apply` callback locks (its control state, then the director).
//! A configuration reload must take the locks in the same order.

use crate::checkers;
use crate::monitor::{Monitor, Notice, ReloadSummary, Run, ServerId};
use rvs_check::{run_check, CheckResult, Checker, Health, Reason};
use rvs_config::{Check, Config, OnFailure};
use rvs_core::Time;
use rvs_ctl::Request;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// The monitor and the table it last had applied.
#[derive(Debug)]
pub struct HealthState {
    monitor: Monitor,
    applied: Config,
}

impl HealthState {
    /// The state of `config` at `now`; nothing is applied yet, so the first
    /// [`HealthState::sync`] returns every request that loads the table.
    pub fn new(config: Config, now: Time) -> Self {
        HealthState {
            monitor: Monitor::new(config, now),
            applied: Config::default(),
        }
    }

    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    pub fn monitor_mut(&mut self) -> &mut Monitor {
        &mut self.monitor
    }

    /// The table as last handed out by [`HealthState::sync`].
    pub fn applied(&self) -> &Config {
        &self.applied
    }

    /// The requests that bring the table from what was applied to what the
    /// monitor says it should be now (none when nothing changed).
    pub fn sync(&mut self) -> Vec<Request> {
        if !self.monitor.take_dirty() {
            return Vec::new();
        }
        let effective = self.monitor.effective();
        let reqs = rvs_config::diff(&self.applied, &effective);
        self.applied = effective;
        reqs
    }

    /// Reloads the configuration, keeping unchanged checks' state, and
    /// returns the requests that bring the table to the new effective one.
    pub fn reload(&mut self, config: Config, now: Time) -> (ReloadSummary, Vec<Request>) {
        let summary = self.monitor.reload(config, now);
        // A reload changes the configured table even when no health state
        // changes (a new service, say): always diff.
        self.monitor.take_dirty();
        let effective = self.monitor.effective();
        let reqs = rvs_config::diff(&self.applied, &effective);
        self.applied = effective;
        (summary, reqs)
    }
}

/// What the daemon does with the table requests that follow a health
/// change. Called with the [`HealthState`] lock held.
pub type Apply = Box<dyn Fn(&HealthState, &[Request]) + Send + 'static>;

/// The running driver.
#[derive(Debug, Clone)]
pub struct Driver {
    wake: Arc<Notify>,
}

impl Driver {
    /// Makes the driver look at the monitor again now (after a reload
    /// moved schedules).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

fn lock(m: &Mutex<HealthState>) -> MutexGuard<'_, HealthState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the driver thread. `epoch` is the monitor's time origin (its
/// `Time` is ms since then).
pub fn spawn(
    state: Arc<Mutex<HealthState>>,
    epoch: Instant,
    apply: Apply,
) -> std::io::Result<Driver> {
    let wake = Arc::new(Notify::new());
    let driver = Driver { wake: wake.clone() };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("rvsd-health".into())
        .spawn(move || rt.block_on(run(state, epoch, apply, wake)))?;
    Ok(driver)
}

struct Done {
    run: Run,
    result: CheckResult,
}

/// Checkers are built once per check table and reused for every run.
type Cache = HashMap<(ServerId, usize), (Check, Arc<dyn Checker>)>;

fn checker_for(m: &Monitor, run: &Run, cache: &mut Cache) -> Result<Arc<dyn Checker>, String> {
    let spec = m.spec(&run.server, run.check).ok_or("check is gone")?;
    if let Some((s, c)) = cache.get(&(run.server, run.check)) {
        if s == spec {
            return Ok(c.clone());
        }
    }
    let (svc, rs) = m.real_server(&run.server).ok_or("real server is gone")?;
    let c: Arc<dyn Checker> = Arc::from(checkers::build(svc, rs, spec)?);
    cache.insert((run.server, run.check), (spec.clone(), c.clone()));
    Ok(c)
}

async fn run(state: Arc<Mutex<HealthState>>, epoch: Instant, apply: Apply, wake: Arc<Notify>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let mut cache: Cache = HashMap::new();
    let mut generation = 0;
    let now = || epoch.elapsed().as_millis() as Time;
    loop {
        let next = {
            let mut st = lock(&state);
            let t = now();
            let mut notices = st.monitor.expire(t);
            while let Ok(d) = rx.try_recv() {
                notices.extend(st.monitor.finish(&d.run, now(), d.result));
            }
            let runs = st.monitor.start_due(t);
            if st.monitor.generation() != generation {
                // A reload: drop the checkers of checks that are gone.
                generation = st.monitor.generation();
                let m = &st.monitor;
                cache.retain(|(id, i), (spec, _)| m.spec(id, *i) == Some(spec));
            }
            for r in runs {
                let timeout = Duration::from_millis(r.deadline.saturating_sub(t).max(1));
                match checker_for(&st.monitor, &r, &mut cache) {
                    Ok(c) => {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let result = run_check(&*c, timeout).await;
                            let _ = tx.send(Done { run: r, result });
                        });
                    }
                    Err(msg) => {
                        let _ = tx.send(Done {
                            run: r,
                            result: CheckResult::fail(Reason::Error(msg)),
                        });
                    }
                }
            }
            report(&st.monitor, &notices);
            let reqs = st.sync();
            if !reqs.is_empty() {
                apply(&st, &reqs);
            }
            st.monitor.next_wakeup()
        };
        let sleep = match next {
            Some(at) => Duration::from_millis(at.saturating_sub(now())),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            Some(d) = rx.recv() => {
                let mut st = lock(&state);
                let mut notices = st.monitor.finish(&d.run, now(), d.result);
                while let Ok(d) = rx.try_recv() {
                    notices.extend(st.monitor.finish(&d.run, now(), d.result));
                }
                report(&st.monitor, &notices);
                let reqs = st.sync();
                if !reqs.is_empty() {
                    apply(&st, &reqs);
                }
            }
            _ = wake.notified() => {}
        }
    }
}

/// Logs each notice with its reason and runs the quorum commands.
fn report(m: &Monitor, notices: &[Notice]) {
    for n in notices {
        match n {
            Notice::Check {
                server,
                check,
                transition,
            } => {
                let kind = m.spec(server, *check).map_or("?", |c| c.kind.name());
                tracing::info!(
                    "{kind} check #{} of real server {server} is {}: {}",
                    check + 1,
                    health_name(transition.to),
                    transition.reason
                );
            }
            Notice::Server { server, transition } => {
                let svc = m.config().service(&server.service);
                match transition.to {
                    Health::Down => {
                        let what = match svc.map(|s| s.health.on_failure) {
                            Some(OnFailure::Remove) => "removed from the table",
                            _ => "quiesced (weight 0)",
                        };
                        tracing::warn!(
                            "real server {server} is DOWN ({}); {what}",
                            transition.reason
                        );
                    }
                    Health::Up => {
                        let weight = m
                            .real_server(server)
                            .map(|(_, rs)| rs.dest.weight)
                            .unwrap_or(0);
                        tracing::warn!(
                            "real server {server} is UP ({}); back with weight {weight}",
                            transition.reason
                        );
                    }
                }
            }
            Notice::Weight { server, weight } => match weight {
                Some(w) => tracing::info!("real server {server}: its check sets weight {w}"),
                None => tracing::info!("real server {server}: back to its configured weight"),
            },
            Notice::Quorum {
                service,
                up,
                live_weight,
                ..
            } => {
                let Some(s) = m.config().service(service) else {
                    continue;
                };
                let name = rvs_config::describe(service);
                let fallback = s
                    .health
                    .fallback
                    .as_ref()
                    .map(|f| rvs_config::format_endpoint(&f.dest.addr, f.dest.port));
                if *up {
                    tracing::warn!(
                        "{name} regained quorum (live weight {live_weight}, quorum {}){}",
                        s.health.quorum,
                        fallback.map_or(String::new(), |f| format!("; fallback {f} removed"))
                    );
                } else {
                    tracing::warn!(
                        "{name} lost quorum (live weight {live_weight}, quorum {}){}",
                        s.health.quorum,
                        fallback.map_or(String::new(), |f| format!("; fallback {f} added"))
                    );
                }
                let argv = if *up {
                    &s.health.quorum_up
                } else {
                    &s.health.quorum_down
                };
                if !argv.is_empty() {
                    spawn_command(argv.clone(), name);
                }
            }
        }
    }
}

fn health_name(h: Health) -> &'static str {
    match h {
        Health::Up => "up",
        Health::Down => "down",
    }
}

/// Runs a quorum command in the background (at most 60 s) and logs how it
/// ended.
fn spawn_command(argv: Vec<String>, service: String) {
    tokio::spawn(async move {
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).kill_on_drop(true);
        let status =
            tokio::time::timeout(Duration::from_secs(60), async { cmd.spawn()?.wait().await })
                .await;
        match status {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => tracing::warn!("quorum command {argv:?} of {service} failed: {s}"),
            Ok(Err(e)) => tracing::warn!("quorum command {argv:?} of {service} failed: {e}"),
            Err(_) => tracing::warn!("quorum command {argv:?} of {service} ran over 60 s; killed"),
        }
    });
}
