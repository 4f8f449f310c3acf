//! What an rvs.toml file says, as plain data: the engine and its options,
//! the `--set` timeouts, the connection-table sysctls and the virtual
//! services with their real servers. The table part is held in the model's
//! own types ([`ServiceConfig`], [`DestConfig`]) so that loading a file is
//! exactly a sequence of `-A`/`-a` requests.

use crate::health::{Check, ServiceHealth};
use rvs_core::{Af, DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Schedulers of Linux 6.1, the set rvsd offers unless told otherwise.
/// `twos` (Linux 6.2+) is only accepted when listed in
/// [`Config::enable_schedulers`], mirroring `rvsd --enable-scheduler twos`.
pub const LINUX_SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

/// Default number of proxy workers: 0 means one per CPU.
pub const DEFAULT_WORKERS: u32 = 0;
/// Default time the proxy engine waits for a real server to accept, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT: u32 = 5;

/// Which data path carries the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Engine {
    /// The userspace L4 proxy (LVS-NAT semantics, no privileges needed).
    #[default]
    Proxy,
    /// The XDP data path (NAT, direct routing, tunnelling in the kernel).
    Xdp,
}

impl Engine {
    /// The name used in the file: `proxy` or `xdp`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Proxy => "proxy",
            Engine::Xdp => "xdp",
        }
    }

    /// The forwarding method a real server gets when the file names none:
    /// masquerading for the proxy engine (the only method it can carry),
    /// direct routing (ipvsadm's `-g` default) for the xdp engine.
    pub fn default_method(self) -> FwdMethod {
        match self {
            Engine::Proxy => FwdMethod::Masq,
            Engine::Xdp => FwdMethod::Route,
        }
    }
}

/// Options of the proxy engine (`[proxy]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyEngine {
    /// Worker threads, each with its own listeners (SO_REUSEPORT); 0 = one per CPU.
    pub workers: u32,
    /// Seconds to wait for a real server to accept a connection.
    pub connect_timeout: u32,
}

