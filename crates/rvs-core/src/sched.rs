//! The contract between a virtual service and its scheduler, shaped like the
//! kernel's `struct ip_vs_scheduler` (`init_service`, `add_dest`, `del_dest`,
//! `upd_dest`, `schedule`). The implementations live in `rvs-sched`, one file
//! each.

use crate::dest::Dest;
use crate::proto::Protocol;
use crate::Time;
use std::net::IpAddr;

/// What a scheduler sees of the packet that opens a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    pub proto: Protocol,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// An ICMP error about one of our replies: hashing schedulers then use
    /// the destination side instead of the source side.
    pub inverse: bool,
}

/// The service as a scheduler sees it.
#[derive(Debug, Clone, Copy)]
pub struct SchedService<'a> {
    /// `SVC_F_*` flags (the scheduler flags are `SVC_F_SCHED1..3`).
    pub flags: u32,
    /// Real servers in kernel list order: newest first. Every tie-break and
    /// every table layout depends on this order. Each is boxed so that
    /// adding a server at the head moves pointers, not whole entries.
    pub dests: &'a [Box<Dest>],
}

/// A scheduling algorithm bound to one service. Each hook mirrors the kernel
/// hook of the same name. Hooks are called by the service table with the
/// service's real-server list *after* the change, except where noted.
///
/// Concurrency: a scheduler is owned by its service and called with the
/// service exclusively borrowed; it never blocks.
pub trait Scheduler: Send + Sync + std::fmt::Debug {
    /// The ipvsadm name (`"wlc"`).
    fn name(&self) -> &'static str;

    /// Bound to a service (at `-A`, or at `-E` with a new scheduler, when the
    /// service may already have real servers).
    fn init_service(&mut self, _svc: &SchedService<'_>) {}

    /// `dest` (an index into `svc.dests`, always 0: new servers go first) was added.
    fn add_dest(&mut self, _svc: &SchedService<'_>, _dest: usize) {}

    /// A real server was removed; `svc.dests` no longer holds it. `removed`
    /// is the server as it was and `index` the position it had, so a
    /// scheduler can find its neighbours as the kernel does.
    fn del_dest(&mut self, _svc: &SchedService<'_>, _removed: &Dest, _index: usize) {}

    /// `dest`'s weight or thresholds were edited.
    fn upd_dest(&mut self, _svc: &SchedService<'_>, _dest: usize) {}

    /// Picks a real server for a new connection: an index into `svc.dests`,
    /// or `None` ("no destination available").
    fn schedule(&mut self, svc: &SchedService<'_>, pkt: &PacketInfo, now: Time) -> Option<usize>;

    /// Periodic housekeeping (lblc/lblcr garbage collection). Called at
    /// least once a minute.
    fn tick(&mut self, _now: Time) {}

    /// A copy of the scheduler with its state, so a data path can compute
    /// picks ahead without moving this one (the xdp engine's rr and wrr
    /// rings); `None` when the scheduler does not offer one.
    fn snapshot(&self) -> Option<Box<dyn Scheduler>> {
        None
    }
}
