//! The IPVS scheduling algorithms, each deciding exactly as its Linux 6.1
//! counterpart in `net/netfilter/ipvs/ip_vs_<name>.c` decides.
//!
//! This crate owns the fourteen schedulers ipvsadm knows (`rr wrr lc wlc
//! lblc lblcr dh sh sed nq fo ovf mh twos`), one file each, every one an
//! implementation of [`rvs_core::sched::Scheduler`], plus the two kernel hash
//! functions they need ([`hash`]) and the name registry ipvsadm's `-s` goes
//! through ([`new_scheduler`], [`NAMES`]). Real servers are seen in kernel
//! list order (newest first), which decides every tie and every table
//! layout. Loads are compared as the kernel compares them, in its integer
//! widths: overhead = `(activeconns << 8) + inactconns` as a 32-bit `int`
//! (which wraps past 8 million active connections, as the kernel's does),
//! weighted by 64-bit cross-multiplication, ties going to the earliest server
//! in list order. Tables that
//! remember real servers (dh, sh, mh, lblc, lblcr, and the rr/wrr cursors)
//! hold their [`DestId`], so a server that left the service is seen as the
//! kernel sees a server in the trash: not available. Time only enters as an
//! argument (lblc/lblcr entry ages); twos draws from an injectable random
//! source.

pub mod dh;
pub mod fo;
pub mod hash;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

pub use dh::DestinationHashing;
pub use fo::WeightedFailover;
pub use lblc::{Expiration, LocalityBasedLeastConnection};
pub use lblcr::LocalityBasedLeastConnectionReplication;
pub use lc::LeastConnection;
pub use mh::MaglevHashing;
pub use nq::NeverQueue;
pub use ovf::WeightedOverflow;
pub use rr::RoundRobin;
pub use sed::ShortestExpectedDelay;
pub use sh::SourceHashing;
pub use twos::PowerOfTwoChoices;
pub use wlc::WeightedLeastConnection;
pub use wrr::WeightedRoundRobin;

use rvs_core::sched::{PacketInfo, Scheduler};
use rvs_core::service::SVC_F_SCHED2;
use rvs_core::{Dest, DestId};
use std::net::IpAddr;

/// Every scheduler name, in the order `ipvsadm -h` lists them.
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// The scheduler sysctls of one director (`net.ipv4.vs.lblc_expiration`
/// and `lblcr_expiration`, 24 h by default). Clones share the values: hand
/// the same one to every [`new_scheduler_with`] and a change reaches every
/// bound scheduler, which reads it at use as the kernel does.
#[derive(Debug, Clone, Default)]
pub struct SchedSysctls {
    pub lblc_expiration: Expiration,
    pub lblcr_expiration: Expiration,
}

/// A fresh scheduler for ipvsadm's `-s NAME`, or `None` for an unknown name
/// (the service table then answers ENOENT), with default sysctls. `twos` is
/// seeded from the process's random hash keys; use
/// [`PowerOfTwoChoices::with_seed`] for reproducible draws.
pub fn new_scheduler(name: &str) -> Option<Box<dyn Scheduler>> {
    new_scheduler_with(name, &SchedSysctls::default())
}

/// As [`new_scheduler`], with lblc/lblcr reading the director's `sysctls`.
pub fn new_scheduler_with(name: &str, sysctls: &SchedSysctls) -> Option<Box<dyn Scheduler>> {
    Some(match name {
        "rr" => Box::new(RoundRobin::new()),
        "wrr" => Box::new(WeightedRoundRobin::new()),
        "lc" => Box::new(LeastConnection),
        "wlc" => Box::new(WeightedLeastConnection),
        "lblc" => Box::new(LocalityBasedLeastConnection::with_shared_expiration(
            sysctls.lblc_expiration.clone(),
        )),
        "lblcr" => Box::new(
            LocalityBasedLeastConnectionReplication::with_shared_expiration(
                sysctls.lblcr_expiration.clone(),
            ),
        ),
        "dh" => Box::new(DestinationHashing::new()),
        "sh" => Box::new(SourceHashing::new()),
        "sed" => Box::new(ShortestExpectedDelay),
        "nq" => Box::new(NeverQueue),
        "fo" => Box::new(WeightedFailover),
        "ovf" => Box::new(WeightedOverflow),
        "mh" => Box::new(MaglevHashing::new()),
        "twos" => Box::new(PowerOfTwoChoices::from_entropy()),
        _ => return None,
    })
}

/// How a scheduler's state remembers a real server: by identity, with the
/// index it had as a hint so the common case needs no search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DestRef {
    pub(crate) id: DestId,
    hint: usize,
}

impl DestRef {
    pub(crate) fn at(dests: &[Box<Dest>], index: usize) -> DestRef {
        DestRef {
            id: dests[index].id,
            hint: index,
        }
    }

