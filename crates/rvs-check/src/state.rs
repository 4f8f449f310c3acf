//! The sans-IO check state machine: when each check runs, how its results are
//! damped by rise/fall, and when a real server goes down or comes back up.
//!
//! keepalived equivalents: `delay_loop` is [`CheckTiming::interval`],
//! `connect_timeout` / `misc_timeout` is [`CheckTiming::timeout`], `retry` + 1
//! is [`CheckTiming::fall`], `alpha` is [`Health::Down`] as the initial state
//! (keepalived comes up on the first success, i.e. `rise = 1`). ldirectord
//! equivalents: `checkinterval`, `checktimeout` / `negotiatetimeout`,
//! `failurecount` (= fall); ldirectord starts servers up and has `rise = 1`.
//!
//! Nothing here reads a clock or touches a socket: the driver asks
//! [`ServerChecks::next_wakeup`] when to wake, calls [`ServerChecks::start_due`]
//! to learn which checks to launch, and feeds each outcome back with
//! [`ServerChecks::finish`] (or lets [`ServerChecks::expire`] turn an overdue
//! check into a timeout failure).

use std::fmt;

use rvs_core::Time;

/// Why a check passed or failed, carried by every result and transition so
/// each transition can be logged with its cause.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The check passed.
    Passed,
    /// The check did not finish within its timeout.
    Timeout,
    /// The connection was refused (TCP RST, or ICMP port unreachable on UDP).
    Refused,
    /// The HTTP status code was not one of the expected codes.
    Status(u16),
    /// An external command exited with this code (0 and, with
    /// `misc_dynamic`, 2..=255 pass; anything else fails).
    Exit(i32),
    /// An external command was killed by this signal.
    Signal(i32),
    /// The answer arrived but did not match what was expected (body
    /// substring, regex, digest, DNS rcode/answer count...).
    Mismatch(String),
    /// Any other I/O or protocol error, with its text.
    Error(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Passed => f.write_str("passed"),
            Reason::Timeout => f.write_str("timeout"),
            Reason::Refused => f.write_str("connection refused"),
            Reason::Status(code) => write!(f, "status {code}"),
            Reason::Exit(code) => write!(f, "exit code {code}"),
            Reason::Signal(sig) => write!(f, "killed by signal {sig}"),
            Reason::Mismatch(what) => write!(f, "mismatch: {what}"),
            Reason::Error(what) => write!(f, "error: {what}"),
        }
    }
}

/// The outcome of one check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Whether the check passed.
    pub ok: bool,
    /// Why it passed or failed.
    pub reason: Reason,
    /// A weight the check asks for (keepalived MISC_CHECK `misc_dynamic`:
    /// exit code − 2); `None` leaves the configured weight alone.
    pub weight: Option<i32>,
}

impl CheckResult {
    /// A pass with no weight.
    pub fn pass() -> Self {
        CheckResult {
            ok: true,
            reason: Reason::Passed,
            weight: None,
        }
    }

    /// A failure with its reason.
    pub fn fail(reason: Reason) -> Self {
        CheckResult {
            ok: false,
            reason,
            weight: None,
        }
    }
}

/// Up or down, for one check or for a whole real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// In the pool.
    Up,
    /// Out of the pool (quiesced or removed, as the service decides).
    Down,
}

/// Timing and hysteresis of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckTiming {
    /// Time between the starts of two runs (keepalived `delay_loop`,
    /// ldirectord `checkinterval`), ms.
    pub interval: Time,
    /// How long one run may take before it counts as a timeout failure
    /// (keepalived `connect_timeout`, ldirectord `checktimeout`), ms.
    pub timeout: Time,
    /// Consecutive failures that take an up check down (keepalived
    /// `retry` + 1, ldirectord `failurecount`).
    pub fall: u32,
    /// Consecutive successes that bring a down check up (keepalived and
    /// ldirectord use 1).
    pub rise: u32,
}

