//! Requests, responses and the listing records they carry.

use rvs_core::{Counters, DestConfig, Errno, Protocol, Rates, ServiceConfig, ServiceKey};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Connection timeouts as `--set` and `-L --timeout` see them (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}

/// Role of a connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SyncRole {
    Master,
    Backup,
}

impl SyncRole {
    pub fn name(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
    }
}

/// Settings of a connection-sync daemon (`--start-daemon`). Zero / `None`
/// fields mean "use the default", which the daemon fills in as Linux does
/// (syncid 0, maxlen = MTU − 28 or − 48, group 224.0.0.81, port 8848, ttl 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonConfig {
    pub role: SyncRole,
    pub mcast_ifn: String,
    pub syncid: u32,
    pub sync_maxlen: u16,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: u16,
    pub mcast_ttl: u8,
}

/// A real server as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestEntry {
    pub config: DestConfig,
    pub activeconns: u32,
    pub inactconns: u32,
    pub persistconns: u32,
    /// Counters since the last `-Z`.
    pub stats: Counters,
    pub rates: Rates,
}

/// A virtual service as listings show it, with its real servers in kernel
/// list order (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    pub key: ServiceKey,
    pub config: ServiceConfig,
    pub stats: Counters,
    pub rates: Rates,
    pub dests: Vec<DestEntry>,
}

/// One row of `ipvsadm -L -c` (what `/proc/net/ip_vs_conn` holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    pub proto: Protocol,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// State name as the kernel prints it (`ESTABLISHED`, `TIME_WAIT`, `UDP`, `ASSURED` ...).
    pub state: String,
    /// Seconds until expiry.
    pub expires: u32,
    pub pe_name: Option<String>,
    pub pe_data: Option<String>,
    /// The entry's protocol is IP (0): a firewall-mark service's
    /// persistence template, which the kernel lists as `IP` (`proto` is
    /// then only the family's placeholder).
    #[serde(default)]
    pub proto_ip: bool,
}

/// Version and table size (`GET_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// 0x010201 for "1.2.1".
    pub version: u32,
    pub conn_tab_size: u32,
}

/// One operation on the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    AddService {
        key: ServiceKey,
        config: ServiceConfig,
    },
    EditService {
        key: ServiceKey,
        config: ServiceConfig,
    },
    DelService {
        key: ServiceKey,
    },
    Flush,
    AddDest {
        service: ServiceKey,
        dest: DestConfig,
    },
    EditDest {
        service: ServiceKey,
        dest: DestConfig,
    },
    DelDest {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
    /// `None` zeroes every service and the totals.
    Zero {
        service: Option<ServiceKey>,
    },
    SetTimeouts(Timeouts),
    StartDaemon(DaemonConfig),
    StopDaemon {
        role: SyncRole,
    },
    GetInfo,
    GetServices,
    GetService {
        key: ServiceKey,
    },
    GetTimeouts,
    GetDaemons,
    GetConns,
    /// The health checks of every real server and the quorum of every
    /// service (`rvsctl status`); a [`Response::Health`].
    GetHealth,
    /// rvsd's own state: engine, configuration reloads, failover (VRRP)
    /// instances (`rvsctl status`, `rvsctl failover`); a
    /// [`Response::Status`].
    GetStatus,
    /// Re-read the configuration file and apply the difference, as SIGHUP
    /// does (`rvsctl reload`); `Ok`, or `Refused` with every error.
    Reload,
    /// Several writes applied in order and persisted once; the answer is a
    /// [`Response::Batch`] with one response per request. A failing request
    /// does not stop the later ones (ipvsadm -R semantics for kernel errors).
    Batch(Vec<Request>),
}