    /// Where the server is now, or `None` if it left the service (the kernel
    /// would find it in the trash, not AVAILABLE).
    pub(crate) fn resolve(&self, dests: &[Box<Dest>]) -> Option<usize> {
        match dests.get(self.hint) {
            Some(d) if d.id == self.id => Some(self.hint),
            _ => dests.iter().position(|d| d.id == self.id),
        }
    }
}

/// The address the source-hashing schedulers (sh, mh) hash: the client's,
/// or for an ICMP error about one of our replies, the destination's.
pub(crate) fn source_side_addr(pkt: &PacketInfo) -> IpAddr {
    if pkt.inverse {
        pkt.daddr
    } else {
        pkt.saddr
    }
}

/// The port sh and mh add to the hashed address: the source port (the
/// destination port for inverse packets) when `SVC_F_SCHED2` (sh-port,
/// mh-port) is set, else 0. Every protocol IPVS schedules has ports in the
/// same place, so there is no "other protocol" case here.
pub(crate) fn source_side_port(flags: u32, pkt: &PacketInfo) -> u16 {
    if flags & SVC_F_SCHED2 == 0 {
        0
    } else if pkt.inverse {
        pkt.dport
    } else {
        pkt.sport
    }
}

/// `ip_vs_dest_conn_overhead`: `(activeconns << 8) + inactconns` in the
/// kernel's `int`, wrapping where the kernel's arithmetic wraps.
pub(crate) fn conn_overhead(d: &Dest) -> i32 {
    (d.activeconns as i32)
        .wrapping_shl(8)
        .wrapping_add(d.inactconns as i32)
}

/// `(__s64)overhead * weight`, the kernel's cross-multiplication.
pub(crate) fn mul(overhead: i32, weight: i32) -> i64 {
    overhead as i64 * weight as i64
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Small builders shared by the unit tests.
    use rvs_core::sched::{PacketInfo, SchedService};
    use rvs_core::{Dest, DestConfig, DestId, Protocol};
    use std::net::{IpAddr, Ipv4Addr};

    /// Real servers in list order, `(weight, activeconns, inactconns)` each,
    /// at 10.0.0.(i+1):80 with ids 1, 2, ...
    pub fn dests(spec: &[(i32, u32, u32)]) -> Vec<Box<Dest>> {
        spec.iter()
            .enumerate()
            .map(|(i, &(w, a, n))| {
                let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1));
                let mut cfg = DestConfig::new(addr, 80);
                cfg.weight = w;
                let mut d = Dest::new(DestId(i as u64 + 1), cfg);
                d.activeconns = a;
                d.inactconns = n;
                Box::new(d)
            })
            .collect()
    }

    pub fn svc(dests: &[Box<Dest>]) -> SchedService<'_> {
        SchedService { flags: 0, dests }
    }

    pub fn svc_flags(dests: &[Box<Dest>], flags: u32) -> SchedService<'_> {
        SchedService { flags, dests }
    }

    pub fn pkt(saddr: [u8; 4], sport: u16, daddr: [u8; 4]) -> PacketInfo {
        PacketInfo {
            proto: Protocol::Tcp,
            saddr: IpAddr::V4(saddr.into()),
            sport,
            daddr: IpAddr::V4(daddr.into()),
            dport: 80,
            inverse: false,
        }
    }

    pub fn any_pkt() -> PacketInfo {
        pkt([192, 0, 2, 1], 40000, [192, 0, 2, 100])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_a_scheduler_of_that_name() {
        assert_eq!(NAMES.len(), 14);
        for name in NAMES {
            let s = new_scheduler(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(s.name(), *name);
        }
        assert!(new_scheduler("none").is_none());
        assert!(new_scheduler("WLC").is_none());
    }

    #[test]
    fn overheads_are_the_kernels_wrapping_ints() {
        use rvs_core::sched::Scheduler;
        let ds = testutil::dests(&[(1, 0, 5), (1, 1 << 23, 0)]);
        assert_eq!(conn_overhead(&ds[0]), 5);
        assert_eq!(conn_overhead(&ds[1]), i32::MIN);
        // 8M active connections wrap negative: the kernel's wlc then sees
        // that server as the least loaded, and so do we.
        let pick = WeightedLeastConnection.schedule(&testutil::svc(&ds), &testutil::any_pkt(), 0);
        assert_eq!(pick, Some(1));
        assert_eq!(mul(i32::MAX, i32::MAX), 4_611_686_014_132_420_609);
    }

    #[test]
    fn dest_ref_follows_its_server_when_the_list_shifts() {
        let ds = testutil::dests(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let r = DestRef::at(&ds, 1);
        assert_eq!(r.resolve(&ds), Some(1));
        assert_eq!(r.resolve(&ds[1..]), Some(0));
        let without: Vec<_> = ds.iter().filter(|d| d.id != r.id).cloned().collect();
        assert_eq!(r.resolve(&without), None);
    }
}
