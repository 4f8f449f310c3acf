//! One VRRP instance as a state machine with no I/O (RFC 3768 section 6,
//! RFC 9568 section 6.4, with keepalived's extensions). Every input takes
//! the current time ([`Time`], ms) and returns the [`Action`]s to perform,
//! in order; [`Instance::next_deadline`] says when to call
//! [`Instance::on_timer`] next. The driver (`driver.rs`) owns the sockets
//! and the clock; tests drive this directly.
//!
//! Beyond the RFCs:
//! - **No fail-back by default.** With `preempt` off a backup never takes
//!   over from a live master of lower priority, *unless that master lowered
//!   its own priority* since this backup accepted it (its tracking says it
//!   is degraded): a returning node stays backup, a sick master is replaced.
//! - `preempt_delay`: with `preempt` on, a lower-priority master is
//!   tolerated for this long after the first of its adverts is seen.
//! - A master that hears a lower-priority master (a healed split brain)
//!   answers at once with an advert and a new gratuitous-ARP burst, so the
//!   other steps down and the network relearns where the VIPs are.
//! - The VIPs are removed when the instance starts (a crashed rvsd leaves
//!   them on the interface), when it leaves MASTER and when it stops.
//! - Priority 0 is sent when a master stops or goes to FAULT, so the backup
//!   takes over after its skew time only.

use crate::packet::{Advert, Auth, Version};
use rvs_core::Time;
use std::fmt;
use std::net::IpAddr;

/// Priority of the address owner.
pub const OWNER_PRIORITY: u8 = 255;

/// The state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started yet.
    Init,
    Backup,
    Master,
    /// Cannot serve: its interface is down or a tracker with weight 0 failed.
    Fault,
    /// Stopped cleanly.
    Stop,
}

impl State {
    /// keepalived's name, as notify scripts receive it.
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The settings the state machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub version: Version,
    pub vrid: u8,
    /// Configured priority, 1..=255.
    pub priority: u8,
    /// Own advert interval, centiseconds (VRRPv2: a multiple of 100).
    pub interval_cs: u16,
    /// Take over from a live master of lower priority.
    pub preempt: bool,
    /// With `preempt`: tolerate a lower-priority master this long, ms.
    pub preempt_delay: Time,
    /// Adverts missed before the master is declared down (RFC: 3;
    /// keepalived `down_timer_adverts`).
    pub down_timer_adverts: u32,
    /// The address this router sends from; breaks priority ties.
    pub primary: IpAddr,
    /// The VIPs (only compared with what a master advertises).
    pub vips: Vec<IpAddr>,
    /// VRRPv2 authentication sent and required.
    pub auth: Auth,
    /// When non-empty, adverts from other sources are ignored.
    pub peers: Vec<IpAddr>,
    /// A second gratuitous-ARP burst this long after becoming master, ms
    /// (keepalived `vrrp_garp_master_delay`, default 5 s).
    pub announce_again: Option<Time>,
    /// Then every this long while master (keepalived
    /// `vrrp_garp_master_refresh`, off by default).
    pub announce_refresh: Option<Time>,
}

impl Config {
    /// A configuration with keepalived's defaults for the rest.
    pub fn new(
        version: Version,
        vrid: u8,
        priority: u8,
        interval_cs: u16,
        primary: IpAddr,
    ) -> Config {
        Config {
            version,
            vrid,
            priority,
            interval_cs,
            preempt: false,
            preempt_delay: 0,
            down_timer_adverts: 3,
            primary,
            vips: Vec::new(),
            auth: Auth::None,
            peers: Vec::new(),
            announce_again: Some(5_000),
            announce_refresh: None,
        }
    }
}

/// Something to do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority (and the configured interval,
    /// VIPs and authentication).
    SendAdvert { priority: u8 },
    /// Put the VIPs on the interface.
    AddVips,
    /// Take the VIPs off the interface (no error if absent).
    RemoveVips,
    /// Send a gratuitous-ARP / unsolicited-NA burst for every VIP.
    Announce,
    /// The state changed; run the notify hooks.
    Transition {
        from: State,
        to: State,
        priority: u8,
    },
    /// An advert was ignored or looks wrong; log it.
    Warn(Warning),
}

