//! The JSON shapes of the API: the listing records of `rvs-ctl` flattened
//! into names an operator reads (`"TCP 10.0.0.1:80"`, `"Masq"`), with the
//! `--stats` counters and `--rate` estimates of each service and real server.

use rvs_core::service::{SVC_F_ONEPACKET, SVC_F_PERSISTENT};
use rvs_core::{Counters, Rates, ServiceKey};
use rvs_ctl::{ConnEntry, DestEntry, ServiceEntry};
use serde::Serialize;
use std::net::IpAddr;

/// `addr:port` as ipvsadm prints it with `-n` (IPv6 in brackets).
pub fn addr_port(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The service as the first column of `ipvsadm -L -n` names it:
/// `TCP 10.0.0.1:80`, `UDP [::1]:53`, `FWM 1` (`FWM 1 IPv6` for IPv6 marks).
pub fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            format!("{} {}", proto.label(), addr_port(addr, *port))
        }
        ServiceKey::Fwmark { mark, af } => match af {
            rvs_core::Af::Inet => format!("FWM {mark}"),
            rvs_core::Af::Inet6 => format!("FWM {mark} IPv6"),
        },
    }
}

/// The five counters of `--stats`, since the last `-Z`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StatsView {
    pub connections: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl From<&Counters> for StatsView {
    fn from(c: &Counters) -> Self {
        StatsView {
            connections: c.conns,
            packets_in: c.inpkts,
            packets_out: c.outpkts,
            bytes_in: c.inbytes,
            bytes_out: c.outbytes,
        }
    }
}

/// The five estimates of `--rate`, per second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RatesView {
    pub connections_per_second: u64,
    pub packets_in_per_second: u64,
    pub packets_out_per_second: u64,
    pub bytes_in_per_second: u64,
    pub bytes_out_per_second: u64,
}

impl From<&Rates> for RatesView {
    fn from(r: &Rates) -> Self {
        RatesView {
            connections_per_second: r.cps,
            packets_in_per_second: r.inpps,
            packets_out_per_second: r.outpps,
            bytes_in_per_second: r.inbps,
            bytes_out_per_second: r.outbps,
        }
    }
}

/// One real server of a service.
#[derive(Debug, Clone, Serialize)]
pub struct RealServerView {
    /// `10.0.0.2:80`.
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    /// The `Forward` column: `Masq`, `Route`, `Tunnel`, `Local`.
    pub forward: &'static str,
    pub weight: i32,
    /// Weight 0: the scheduler sends it no new connections.
    pub drained: bool,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub active_connections: u32,
    pub inactive_connections: u32,
    pub persistent_connections: u32,
    pub stats: StatsView,
    pub rates: RatesView,
    /// Its health checks; `null` when it has none.
    pub health: Option<HealthView>,
    /// Whether it is the service's fallback (sorry) server, in the table
    /// because the service lost quorum.
    pub fallback: bool,
}

/// A real server's health checks, as `rvsctl status` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct HealthView {
    /// `up` or `down`.
    pub state: String,
    /// Since when, Unix seconds.
    pub since: u64,
    /// The reason of the last result of the first check that disagrees
    /// with the state, else of the first check (`passed`, `status 503`,
    /// `connection refused`...).
    pub last: Option<String>,
    pub checks: Vec<CheckView>,
}

/// One check of a real server.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    pub state: String,
    /// The last result: whether it passed, why, and when (Unix ms).
    pub last_ok: Option<bool>,
    pub last_reason: Option<String>,
    pub last_at_ms: Option<u64>,
    pub duration_ms: Option<u64>,
}

impl From<&rvs_ctl::ServerHealthEntry> for HealthView {
    fn from(e: &rvs_ctl::ServerHealthEntry) -> Self {
        let telling = e
            .checks
            .iter()
            .find(|c| c.last.as_ref().is_some_and(|l| l.ok != (e.state == "up")))
            .or(e.checks.first());
        HealthView {
            state: e.state.clone(),
            since: e.since_ms / 1000,
            last: telling.and_then(|c| c.last.as_ref().map(|l| l.reason.clone())),
            checks: e
                .checks
                .iter()
                .map(|c| CheckView {
                    kind: c.kind.clone(),
                    target: c.target.clone(),
                    state: c.state.clone(),
                    last_ok: c.last.as_ref().map(|l| l.ok),
                    last_reason: c.last.as_ref().map(|l| l.reason.clone()),
                    last_at_ms: c.last.as_ref().map(|l| l.at_ms),
                    duration_ms: c.duration_ms,
                })
                .collect(),
        }
    }
}