/// Why a [`CheckTiming`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimingError {
    /// `interval` is 0.
    ZeroInterval,
    /// `timeout` is 0 or longer than `interval` (a check must finish before
    /// the next one is due, or the timing bounds no longer hold).
    BadTimeout,
    /// `fall` or `rise` is 0.
    ZeroCount,
}

impl fmt::Display for TimingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimingError::ZeroInterval => f.write_str("check interval must be positive"),
            TimingError::BadTimeout => {
                f.write_str("check timeout must be positive and no longer than the interval")
            }
            TimingError::ZeroCount => f.write_str("rise and fall must be at least 1"),
        }
    }
}

impl std::error::Error for TimingError {}

impl CheckTiming {
    /// Validated timing. Down is then reached within `interval × fall +
    /// timeout` of a server dying and up within `interval × rise` (+ the
    /// duration of the last, passing, run) of it recovering.
    pub fn new(interval: Time, timeout: Time, fall: u32, rise: u32) -> Result<Self, TimingError> {
        if interval == 0 {
            return Err(TimingError::ZeroInterval);
        }
        if timeout == 0 || timeout > interval {
            return Err(TimingError::BadTimeout);
        }
        if fall == 0 || rise == 0 {
            return Err(TimingError::ZeroCount);
        }
        Ok(CheckTiming {
            interval,
            timeout,
            fall,
            rise,
        })
    }
}

impl Default for CheckTiming {
    /// 5 s interval, 3 s timeout, fall 3, rise 2.
    fn default() -> Self {
        CheckTiming {
            interval: 5000,
            timeout: 3000,
            fall: 3,
            rise: 2,
        }
    }
}

/// A stable 64-bit identity for jitter, from whatever names a check (e.g.
/// the real server's address, port and the check's index): FNV-1a.
pub fn identity_key(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The deterministic offset in `[0, interval)` of a check's first run, so
/// that many servers configured at once are spread over the interval rather
/// than checked in lockstep. A splitmix64 finaliser over the identity.
pub fn jitter(key: u64, interval: Time) -> Time {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z % interval.max(1)
}

/// A change of state of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub to: Health,
    /// The reason of the result that completed the rise or fall.
    pub reason: Reason,
    /// When it happened.
    pub at: Time,
}

/// A run that has been started and not yet finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Running {
    token: u64,
    /// When the run was due (it may start a little later).
    due: Time,
    deadline: Time,
}

/// One check of one real server: its schedule and its damped state.
#[derive(Debug, Clone)]
pub struct CheckState {
    timing: CheckTiming,
    health: Health,
    /// Consecutive results that disagree with `health`.
    streak: u32,
    next_due: Time,
    running: Option<Running>,
    next_token: u64,
    last: Option<(Time, CheckResult)>,
    /// The weight carried by the last passing result.
    weight: Option<i32>,
}

impl CheckState {
    /// A check starting in `initial`, whose first run is due at
    /// `now + jitter(key, interval)`.
    pub fn new(timing: CheckTiming, initial: Health, key: u64, now: Time) -> Self {
        CheckState {
            timing,
            health: initial,
            streak: 0,
            next_due: now + jitter(key, timing.interval),
            running: None,
            next_token: 0,
            last: None,
            weight: None,
        }
    }

    /// The damped state.
    pub fn health(&self) -> Health {
        self.health
    }

    /// The timing this check runs with.
    pub fn timing(&self) -> CheckTiming {
        self.timing
    }

    /// Consecutive results against the current state ("soft failure n/N" in
    /// ldirectord's log while up).
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// The last result and when it arrived.
    pub fn last(&self) -> Option<&(Time, CheckResult)> {
        self.last.as_ref()
    }

    /// The weight carried by the last passing result (keepalived
    /// `misc_dynamic`); failures leave it alone.
    pub fn weight(&self) -> Option<i32> {
        self.weight
    }

    /// Whether a run is in flight.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// When the driver must act next: the deadline of the run in flight, or
    /// the start of the next one.
    pub fn next_wakeup(&self) -> Time {
        match self.running {
            Some(r) => r.deadline,
            None => self.next_due,
        }
    }

