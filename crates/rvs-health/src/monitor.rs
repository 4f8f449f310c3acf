//! The sans-IO health monitor: every checked real server's
//! [`ServerChecks`], each service's quorum, and what the table should look
//! like because of them ([`Monitor::effective`]). It never reads a clock,
//! opens a socket or touches the table: the driver feeds it time and check
//! results, and applies `rvs_config::diff(applied, effective)` whenever
//! [`Monitor::take_dirty`] says the effective table changed.
//!
//! The pool rules are ldirectord's and keepalived's:
//! - a real server is in the pool only when all its checks are up; a down
//!   one is quiesced (weight 0) or removed, as the service's `on_failure`
//!   says, and gets its configured weight back when it recovers;
//! - a check may ask for a weight (keepalived `misc_dynamic`), which then
//!   replaces the configured one while the server is up;
//! - quorum (keepalived): the live weight is the sum of the weights of the
//!   servers that are up. Quorum is lost when it is 0 or below
//!   `quorum - hysteresis`, regained when it is positive and at least
//!   `quorum + hysteresis`. While it is lost and the service has a fallback,
//!   the fallback is in the table and the servers still alive are pulled
//!   (quiesced or removed); with the default quorum of 1 that is "every real
//!   server is down", ldirectord's fallback rule.

use rvs_check::{CheckResult, CheckState, CheckTiming, Event, Health, ServerChecks, Transition};
use rvs_config::{Check, Config, InitialState, OnFailure, RealServer, Service};
use rvs_core::{ServiceKey, Time};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::net::IpAddr;

/// A real server of a service: what a check result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerId {
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
}

impl ServerId {
    pub fn of(service: &Service, rs: &RealServer) -> Self {
        ServerId {
            service: service.key,
            addr: rs.dest.addr,
            port: rs.dest.port,
        }
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {}",
            rvs_config::format_endpoint(&self.addr, self.port),
            rvs_config::describe(&self.service)
        )
    }
}

/// A check run the driver must launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub server: ServerId,
    /// Index of the check among the server's checks.
    pub check: usize,
    /// Pass back to [`Monitor::finish`].
    pub token: u64,
    /// The check's identity across reloads (a reload may move it to
    /// another index, or drop it; its result then goes to the right check
    /// or nowhere).
    pub uid: u64,
    /// When the run counts as a timeout.
    pub deadline: Time,
}

/// Something that happened, for the log and for notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// One check changed state.
    Check {
        server: ServerId,
        check: usize,
        transition: Transition,
    },
    /// A real server left or rejoined the pool.
    Server {
        server: ServerId,
        transition: Transition,
    },
    /// A check asked for another weight (`None`: the configured one).
    Weight {
        server: ServerId,
        weight: Option<i32>,
    },
    /// A service lost or regained quorum; `live_weight` is the sum of the
    /// weights of its live real servers.
    Quorum {
        service: ServiceKey,
        up: bool,
        live_weight: i64,
        at: Time,
    },
}

/// One checked real server.
#[derive(Debug, Clone)]
struct Entry {
    id: ServerId,
    checks: ServerChecks,
    /// The time of this server's live entry in the timer heap.
    scheduled: Option<Time>,
    /// The check tables, in the order of `checks`.
    specs: Vec<Check>,
    /// Each check's identity (see [`Run::uid`]).
    uids: Vec<u64>,
    /// When the server last changed state (or was first seen).
    since: Time,
    /// The last run's duration of each check, ms.
    durations: Vec<Option<Time>>,
    /// Start time of each check's run in flight.
    started: Vec<Option<Time>>,
}

/// A check's state for status listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStatus {
    pub spec: Check,
    pub health: Health,
    /// Consecutive results against `health`.
    pub streak: u32,
    /// The last result and when it arrived.
    pub last: Option<(Time, CheckResult)>,
    /// How long the last run took, ms.
    pub duration: Option<Time>,
}

/// A real server's state for status listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    pub server: ServerId,
    pub health: Health,
    /// Since when (ms, the monitor's clock).
    pub since: Time,
    /// The weight the checks ask for, if any.
    pub weight: Option<i32>,
    pub checks: Vec<CheckStatus>,
}

/// What a reload did to the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReloadSummary {
    /// Checks whose table did not change and kept their state.
    pub kept: usize,
    /// Checks that are new or changed and start afresh.
    pub fresh: usize,
    /// Checks that are gone.
    pub dropped: usize,
}

