//! One connection entry (the kernel's `struct ip_vs_conn`), its flags
//! (`IP_VS_CONN_F_*`, values from `include/uapi/linux/ip_vs.h`), the handle
//! that names it, and the read-only views the table hands out.

use crate::{sctp, tcp, udp};
use rvs_core::{Af, DestId, FwdMethod, Protocol, Time, SEC};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Mask of the forwarding method bits.
pub const CONN_F_FWD_MASK: u32 = 0x0007;
pub const CONN_F_MASQ: u32 = 0x0000;
pub const CONN_F_LOCALNODE: u32 = 0x0001;
pub const CONN_F_TUNNEL: u32 = 0x0002;
pub const CONN_F_DROUTE: u32 = 0x0003;
pub const CONN_F_BYPASS: u32 = 0x0004;
/// Created by the sync daemon.
pub const CONN_F_SYNC: u32 = 0x0020;
/// In the lookup table (one-packet entries never are).
pub const CONN_F_HASHED: u32 = 0x0040;
/// Replies are not expected (every method but NAT); cleared by the first reply.
pub const CONN_F_NOOUTPUT: u32 = 0x0080;
/// Counted in the real server's `inactconns` rather than `activeconns`.
pub const CONN_F_INACTIVE: u32 = 0x0100;
pub const CONN_F_OUT_SEQ: u32 = 0x0200;
pub const CONN_F_IN_SEQ: u32 = 0x0400;
pub const CONN_F_SEQ_MASK: u32 = 0x0600;
/// The client port is not known yet (FTP data entries); matched by lookups
/// with client port 0.
pub const CONN_F_NO_CPORT: u32 = 0x0800;
/// A persistence template, not a connection.
pub const CONN_F_TEMPLATE: u32 = 0x1000;
/// One-packet scheduling: never hashed, freed after its packet.
pub const CONN_F_ONE_PACKET: u32 = 0x2000;
/// Bits a backup may receive from the sync master.
pub const CONN_F_BACKUP_MASK: u32 = CONN_F_FWD_MASK
    | CONN_F_NOOUTPUT
    | CONN_F_INACTIVE
    | CONN_F_SEQ_MASK
    | CONN_F_NO_CPORT
    | CONN_F_TEMPLATE;
/// Bits a backup may update on an existing entry.
pub const CONN_F_BACKUP_UPD_MASK: u32 = CONN_F_INACTIVE | CONN_F_SEQ_MASK;
/// Uses netfilter conntrack (never set by rvs; not sent to backups).
pub const CONN_F_NFCT: u32 = 1 << 16;

/// Template state: no controlled connection has proved itself yet.
pub const CTPL_NONE: u8 = 0;
/// Template state: a controlled connection reached TCP/SCTP ESTABLISHED or
/// saw a UDP reply.
pub const CTPL_ASSURED: u8 = 1;

/// IP protocol number of fwmark templates (`IPPROTO_IP`).
pub const PROTO_IP: u8 = 0;

/// The kernel's "no port" marker written into an invalidated template.
pub const INVALID_PORT: u16 = 0xffff;

/// An address as the table stores it: IPv4 in the first four bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Addr(pub(crate) [u8; 16]);

impl Addr {
    pub(crate) fn from_ip(ip: &IpAddr) -> Addr {
        let mut a = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => a = v6.octets(),
        }
        Addr(a)
    }

    pub(crate) fn to_ip(self, af: Af) -> IpAddr {
        match af {
            Af::Inet => IpAddr::V4(Ipv4Addr::new(self.0[0], self.0[1], self.0[2], self.0[3])),
            Af::Inet6 => IpAddr::V6(Ipv6Addr::from(self.0)),
        }
    }

    pub(crate) fn words(&self) -> (u64, u64) {
        let (a, b) = self.0.split_at(8);
        (
            u64::from_le_bytes(a.try_into().unwrap_or_default()),
            u64::from_le_bytes(b.try_into().unwrap_or_default()),
        )
    }
}

/// Names one entry of a [`crate::ConnTable`]. A handle to a freed entry
/// stays invalid even when its slot is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
}

/// Which way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → virtual service (request side, `ip_vs_in`).
    Input,
    /// Real server → client (reply side, `ip_vs_out`).
    Output,
}

