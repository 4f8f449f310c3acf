//! What the engine is told: worker count, timeouts, relay method, and how
//! each real server learns the client's address.

use rvs_core::{Protocol, ServiceKey};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Which PROXY protocol header, if any, opens each connection to a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProxyProtocol {
    #[default]
    None,
    /// The text header (TCP only).
    V1,
    /// The binary header (TCP, and every UDP datagram).
    V2,
}

/// How a real server learns the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ClientAddressing {
    pub proxy_protocol: ProxyProtocol,
    /// Connect to the real server *from* the client's address
    /// (`IP_TRANSPARENT`; needs CAP_NET_ADMIN, and the real server's
    /// replies must be routed back through this host).
    pub transparent: bool,
}

/// Client addressing per service and per real server; the most specific
/// entry wins (real server, then service, then `default`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyOptions {
    pub default: ClientAddressing,
    pub services: HashMap<ServiceKey, ClientAddressing>,
    /// Keyed by the service and the real server's configured address and
    /// port (as `-a -r` gave them; port 0 stays 0).
    pub real_servers: HashMap<(ServiceKey, SocketAddr), ClientAddressing>,
    /// The port of a firewall-mark or port-0 service's TPROXY listener, so
    /// that the diverting rules can name it in advance; services without
    /// one get a port the kernel picks.
    pub tproxy_ports: HashMap<ServiceKey, u16>,
}

impl ProxyOptions {
    /// The addressing for real server `rs` of service `svc`.
    pub fn for_real_server(&self, svc: &ServiceKey, rs: SocketAddr) -> ClientAddressing {
        self.real_servers
            .get(&(*svc, rs))
            .or_else(|| self.services.get(svc))
            .copied()
            .unwrap_or(self.default)
    }

    /// Refuses what cannot work: transparent mode without the privilege
    /// it needs, and a version-1 header asked for a UDP service (that
    /// version has no datagram form).
    pub fn check(&self, privileged: bool) -> Result<(), String> {
        let all = std::iter::once((None, &self.default))
            .chain(self.services.iter().map(|(k, v)| (Some(*k), v)))
            .chain(self.real_servers.iter().map(|((k, _), v)| (Some(*k), v)));
        for (key, a) in all {
            if a.transparent && !privileged {
                return Err(
                    "transparent mode needs root (CAP_NET_ADMIN for IP_TRANSPARENT); \
                     use a PROXY protocol header instead, or run rvsd as root"
                        .into(),
                );
            }
            if let Some(k) = key {
                if k.protocol() == Protocol::Udp
                    && !k.is_fwmark()
                    && a.proxy_protocol == ProxyProtocol::V1
                {
                    return Err(format!(
                        "PROXY protocol v1 cannot describe UDP (service {}); use v2",
                        crate::service_name(&k)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How bytes are moved between the two sockets of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayMethod {
    /// `read`/`write` through one buffer per worker thread (memory is held
    /// per connection only while a peer is slower than the other).
    Copy,
    /// `splice(2)` through a pipe taken from a per-worker pool while data
    /// is in flight: the payload never enters user space.
    Splice,
    /// Copy, and splice for a direction once one read fills the whole
    /// 64 KiB buffer (a bulk transfer): small request/response traffic
    /// pays no pipe overhead, bulk traffic is not copied.
    #[default]
    Auto,
}

/// The engine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Worker threads, each with its own listening sockets (SO_REUSEPORT);
    /// 0 means one per CPU.
    pub workers: usize,
    pub options: ProxyOptions,
    /// How long connecting to a real server may take before the client is reset.
    pub connect_timeout: Duration,
    /// Close a connection (or UDP flow) after this long without traffic in
    /// either direction. `None`: only the connection table's timeouts apply
    /// (`--set tcp tcpfin udp` and the other per-state timeouts), as in LVS.
    pub idle_timeout: Option<Duration>,
    /// How often traffic counts reach the connection table (and how often
    /// the workers check that their entries are still alive).
    pub flush_interval: Duration,
    pub relay: RelayMethod,
    /// Relay established TCP connections through an io_uring per worker
    /// (fewer system calls per message); falls back to the readiness
    /// relay, with a log line, where the kernel or a sandbox refuses
    /// io_uring. Not used with [`RelayMethod::Splice`].
    pub io_uring: bool,
    /// Receive buffers (32 KiB each) in one group of a worker's io_uring
    /// relay, a power of two; a worker adds groups while receivers that do
    /// not read hold every buffer, up to 32 groups.
    pub io_uring_buffers: u16,
    /// Listen backlog of every TCP listener (capped by `net.core.somaxconn`).
    pub backlog: u32,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            workers: 0,
            options: ProxyOptions::default(),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: None,
            flush_interval: Duration::from_secs(1),
            relay: RelayMethod::default(),
            io_uring: true,
            io_uring_buffers: crate::uring::BUF_COUNT,
            backlog: 4096,
        }
    }
}
