//! Real servers ("destinations" in the kernel): configuration, counters and flags.

use crate::proto::Af;
use crate::stats::Stats;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A real server's identity inside the whole table. Unique for the life of
/// the process (a real server resurrected from the trash keeps its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DestId(pub u64);

/// How packets reach a real server. Discriminants are the kernel's
/// `IP_VS_CONN_F_*` forwarding values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FwdMethod {
    /// `-m`: NAT.
    Masq = 0,
    /// Local node (listed as `Local`; modern kernels never set it).
    Local = 1,
    /// `-i`: IP-in-IP, GUE or GRE tunnelling.
    Tunnel = 2,
    /// `-g`: direct routing (the default).
    Route = 3,
    /// Cache bypass entries.
    Bypass = 4,
}

impl FwdMethod {
    /// Name in the `Forward` column of `-L`.
    pub fn label(self) -> &'static str {
        match self {
            FwdMethod::Masq => "Masq",
            FwdMethod::Local => "Local",
            FwdMethod::Tunnel => "Tunnel",
            FwdMethod::Route => "Route",
            FwdMethod::Bypass => "Bypass",
        }
    }
}

/// Tunnel encapsulation for `-i` real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TunType {
    Ipip = 0,
    Gue = 1,
    Gre = 2,
}

/// Tunnel flag: no checksum (value 0, the default).
pub const TUN_F_NOCSUM: u16 = 0;
/// Tunnel flag: checksum.
pub const TUN_F_CSUM: u16 = 1 << 0;
/// Tunnel flag: remote checksum offload (GUE only).
pub const TUN_F_REMCSUM: u16 = 1 << 1;

/// The user-settable attributes of a real server, as `-a`/`-e` give them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestConfig {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: FwdMethod,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub tun_type: TunType,
    pub tun_port: u16,
    pub tun_flags: u16,
}

impl DestConfig {
    /// A real server with ipvsadm's defaults (weight 1, direct routing).
    pub fn new(addr: IpAddr, port: u16) -> DestConfig {
        DestConfig {
            addr,
            port,
            fwd: FwdMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunType::Ipip,
            tun_port: 0,
            tun_flags: TUN_F_NOCSUM,
        }
    }

    pub fn af(&self) -> Af {
        Af::of(&self.addr)
    }
}

/// A real server inside a service: configuration plus the live state the
/// schedulers and the connection table read and update.
#[derive(Debug, Clone)]
pub struct Dest {
    pub id: DestId,
    pub config: DestConfig,
    /// The most recent non-zero weight (the weight at add time, or the last
    /// non-zero weight an edit set). Maglev builds its table from it.
    pub last_weight: i32,
    /// Connections in an active state (TCP ESTABLISHED, SYN_RECV, ...).
    pub activeconns: u32,
    /// Connections in an inactive state (always the case for UDP).
    pub inactconns: u32,
    /// Persistence templates bound to this server.
    pub persistconns: u32,
    /// Cleared when the server is deleted (it then sits in the trash while
    /// connections still point at it).
    pub available: bool,
    /// Set by the upper threshold (`-x`); no new connections while set.
    pub overload: bool,
    pub stats: Stats,
}

impl Dest {
    pub fn new(id: DestId, config: DestConfig) -> Dest {
        let last_weight = config.weight;
        Dest {
            id,
            config,
            last_weight,
            activeconns: 0,
            inactconns: 0,
            persistconns: 0,
            available: true,
            overload: false,
            stats: Stats::default(),
        }
    }

    pub fn weight(&self) -> i32 {
        self.config.weight
    }

    /// The kernel's load measure: `activeconns * 256 + inactconns`.
    pub fn overhead(&self) -> u64 {
        ((self.activeconns as u64) << 8) + self.inactconns as u64
    }

    /// Not OVERLOAD and weight > 0: may take new connections.
    pub fn is_eligible(&self) -> bool {
        !self.overload && self.config.weight > 0
    }
}