/// Puts each checked real server's health, and the fallback flag, into the
/// views of `service`.
pub fn attach_health(view: &mut ServiceView, key: &ServiceKey, report: &rvs_ctl::HealthReport) {
    for rs in view.real_servers.iter_mut() {
        rs.health = report
            .servers
            .iter()
            .find(|e| e.service == *key && e.addr == rs.address && e.port == rs.port)
            .map(HealthView::from);
        rs.fallback = report.services.iter().any(|s| {
            s.service == *key && s.fallback_active && s.fallback == Some((rs.address, rs.port))
        });
    }
}

impl From<&DestEntry> for RealServerView {
    fn from(d: &DestEntry) -> Self {
        let c = &d.config;
        RealServerView {
            name: addr_port(&c.addr, c.port),
            address: c.addr,
            port: c.port,
            forward: c.fwd.label(),
            weight: c.weight,
            drained: c.weight == 0,
            upper_threshold: c.u_threshold,
            lower_threshold: c.l_threshold,
            active_connections: d.activeconns,
            inactive_connections: d.inactconns,
            persistent_connections: d.persistconns,
            stats: (&d.stats).into(),
            rates: (&d.rates).into(),
            health: None,
            fallback: false,
        }
    }
}

/// One virtual service with its real servers (kernel list order).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    /// `TCP 10.0.0.1:80` or `FWM 1`.
    pub name: String,
    /// `TCP`, `UDP`, `SCTP`, or `FWM` for a firewall-mark service.
    pub protocol: &'static str,
    /// `null` for a firewall-mark service.
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub fwmark: Option<u32>,
    /// `inet` or `inet6`.
    pub family: &'static str,
    pub scheduler: String,
    pub persistent: bool,
    /// Persistence timeout in seconds (0 unless persistent).
    pub persistence_timeout: u32,
    pub one_packet: bool,
    pub persistence_engine: Option<String>,
    pub active_connections: u64,
    pub inactive_connections: u64,
    pub stats: StatsView,
    pub rates: RatesView,
    pub real_servers: Vec<RealServerView>,
}

impl From<&ServiceEntry> for ServiceView {
    fn from(s: &ServiceEntry) -> Self {
        let (protocol, address, port, fwmark) = match s.key {
            ServiceKey::Addr { proto, addr, port } => (proto.label(), Some(addr), Some(port), None),
            ServiceKey::Fwmark { mark, .. } => ("FWM", None, None, Some(mark)),
        };
        let persistent = s.config.flags & SVC_F_PERSISTENT != 0;
        ServiceView {
            name: service_name(&s.key),
            protocol,
            address,
            port,
            fwmark,
            family: family(&s.key),
            scheduler: s.config.scheduler.clone(),
            persistent,
            persistence_timeout: if persistent { s.config.timeout } else { 0 },
            one_packet: s.config.flags & SVC_F_ONEPACKET != 0,
            persistence_engine: s.config.pe_name.clone(),
            active_connections: s.dests.iter().map(|d| d.activeconns as u64).sum(),
            inactive_connections: s.dests.iter().map(|d| d.inactconns as u64).sum(),
            stats: (&s.stats).into(),
            rates: (&s.rates).into(),
            real_servers: s.dests.iter().map(RealServerView::from).collect(),
        }
    }
}

/// `inet` or `inet6`.
pub fn family(key: &ServiceKey) -> &'static str {
    match key.af() {
        rvs_core::Af::Inet => "inet",
        rvs_core::Af::Inet6 => "inet6",
    }
}

/// One row of the connection table.
#[derive(Debug, Clone, Serialize)]
pub struct ConnView {
    pub protocol: &'static str,
    pub client: String,
    pub virtual_server: String,
    pub real_server: String,
    /// `ESTABLISHED`, `TIME_WAIT`, `UDP` ...
    pub state: String,
    /// Seconds until the entry expires.
    pub expires: u32,
    pub persistence_engine: Option<String>,
    pub persistence_data: Option<String>,
}

impl From<&ConnEntry> for ConnView {
    fn from(c: &ConnEntry) -> Self {
        ConnView {
            protocol: c.proto.label(),
            client: addr_port(&c.caddr, c.cport),
            virtual_server: addr_port(&c.vaddr, c.vport),
            real_server: addr_port(&c.daddr, c.dport),
            state: c.state.clone(),
            expires: c.expires,
            persistence_engine: c.pe_name.clone(),
            persistence_data: c.pe_data.clone(),
        }
    }
}

/// A page of the connection table.
#[derive(Debug, Clone, Serialize)]
pub struct ConnPage {
    /// Connections in the table.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub connections: Vec<ConnView>,
}