impl Default for ProxyEngine {
    fn default() -> Self {
        ProxyEngine {
            workers: DEFAULT_WORKERS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Options of the xdp engine (`[xdp]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdpEngine {
    /// The interface the programs attach to (`rvsd --interface` overrides it).
    pub interface: Option<String>,
}

/// The `net.ipv4.vs.*` sysctls a file may set (`[sysctl]`), with Linux's
/// defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    pub expire_nodest_conn: bool,
    pub expire_quiescent_template: bool,
    /// 0..=3.
    pub conn_reuse_mode: u8,
    /// 0 off, 1 automatic (on below `amemthresh`), 3 always.
    pub secure_tcp: u8,
    /// Pages of available memory below which the automatic defence starts.
    pub amemthresh: u64,
}

impl Default for Sysctl {
    fn default() -> Self {
        let d = rvs_conn::Sysctls::default();
        Sysctl {
            expire_nodest_conn: d.expire_nodest_conn,
            expire_quiescent_template: d.expire_quiescent_template,
            conn_reuse_mode: d.conn_reuse_mode,
            secure_tcp: d.secure_tcp,
            amemthresh: d.amemthresh,
        }
    }
}

/// Whether and how the proxy engine tells a real server who the client
/// is, with a PROXY protocol header (HAProxy's `proxy-protocol.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ProxyProtocol {
    #[default]
    None,
    /// The text header (`PROXY TCP4 ...\r\n`).
    V1,
    /// The binary header.
    V2,
}

impl ProxyProtocol {
    /// The name used in the file: `none`, `v1` or `v2`.
    pub fn name(self) -> &'static str {
        match self {
            ProxyProtocol::None => "none",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }
}

/// A real server (`[[service.real_server]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServer {
    /// What `-a` sends: address, port, method, weight, thresholds, tunnel.
    pub dest: DestConfig,
    /// Overrides the service's [`Service::proxy_protocol`] for this server.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// This server's own checks; when empty, the service's apply.
    pub checks: Vec<Check>,
}

impl RealServer {
    /// A real server with no proxy-protocol override and no checks.
    pub fn new(dest: DestConfig) -> Self {
        RealServer {
            dest,
            proxy_protocol: None,
            checks: Vec::new(),
        }
    }
}

/// A virtual service (`[[service]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub key: ServiceKey,
    /// What `-A` sends: scheduler, flags, persistence timeout, netmask, pe.
    pub config: ServiceConfig,
    /// PROXY protocol header sent to the real servers (proxy engine).
    pub proxy_protocol: ProxyProtocol,
    /// Connect to real servers from the client's address (IP_TRANSPARENT,
    /// root only; proxy engine).
    pub transparent: bool,
    /// The port of the TPROXY listener of a firewall-mark or port-0 TCP
    /// service (proxy engine); `None`: one the kernel picks.
    pub tproxy_port: Option<u16>,
    /// In declaration order, which is the order they are added in.
    pub real_servers: Vec<RealServer>,
    /// Health checks and what failures do to the pool.
    pub health: ServiceHealth,
}

impl Service {
    /// The checks a real server runs: its own, or else the service's.
    pub fn checks_for<'a>(&'a self, rs: &'a RealServer) -> &'a [Check] {
        if rs.checks.is_empty() {
            &self.health.checks
        } else {
            &rs.checks
        }
    }

    pub fn real_server(&self, addr: &IpAddr, port: u16) -> Option<&RealServer> {
        self.real_servers
            .iter()
            .find(|r| r.dest.addr == *addr && r.dest.port == port)
    }

    /// The proxy engine's per-service data.
    pub fn proxy_options(&self) -> ProxyOptions {
        ProxyOptions {
            proxy_protocol: self.proxy_protocol,
            transparent: self.transparent,
            tproxy_port: self.tproxy_port,
        }
    }

    /// The PROXY protocol header a real server gets: its own override, or
    /// the service's setting.
    pub fn proxy_protocol_for(&self, rs: &RealServer) -> ProxyProtocol {
        rs.proxy_protocol.unwrap_or(self.proxy_protocol)
    }
}

/// One entry of a firewall-mark service's `match` list (xdp engine):
/// packets of `proto` to the network `net`/`prefix` whose destination
/// port is in `lo..=hi` belong to the service, as if a netfilter rule had
/// given them its mark (XDP runs before netfilter marks packets). Written
/// `tcp:198.18.0.100:80`, `udp:198.18.0.0/24:5000-5100`,
/// `tcp:[2001:db8::]/64:443`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarkMatch {
    pub proto: Protocol,
    pub net: IpAddr,
    pub prefix: u8,
    pub lo: u16,
    pub hi: u16,
}

impl MarkMatch {
    /// Whether `addr` is in the network.
    pub fn covers(&self, addr: &IpAddr) -> bool {
        match (self.net, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & m == u32::from(*a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & m == u128::from(*a) & m
            }
            _ => false,
        }
    }

    /// Whether a packet can match both (same protocol, overlapping
    /// networks and ports).
    pub fn overlaps(&self, o: &MarkMatch) -> bool {
        self.proto == o.proto
            && self.lo <= o.hi
            && o.lo <= self.hi
            && (self.covers(&o.net) || o.covers(&self.net))
    }
}

impl std::fmt::Display for MarkMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.proto.service_proto())?;
        match self.net {
            IpAddr::V4(a) if self.prefix == 32 => write!(f, "{a}")?,
            IpAddr::V4(a) => write!(f, "{a}/{}", self.prefix)?,
            IpAddr::V6(a) if self.prefix == 128 => write!(f, "[{a}]")?,
            IpAddr::V6(a) => write!(f, "[{a}]/{}", self.prefix)?,
        }
        if self.lo == self.hi {
            write!(f, ":{}", self.lo)
        } else {
            write!(f, ":{}-{}", self.lo, self.hi)
        }
    }
}

/// What the proxy engine needs to know about one service beyond the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProxyOptions {
    pub proxy_protocol: ProxyProtocol,
    pub transparent: bool,
    pub tproxy_port: Option<u16>,
}