/// Adverts that were ignored or accepted with a complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Another version than ours (ignored).
    Version { from: IpAddr, version: Version },
    /// Wrong or missing VRRPv2 password (ignored; this is how dual masters
    /// happen, so it is worth a loud log).
    Auth { from: IpAddr },
    /// VRRPv2 interval differs from ours (ignored, as RFC 3768 says).
    Interval { from: IpAddr, theirs_cs: u16 },
    /// Not one of the configured unicast peers (ignored).
    UnknownPeer { from: IpAddr },
    /// The master advertises other VIPs than ours (accepted).
    Addresses { from: IpAddr },
    /// Another master of lower priority: answered with an advert and an
    /// announcement.
    LowerPriorityMaster { from: IpAddr, priority: u8 },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Version { from, version } => {
                write!(f, "ignored a VRRPv{} advert from {from}", version.number())
            }
            Warning::Auth { from } => write!(f, "ignored an advert from {from}: wrong password"),
            Warning::Interval { from, theirs_cs } => write!(
                f,
                "ignored an advert from {from}: interval {} s differs from ours",
                theirs_cs / 100
            ),
            Warning::UnknownPeer { from } => {
                write!(f, "ignored an advert from {from}: not a unicast peer")
            }
            Warning::Addresses { from } => write!(f, "{from} advertises other addresses than ours"),
            Warning::LowerPriorityMaster { from, priority } => write!(
                f,
                "{from} is also master (priority {priority}); re-announcing"
            ),
        }
    }
}

/// One VRRP instance.
#[derive(Debug, Clone)]
pub struct Instance {
    cfg: Config,
    state: State,
    /// Tracking's effect on the priority.
    delta: i32,
    /// Own-advert timer (MASTER).
    adver_at: Option<Time>,
    /// Master-down timer (BACKUP).
    down_at: Option<Time>,
    /// Next announcement (MASTER).
    announce_at: Option<Time>,
    /// The interval the master advertises (VRRPv3 learns it), cs.
    master_interval_cs: u16,
    /// The master we accepted and the highest priority it advertised since.
    master: Option<(IpAddr, u8)>,
    /// When a lower-priority master was first tolerated (preempt_delay).
    lower_since: Option<Time>,
    /// When we last answered a lower-priority master.
    last_reannounce: Option<Time>,
    since: Time,
}

