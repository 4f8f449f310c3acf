//! Health checks of real servers, as keepalived's checkers and ldirectord do
//! them, without the daemon wiring. This crate owns two things: the sans-IO
//! check state machine ([`state`]: interval, timeout, rise/fall hysteresis,
//! initial state, deterministic jitter, and "a real server is up only when
//! all its checks pass"), which takes time as an argument
//! ([`rvs_core::Time`], ms) and never reads a clock; and the checkers behind
//! one async trait ([`checker::Checker`]), one file each: TCP connect
//! (keepalived `TCP_CHECK`, ldirectord `checktype = connect`), HTTP GET
//! (`HTTP_GET`, ldirectord `service = http` with `request`/`receive`), HTTPS
//! (`SSL_GET`, rustls with `ring`, SNI, verification on or off), UDP
//! (`UDP_CHECK`), DNS (`DNS_CHECK`, ldirectord `service = dns`) and external
//! commands (`MISC_CHECK` with `misc_dynamic`, ldirectord `checktype =
//! external`). What a failure does to the pool (quiesce or remove, fallback
//! server, quorum) belongs to the daemon.

pub mod checker;
pub mod dns;
pub mod http;
pub mod https;
pub mod misc;
pub mod state;
pub mod tcp;
pub mod udp;

pub use checker::{run_check, CheckFuture, Checker};
pub use dns::DnsCheck;
pub use http::HttpCheck;
pub use https::{HttpsCheck, TlsOptions, Verify};
pub use misc::MiscCheck;
pub use state::{
    CheckResult, CheckState, CheckTiming, Event, Health, Reason, ServerChecks, Transition,
};
pub use tcp::TcpCheck;
pub use udp::UdpCheck;