/// What the protocol state machine sees of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP flags byte ([`tcp::SYN`], [`tcp::ACK`], ...).
    Tcp(u8),
    Udp,
    Sctp(sctp::Chunks),
}

impl Transport {
    pub fn protocol(&self) -> Protocol {
        match self {
            Transport::Tcp(_) => Protocol::Tcp,
            Transport::Udp => Protocol::Udp,
            Transport::Sctp(_) => Protocol::Sctp,
        }
    }
}

/// The stored entry. Fields are private so the table's invariants (hash
/// placement, counters, timers) hold; read them through the accessors.
#[derive(Debug, Clone)]
pub struct Conn {
    pub(crate) caddr: Addr,
    pub(crate) vaddr: Addr,
    pub(crate) daddr: Addr,
    /// When the timer fires.
    pub(crate) expires: Time,
    /// Time of the timer-queue item that stands for this entry.
    pub(crate) wake: Time,
    /// `DestId` value, or [`NO_DEST`].
    pub(crate) dest: u64,
    pub(crate) flags: u32,
    /// Idle timeout in ms, re-armed by every packet.
    pub(crate) timeout: u32,
    pub(crate) fwmark: u32,
    pub(crate) in_pkts: u32,
    pub(crate) n_control: u32,
    /// Slot of the controlling entry, or [`NIL`].
    pub(crate) control: u32,
    /// Next entry in the same hash bucket (or free-list link).
    pub(crate) next: u32,
    /// Odd while the slot is in use.
    pub(crate) gen: u32,
    pub(crate) cport: u16,
    pub(crate) vport: u16,
    pub(crate) dport: u16,
    pub(crate) proto: u8,
    pub(crate) state: u8,
    /// The state last sent to sync backups (`old_state`).
    pub(crate) old_state: u8,
    /// When the sync master last sent this entry, as expiry time in
    /// wrapping milliseconds with a retry count in the low 2 bits
    /// (`sync_endtime`).
    pub(crate) sync_endtime: u32,
    pub(crate) af: Af,
    pub(crate) daf: Af,
}

pub(crate) const NIL: u32 = u32::MAX;
pub(crate) const NO_DEST: u64 = u64::MAX;

impl Conn {
    pub(crate) fn vacant() -> Conn {
        Conn {
            caddr: Addr::default(),
            vaddr: Addr::default(),
            daddr: Addr::default(),
            expires: 0,
            wake: 0,
            dest: NO_DEST,
            flags: 0,
            timeout: 0,
            fwmark: 0,
            in_pkts: 0,
            n_control: 0,
            control: NIL,
            next: NIL,
            gen: 0,
            cport: 0,
            vport: 0,
            dport: 0,
            proto: 0,
            state: 0,
            old_state: 0,
            sync_endtime: 0,
            af: Af::Inet,
            daf: Af::Inet,
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.gen & 1 == 1
    }

    /// IP protocol number; 0 (`IPPROTO_IP`) for fwmark templates.
    pub fn proto_number(&self) -> u8 {
        self.proto
    }

    pub fn protocol(&self) -> Option<Protocol> {
        proto_from_number(self.proto)
    }

    pub fn af(&self) -> Af {
        self.af
    }

    /// Address family of the real server (differs for mixed-family tunnels).
    pub fn daf(&self) -> Af {
        self.daf
    }

    pub fn caddr(&self) -> IpAddr {
        self.caddr.to_ip(self.af)
    }

    pub fn cport(&self) -> u16 {
        self.cport
    }

    /// The virtual address; for fwmark templates the mark in the first 32 bits.
    pub fn vaddr(&self) -> IpAddr {
        self.vaddr.to_ip(self.af)
    }

    pub fn vport(&self) -> u16 {
        self.vport
    }

    pub fn daddr(&self) -> IpAddr {
        self.daddr.to_ip(self.daf)
    }

    pub fn dport(&self) -> u16 {
        self.dport
    }

    pub fn flags(&self) -> u32 {
        self.flags
    }

    pub fn state(&self) -> u8 {
        self.state
    }

    pub fn dest(&self) -> Option<DestId> {
        (self.dest != NO_DEST).then_some(DestId(self.dest))
    }

    pub fn fwd(&self) -> FwdMethod {
        fwd_from_flags(self.flags)
    }

    pub fn is_template(&self) -> bool {
        self.flags & CONN_F_TEMPLATE != 0
    }

    /// Idle timeout in milliseconds.
    pub fn timeout(&self) -> Time {
        self.timeout as Time
    }

    pub fn expires(&self) -> Time {
        self.expires
    }

    pub fn fwmark(&self) -> u32 {
        self.fwmark
    }

    pub fn in_pkts(&self) -> u32 {
        self.in_pkts
    }

    /// How many entries this one controls (templates: their connections).
    pub fn n_control(&self) -> u32 {
        self.n_control
    }

    /// The state's name as `ipvsadm -L -c` shows it (`ip_vs_state_name`).
    pub fn state_name(&self) -> &'static str {
        state_name(self.proto, self.flags, self.state)
    }