    /// Starts a run if one is due: returns its token (to pass to
    /// [`CheckState::finish`]) and its deadline.
    pub fn start(&mut self, now: Time) -> Option<(u64, Time)> {
        if self.running.is_some() || now < self.next_due {
            return None;
        }
        let token = self.next_token;
        self.next_token += 1;
        let deadline = now + self.timing.timeout;
        self.running = Some(Running {
            token,
            due: self.next_due,
            deadline,
        });
        Some((token, deadline))
    }

    /// Records the result of run `token`. A stale token (the run already
    /// expired) is ignored. Returns the transition, if the result completed
    /// a rise or a fall.
    pub fn finish(&mut self, token: u64, now: Time, result: CheckResult) -> Option<Transition> {
        let run = self.running.filter(|r| r.token == token)?;
        self.running = None;
        // Keep the phase: the next run is due one interval after this one
        // was due (not after it started, which is a little later each time
        // the driver wakes late): the jitter spread survives slow checks
        // and late wakeups, and servers do not drift into clumps.
        let mut next = run.due + self.timing.interval;
        if next < now {
            let behind = (now - next).div_ceil(self.timing.interval);
            next += behind * self.timing.interval;
        }
        self.next_due = next;
        self.record(now, result)
    }

    /// Turns a run that passed its deadline into a timeout failure.
    pub fn expire(&mut self, now: Time) -> Option<Transition> {
        let run = self.running?;
        if now < run.deadline {
            return None;
        }
        self.finish(run.token, now, CheckResult::fail(Reason::Timeout))
    }

    fn record(&mut self, now: Time, result: CheckResult) -> Option<Transition> {
        let agrees = matches!(
            (self.health, result.ok),
            (Health::Up, true) | (Health::Down, false)
        );
        let reason = result.reason.clone();
        if result.ok {
            self.weight = result.weight;
        }
        self.last = Some((now, result));
        if agrees {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = match self.health {
            Health::Up => self.timing.fall,
            Health::Down => self.timing.rise,
        };
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.health = match self.health {
            Health::Up => Health::Down,
            Health::Down => Health::Up,
        };
        Some(Transition {
            to: self.health,
            reason,
            at: now,
        })
    }
}

/// Something the driver should act on (log, change the pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Check `check` of the server changed state.
    Check {
        check: usize,
        transition: Transition,
    },
    /// The server as a whole changed state (up only when every check is
    /// up); the reason is the one of the check transition that caused it.
    Server(Transition),
    /// The weight asked for by the checks changed (keepalived
    /// `misc_dynamic`); `None` means back to the configured weight.
    Weight(Option<i32>),
}

/// All the checks of one real server. It is up only when all of them are
/// up, as in keepalived (a set of failed checkers per real server).
#[derive(Debug, Clone)]
pub struct ServerChecks {
    checks: Vec<CheckState>,
    health: Health,
    weight: Option<i32>,
}

impl ServerChecks {
    /// The checks of one server, all starting in `initial`. `key` identifies
    /// the server (see [`identity_key`]); each check's jitter is derived
    /// from it and the check's index.
    pub fn new(timings: &[CheckTiming], initial: Health, key: u64, now: Time) -> Self {
        let checks = timings
            .iter()
            .enumerate()
            .map(|(i, t)| {
                CheckState::new(
                    *t,
                    initial,
                    key ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    now,
                )
            })
            .collect();
        ServerChecks {
            checks,
            health: initial,
            weight: None,
        }
    }

    /// A server from checks kept across a configuration reload (unchanged
    /// checks keep their [`CheckState`], with its streak, schedule and
    /// result; new or changed ones are fresh). The server's state is
    /// recomputed from them; with no checks it is `initial`. No event is
    /// emitted: the pool is expected to already reflect the kept states.
    pub fn from_checks(checks: Vec<CheckState>, initial: Health) -> Self {
        let health = if checks.is_empty() {
            initial
        } else if checks.iter().all(|c| c.health() == Health::Up) {
            Health::Up
        } else {
            Health::Down
        };
        let weight = checks.iter().filter_map(CheckState::weight).min();
        ServerChecks {
            checks,
            health,
            weight,
        }
    }

