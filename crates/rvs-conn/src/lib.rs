//! The IPVS connection table: what `net/netfilter/ipvs/ip_vs_conn.c`,
//! `ip_vs_proto_{tcp,udp,sctp}.c`, `ip_vs_pe_sip.c` and the scheduling path
//! of `ip_vs_core.c` own in Linux. It keeps one entry per connection and
//! per persistence template, finds them for request and reply packets,
//! runs the per-protocol state machines, counts entries in their real
//! servers (active / inactive / persistent, OVERLOAD by threshold), expires
//! them on idle timeouts, and schedules new connections through a
//! service's scheduler. Time is always an argument ([`rvs_core::Time`], ms);
//! nothing here reads a clock, and the same inputs give the same table.
//!
//! A packet engine drives it like `ip_vs_in` / `ip_vs_out`:
//!
//! 1. request packet: [`ConnTable::lookup_in`], then [`ConnTable::check_in`]
//!    (port reuse, deleted real servers);
//! 2. no entry: find the service, [`sched::may_schedule`], then
//!    [`ConnTable::schedule`] (on failure act on [`sched::Unscheduled::verdict`]);
//! 3. [`ConnTable::process`] with [`Direction::Input`] and forward with the
//!    returned [`ConnInfo`];
//! 4. reply packet: [`ConnTable::lookup_out`], then `process` with
//!    [`Direction::Output`];
//! 5. regularly: [`ConnTable::expire`]; after deleting a real server with
//!    `expire_nodest_conn` on: [`ConnTable::expire_nodest_conn_flush`].
//!
//! A userspace proxy schedules the same way and reports socket life events
//! with [`ConnTable::proxy_event`] and data with `process`. A sync backup
//! installs what its master sends with [`ConnTable::install_synced`].

pub mod conn;
pub mod pe;
pub mod proxy;
pub mod sched;
pub mod sctp;
pub mod sync;
pub mod sysctl;
pub mod table;
pub mod tcp;
pub mod timeouts;
pub mod udp;

pub use conn::{Conn, ConnEntry, ConnId, ConnInfo, Direction, Transport};
pub use proxy::ProxyEvent;
pub use sched::{Packet, Unscheduled, Verdict};
pub use sync::{Installed, SyncMark, SyncRefused, SyncedConn};
pub use sysctl::Sysctls;
pub use table::{ConnTable, InVerdict, MemoryUse, NewConn};
pub use timeouts::Timeouts;
