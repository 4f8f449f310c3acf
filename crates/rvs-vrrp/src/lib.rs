//! Director failover: VRRP, wire-compatible with keepalived. This crate
//! owns the protocol and the moving of VIPs, nothing else: the codec for
//! VRRPv2 and VRRPv3 adverts over IPv4 and IPv6 with both VRRPv3 checksum
//! forms ([`packet`]); one instance as a state machine with no I/O that
//! takes time as an argument ([`fsm`]: priorities, master-down and skew
//! timers, no fail-back unless `preempt`, `preempt_delay`, priority 0 on
//! clean shutdown, split-brain healing); tracking rules ([`track`]); and a
//! thin driver ([`driver`]) with a thread per instance: raw protocol-112
//! sockets with the TTL-255 check, multicast or unicast peers ([`socket`]),
//! VIPs added and removed through rtnetlink ([`netlink`]), gratuitous ARP
//! and unsolicited NA bursts through AF_PACKET ([`announce`]), notify hooks
//! run in order, stale VIPs removed at start. `rvsd` starts one
//! [`Running`] per `[[vrrp]]` table of rvs.toml; see `docs/failover.md`.

pub mod announce;
pub mod driver;
pub mod fsm;
pub mod iface;
pub mod netlink;
pub mod packet;
pub mod socket;
mod sys;
pub mod track;

pub use driver::{InstanceSpec, Notify, Observer, Running, Status, TransitionEvent};
pub use fsm::{Action, Instance, State, Warning};
pub use netlink::Vip;
pub use packet::{Advert, Auth, ChecksumMode, DecodeError, Version};
pub use track::{TrackInterface, TrackScript};