    /// The checks, to carry over a reload with [`ServerChecks::from_checks`].
    pub fn into_checks(self) -> Vec<CheckState> {
        self.checks
    }

    /// The server's state: up only when every check is up. A server with no
    /// check keeps its initial state.
    pub fn health(&self) -> Health {
        self.health
    }

    /// The weight asked for by the checks: the lowest of the weights their
    /// last passing results carried, or `None` for the configured weight.
    pub fn weight(&self) -> Option<i32> {
        self.weight
    }

    /// The checks, in configuration order.
    pub fn checks(&self) -> &[CheckState] {
        &self.checks
    }

    /// When the driver must act next (`None` with no checks).
    pub fn next_wakeup(&self) -> Option<Time> {
        self.checks.iter().map(CheckState::next_wakeup).min()
    }

    /// Starts every due check; returns `(check index, token, deadline)` for
    /// each run the driver must launch.
    pub fn start_due(&mut self, now: Time) -> Vec<(usize, u64, Time)> {
        let mut started = Vec::new();
        for (i, c) in self.checks.iter_mut().enumerate() {
            if let Some((token, deadline)) = c.start(now) {
                started.push((i, token, deadline));
            }
        }
        started
    }

    /// Records the result of run `token` of check `check`.
    pub fn finish(
        &mut self,
        check: usize,
        token: u64,
        now: Time,
        result: CheckResult,
    ) -> Vec<Event> {
        let Some(c) = self.checks.get_mut(check) else {
            return Vec::new();
        };
        let t = c.finish(token, now, result);
        self.after(check, t)
    }

    /// Expires every overdue run as a timeout failure.
    pub fn expire(&mut self, now: Time) -> Vec<Event> {
        let mut events = Vec::new();
        for i in 0..self.checks.len() {
            let t = self.checks[i].expire(now);
            events.extend(self.after(i, t));
        }
        events
    }