    /// Whole seconds left, as `/proc/net/ip_vs_conn` prints them.
    pub fn remaining_secs(&self, now: Time) -> u64 {
        self.expires.saturating_sub(now) / SEC
    }

    pub(crate) fn info(&self) -> ConnInfo {
        ConnInfo {
            proto: self.proto,
            af: self.af,
            caddr: self.caddr(),
            cport: self.cport,
            vaddr: self.vaddr(),
            vport: self.vport,
            daddr: self.daddr(),
            dport: self.dport,
            fwd: self.fwd(),
            dest: self.dest(),
            state: self.state,
            flags: self.flags,
        }
    }
}

pub(crate) fn proto_from_number(n: u8) -> Option<Protocol> {
    match n {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        132 => Some(Protocol::Sctp),
        _ => None,
    }
}

/// `ip_vs_proto_name` for the protocols that can appear in the table.
pub fn proto_name(n: u8) -> &'static str {
    match n {
        PROTO_IP => "IP",
        6 => "TCP",
        17 => "UDP",
        132 => "SCTP",
        _ => "IP_?",
    }
}

/// `ip_vs_state_name`: templates show NONE / ASSURED, connections their
/// protocol's state.
pub fn state_name(proto: u8, flags: u32, state: u8) -> &'static str {
    if flags & CONN_F_TEMPLATE != 0 {
        return match state {
            CTPL_NONE => "NONE",
            CTPL_ASSURED => "ASSURED",
            _ => "ERR!",
        };
    }
    match proto_from_number(proto) {
        Some(Protocol::Tcp) => tcp::state_name(state),
        Some(Protocol::Udp) => udp::state_name(state),
        Some(Protocol::Sctp) => sctp::state_name(state),
        None if proto == PROTO_IP => "NONE",
        None => "ERR!",
    }
}

pub(crate) fn fwd_from_flags(flags: u32) -> FwdMethod {
    match flags & CONN_F_FWD_MASK {
        CONN_F_MASQ => FwdMethod::Masq,
        CONN_F_LOCALNODE => FwdMethod::Local,
        CONN_F_TUNNEL => FwdMethod::Tunnel,
        CONN_F_DROUTE => FwdMethod::Route,
        _ => FwdMethod::Bypass,
    }
}

/// A copy of what a data path needs to forward a packet of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    pub proto: u8,
    pub af: Af,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub fwd: FwdMethod,
    pub dest: Option<DestId>,
    pub state: u8,
    pub flags: u32,
}

/// One row of `ipvsadm -L -c` / `/proc/net/ip_vs_conn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnEntry<'a> {
    pub id: ConnId,
    /// "TCP", "UDP", "SCTP", or "IP" for fwmark templates.
    pub proto: &'static str,
    pub af: Af,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub state: &'static str,
    /// Absolute expiry time; see [`ConnEntry::remaining_secs`].
    pub expires: Time,
    pub template: bool,
    pub flags: u32,
    pub dest: Option<DestId>,
    /// Persistence engine name and data (templates of `--pe` services).
    pub pe_name: Option<&'static str>,
    pub pe_data: Option<&'a [u8]>,
}

impl ConnEntry<'_> {
    /// Whole seconds left, as the `Expires` column shows.
    pub fn remaining_secs(&self, now: Time) -> u64 {
        self.expires.saturating_sub(now) / SEC
    }
}
