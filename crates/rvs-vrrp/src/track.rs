//! Tracking: what moves an instance's priority or puts it in FAULT.
//! keepalived's weight rule applies to every tracker: weight 0 means FAULT
//! while the tracker fails; a positive weight is added while it succeeds;
//! a negative weight is added while it fails. Scripts get rise/fall
//! hysteresis. The rules are pure; [`run_script`] is the runner the driver
//! starts on a thread per script.

use rvs_core::Time;
use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// keepalived's weight limits.
pub const MAX_WEIGHT: i32 = 253;

/// A tracked interface (keepalived `track_interface`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    pub weight: i32,
}

/// A tracked script (keepalived `vrrp_script` + `track_script`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    pub name: String,
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// Between the starts of two runs, ms.
    pub interval: Time,
    /// Longest run before it counts as failed (and is killed), ms.
    pub timeout: Time,
    /// Consecutive successes before it counts as up again.
    pub rise: u32,
    /// Consecutive failures before it counts as down.
    pub fall: u32,
    pub weight: i32,
}

/// What one tracker contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    Delta(i32),
    Fault,
}

/// keepalived's rule for a tracker that is `ok` or not with `weight`.
pub fn effect(ok: bool, weight: i32) -> Effect {
    match (ok, weight) {
        (false, 0) => Effect::Fault,
        (true, w) if w > 0 => Effect::Delta(w),
        (false, w) if w < 0 => Effect::Delta(w),
        _ => Effect::None,
    }
}

/// Sums effects into (fault, priority delta).
pub fn combine(effects: impl IntoIterator<Item = Effect>) -> (bool, i32) {
    let mut fault = false;
    let mut delta = 0;
    for e in effects {
        match e {
            Effect::Fault => fault = true,
            Effect::Delta(d) => delta += d,
            Effect::None => {}
        }
    }
    (fault, delta)
}

/// Rise/fall hysteresis over a stream of results. Starts up (keepalived's
/// default without `init_fail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    up: bool,
    streak: u32,
    rise: u32,
    fall: u32,
}

impl Hysteresis {
    pub fn new(rise: u32, fall: u32) -> Hysteresis {
        Hysteresis {
            up: true,
            streak: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Feeds one result; returns whether the state changed.
    pub fn feed(&mut self, ok: bool) -> bool {
        if ok == self.up {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let need = if self.up { self.fall } else { self.rise };
        if self.streak >= need {
            self.up = ok;
            self.streak = 0;
            true
        } else {
            false
        }
    }
}

/// Runs `argv` to completion or until `timeout`, killing it then.
/// `Ok(true)` when it exited 0.
pub fn run_command(argv: &[String], timeout: Duration) -> io::Result<bool> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st.success());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_keepalived() {
        assert_eq!(effect(false, 0), Effect::Fault);
        assert_eq!(effect(true, 0), Effect::None);
        assert_eq!(effect(true, 10), Effect::Delta(10));
        assert_eq!(effect(false, 10), Effect::None);
        assert_eq!(effect(false, -60), Effect::Delta(-60));
        assert_eq!(effect(true, -60), Effect::None);
        assert_eq!(
            combine([Effect::Delta(-60), Effect::Delta(10), Effect::None]),
            (false, -50)
        );
        assert_eq!(combine([Effect::Fault, Effect::Delta(5)]), (true, 5));
    }

    #[test]
    fn hysteresis_needs_fall_failures_and_rise_successes() {
        let mut h = Hysteresis::new(2, 3);
        assert!(h.is_up());
        assert!(!h.feed(false));
        assert!(!h.feed(false));
        assert!(!h.feed(true), "a success resets the failure streak");
        assert!(!h.feed(false));
        assert!(!h.feed(false));
        assert!(h.feed(false));
        assert!(!h.is_up());
        assert!(!h.feed(true));
        assert!(h.feed(true));
        assert!(h.is_up());
    }

    #[test]
    fn commands_report_their_exit_status_and_are_killed_on_timeout() {
        let t = Duration::from_secs(5);
        assert!(run_command(&["true".into()], t).unwrap());
        assert!(!run_command(&["false".into()], t).unwrap());
        assert!(!run_command(&["sleep".into(), "10".into()], Duration::from_millis(50)).unwrap());
        assert!(run_command(&[], t).is_err());
        assert!(run_command(&["/nonexistent/rvs-vrrp".into()], t).is_err());
    }
}
