//! Virtual services: their identity, attributes and flags.

use crate::proto::{Af, Protocol};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Service flag: persistent (`-p`).
pub const SVC_F_PERSISTENT: u32 = 0x0001;
/// Service flag: hashed into the service table (kernel-internal, never set by users).
pub const SVC_F_HASHED: u32 = 0x0002;
/// Service flag: one-packet scheduling (`-o`).
pub const SVC_F_ONEPACKET: u32 = 0x0004;
/// Scheduler flag 1 (`flag-1`, `sh-fallback`, `mh-fallback`).
pub const SVC_F_SCHED1: u32 = 0x0008;
/// Scheduler flag 2 (`flag-2`, `sh-port`, `mh-port`).
pub const SVC_F_SCHED2: u32 = 0x0010;
/// Scheduler flag 3 (`flag-3`).
pub const SVC_F_SCHED3: u32 = 0x0020;
/// Flags a user may set; the others are the kernel's.
pub const SVC_F_USER_MASK: u32 =
    SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;

/// Default persistence timeout of ipvsadm's `-p` without a value (libipvs: 360 s).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// Upper bound for a persistence timeout (31 days).
pub const MAX_PERSISTENT_TIMEOUT: u32 = 2_678_400;
/// The default scheduler.
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// Persistence engines rvs knows (the kernel has only `sip`).
pub const PERSISTENCE_ENGINES: &[&str] = &["sip"];

/// The identity of a virtual service: `(af, protocol, vaddr, vport)` or
/// `(fwmark, af)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKey {
    Addr {
        proto: Protocol,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        af: Af,
    },
}

impl ServiceKey {
    pub fn af(&self) -> Af {
        match self {
            ServiceKey::Addr { addr, .. } => Af::of(addr),
            ServiceKey::Fwmark { af, .. } => *af,
        }
    }

    /// The fwmark, or 0 for address services.
    pub fn fwmark(&self) -> u32 {
        match self {
            ServiceKey::Fwmark { mark, .. } => *mark,
            ServiceKey::Addr { .. } => 0,
        }
    }

    /// The service's port (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }

    /// The protocol; fwmark services carry TCP internally, as the kernel does.
    pub fn protocol(&self) -> Protocol {
        match self {
            ServiceKey::Addr { proto, .. } => *proto,
            ServiceKey::Fwmark { .. } => Protocol::Tcp,
        }
    }

    pub fn is_fwmark(&self) -> bool {
        matches!(self, ServiceKey::Fwmark { .. })
    }
}

/// The user-settable attributes of a service, as `-A`/`-E` give them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    /// Scheduler name (`-s`), at most 15 bytes.
    pub scheduler: String,
    /// `SVC_F_*` flags.
    pub flags: u32,
    /// Persistence timeout in seconds (meaningful with `SVC_F_PERSISTENT`).
    pub timeout: u32,
    /// IPv4: the persistence netmask in host order (`255.255.255.255` = `0xffff_ffff`).
    /// IPv6: the prefix length (1..=128).
    pub netmask: u32,
    /// Persistence engine name (`--pe`), if any.
    pub pe_name: Option<String>,
}

impl ServiceConfig {
    /// The `-A` defaults for a service of family `af`.
    pub fn defaults(af: Af) -> ServiceConfig {
        ServiceConfig {
            scheduler: DEFAULT_SCHEDULER.to_string(),
            flags: 0,
            timeout: 0,
            netmask: match af {
                Af::Inet => 0xffff_ffff,
                Af::Inet6 => 128,
            },
            pe_name: None,
        }
    }

    pub fn is_persistent(&self) -> bool {
        self.flags & SVC_F_PERSISTENT != 0
    }

    pub fn is_onepacket(&self) -> bool {
        self.flags & SVC_F_ONEPACKET != 0
    }
}

/// A virtual service in the table: identity, attributes, real servers in
/// kernel list order (newest first), the bound scheduler and statistics.
#[derive(Debug)]
pub struct Service {
    pub key: ServiceKey,
    pub config: ServiceConfig,
    /// Real servers, newest first (the kernel's `svc->destinations`).
    /// Boxed: a new server goes to the head, and 10,000 of them would
    /// otherwise mean moving whole entries on every add.
    pub dests: Vec<Box<crate::dest::Dest>>,
    /// The `(address, port)` of every real server, for the duplicate check
    /// of `-a` (the kernel walks the list; this keeps 10,000 adds linear).
    pub dest_keys: std::collections::HashSet<(std::net::IpAddr, u16)>,
    /// `None` only transiently while a scheduler is being swapped.
    pub scheduler: Option<Box<dyn crate::sched::Scheduler>>,
    pub stats: crate::stats::Stats,
}

impl Service {
    /// The scheduler's view of this service.
    pub fn sched_view(&self) -> crate::sched::SchedService<'_> {
        crate::sched::SchedService {
            flags: self.config.flags,
            dests: &self.dests,
        }
    }

    /// Asks the bound scheduler for a real server: an index into `dests`.
    pub fn schedule(&mut self, pkt: &crate::sched::PacketInfo, now: crate::Time) -> Option<usize> {
        let mut sched = self.scheduler.take()?;
        let r = sched.schedule(&self.sched_view(), pkt, now);
        self.scheduler = Some(sched);
        r
    }

    pub fn dest_index(&self, addr: &IpAddr, port: u16) -> Option<usize> {
        self.dests
            .iter()
            .position(|d| d.config.addr == *addr && d.config.port == port)
    }
}

/// Access to real servers by id wherever they are (in a service, or in the
/// trash after deletion while connections still point at them), and to the
/// statistics a connection's traffic is counted in. Implemented by the
/// service table; the connection table only talks to real servers through it.
pub trait DestStore {
    fn dest_mut(&mut self, id: crate::dest::DestId) -> Option<&mut crate::dest::Dest>;
    /// Counts a new connection to `id` in the real server's, its service's
    /// and the global statistics.
    fn count_conn(&mut self, id: crate::dest::DestId);
    /// Counts one client→server packet of `bytes` (real server, service, totals).
    fn count_in(&mut self, id: crate::dest::DestId, bytes: u64);
    /// Counts one server→client packet of `bytes` (real server, service, totals).
    fn count_out(&mut self, id: crate::dest::DestId, bytes: u64);
    /// Counts `pkts` client→server packets carrying `bytes` in all (a data
    /// path that batches its counts). The default loops over `count_in`.
    fn count_in_n(&mut self, id: crate::dest::DestId, pkts: u64, bytes: u64) {
        for i in 0..pkts {
            self.count_in(id, if i == 0 { bytes } else { 0 });
        }
    }
    /// Counts `pkts` server→client packets carrying `bytes` in all.
    fn count_out_n(&mut self, id: crate::dest::DestId, pkts: u64, bytes: u64) {
        for i in 0..pkts {
            self.count_out(id, if i == 0 { bytes } else { 0 });
        }
    }
}
