//! Health monitoring of real servers, as ldirectord and keepalived's
//! checker process do it, for either engine. This crate owns the pool side
//! of health checks: which checks each real server of an rvs.toml runs, how
//! their results move real servers out of the pool and back (quiesce or
//! remove, the configured weight restored, check-set weights), quorum with
//! hysteresis and the fallback server, keeping unchanged checks' state
//! across a reload, and the table each state implies ([`Monitor`], sans-IO,
//! time as an argument); and the driver thread that runs the checkers of
//! `rvs-check` and hands the resulting table requests to the daemon
//! ([`spawn`]). The daemon (`rvsd`) applies those requests like any
//! `rvsadm` command.

pub mod checkers;
pub mod driver;
pub mod monitor;

pub use driver::{spawn, Apply, Driver, HealthState};
pub use monitor::{CheckStatus, Monitor, Notice, ReloadSummary, Run, ServerId, ServerStatus};
