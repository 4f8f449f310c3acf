//! What rvs.toml says about health checks, as plain data: the checks of
//! each real server (or of every real server of a service), their timing,
//! and what a service does when real servers fail (quiesce or remove, a
//! fallback server, quorum). The daemon turns these into running checkers
//! (`rvs-check`) and pool changes (`rvs-health`); nothing here runs.

use crate::model::RealServer;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Default check interval, ms.
pub const DEFAULT_INTERVAL_MS: u64 = 5_000;
/// Default check timeout, ms (capped at the interval).
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;
/// Default failures before down.
pub const DEFAULT_FALL: u32 = 3;
/// Default successes before up.
pub const DEFAULT_RISE: u32 = 2;
/// Longest interval, in seconds.
pub const MAX_INTERVAL_S: f64 = 86_400.0;
/// Largest `fall` / `rise`.
pub const MAX_COUNT: i64 = 1000;

/// What a failed real server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum OnFailure {
    /// Weight 0: no new connections, established ones continue, persistence
    /// templates keep pointing at it (ldirectord `quiescent = yes`,
    /// keepalived `inhibit_on_failure`).
    #[default]
    Quiesce,
    /// Removed from the table (ldirectord `quiescent = no`, keepalived's
    /// default); its connections follow `expire_nodest_conn`.
    Remove,
}

impl OnFailure {
    pub fn name(self) -> &'static str {
        match self {
            OnFailure::Quiesce => "quiesce",
            OnFailure::Remove => "remove",
        }
    }
}

/// The state checks start in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum InitialState {
    /// In the pool until checks fail (keepalived without `alpha`, ldirectord).
    #[default]
    Up,
    /// Out of the pool until checks pass (keepalived `alpha`).
    Down,
}

impl InitialState {
    pub fn name(self) -> &'static str {
        match self {
            InitialState::Up => "up",
            InitialState::Down => "down",
        }
    }
}

/// What an HTTP or HTTPS check asks and expects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HttpProbe {
    /// Request path, starting with `/`.
    pub path: String,
    /// Host header; `None` means the address.
    pub host: Option<String>,
    /// Accepted status codes, as inclusive ranges.
    pub status: Vec<(u16, u16)>,
    /// A substring the body must contain (ldirectord `receive`).
    pub expect: Option<String>,
    /// A regex the body must match (or must not, with `regex_no_match`).
    pub regex: Option<String>,
    pub regex_no_match: bool,
    /// MD5 of the body, lowercase hex (keepalived `digest`).
    pub digest: Option<String>,
}

impl Default for HttpProbe {
    fn default() -> Self {
        HttpProbe {
            path: "/".into(),
            host: None,
            status: vec![(200, 299)],
            expect: None,
            regex: None,
            regex_no_match: false,
            digest: None,
        }
    }
}

/// The kind of a check and what it sends and expects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CheckKind {
    /// A TCP connect (keepalived `TCP_CHECK`, ldirectord `connect`).
    Tcp,
    /// HTTP GET (keepalived `HTTP_GET`).
    Http(HttpProbe),
    /// HTTPS GET (keepalived `SSL_GET`): `sni` is the server name sent,
    /// `verify` whether the certificate is verified.
    Https {
        http: HttpProbe,
        sni: Option<String>,
        verify: bool,
    },
    /// A datagram that must be answered (keepalived `UDP_CHECK` with
    /// `require_reply`).
    Udp {
        payload: Vec<u8>,
        expect: Option<Vec<u8>>,
    },
    /// A DNS query that must be answered with NOERROR (keepalived
    /// `DNS_CHECK`); `query_type` is the type's name (`SOA`, `A`...).
    Dns { name: String, query_type: String },
    /// An external command (keepalived `MISC_CHECK`, ldirectord
    /// `external`), argv with `{vip} {vport} {rip} {rport}` placeholders.
    Command {
        argv: Vec<String>,
        dynamic_weight: bool,
    },
}

impl CheckKind {
    /// The `type` name used in the file.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http(_) => "http",
            CheckKind::Https { .. } => "https",
            CheckKind::Udp { .. } => "udp",
            CheckKind::Dns { .. } => "dns",
            CheckKind::Command { .. } => "command",
        }
    }
}

/// One check (`[[service.check]]` or `[[service.real_server.check]]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Check {
    pub kind: CheckKind,
    /// Time between the starts of two runs, ms.
    pub interval_ms: u64,
    /// How long a run may take, ms (≤ interval).
    pub timeout_ms: u64,
    /// Consecutive failures before down.
    pub fall: u32,
    /// Consecutive successes before up.
    pub rise: u32,
    /// The state it starts in; `None` takes the service's.
    pub initial: Option<InitialState>,
    /// Where to connect instead of the real server's address.
    pub address: Option<IpAddr>,
    /// Where to connect instead of the real server's port.
    pub port: Option<u16>,
}

impl Check {
    /// A check of `kind` with the default timing.
    pub fn new(kind: CheckKind) -> Self {
        Check {
            kind,
            interval_ms: DEFAULT_INTERVAL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            fall: DEFAULT_FALL,
            rise: DEFAULT_RISE,
            initial: None,
            address: None,
            port: None,
        }
    }
}

/// What a service does about failing real servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub on_failure: OnFailure,
    /// Least total weight of live real servers (keepalived `quorum`).
    pub quorum: u32,
    /// keepalived `hysteresis`.
    pub quorum_hysteresis: u32,
    /// Commands run when quorum is regained / lost (argv, no shell).
    pub quorum_up: Vec<String>,
    pub quorum_down: Vec<String>,
    /// The state checks start in unless they say otherwise.
    pub initial: InitialState,
    /// The sorry server, in the table while quorum is lost.
    pub fallback: Option<RealServer>,
    /// Checks for every real server that has none of its own.
    pub checks: Vec<Check>,
}

impl Default for ServiceHealth {
    fn default() -> Self {
        ServiceHealth {
            on_failure: OnFailure::Quiesce,
            quorum: 1,
            quorum_hysteresis: 0,
            quorum_up: Vec::new(),
            quorum_down: Vec::new(),
            initial: InitialState::Up,
            fallback: None,
            checks: Vec::new(),
        }
    }
}

impl ServiceHealth {
    /// Whether anything here can change the pool: checks or a fallback.
    pub fn is_active(&self) -> bool {
        !self.checks.is_empty() || self.fallback.is_some()
    }
}