/// The health of every checked real server and the quorum of every service.
#[derive(Debug, Clone)]
pub struct Monitor {
    config: Config,
    /// The checked servers, in configuration order.
    servers: Vec<Entry>,
    index: HashMap<ServerId, usize>,
    /// When each server needs attention next (`(time, index)`; an entry
    /// whose time is not its server's `scheduled` is stale and skipped), so
    /// a wakeup costs O(log n) rather than a walk over every server.
    timers: BinaryHeap<Reverse<(Time, usize)>>,
    next_uid: u64,
    /// Bumped by every reload.
    generation: u64,
    /// Quorum state per service (`true`: up).
    quorum: HashMap<ServiceKey, bool>,
    dirty: bool,
}

fn health_of(i: InitialState) -> Health {
    match i {
        InitialState::Up => Health::Up,
        InitialState::Down => Health::Down,
    }
}

fn timing(c: &Check) -> CheckTiming {
    // rvs-config validated these (interval > 0, 0 < timeout ≤ interval,
    // fall and rise ≥ 1); the fallback keeps a bad value from panicking.
    CheckTiming::new(c.interval_ms, c.timeout_ms, c.fall, c.rise).unwrap_or_default()
}

/// The jitter identity of check `i` of `id`.
fn check_key(id: &ServerId, i: usize, spec: &Check) -> u64 {
    rvs_check::state::identity_key(format!("{id}#{i}#{spec:?}").as_bytes())
}

fn fresh_check(
    id: &ServerId,
    i: usize,
    spec: &Check,
    default: InitialState,
    now: Time,
) -> CheckState {
    let initial = health_of(spec.initial.unwrap_or(default));
    CheckState::new(timing(spec), initial, check_key(id, i, spec), now)
}

impl Monitor {
    /// The monitor of `config` at `now`: every check in its initial state,
    /// first runs spread by jitter, quorum computed from those states.
    pub fn new(config: Config, now: Time) -> Self {
        let mut m = Monitor {
            config: Config::default(),
            servers: Vec::new(),
            index: HashMap::new(),
            timers: BinaryHeap::new(),
            next_uid: 0,
            generation: 0,
            quorum: HashMap::new(),
            dirty: true,
        };
        m.reload(config, now);
        m.dirty = true;
        m
    }

    /// The configuration being monitored.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the configuration. A check whose server and table are
    /// unchanged keeps its state (streak, schedule, last result); new and
    /// changed checks start from their initial state. Quorum is recomputed
    /// without notices for services whose state it keeps. The effective
    /// table may change (new servers, changed weights), so the monitor is
    /// marked dirty when it does.
    pub fn reload(&mut self, config: Config, now: Time) -> ReloadSummary {
        let before = self.effective();
        self.generation += 1;
        let old_servers = std::mem::take(&mut self.servers);
        let mut old: HashMap<ServerId, Entry> =
            old_servers.into_iter().map(|e| (e.id, e)).collect();
        self.index.clear();
        self.timers.clear();
        let mut summary = ReloadSummary::default();
        for s in &config.services {
            for rs in &s.real_servers {
                let specs = s.checks_for(rs);
                if specs.is_empty() {
                    continue;
                }
                let id = ServerId::of(s, rs);
                let prev = old.remove(&id);
                let (mut kept_states, kept_specs, kept_uids, since) = match prev {
                    Some(e) => {
                        let since = e.since;
                        (
                            e.checks
                                .into_checks()
                                .into_iter()
                                .map(Some)
                                .collect::<Vec<_>>(),
                            e.specs,
                            e.uids,
                            Some(since),
                        )
                    }
                    None => (Vec::new(), Vec::new(), Vec::new(), None),
                };
                let mut states = Vec::with_capacity(specs.len());
                let mut uids = Vec::with_capacity(specs.len());
                for (i, spec) in specs.iter().enumerate() {
                    let reuse = kept_specs
                        .iter()
                        .enumerate()
                        .find(|(j, k)| *k == spec && kept_states[*j].is_some())
                        .map(|(j, _)| j);
                    match reuse.and_then(|j| Some((j, kept_states[j].take()?))) {
                        Some((j, st)) => {
                            summary.kept += 1;
                            states.push(st);
                            uids.push(kept_uids[j]);
                        }
                        None => {
                            summary.fresh += 1;
                            states.push(fresh_check(&id, i, spec, s.health.initial, now));
                            uids.push(self.next_uid);
                            self.next_uid += 1;
                        }
                    }
                }
                summary.dropped += kept_states.iter().filter(|s| s.is_some()).count();
                let n = specs.len();
                let server_initial = health_of(s.health.initial);
                let checks = ServerChecks::from_checks(states, server_initial);
                self.index.insert(id, self.servers.len());
                self.servers.push(Entry {
                    id,
                    checks,
                    scheduled: None,
                    specs: specs.to_vec(),
                    uids,
                    since: since.unwrap_or(now),
                    durations: vec![None; n],
                    started: vec![None; n],
                });
            }
        }
        summary.dropped += old.values().map(|e| e.specs.len()).sum::<usize>();
        for i in 0..self.servers.len() {
            self.schedule(i);
        }
        self.config = config;
        let old_quorum = std::mem::take(&mut self.quorum);
        for s in &self.config.services {
            let live = self.live_weight(s);
            let up = match old_quorum.get(&s.key) {
                Some(&was) => next_quorum(was, live, s),
                None => quorum_met_fresh(live, s),
            };
            self.quorum.insert(s.key, up);
        }
        if self.effective() != before {
            self.dirty = true;
        }
        summary
    }

