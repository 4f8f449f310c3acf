//! The xdp engine: the director's virtual services carried in the kernel
//! at the XDP hook, as LVS carries them in netfilter. It owns the BPF
//! program (`bpf/rvs_xdp.bpf.c`, C compiled by clang at build time), its
//! maps and their mirror of the director's table: NAT (`-m`: destination
//! rewritten inbound, source on replies, checksums updated incrementally),
//! direct routing (`-g`: MAC only) and tunnelling (`-i`: IPIP, GUE, GRE),
//! IPv4 and IPv6, TCP and UDP, firewall-mark services (classified by the
//! engine itself from rvs.toml's `match` lists, as XDP runs before
//! netfilter: [`marks`]), and ICMP errors that belong to a connection
//! (including "packet too big" for tunnels and errors about the engine's
//! own tunnel packets, answered to the client). Connections live in BPF LRU maps with rvs-conn's TCP state
//! machine (generated into the program at build time); rr and wrr services
//! schedule new flows in BPF from a ring of the service's own scheduler
//! picks (the kernel's order), every other service hands the first packet
//! to userspace, which schedules it with [`rvs_conn::ConnTable::schedule`]
//! and re-injects it. A tick mirrors the entries and counters into the
//! director and expires idle entries with the table's timeouts. Maps are
//! pinned, so a restart keeps established flows. With connection sync the
//! tick feeds the master's sync sender, and a backup writes the entries it
//! receives into its map, so a takeover keeps them too ([`SyncHandle`]).
//! Only frames addressed to the interface's own MAC are examined; NAT
//! replies toward a client whose neighbour is not resolved yet are sent
//! through the kernel ([`RawXmit`]) instead of being lost.
//! It also ships `bpf/rvs_decap.bpf.c` ([`Decap`]) for tunnelling real
//! servers. Design and trade-offs: `docs/xdp.md`. The `unsafe` code is
//! libbpf-rs's.

mod datapath;
mod decap;
mod engine;
pub mod maps;
pub mod marks;
pub mod packet;
mod sync;
mod xmit;

pub use datapath::{
    AttachMode, Datapath, Error, RunResult, PINNED_MAPS, XDP_ABORTED, XDP_DROP, XDP_OBJECT,
    XDP_PASS, XDP_REDIRECT, XDP_TX,
};
pub use decap::{Decap, DECAP_OBJECT};
pub use engine::{
    admit, now_units, service_name, Engine, SharedDirector, SyncProblem, XdpOptions, MAX_RING,
};
pub use marks::MarkRule;
pub use sync::{
    synced_entries, SendGate, SharedSender, SyncFeed, SyncHandle, SyncLink, SyncedEntry,
};
pub use xmit::{send_tunnel, tunnel_payload, RawXmit};