    fn after(&mut self, check: usize, t: Option<Transition>) -> Vec<Event> {
        let mut events = Vec::new();
        if let Some(t) = t {
            let health = if self.checks.iter().all(|c| c.health() == Health::Up) {
                Health::Up
            } else {
                Health::Down
            };
            let server_changed = health != self.health;
            self.health = health;
            events.push(Event::Check {
                check,
                transition: t.clone(),
            });
            if server_changed {
                events.push(Event::Server(Transition { to: health, ..t }));
            }
        }
        let weight = self.checks.iter().filter_map(CheckState::weight).min();
        if weight != self.weight {
            self.weight = weight;
            events.push(Event::Weight(weight));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn timing(interval: Time, timeout: Time, fall: u32, rise: u32) -> CheckTiming {
        CheckTiming::new(interval, timeout, fall, rise).unwrap()
    }

    #[test]
    fn a_late_start_does_not_shift_the_schedule() {
        let mut c = CheckState::new(timing(1000, 500, 3, 2), Health::Up, 7, 0);
        let due = c.next_wakeup();
        // The driver wakes 30 ms late, four times in a row: the phase holds.
        for k in 0..4 {
            let (tok, _) = c.start(due + k * 1000 + 30).unwrap();
            c.finish(tok, due + k * 1000 + 40, CheckResult::pass());
            assert_eq!(c.next_wakeup(), due + (k + 1) * 1000);
        }
    }

    #[test]
    fn timing_is_validated() {
        assert_eq!(CheckTiming::new(0, 1, 1, 1), Err(TimingError::ZeroInterval));
        assert_eq!(CheckTiming::new(10, 0, 1, 1), Err(TimingError::BadTimeout));
        assert_eq!(CheckTiming::new(10, 11, 1, 1), Err(TimingError::BadTimeout));
        assert_eq!(CheckTiming::new(10, 10, 0, 1), Err(TimingError::ZeroCount));
        assert_eq!(CheckTiming::new(10, 10, 1, 0), Err(TimingError::ZeroCount));
        assert!(CheckTiming::new(10, 10, 1, 1).is_ok());
    }

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_successes() {
        let mut c = CheckState::new(timing(1000, 500, 3, 2), Health::Up, 7, 0);
        let mut now = c.next_wakeup();
        for i in 0..3 {
            let (tok, _) = c.start(now).unwrap();
            let t = c.finish(tok, now + 1, CheckResult::fail(Reason::Refused));
            if i < 2 {
                assert_eq!(t, None);
                assert_eq!(c.streak(), i + 1);
            } else {
                assert_eq!(
                    t,
                    Some(Transition {
                        to: Health::Down,
                        reason: Reason::Refused,
                        at: now + 1
                    })
                );
            }
            now = c.next_wakeup();
        }
        let (tok, _) = c.start(now).unwrap();
        assert_eq!(c.finish(tok, now, CheckResult::pass()), None);
        now = c.next_wakeup();
        let (tok, _) = c.start(now).unwrap();
        let t = c.finish(tok, now, CheckResult::pass()).unwrap();
        assert_eq!(t.to, Health::Up);
        assert_eq!(t.reason, Reason::Passed);
    }

    #[test]
    fn a_success_resets_the_failure_streak() {
        let mut c = CheckState::new(timing(100, 50, 2, 1), Health::Up, 1, 0);
        for ok in [false, true, false, true, false] {
            let now = c.next_wakeup();
            let (tok, _) = c.start(now).unwrap();
            let r = if ok {
                CheckResult::pass()
            } else {
                CheckResult::fail(Reason::Status(500))
            };
            assert_eq!(c.finish(tok, now, r), None);
        }
        assert_eq!(c.health(), Health::Up);
    }

    #[test]
    fn overdue_runs_expire_as_timeouts_and_late_results_are_ignored() {
        let mut c = CheckState::new(timing(1000, 300, 1, 1), Health::Up, 0, 0);
        let now = c.next_wakeup();
        let (tok, deadline) = c.start(now).unwrap();
        assert_eq!(deadline, now + 300);
        assert_eq!(c.next_wakeup(), deadline);
        assert_eq!(c.start(now + 1), None, "one run at a time");
        assert_eq!(c.expire(deadline - 1), None);
        let t = c.expire(deadline).unwrap();
        assert_eq!((t.to, t.reason), (Health::Down, Reason::Timeout));
        assert_eq!(c.finish(tok, deadline + 5, CheckResult::pass()), None);
        assert_eq!(c.health(), Health::Down);
        assert_eq!(c.next_wakeup(), now + 1000, "phase kept");
    }

    #[test]
    fn jitter_spreads_a_thousand_servers_over_the_interval() {
        let interval = 1000;
        let mut buckets = [0u32; 10];
        for i in 0..1000u32 {
            let key = identity_key(format!("10.0.{}.{}:80", i / 256, i % 256).as_bytes());
            let j = jitter(key, interval);
            assert!(j < interval);
            buckets[(j / 100) as usize] += 1;
        }
        // A uniform spread puts 100 per 100 ms bucket; lockstep puts 1000 in one.
        for b in buckets {
            assert!((50..=150).contains(&b), "{buckets:?}");
        }
    }

    #[test]
    fn a_server_is_up_only_when_all_its_checks_are() {
        let t = timing(100, 50, 1, 1);
        let mut s = ServerChecks::new(&[t, t], Health::Up, 42, 0);
        let mut events = Vec::new();
        // Fail check 1 only.
        let mut now = 0;
        while events.is_empty() {
            now = s.next_wakeup().unwrap();
            for (i, tok, _) in s.start_due(now) {
                let r = if i == 1 {
                    CheckResult::fail(Reason::Exit(1))
                } else {
                    CheckResult::pass()
                };
                events.extend(s.finish(i, tok, now, r));
            }
        }
        assert_eq!(s.health(), Health::Down);
        assert!(events.contains(&Event::Server(Transition {
            to: Health::Down,
            reason: Reason::Exit(1),
            at: now
        })));
        // Now check 0 fails as well: no new server transition.
        let mut more = Vec::new();
        for _ in 0..4 {
            now = s.next_wakeup().unwrap();
            for (i, tok, _) in s.start_due(now) {
                let _ = i;
                more.extend(s.finish(i, tok, now, CheckResult::fail(Reason::Refused)));
            }
        }
        assert!(
            !more.iter().any(|e| matches!(e, Event::Server(_))),
            "{more:?}"
        );
        // Both pass: the server comes back once.
        let mut back = Vec::new();
        for _ in 0..4 {
            now = s.next_wakeup().unwrap();
            for (i, tok, _) in s.start_due(now) {
                back.extend(s.finish(i, tok, now, CheckResult::pass()));
            }
        }
        assert_eq!(
            back.iter()
                .filter(|e| matches!(e, Event::Server(_)))
                .count(),
            1
        );
        assert_eq!(s.health(), Health::Up);
    }

    #[test]
    fn dynamic_weight_is_reported_when_it_changes() {
        let t = timing(100, 50, 1, 1);
        let mut s = ServerChecks::new(&[t], Health::Up, 3, 0);
        let now = s.next_wakeup().unwrap();
        let (_, tok, _) = s.start_due(now)[0];
        let r = CheckResult {
            ok: true,
            reason: Reason::Exit(7),
            weight: Some(5),
        };
        assert_eq!(s.finish(0, tok, now, r), vec![Event::Weight(Some(5))]);
        let now = s.next_wakeup().unwrap();
        let (_, tok, _) = s.start_due(now)[0];
        assert_eq!(
            s.finish(0, tok, now, CheckResult::pass()),
            vec![Event::Weight(None)]
        );
    }

    #[test]
    fn a_reload_keeps_the_state_of_unchanged_checks() {
        let t = timing(100, 50, 1, 3);
        let mut s = ServerChecks::new(&[t], Health::Up, 5, 0);
        let now = s.next_wakeup().unwrap();
        let (_, tok, _) = s.start_due(now)[0];
        s.finish(0, tok, now, CheckResult::fail(Reason::Status(500)));
        assert_eq!(s.health(), Health::Down);
        // Reload: the old check is kept, a new one (starting up) is added.
        let mut kept = s.into_checks();
        kept.push(CheckState::new(t, Health::Up, 6, now));
        let mut s = ServerChecks::from_checks(kept, Health::Up);
        assert_eq!(
            s.health(),
            Health::Down,
            "a failed server does not come back unchecked"
        );
        assert_eq!(s.checks()[0].last().unwrap().1.reason, Reason::Status(500));
        // It still needs `rise` passes of the kept check.
        let mut ups = 0;
        for _ in 0..6 {
            let now = s.next_wakeup().unwrap();
            for (i, tok, _) in s.start_due(now) {
                ups += s
                    .finish(i, tok, now, CheckResult::pass())
                    .iter()
                    .filter(|e| matches!(e, Event::Server(_)))
                    .count();
            }
        }
        assert_eq!(ups, 1);
        assert_eq!(s.health(), Health::Up);
        assert_eq!(
            ServerChecks::from_checks(Vec::new(), Health::Down).health(),
            Health::Down
        );
    }

    /// Drives one check against a server whose real state is `alive(t)`,
    /// with passing runs taking `ok_ms` and failing runs `fail_ms` (capped by
    /// the timeout, which expires them). Returns the transitions.
    fn simulate(
        c: &mut CheckState,
        until: Time,
        alive: impl Fn(Time) -> bool,
        ok_ms: Time,
        fail_ms: Time,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        loop {
            let now = c.next_wakeup();
            if now > until {
                return out;
            }
            if c.expire(now).map(|t| out.push(t)).is_some() {
                continue;
            }
            let Some((tok, deadline)) = c.start(now) else {
                continue;
            };
            if alive(now) {
                out.extend(c.finish(tok, now + ok_ms.min(deadline - now), CheckResult::pass()));
            } else if now + fail_ms < deadline {
                out.extend(c.finish(tok, now + fail_ms, CheckResult::fail(Reason::Refused)));
            } else {
                out.extend(c.expire(deadline));
            }
        }
    }

    proptest! {
        /// Down within interval × fall + timeout of dying; up within
        /// interval × rise (+ the last run's duration) of recovering.
        #[test]
        fn transitions_happen_within_the_timing_bounds(
            interval in 10u64..5000,
            timeout_frac in 1u64..=100,
            fall in 1u32..6,
            rise in 1u32..6,
            key: u64,
            die_at in 0u64..20_000,
            down_for in 0u64..40_000,
            fail_frac in 0u64..=120,
            ok_frac in 0u64..=100,
        ) {
            let timeout = (interval * timeout_frac / 100).max(1);
            let t = timing(interval, timeout, fall, rise);
            let fail_ms = timeout * fail_frac / 100;
            let ok_ms = timeout * ok_frac / 100;
            // Keep the server down long enough for the fall to complete.
            let down_for = down_for + interval * Time::from(fall) + timeout;
            let back_at = die_at + down_for;
            let mut c = CheckState::new(t, Health::Up, key, 0);
            let alive = |now: Time| now < die_at || now >= back_at;
            let until = back_at + interval * Time::from(rise) + timeout + interval;
            let tr = simulate(&mut c, until, alive, ok_ms, fail_ms);
            prop_assert_eq!(tr.len(), 2, "{:?}", tr);
            prop_assert_eq!(tr[0].to, Health::Down);
            // A server dead before its first check is measured from time 0.
            prop_assert!(tr[0].at <= die_at + interval * Time::from(fall) + timeout, "{:?}", tr);
            prop_assert!(tr[0].at >= die_at);
            prop_assert_eq!(tr[1].to, Health::Up);
            prop_assert!(tr[1].at <= back_at + interval * Time::from(rise) + ok_ms, "{:?}", tr);
            prop_assert!(tr[1].at >= back_at);
        }

        /// A server that flaps faster than fall/rise never transitions:
        /// fewer than `fall` failures in a row while up never take it down,
        /// and fewer than `rise` successes in a row while down never bring
        /// it up.
        #[test]
        fn flapping_within_fall_and_rise_never_transitions(
            fall in 2u32..8,
            rise in 2u32..8,
            start_up: bool,
            runs in proptest::collection::vec(1u32..8, 1..60),
        ) {
            let t = timing(100, 50, fall, rise);
            let initial = if start_up { Health::Up } else { Health::Down };
            let mut c = CheckState::new(t, initial, 9, 0);
            // Alternate bursts against the current state, each shorter than
            // the count that would flip it, separated by one agreeing result.
            for (i, n) in runs.into_iter().enumerate() {
                let against = if i % 2 == 0 {
                    n.min(if start_up { fall } else { rise } - 1)
                } else {
                    0
                };
                for k in 0..=against {
                    let now = c.next_wakeup();
                    let (tok, _) = c.start(now).unwrap();
                    let disagree = k < against;
                    let ok = start_up != disagree;
                    let r = if ok { CheckResult::pass() } else { CheckResult::fail(Reason::Timeout) };
                    prop_assert_eq!(c.finish(tok, now, r), None);
                }
            }
            prop_assert_eq!(c.health(), initial);
        }

        /// Runs of one check never overlap and start exactly one interval
        /// apart when they finish in time.
        #[test]
        fn runs_keep_their_phase(interval in 1u64..10_000, key: u64, durs in proptest::collection::vec(0u64..=100, 1..30)) {
            let t = timing(interval, interval, 1, 1);
            let mut c = CheckState::new(t, Health::Up, key, 0);
            let first = c.next_wakeup();
            prop_assert!(first < interval);
            for (k, d) in durs.into_iter().enumerate() {
                let now = c.next_wakeup();
                prop_assert_eq!(now, first + k as u64 * interval);
                let (tok, _) = c.start(now).unwrap();
                c.finish(tok, now + interval * d / 100, CheckResult::pass());
            }
        }
    }
}