    /// How many times the configuration was loaded (changes with every
    /// reload).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the driver must act next (`None`: nothing is checked).
    pub fn next_wakeup(&self) -> Option<Time> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Puts server `i`'s next wakeup in the timer heap, unless its live
    /// entry already has that time.
    fn schedule(&mut self, i: usize) {
        let e = &mut self.servers[i];
        let next = e.checks.next_wakeup();
        if next != e.scheduled {
            e.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, i)));
            }
        }
    }

    /// Takes the servers whose live timer is due at `now` off the heap
    /// (they must be rescheduled after being dealt with).
    fn pop_due(&mut self, now: Time) -> Vec<usize> {
        let mut due = Vec::new();
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let e = &mut self.servers[i];
            if e.scheduled == Some(t) {
                e.scheduled = None;
                due.push(i);
            }
        }
        due
    }

    /// Starts every due run.
    pub fn start_due(&mut self, now: Time) -> Vec<Run> {
        let mut runs = Vec::new();
        for i in self.pop_due(now) {
            let e = &mut self.servers[i];
            for (check, token, deadline) in e.checks.start_due(now) {
                e.started[check] = Some(now);
                runs.push(Run {
                    server: e.id,
                    check,
                    token,
                    uid: e.uids[check],
                    deadline,
                });
            }
            self.schedule(i);
        }
        runs
    }

    /// The check table behind a run.
    pub fn spec(&self, server: &ServerId, check: usize) -> Option<&Check> {
        self.entry(server)?.specs.get(check)
    }

    /// The service and real server a [`ServerId`] names.
    pub fn real_server(&self, server: &ServerId) -> Option<(&Service, &RealServer)> {
        let s = self.config.service(&server.service)?;
        let rs = s.real_server(&server.addr, server.port)?;
        Some((s, rs))
    }

    /// Records a result. Results of runs that expired, or of checks a
    /// reload replaced, are ignored.
    pub fn finish(&mut self, run: &Run, now: Time, result: CheckResult) -> Vec<Notice> {
        let server = &run.server;
        let Some(&i) = self.index.get(server) else {
            return Vec::new();
        };
        let e = &mut self.servers[i];
        let Some(check) = e.uids.iter().position(|u| *u == run.uid) else {
            return Vec::new();
        };
        let token = run.token;
        if let Some(Some(start)) = e.started.get(check).copied() {
            if e.checks.checks().get(check).is_some_and(|c| c.is_running()) {
                e.durations[check] = Some(now.saturating_sub(start));
            }
        }
        let events = e.checks.finish(check, token, now, result);
        self.schedule(i);
        self.after(*server, events, now)
    }

    /// Turns runs past their deadline into timeout failures.
    pub fn expire(&mut self, now: Time) -> Vec<Notice> {
        let mut out = Vec::new();
        for i in self.pop_due(now) {
            let e = &mut self.servers[i];
            let events = e.checks.expire(now);
            if !events.is_empty() {
                for (k, c) in e.checks.checks().iter().enumerate() {
                    if !c.is_running() && e.started[k].is_some() && e.durations[k].is_none() {
                        e.durations[k] = Some(c.timing().timeout);
                    }
                }
            }
            let id = e.id;
            self.schedule(i);
            out.extend(self.after(id, events, now));
        }
        out
    }

    fn entry(&self, id: &ServerId) -> Option<&Entry> {
        self.index.get(id).map(|&i| &self.servers[i])
    }

    fn after(&mut self, id: ServerId, events: Vec<Event>, now: Time) -> Vec<Notice> {
        let mut out = Vec::new();
        let mut pool_changed = false;
        for ev in events {
            match ev {
                Event::Check { check, transition } => out.push(Notice::Check {
                    server: id,
                    check,
                    transition,
                }),
                Event::Server(transition) => {
                    if let Some(&i) = self.index.get(&id) {
                        self.servers[i].since = transition.at;
                    }
                    pool_changed = true;
                    out.push(Notice::Server {
                        server: id,
                        transition,
                    });
                }
                Event::Weight(weight) => {
                    pool_changed = true;
                    out.push(Notice::Weight { server: id, weight });
                }
            }
        }
        if pool_changed {
            self.dirty = true;
            if let Some(s) = self.config.service(&id.service) {
                let live = self.live_weight(s);
                let was = self.quorum.get(&s.key).copied().unwrap_or(true);
                let up = next_quorum(was, live, s);
                if up != was {
                    self.quorum.insert(s.key, up);
                    out.push(Notice::Quorum {
                        service: s.key,
                        up,
                        live_weight: live,
                        at: now,
                    });
                }
            }
        }
        out
    }

    /// Whether the effective table changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::replace(&mut self.dirty, false)
    }

    /// A real server's state: `None` when it has no checks.
    pub fn health(&self, server: &ServerId) -> Option<Health> {
        self.entry(server).map(|e| e.checks.health())
    }

    /// Whether a service has quorum.
    pub fn quorum(&self, service: &ServiceKey) -> bool {
        self.quorum.get(service).copied().unwrap_or(true)
    }

    /// The weight a live real server gets: the checks' weight, else the
    /// configured one.
    fn live_dest_weight(&self, s: &Service, rs: &RealServer) -> i32 {
        self.entry(&ServerId::of(s, rs))
            .and_then(|e| e.checks.weight())
            .unwrap_or(rs.dest.weight)
    }

    fn is_up(&self, s: &Service, rs: &RealServer) -> bool {
        self.health(&ServerId::of(s, rs)) != Some(Health::Down)
    }

    /// The sum of the weights of the live real servers of `s`.
    pub fn live_weight(&self, s: &Service) -> i64 {
        s.real_servers
            .iter()
            .filter(|rs| self.is_up(s, rs))
            .map(|rs| i64::from(self.live_dest_weight(s, rs).max(0)))
            .sum()
    }

    /// The table as the health of every server says it should be: the
    /// configuration with down servers quiesced or left out, check weights
    /// applied, and fallbacks in while quorum is lost.
    pub fn effective(&self) -> Config {
        let mut c = self.config.clone();
        for s in c.services.iter_mut() {
            let orig = self.config.service(&s.key).cloned();
            let Some(orig) = orig else { continue };
            let pull_all = !self.quorum(&s.key) && orig.health.fallback.is_some();
            let mut kept = Vec::with_capacity(orig.real_servers.len());
            for rs in &orig.real_servers {
                let up = self.is_up(&orig, rs) && !pull_all;
                let mut out = rs.clone();
                if up {
                    out.dest.weight = self.live_dest_weight(&orig, rs);
                } else {
                    match orig.health.on_failure {
                        OnFailure::Quiesce => out.dest.weight = 0,
                        OnFailure::Remove => continue,
                    }
                }
                kept.push(out);
            }
            if pull_all {
                if let Some(f) = &orig.health.fallback {
                    kept.push(f.clone());
                }
            }
            s.real_servers = kept;
        }
        c
    }

    /// Every checked real server, in configuration order.
    pub fn status(&self) -> Vec<ServerStatus> {
        self.servers
            .iter()
            .map(|e| ServerStatus {
                server: e.id,
                health: e.checks.health(),
                since: e.since,
                weight: e.checks.weight(),
                checks: e
                    .checks
                    .checks()
                    .iter()
                    .zip(&e.specs)
                    .zip(&e.durations)
                    .map(|((c, spec), d)| CheckStatus {
                        spec: spec.clone(),
                        health: c.health(),
                        streak: c.streak(),
                        last: c.last().cloned(),
                        duration: *d,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Number of checks monitored.
    pub fn check_count(&self) -> usize {
        self.servers.iter().map(|e| e.specs.len()).sum()
    }
}

/// Quorum at start: met when the live weight is positive and at least
/// `quorum` (hysteresis only damps changes).
fn quorum_met_fresh(live: i64, s: &Service) -> bool {
    live > 0 && live >= i64::from(s.health.quorum)
}

/// The next quorum state from the current one (keepalived's rule).
fn next_quorum(up: bool, live: i64, s: &Service) -> bool {
    let q = i64::from(s.health.quorum);
    let h = i64::from(s.health.quorum_hysteresis);
    if up {
        !(live == 0 || live < q - h)
    } else {
        live > 0 && live >= q + h
    }
}
