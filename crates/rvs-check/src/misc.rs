//! External command check: keepalived `MISC_CHECK` (`misc_path`,
//! `misc_timeout`, `misc_dynamic`) and ldirectord `checktype = external`
//! (`checkcommand`, called with the virtual and real addresses).
//!
//! Exit 0 means up. Without `misc_dynamic` any other exit means down. With
//! it, as in keepalived, exit 1 means down and 2..=255 means up with weight
//! `code − 2`. A command killed by a signal is down. The command is killed
//! when the run is cancelled (its timeout expired).

use std::process::Stdio;

use tokio::process::Command;

use crate::checker::{CheckFuture, Checker};
use crate::state::{CheckResult, Reason};

/// Run `program` with `args`; its exit code is the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscCheck {
    /// The program (keepalived `misc_path`'s first word, ldirectord
    /// `checkcommand`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// keepalived `misc_dynamic`: exit codes 2..=255 set the weight.
    pub dynamic: bool,
}

impl MiscCheck {
    /// Runs `program` with `args`; exit 0 means up.
    pub fn new(program: &str, args: &[&str]) -> Self {
        MiscCheck {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            dynamic: false,
        }
    }

    /// The verdict for an exit code (`None` when killed by a signal, with
    /// the signal number in `signal`).
    pub fn judge(&self, code: Option<i32>, signal: Option<i32>) -> CheckResult {
        match code {
            Some(0) => CheckResult::pass(),
            Some(c @ 2..=255) if self.dynamic => CheckResult {
                ok: true,
                reason: Reason::Exit(c),
                weight: Some(c - 2),
            },
            Some(c) => CheckResult::fail(Reason::Exit(c)),
            None => CheckResult::fail(
                signal.map_or(Reason::Error("no exit status".into()), Reason::Signal),
            ),
        }
    }
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

impl Checker for MiscCheck {
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let child = Command::new(&self.program)
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) => {
                    return CheckResult::fail(Reason::Error(format!("{}: {e}", self.program)))
                }
            };
            match child.wait().await {
                Ok(status) => self.judge(status.code(), signal_of(&status)),
                Err(e) => CheckResult::fail(Reason::Error(e.to_string())),
            }
        })
    }

    fn describe(&self) -> String {
        format!("MISC_CHECK {}", self.program)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_misc_dynamic() {
        let mut m = MiscCheck::new("true", &[]);
        assert_eq!(m.judge(Some(0), None), CheckResult::pass());
        assert_eq!(m.judge(Some(1), None), CheckResult::fail(Reason::Exit(1)));
        assert_eq!(m.judge(Some(7), None), CheckResult::fail(Reason::Exit(7)));
        assert_eq!(m.judge(None, Some(9)), CheckResult::fail(Reason::Signal(9)));
        m.dynamic = true;
        assert_eq!(m.judge(Some(1), None), CheckResult::fail(Reason::Exit(1)));
        assert_eq!(
            m.judge(Some(2), None),
            CheckResult {
                ok: true,
                reason: Reason::Exit(2),
                weight: Some(0)
            }
        );
        assert_eq!(m.judge(Some(255), None).weight, Some(253));
    }
}