/// A whole rvs.toml.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Config {
    pub engine: Engine,
    /// Schedulers beyond Linux 6.1's (only `twos` exists).
    pub enable_schedulers: Vec<String>,
    pub proxy: ProxyEngine,
    pub xdp: XdpEngine,
    /// `--set tcp tcpfin udp`, in seconds.
    pub timeouts: rvs_ctl::Timeouts,
    pub sysctl: Sysctl,
    /// In declaration order, which is the order they are added in.
    pub services: Vec<Service>,
    /// Failover instances (`[[vrrp]]`), in declaration order.
    pub vrrp: Vec<crate::vrrp::VrrpInstance>,
    /// The `match` lists of firewall-mark services (xdp engine), by
    /// service, in declaration order.
    #[serde(default)]
    pub matches: Vec<(ServiceKey, Vec<MarkMatch>)>,
}

impl Config {
    /// Every service with its `-A` attributes and its real servers' `-a`
    /// attributes, in declaration order (the order rvsd adds them in).
    pub fn services(&self) -> Vec<(ServiceKey, ServiceConfig, Vec<DestConfig>)> {
        self.services
            .iter()
            .map(|s| {
                let dests = s.real_servers.iter().map(|r| r.dest.clone()).collect();
                (s.key, s.config.clone(), dests)
            })
            .collect()
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.iter().find(|s| s.key == *key)
    }

    /// The `match` list of firewall-mark service `key` (empty if none).
    pub fn matches_of(&self, key: &ServiceKey) -> &[MarkMatch] {
        self.matches
            .iter()
            .find(|(k, _)| k == key)
            .map_or(&[], |(_, m)| m.as_slice())
    }

    /// The `--set` timeouts (defaults for keys the file omits).
    pub fn timeouts(&self) -> rvs_ctl::Timeouts {
        self.timeouts
    }

    /// The connection-table sysctls; those a file cannot set keep Linux's
    /// defaults.
    pub fn sysctls(&self) -> rvs_conn::Sysctls {
        rvs_conn::Sysctls {
            expire_nodest_conn: self.sysctl.expire_nodest_conn,
            expire_quiescent_template: self.sysctl.expire_quiescent_template,
            conn_reuse_mode: self.sysctl.conn_reuse_mode,
            secure_tcp: self.sysctl.secure_tcp,
            amemthresh: self.sysctl.amemthresh,
            ..Default::default()
        }
    }

    /// The proxy engine's per-service data, for every service.
    pub fn proxy_options(&self) -> Vec<(ServiceKey, ProxyOptions)> {
        self.services
            .iter()
            .map(|s| (s.key, s.proxy_options()))
            .collect()
    }

    /// The PROXY protocol header each real server gets (after overrides),
    /// for every service; fallback servers included.
    pub fn proxy_protocols(&self) -> Vec<(ServiceKey, IpAddr, u16, ProxyProtocol)> {
        self.services
            .iter()
            .flat_map(|s| {
                s.real_servers
                    .iter()
                    .chain(s.health.fallback.as_ref())
                    .map(move |r| (s.key, r.dest.addr, r.dest.port, s.proxy_protocol_for(r)))
            })
            .collect()
    }

    /// Whether any service has checks or a fallback server.
    pub fn has_health(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.health.is_active() || s.real_servers.iter().any(|r| !r.checks.is_empty()))
    }

    /// Scheduler names this file may use: Linux 6.1's plus the enabled ones.
    pub fn scheduler_allowed(&self, name: &str) -> bool {
        LINUX_SCHEDULERS.contains(&name) || self.enable_schedulers.iter().any(|s| s == name)
    }

    /// The requests that load this file into an empty daemon: the timeouts
    /// when they differ from the defaults, then each service followed by
    /// its real servers, in declaration order.
    pub fn requests(&self) -> Vec<rvs_ctl::Request> {
        crate::diff::diff(&Config::default(), self)
    }
}

/// The default persistence netmask of a family (`/32` or `/128`).
pub fn default_netmask(af: Af) -> u32 {
    ServiceConfig::defaults(af).netmask
}