impl Instance {
    pub fn new(cfg: Config) -> Instance {
        let iv = cfg.interval_cs;
        Instance {
            cfg,
            state: State::Init,
            delta: 0,
            adver_at: None,
            down_at: None,
            announce_at: None,
            master_interval_cs: iv,
            master: None,
            lower_since: None,
            last_reannounce: None,
            since: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Sets the address adverts are sent from (known once the driver has
    /// opened its sockets).
    pub fn set_primary(&mut self, primary: IpAddr) {
        self.cfg.primary = primary;
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Time {
        self.since
    }

    /// The current master as far as this instance knows: itself when
    /// MASTER, else the source of the adverts it accepts.
    pub fn master(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.cfg.primary),
            State::Backup => self.master.map(|(a, _)| a),
            _ => None,
        }
    }

    /// The priority sent: the address owner's 255 is never changed;
    /// otherwise the configured priority plus tracking, kept in 1..=254.
    pub fn priority(&self) -> u8 {
        if self.cfg.priority == OWNER_PRIORITY {
            OWNER_PRIORITY
        } else {
            (i32::from(self.cfg.priority) + self.delta).clamp(1, 254) as u8
        }
    }

    /// Tracking's current effect on the priority.
    pub fn priority_delta(&self) -> i32 {
        self.delta
    }

    fn interval_ms(cs: u16) -> Time {
        Time::from(cs) * 10
    }

    /// Skew_Time: `(256 - priority) * Master_Adver_Interval / 256`
    /// (VRRPv2: the interval is 1 s in this formula).
    pub fn skew_ms(&self) -> Time {
        let unit = match self.cfg.version {
            Version::V2 => 1000,
            Version::V3 => Self::interval_ms(self.master_interval_cs),
        };
        (256 - Time::from(self.priority())) * unit / 256
    }

    /// Master_Down_Interval: `3 * Master_Adver_Interval + Skew_Time`.
    pub fn master_down_ms(&self) -> Time {
        Time::from(self.cfg.down_timer_adverts) * Self::interval_ms(self.master_interval_cs)
            + self.skew_ms()
    }

    /// When [`Instance::on_timer`] must next be called.
    pub fn next_deadline(&self) -> Option<Time> {
        [self.adver_at, self.down_at, self.announce_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn go(&mut self, now: Time, to: State, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.since = now;
        out.push(Action::Transition {
            from,
            to,
            priority: self.priority(),
        });
    }

    fn become_backup(&mut self, now: Time, out: &mut Vec<Action>) {
        self.adver_at = None;
        self.announce_at = None;
        self.down_at = Some(now + self.master_down_ms());
        self.lower_since = None;
        self.go(now, State::Backup, out);
    }

    fn become_master(&mut self, now: Time, out: &mut Vec<Action>) {
        self.down_at = None;
        self.master = None;
        self.lower_since = None;
        self.master_interval_cs = self.cfg.interval_cs;
        self.adver_at = Some(now + Self::interval_ms(self.cfg.interval_cs));
        self.announce_at = self.cfg.announce_again.map(|d| now + d);
        out.push(Action::SendAdvert {
            priority: self.priority(),
        });
        out.push(Action::AddVips);
        out.push(Action::Announce);
        self.go(now, State::Master, out);
    }

    /// Leaves INIT: removes VIPs a crashed predecessor may have left, then
    /// goes BACKUP (MASTER at once for the address owner, or FAULT when
    /// `fault` is already known).
    pub fn start(&mut self, now: Time, fault: bool) -> Vec<Action> {
        let mut out = vec![Action::RemoveVips];
        if self.state != State::Init {
            return Vec::new();
        }
        if fault {
            self.go(now, State::Fault, &mut out);
        } else if self.priority() == OWNER_PRIORITY {
            self.become_master(now, &mut out);
        } else {
            self.become_backup(now, &mut out);
        }
        out
    }

    /// Handles an advert that passed the socket checks (TTL 255, checksum)
    /// and came from `src`. Adverts of another virtual router are ignored.
    pub fn on_advert(&mut self, now: Time, src: IpAddr, adv: &Advert) -> Vec<Action> {
        let mut out = Vec::new();
        if adv.vrid != self.cfg.vrid || src == self.cfg.primary {
            return out;
        }
        if !matches!(self.state, State::Backup | State::Master) {
            return out;
        }
        if !self.cfg.peers.is_empty() && !self.cfg.peers.contains(&src) {
            out.push(Action::Warn(Warning::UnknownPeer { from: src }));
            return out;
        }
        if adv.version != self.cfg.version {
            out.push(Action::Warn(Warning::Version {
                from: src,
                version: adv.version,
            }));
            return out;
        }
        if self.cfg.version == Version::V2 {
            if adv.auth != self.cfg.auth {
                out.push(Action::Warn(Warning::Auth { from: src }));
                return out;
            }
            if adv.interval_cs != self.cfg.interval_cs {
                out.push(Action::Warn(Warning::Interval {
                    from: src,
                    theirs_cs: adv.interval_cs,
                }));
                return out;
            }
        }
        if adv.priority != 0 && !same_set(&adv.addrs, &self.cfg.vips) {
            out.push(Action::Warn(Warning::Addresses { from: src }));
        }
        let ours = self.priority();
        match self.state {
            State::Backup => {
                if adv.priority == 0 {
                    self.down_at = Some(now + self.skew_ms());
                    return out;
                }
                let lower = adv.priority < ours;
                let degraded = matches!(self.master, Some((m, p)) if m == src && adv.priority < p);
                let mut preempt = lower && (self.cfg.preempt || degraded);
                if preempt && self.cfg.preempt && self.cfg.preempt_delay > 0 {
                    let since = *self.lower_since.get_or_insert(now);
                    preempt = now >= since + self.cfg.preempt_delay;
                }
                if preempt {
                    // Discard: the master-down timer runs out and we take over.
                    return out;
                }
                if !lower {
                    self.lower_since = None;
                }
                if self.cfg.version == Version::V3 {
                    self.master_interval_cs = adv.interval_cs;
                }
                self.master = match self.master {
                    Some((m, p)) if m == src => Some((m, p.max(adv.priority))),
                    _ => Some((src, adv.priority)),
                };
                self.down_at = Some(now + self.master_down_ms());
            }
            State::Master => {
                if adv.priority == 0 {
                    out.push(Action::SendAdvert { priority: ours });
                    self.adver_at = Some(now + Self::interval_ms(self.cfg.interval_cs));
                } else if adv.priority > ours
                    || (adv.priority == ours && ip_greater(src, self.cfg.primary))
                {
                    if self.cfg.version == Version::V3 {
                        self.master_interval_cs = adv.interval_cs;
                    }
                    self.master = Some((src, adv.priority));
                    // One last advert of ours (keepalived's
                    // higher_prio_send_advert): if this ends a split brain,
                    // the winner hears a lower-priority master and
                    // re-announces the VIPs, whichever advert crossed first.
                    out.push(Action::SendAdvert { priority: ours });
                    out.push(Action::RemoveVips);
                    self.become_backup(now, &mut out);
                } else {
                    out.push(Action::Warn(Warning::LowerPriorityMaster {
                        from: src,
                        priority: adv.priority,
                    }));
                    let quiet = self.master_down_ms();
                    if self.last_reannounce.is_none_or(|t| now >= t + quiet) {
                        self.last_reannounce = Some(now);
                        out.push(Action::SendAdvert { priority: ours });
                        out.push(Action::Announce);
                        self.adver_at = Some(now + Self::interval_ms(self.cfg.interval_cs));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Fires every timer that is due at `now`.
    pub fn on_timer(&mut self, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup if self.down_at.is_some_and(|t| t <= now) => {
                self.become_master(now, &mut out);
            }
            State::Master => {
                if self.adver_at.is_some_and(|t| t <= now) {
                    out.push(Action::SendAdvert {
                        priority: self.priority(),
                    });
                    self.adver_at = Some(now + Self::interval_ms(self.cfg.interval_cs));
                }
                if self.announce_at.is_some_and(|t| t <= now) {
                    out.push(Action::Announce);
                    self.announce_at = self.cfg.announce_refresh.map(|r| now + r);
                }
            }
            _ => {}
        }
        out
    }

    /// Sets tracking's effect on the priority (the sum of the weights of
    /// tracked interfaces, scripts and pool health). A master advertises
    /// the new priority at once, so a backup can act on it.
    pub fn set_priority_delta(&mut self, now: Time, delta: i32) -> Vec<Action> {
        let before = self.priority();
        self.delta = delta.clamp(-254, 254);
        let mut out = Vec::new();
        if self.state == State::Master && self.priority() != before {
            out.push(Action::SendAdvert {
                priority: self.priority(),
            });
            self.adver_at = Some(now + Self::interval_ms(self.cfg.interval_cs));
        }
        out
    }

    /// Enters or leaves FAULT (interface down, weight-0 tracker failed).
    /// A master resigns with priority 0 so the backup takes over at once.
    pub fn set_fault(&mut self, now: Time, fault: bool) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, fault) {
            (State::Master, true) => {
                out.push(Action::SendAdvert { priority: 0 });
                out.push(Action::RemoveVips);
                self.clear_timers();
                self.go(now, State::Fault, &mut out);
            }
            (State::Backup, true) => {
                self.clear_timers();
                self.go(now, State::Fault, &mut out);
            }
            (State::Fault, false) => {
                self.master = None;
                self.master_interval_cs = self.cfg.interval_cs;
                if self.priority() == OWNER_PRIORITY {
                    self.become_master(now, &mut out);
                } else {
                    self.become_backup(now, &mut out);
                }
            }
            _ => {}
        }
        out
    }

    /// Clean shutdown: a master sends priority 0 and removes its VIPs.
    pub fn stop(&mut self, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Stop => return out,
            State::Master => {
                out.push(Action::SendAdvert { priority: 0 });
                out.push(Action::RemoveVips);
            }
            _ => {}
        }
        self.clear_timers();
        self.go(now, State::Stop, &mut out);
        out
    }

    fn clear_timers(&mut self) {
        self.adver_at = None;
        self.down_at = None;
        self.announce_at = None;
    }
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// RFC tie-break: the higher primary address wins (compared as unsigned
/// integers in network order).
fn ip_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a > b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a > b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Auth;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg(prio: u8) -> Config {
        let mut c = Config::new(Version::V3, 51, prio, 10, ip("198.18.0.2"));
        c.vips = vec![ip("198.18.0.100")];
        c
    }

    fn adv(prio: u8) -> Advert {
        Advert {
            version: Version::V3,
            vrid: 51,
            priority: prio,
            interval_cs: 10,
            auth: Auth::None,
            addrs: vec![ip("198.18.0.100")],
        }
    }

    const PEER: &str = "198.18.0.1";

    fn transitions(a: &[Action]) -> Vec<State> {
        a.iter()
            .filter_map(|a| match a {
                Action::Transition { to, .. } => Some(*to),
                _ => None,
            })
            .collect()
    }

    /// Runs the timers from `from` to `to` in 1 ms steps, collecting actions.
    fn run(i: &mut Instance, from: Time, to: Time) -> Vec<(Time, Action)> {
        let mut out = Vec::new();
        for t in from..=to {
            out.extend(i.on_timer(t).into_iter().map(|a| (t, a)));
        }
        out
    }

    #[test]
    fn timers_follow_the_rfc_formulas() {
        // ha-health.md 5.2: v3, 0.1 s, priority 100: 0.3 + 156/256 * 0.1.
        let i = Instance::new(cfg(100));
        assert_eq!(i.skew_ms(), 60);
        assert_eq!(i.master_down_ms(), 360);
        let i = Instance::new(cfg(150));
        assert_eq!(i.skew_ms(), 41);
        let mut c = Config::new(Version::V2, 51, 100, 100, ip("198.18.0.2"));
        c.vips = vec![ip("198.18.0.100")];
        let i = Instance::new(c);
        assert_eq!(i.skew_ms(), 609);
        assert_eq!(i.master_down_ms(), 3609);
    }

    #[test]
    fn start_removes_stale_vips_then_backup_then_master_after_down_interval() {
        let mut i = Instance::new(cfg(100));
        let a = i.start(1000, false);
        assert_eq!(a[0], Action::RemoveVips);
        assert_eq!(transitions(&a), vec![State::Backup]);
        assert_eq!(i.next_deadline(), Some(1360));
        assert!(i.on_timer(1359).is_empty());
        let a = i.on_timer(1360);
        assert_eq!(
            a,
            vec![
                Action::SendAdvert { priority: 100 },
                Action::AddVips,
                Action::Announce,
                Action::Transition {
                    from: State::Backup,
                    to: State::Master,
                    priority: 100
                },
            ]
        );
        // Adverts every 100 ms, a second announcement after 5 s, no more.
        let acts = run(&mut i, 1361, 6500);
        let adverts: Vec<Time> = acts
            .iter()
            .filter(|(_, a)| matches!(a, Action::SendAdvert { .. }))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(adverts.first(), Some(&1460));
        assert!(adverts.windows(2).all(|w| w[1] - w[0] == 100));
        let announces: Vec<Time> = acts
            .iter()
            .filter(|(_, a)| *a == Action::Announce)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(announces, vec![6360]);
    }

    #[test]
    fn owner_takes_over_at_once() {
        let mut i = Instance::new(cfg(255));
        let a = i.start(0, false);
        assert_eq!(transitions(&a), vec![State::Master]);
    }

    #[test]
    fn backup_hearing_the_master_stays_backup_and_learns_its_interval() {
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        let mut t = 0;
        let mut slow = adv(150);
        slow.interval_cs = 100; // the master advertises once a second
        for _ in 0..20 {
            t += 1000;
            assert!(i.on_advert(t, ip(PEER), &slow).is_empty());
            assert!(
                run(&mut i, t - 999, t).is_empty(),
                "no takeover while the master talks"
            );
        }
        assert_eq!(i.state(), State::Backup);
        assert_eq!(i.master(), Some(ip(PEER)));
        assert_eq!(i.master_down_ms(), 3000 + 609);
    }

    #[test]
    fn master_silence_is_detected_after_master_down_interval() {
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        i.on_advert(50, ip(PEER), &adv(150));
        let acts = run(&mut i, 51, 1000);
        let (t, _) = acts.iter().find(|(_, a)| *a == Action::AddVips).unwrap();
        assert_eq!(*t, 50 + 360);
    }

    #[test]
    fn priority_zero_means_takeover_after_skew() {
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        i.on_advert(50, ip(PEER), &adv(150));
        i.on_advert(100, ip(PEER), &adv(0));
        assert_eq!(i.next_deadline(), Some(160));
        let acts = run(&mut i, 101, 200);
        assert_eq!(
            acts.iter().find(|(_, a)| *a == Action::AddVips).unwrap().0,
            160
        );
    }

    #[test]
    fn no_fail_back_by_default() {
        // B (100) is master; A (150) comes back and must stay backup.
        let mut a = Instance::new(Config {
            primary: ip(PEER),
            ..cfg(150)
        });
        a.start(0, false);
        for k in 1..100 {
            a.on_advert(k * 100, ip("198.18.0.2"), &adv(100));
            run(&mut a, k * 100 - 99, k * 100);
        }
        assert_eq!(a.state(), State::Backup);
    }

    #[test]
    fn preempt_takes_over_from_lower_priority_master() {
        let mut a = Instance::new(Config {
            preempt: true,
            primary: ip(PEER),
            ..cfg(150)
        });
        a.start(0, false);
        let mut took = None;
        for k in 1..100 {
            a.on_advert(k * 100, ip("198.18.0.2"), &adv(100));
            if run(&mut a, k * 100 - 99, k * 100)
                .iter()
                .any(|(_, x)| *x == Action::AddVips)
            {
                took = Some(k * 100);
                break;
            }
        }
        // The lower master's adverts are discarded; the down timer (started
        // at start) runs out: 3 * 100 + 41.
        assert!(took.unwrap() <= 400, "{took:?}");
        assert_eq!(a.state(), State::Master);
    }

    #[test]
    fn preempt_delay_postpones_the_takeover() {
        let mut a = Instance::new(Config {
            preempt: true,
            preempt_delay: 2000,
            primary: ip(PEER),
            ..cfg(150)
        });
        a.start(0, false);
        let mut took = None;
        for k in 1..100 {
            a.on_advert(k * 100, ip("198.18.0.2"), &adv(100));
            if run(&mut a, k * 100 - 99, k * 100)
                .iter()
                .any(|(_, x)| *x == Action::AddVips)
            {
                took = Some(k * 100);
                break;
            }
        }
        let took = took.unwrap();
        // Tolerated from 100 until 2100, then discarded; down after 341 ms.
        assert!((2100 + 300..=2100 + 400).contains(&took), "{took}");
    }

    #[test]
    fn a_degraded_master_is_replaced_even_without_preempt() {
        let mut b = Instance::new(cfg(100));
        b.start(0, false);
        for k in 1..10 {
            b.on_advert(k * 100, ip(PEER), &adv(150));
        }
        assert!(run(&mut b, 1, 900).is_empty());
        // The master's tracking lowers it to 90: below us and below what it was.
        let mut took = None;
        for k in 10..30 {
            b.on_advert(k * 100, ip(PEER), &adv(90));
            if run(&mut b, k * 100 - 99, k * 100)
                .iter()
                .any(|(_, x)| *x == Action::AddVips)
            {
                took = Some(k * 100);
                break;
            }
        }
        assert_eq!(took, Some(1300), "900 + 360, at the next 100 ms step");
    }

    #[test]
    fn master_steps_down_for_higher_priority_and_ties_go_to_the_higher_address() {
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        run(&mut i, 0, 400);
        assert_eq!(i.state(), State::Master);
        // Equal priority from a lower address: we stay, and re-announce.
        let a = i.on_advert(500, ip(PEER), &adv(100));
        assert!(a.contains(&Action::Announce));
        assert_eq!(i.state(), State::Master);
        // Equal priority from a higher address: we step down.
        let a = i.on_advert(510, ip("198.18.0.3"), &adv(100));
        assert_eq!(
            a[..2],
            [Action::SendAdvert { priority: 100 }, Action::RemoveVips]
        );
        assert_eq!(transitions(&a), vec![State::Backup]);
        assert_eq!(i.master(), Some(ip("198.18.0.3")));
    }

    #[test]
    fn split_brain_heals_to_one_master_that_re_announces() {
        let a_ip = ip(PEER);
        let b_ip = ip("198.18.0.2");
        let mut a = Instance::new(Config {
            primary: a_ip,
            ..cfg(150)
        });
        let mut b = Instance::new(Config {
            primary: b_ip,
            ..cfg(100)
        });
        a.start(0, false);
        b.start(0, false);
        // Partitioned: both time out and become master.
        run(&mut a, 0, 500);
        run(&mut b, 0, 500);
        assert_eq!((a.state(), b.state()), (State::Master, State::Master));
        // Healed: each hears the other's next advert.
        let from_b = b.on_timer(600);
        let from_a = a.on_timer(600);
        assert!(from_b.contains(&Action::SendAdvert { priority: 100 }));
        let ra = a.on_advert(601, b_ip, &adv(100));
        assert!(
            ra.contains(&Action::Announce),
            "the winner re-announces: {ra:?}"
        );
        assert!(ra.contains(&Action::SendAdvert { priority: 150 }));
        assert!(from_a.contains(&Action::SendAdvert { priority: 150 }));
        let rb = b.on_advert(601, a_ip, &adv(150));
        assert_eq!(
            rb[..2],
            [Action::SendAdvert { priority: 100 }, Action::RemoveVips]
        );
        assert_eq!((a.state(), b.state()), (State::Master, State::Backup));
        // And it stays that way.
        for k in 7..40 {
            a.on_timer(k * 100);
            b.on_advert(k * 100, a_ip, &adv(150));
            b.on_timer(k * 100);
        }
        assert_eq!((a.state(), b.state()), (State::Master, State::Backup));
    }

    #[test]
    fn split_brain_winner_re_announces_even_when_the_loser_hears_it_first() {
        let (a_ip, b_ip) = (ip(PEER), ip("198.18.0.2"));
        let mut a = Instance::new(Config {
            primary: a_ip,
            ..cfg(150)
        });
        let mut b = Instance::new(Config {
            primary: b_ip,
            ..cfg(100)
        });
        a.start(0, false);
        b.start(0, false);
        run(&mut a, 0, 500);
        run(&mut b, 0, 500);
        // b hears a first and steps down; its last advert reaches a.
        let rb = b.on_advert(601, a_ip, &adv(150));
        let last = rb.iter().find_map(|x| match x {
            Action::SendAdvert { priority } => Some(*priority),
            _ => None,
        });
        assert_eq!(last, Some(100));
        let ra = a.on_advert(602, b_ip, &adv(100));
        assert!(ra.contains(&Action::Announce), "{ra:?}");
        assert_eq!((a.state(), b.state()), (State::Master, State::Backup));
    }

    #[test]
    fn reannouncing_to_a_lower_master_is_rate_limited() {
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        run(&mut i, 0, 400);
        let n = (0..10)
            .filter(|k| {
                i.on_advert(500 + k * 10, ip(PEER), &adv(50))
                    .contains(&Action::Announce)
            })
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn stop_sends_priority_zero_and_removes_vips_only_as_master() {
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        assert_eq!(transitions(&i.stop(10)), vec![State::Stop]);
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        run(&mut i, 0, 400);
        let a = i.stop(500);
        assert_eq!(
            a[..2],
            [Action::SendAdvert { priority: 0 }, Action::RemoveVips]
        );
        assert_eq!(transitions(&a), vec![State::Stop]);
        assert_eq!(i.next_deadline(), None);
        assert!(i.stop(600).is_empty());
    }

    #[test]
    fn fault_resigns_and_recovery_goes_backup() {
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        run(&mut i, 0, 400);
        let a = i.set_fault(500, true);
        assert_eq!(
            a[..2],
            [Action::SendAdvert { priority: 0 }, Action::RemoveVips]
        );
        assert_eq!(i.state(), State::Fault);
        assert!(i.on_advert(510, ip(PEER), &adv(50)).is_empty());
        assert!(run(&mut i, 501, 2000).is_empty());
        let a = i.set_fault(2000, false);
        assert_eq!(transitions(&a), vec![State::Backup]);
        assert_eq!(i.next_deadline(), Some(2360));
    }

    #[test]
    fn tracking_changes_priority_and_master_advertises_it_at_once() {
        let mut i = Instance::new(cfg(100));
        i.start(0, false);
        run(&mut i, 0, 400);
        assert_eq!(
            i.set_priority_delta(450, -60),
            vec![Action::SendAdvert { priority: 40 }]
        );
        assert_eq!(i.priority(), 40);
        assert!(i.set_priority_delta(460, -60).is_empty());
        i.set_priority_delta(470, -500);
        assert_eq!(i.priority(), 1);
        let mut owner = Instance::new(cfg(255));
        owner.set_priority_delta(0, -100);
        assert_eq!(owner.priority(), 255);
    }

    #[test]
    fn v2_checks_password_and_interval() {
        let mut c = Config::new(Version::V2, 51, 100, 100, ip("198.18.0.2"));
        c.auth = Auth::pass("s3cr3t");
        c.vips = vec![ip("198.18.0.100")];
        let mut i = Instance::new(c);
        i.start(0, false);
        let mut a = Advert {
            version: Version::V2,
            interval_cs: 100,
            auth: Auth::pass("wrong"),
            ..adv(150)
        };
        assert!(matches!(
            i.on_advert(10, ip(PEER), &a)[..],
            [Action::Warn(Warning::Auth { .. })]
        ));
        a.auth = Auth::pass("s3cr3t");
        a.interval_cs = 200;
        assert!(matches!(
            i.on_advert(10, ip(PEER), &a)[..],
            [Action::Warn(Warning::Interval { .. })]
        ));
        a.interval_cs = 100;
        assert!(i.on_advert(10, ip(PEER), &a).is_empty());
        assert_eq!(i.master(), Some(ip(PEER)));
    }

    #[test]
    fn unicast_peers_filter_sources_and_other_vrids_are_ignored() {
        let mut i = Instance::new(Config {
            peers: vec![ip(PEER)],
            ..cfg(100)
        });
        i.start(0, false);
        assert!(matches!(
            i.on_advert(10, ip("198.18.0.9"), &adv(150))[..],
            [Action::Warn(Warning::UnknownPeer { .. })]
        ));
        assert!(i
            .on_advert(
                10,
                ip(PEER),
                &Advert {
                    vrid: 52,
                    ..adv(150)
                }
            )
            .is_empty());
        assert_eq!(i.master(), None);
    }
}