impl Request {
    /// Whether the request changes the table (and must be persisted).
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Request::GetInfo
                | Request::GetServices
                | Request::GetService { .. }
                | Request::GetTimeouts
                | Request::GetDaemons
                | Request::GetConns
                | Request::GetHealth
                | Request::GetStatus
        )
    }
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Ok,
    Err(Errno),
    /// The request line could not be understood at all.
    BadRequest(String),
    /// The table would accept the request but the running engine cannot
    /// carry it (e.g. a direct-routing real server under the proxy engine
    /// with `--strict`); the message says why and what would.
    Refused(String),
    Info(Info),
    Services(Vec<ServiceEntry>),
    Service(ServiceEntry),
    Timeouts(Timeouts),
    Daemons(Vec<DaemonConfig>),
    Conns(Vec<ConnEntry>),
    Health(HealthReport),
    Status(DaemonStatus),
    Batch(Vec<Response>),
}

/// rvsd's own state. Times are Unix ms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// rvsd's version.
    pub version: String,
    /// The data path: `proxy`, `xdp` or `none`.
    pub engine: String,
    /// The configuration file, if rvsd runs with one.
    pub config: Option<String>,
    /// When rvsd started.
    pub started_ms: u64,
    /// Configuration reloads (SIGHUP, `rvsctl reload`) that were applied,
    /// and those refused.
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub last_reload: Option<ReloadOutcome>,
    /// Failover (VRRP) instances, in configuration order.
    pub failover: Vec<VrrpStatus>,
}

/// The outcome of the last reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadOutcome {
    pub at_ms: u64,
    pub ok: bool,
    /// What was done, or why nothing was.
    pub message: String,
}

/// One VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// keepalived's names: `INIT`, `BACKUP`, `MASTER`, `FAULT`, `STOP`.
    pub state: String,
    /// The priority advertised now (configured plus tracking), and the
    /// configured one.
    pub priority: u8,
    pub base_priority: u8,
    /// The master as far as this instance knows.
    pub master: Option<IpAddr>,
    pub since_ms: u64,
    pub transitions: u64,
    /// Why it is in FAULT.
    pub fault: Option<String>,
    /// `address/prefix`.
    pub vips: Vec<String>,
}

/// Health checks as `rvsctl status` shows them. Times are Unix ms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Whether rvsd runs health checks at all (a configuration file with
    /// checks or fallbacks).
    pub enabled: bool,
    /// Services with checks or a fallback, in configuration order.
    pub services: Vec<ServiceHealthEntry>,
    /// Checked real servers, in configuration order.
    pub servers: Vec<ServerHealthEntry>,
}

/// A service's pool state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealthEntry {
    pub service: ServiceKey,
    /// `quiesce` or `remove`.
    pub on_failure: String,
    pub quorum: u32,
    pub quorum_hysteresis: u32,
    pub quorum_up: bool,
    /// Sum of the weights of the live real servers.
    pub live_weight: i64,
    /// The fallback server, if configured, and whether it is in the table.
    pub fallback: Option<(IpAddr, u16)>,
    pub fallback_active: bool,
}

/// A checked real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealthEntry {
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
    /// `up` or `down`.
    pub state: String,
    /// When it entered that state.
    pub since_ms: u64,
    /// The weight in rvs.toml, and the one the checks ask for (keepalived
    /// `misc_dynamic`), if any.
    pub configured_weight: i32,
    pub check_weight: Option<i32>,
    pub checks: Vec<CheckEntry>,
}

/// One check of a real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEntry {
    /// `tcp`, `http`, `https`, `udp`, `dns` or `command`.
    pub kind: String,
    /// What it does, e.g. `HTTP_GET 10.0.0.2:80/health`.
    pub target: String,
    /// `up` or `down`.
    pub state: String,
    /// Consecutive results against `state` (ldirectord's "soft failure n/N").
    pub streak: u32,
    pub fall: u32,
    pub rise: u32,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// The last result: when, whether it passed, and why.
    pub last: Option<CheckOutcome>,
    /// How long the last run took.
    pub duration_ms: Option<u64>,
}

/// The result of one check run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub at_ms: u64,
    pub ok: bool,
    pub reason: String,
}
