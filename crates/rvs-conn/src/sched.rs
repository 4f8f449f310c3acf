//! Scheduling a new connection (`ip_vs_schedule`, `ip_vs_sched_persist`,
//! `ip_vs_check_template` and `ip_vs_new_conn_out` in
//! `net/netfilter/ipvs/ip_vs_core.c` / `ip_vs_conn.c`): which packets may
//! create an entry, persistence templates keyed by the masked client
//! (`-M` netmask or IPv6 prefix), the port-zero and fwmark rules, one-packet
//! scheduling and the sip persistence engine.

use crate::conn::*;
use crate::pe::{self, PeData};
use crate::sysctl::Sysctls;
use crate::table::{ConnTable, NewConn};
use crate::{sctp, tcp};
use rvs_core::sched::PacketInfo;
use rvs_core::{Af, DestId, Protocol, Service, Stats, Time, SEC};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The FTP control port: persistent FTP services share one template
/// between control and data connections.
pub const FTPPORT: u16 = 21;
/// The FTP active-data source port: such packets are never scheduled.
pub const FTPDATA: u16 = 20;

/// A packet that may open a connection, as the data path saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub proto: Protocol,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// The packet's firewall mark (kept in the entry).
    pub mark: u32,
    /// The packet is embedded in an ICMP error about one of our replies:
    /// the client is its destination.
    pub inverse: bool,
    /// The packet came from the director itself (loopback): a reply of a
    /// local real server must not be scheduled.
    pub local: bool,
    /// Transport payload (the sip engine reads the Call-ID from it).
    pub payload: &'a [u8],
}

impl Packet<'static> {
    /// A plain packet from `saddr:sport` to `daddr:dport`.
    pub fn new(proto: Protocol, saddr: IpAddr, sport: u16, daddr: IpAddr, dport: u16) -> Self {
        Packet {
            proto,
            saddr,
            sport,
            daddr,
            dport,
            mark: 0,
            inverse: false,
            local: false,
            payload: &[],
        }
    }
}

impl<'a> Packet<'a> {
    pub fn with_payload(self, payload: &'a [u8]) -> Packet<'a> {
        Packet { payload, ..self }
    }

    pub fn with_mark(self, mark: u32) -> Packet<'a> {
        Packet { mark, ..self }
    }

    /// (client address, client port, virtual address, virtual port).
    fn client_side(&self) -> (IpAddr, u16, IpAddr, u16) {
        if self.inverse {
            (self.daddr, self.dport, self.saddr, self.sport)
        } else {
            (self.saddr, self.sport, self.daddr, self.dport)
        }
    }

    fn info(&self) -> PacketInfo {
        PacketInfo {
            proto: self.proto,
            saddr: self.saddr,
            sport: self.sport,
            daddr: self.daddr,
            dport: self.dport,
            inverse: self.inverse,
        }
    }
}

/// Why no entry was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unscheduled {
    /// Client port 20 (active FTP data from a real server).
    FtpData,
    /// A reply from a local real server to an existing entry.
    LocalReply,
    /// A non-persistent, non-fwmark service reached on another port than its
    /// own: port-zero services need persistence; FTP data for an FTP service.
    PortMismatch,
    /// The scheduler found no real server.
    NoDest,
    /// The persistence engine found no data in the packet (sip: no Call-ID).
    NoPeData,
}

/// What the data path does with a packet that was not scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let it continue to the local stack.
    Accept,
    /// `ip_vs_leave`: bypass entry, accept (FTP), or ICMP port unreachable and drop.
    Leave,
    /// Drop it silently.
    Drop,
}

impl Unscheduled {
    /// The kernel's `*ignored` value turned into an action.
    pub fn verdict(self) -> Verdict {
        match self {
            Unscheduled::FtpData | Unscheduled::LocalReply => Verdict::Accept,
            Unscheduled::PortMismatch | Unscheduled::NoDest => Verdict::Leave,
            Unscheduled::NoPeData => Verdict::Drop,
        }
    }
}

/// Whether a packet with no entry may create one (`tcp_conn_schedule`,
/// `sctp_conn_schedule`): TCP needs SYN (any flags with `sloppy_tcp`) and
/// never RST; SCTP needs INIT (any chunk with `sloppy_sctp`) and never
/// ABORT; UDP always may.
pub fn may_schedule(l4: Transport, sysctls: &Sysctls) -> bool {
    match l4 {
        Transport::Tcp(f) => f & tcp::RST == 0 && (sysctls.sloppy_tcp || f & tcp::SYN != 0),
        Transport::Sctp(c) => {
            c.first != sctp::CID_ABORT && (sysctls.sloppy_sctp || c.first == sctp::CID_INIT)
        }
        Transport::Udp => true,
    }
}

/// Whether a packet opens a new connection (`is_new_conn`): TCP SYN, SCTP INIT.
pub fn is_new_conn(l4: Transport) -> bool {
    match l4 {
        Transport::Tcp(f) => f & tcp::SYN != 0,
        Transport::Sctp(c) => c.first == sctp::CID_INIT,
        Transport::Udp => false,
    }
}

/// The client network a template is for: IPv4 `addr & netmask` (netmask in
/// host order), IPv6 the first `netmask` bits.
pub fn mask_client(addr: IpAddr, netmask: u32) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & netmask)),
        IpAddr::V6(a) => {
            let plen = netmask.min(128);
            let mask = if plen == 0 {
                0
            } else {
                u128::MAX << (128 - plen)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// The fwmark as the kernel stores it in a fwmark template's virtual
/// address: the mark in network order in the first 32 bits.
fn fwmark_addr(mark: u32, af: Af) -> IpAddr {
    match af {
        Af::Inet => IpAddr::V4(Ipv4Addr::from(mark)),
        Af::Inet6 => IpAddr::V6(Ipv6Addr::from((mark as u128) << 96)),
    }
}

fn svc_addr(svc: &Service) -> Option<IpAddr> {
    match svc.key {
        rvs_core::ServiceKey::Addr { addr, .. } => Some(addr),
        rvs_core::ServiceKey::Fwmark { .. } => None,
    }
}

/// Counts a new connection in the real server, its service and the totals
/// (`ip_vs_conn_stats`).
fn conn_stats(svc: &mut Service, dest: usize, totals: &mut Stats) {
    svc.dests[dest].stats.total.conns += 1;
    svc.stats.total.conns += 1;
    totals.total.conns += 1;
}

impl ConnTable {
    /// Schedules a packet that has no entry (`ip_vs_schedule`): picks a real
    /// server of `svc` (through a template for persistent services), creates
    /// and counts the entry. The protocol state machine has not run yet:
    /// call [`ConnTable::process`] for this packet next. `totals` are the
    /// director-wide statistics.
    pub fn schedule(
        &mut self,
        svc: &mut Service,
        pkt: &Packet<'_>,
        now: Time,
        totals: &mut Stats,
    ) -> Result<ConnId, Unscheduled> {
        let (caddr, cport, vaddr, vport) = pkt.client_side();
        if cport == FTPDATA {
            return Err(Unscheduled::FtpData);
        }
        if pkt.local
            && self
                .lookup_in(pkt.proto, vaddr, vport, caddr, cport)
                .is_some()
        {
            return Err(Unscheduled::LocalReply);
        }
        if svc.config.is_persistent() {
            return self.sched_persist(svc, pkt, now, totals);
        }
        if svc.key.fwmark() == 0 && vport != svc.key.port() {
            return Err(Unscheduled::PortMismatch);
        }
        let d = svc.schedule(&pkt.info(), now).ok_or(Unscheduled::NoDest)?;
        let flags = one_packet_flag(svc, pkt.proto);
        let dest = &mut svc.dests[d];
        let spec = NewConn {
            proto: pkt.proto as u8,
            af: svc.key.af(),
            caddr,
            cport,
            vaddr,
            vport,
            daddr: dest.config.addr,
            dport: if dest.config.port != 0 {
                dest.config.port
            } else {
                vport
            },
            flags,
            fwmark: pkt.mark,
            pe: None,
        };
        let id = self.create(spec, Some(dest), now);
        conn_stats(svc, d, totals);
        Ok(id)
    }

    /// `ip_vs_sched_persist`.
    fn sched_persist(
        &mut self,
        svc: &mut Service,
        pkt: &Packet<'_>,
        now: Time,
        totals: &mut Stats,
    ) -> Result<ConnId, Unscheduled> {
        let (caddr, cport, vaddr, vport) = pkt.client_side();
        let af = svc.key.af();
        let svc_port = svc.key.port();
        let snet = mask_client(caddr, svc.config.netmask);

        // The template key: FTP shares one template between control and
        // data connections; fwmark templates carry protocol 0 and the mark.
        let (mut t_proto, mut t_vaddr, mut t_vport) = (pkt.proto as u8, vaddr, 0);
        if vport == svc_port {
            if svc_port != FTPPORT {
                t_vport = vport;
            }
        } else if svc.key.fwmark() != 0 {
            t_proto = PROTO_IP;
            t_vaddr = fwmark_addr(svc.key.fwmark(), af);
        }
        let engine = svc.config.pe_name.as_deref().and_then(pe::engine);
        let pe_data = match engine {
            Some(name) => Some(
                pe::fill(name, pkt.proto == Protocol::Udp, pkt.payload)
                    .ok_or(Unscheduled::NoPeData)?,
            ),
            None => None,
        };

        let ct = self.find_template(
            t_proto,
            af,
            &Addr::from_ip(&snet),
            &Addr::from_ip(&t_vaddr),
            t_vport,
            pe_data.as_deref(),
        );
        let found = if ct != NIL {
            self.check_template(ct, svc, None).map(|d| (ct, d))
        } else {
            None
        };
        let (ct, d) = match found {
            Some(x) => x,
            None => {
                let d = svc.schedule(&pkt.info(), now).ok_or(Unscheduled::NoDest)?;
                let dest = &mut svc.dests[d];
                let t_dport = if vport == svc_port && svc_port != FTPPORT {
                    dest.config.port
                } else {
                    0
                };
                let spec = NewConn {
                    proto: t_proto,
                    af,
                    caddr: snet,
                    cport: 0,
                    vaddr: t_vaddr,
                    vport: t_vport,
                    daddr: dest.config.addr,
                    dport: t_dport,
                    flags: CONN_F_TEMPLATE,
                    fwmark: pkt.mark,
                    pe: engine
                        .zip(pe_data)
                        .map(|(name, data)| PeData { name, data }),
                };
                let ct = self.create(spec, Some(dest), now);
                self.set_timeout(ct, svc.config.timeout as Time * SEC);
                (ct.idx, d)
            }
        };

        let flags = one_packet_flag(svc, pkt.proto);
        let dest = &mut svc.dests[d];
        let mut dport = vport;
        if dport == svc_port && dest.config.port != 0 {
            dport = dest.config.port;
        }
        let spec = NewConn {
            proto: pkt.proto as u8,
            af,
            caddr,
            cport,
            vaddr,
            vport,
            daddr: dest.config.addr,
            dport,
            flags,
            fwmark: pkt.mark,
            pe: None,
        };
        let cp = self.create(spec, Some(dest), now);
        let ct = self.id_of(ct);
        self.control_add(cp, ct);
        self.rearm(ct, now);
        conn_stats(svc, d, totals);
        Ok(cp)
    }

    /// `ip_vs_check_template`: the template's real server must still be in
    /// the service and available, must not be quiesced (weight 0) when
    /// `expire_quiescent_template` is on, and must be `cdest` if given.
    /// Returns the server's index in `svc.dests`; otherwise invalidates
    /// the template.
    fn check_template(&mut self, ct: u32, svc: &Service, cdest: Option<DestId>) -> Option<usize> {
        let dest = self.slots[ct as usize].dest();
        let pos = dest.and_then(|id| svc.dests.iter().position(|d| d.id == id));
        let ok = pos.is_some_and(|i| {
            let d = &svc.dests[i];
            d.available
                && !(self.sysctls.expire_quiescent_template && d.config.weight == 0)
                && cdest.is_none_or(|c| Some(c) == dest)
        });
        if ok {
            pos
        } else {
            self.invalidate_template(ct);
            None
        }
    }

    /// Restarts a template's timer with its timeout (`ip_vs_conn_put`).
    fn rearm(&mut self, id: ConnId, now: Time) {
        if let Some(c) = self.get(id) {
            let at = now + c.timeout();
            self.arm(id.idx, at);
        }
    }

    /// A connection started by real server `svc.dests[dest]` towards a
    /// client (`ip_vs_new_conn_out`, used by the sip engine's `conn_out`
    /// for UDP): `pkt` goes from the real server to the client. Creates the
    /// template (persistent services) and the entry so the client's answer
    /// reaches the same server. Not for fwmark services or port 0.
    pub fn new_conn_out(
        &mut self,
        svc: &mut Service,
        dest: usize,
        pkt: &Packet<'_>,
        now: Time,
        totals: &mut Stats,
    ) -> Option<ConnId> {
        let vaddr = svc_addr(svc)?;
        let vport = svc.key.port();
        let (daddr, dport, caddr, cport) = (pkt.saddr, pkt.sport, pkt.daddr, pkt.dport);
        if vport == 0 || dport == 0 {
            return None;
        }
        let af = svc.key.af();
        let mut ct = None;
        if svc.config.is_persistent() {
            let snet = mask_client(caddr, svc.config.netmask);
            let engine = svc.config.pe_name.as_deref().and_then(pe::engine);
            let pe_data = match engine {
                Some(name) => Some(pe::fill(name, pkt.proto == Protocol::Udp, pkt.payload)?),
                None => None,
            };
            let proto = pkt.proto as u8;
            let found = self.find_template(
                proto,
                af,
                &Addr::from_ip(&snet),
                &Addr::from_ip(&vaddr),
                vport,
                pe_data.as_deref(),
            );
            let dest_id = svc.dests.get(dest)?.id;
            let valid = found != NIL && self.check_template(found, svc, Some(dest_id)).is_some();
            let t = if valid {
                self.id_of(found)
            } else {
                let spec = NewConn {
                    proto,
                    af,
                    caddr: snet,
                    cport: 0,
                    vaddr,
                    vport,
                    daddr,
                    dport,
                    flags: CONN_F_TEMPLATE,
                    fwmark: 0,
                    pe: engine
                        .zip(pe_data)
                        .map(|(name, data)| PeData { name, data }),
                };
                let t = self.create(spec, Some(&mut svc.dests[dest]), now);
                self.set_timeout(t, svc.config.timeout as Time * SEC);
                t
            };
            ct = Some(t);
        }
        let flags = one_packet_flag(svc, pkt.proto);
        let spec = NewConn {
            proto: pkt.proto as u8,
            af,
            caddr,
            cport,
            vaddr,
            vport,
            daddr,
            dport,
            flags,
            fwmark: 0,
            pe: None,
        };
        let cp = self.create(spec, Some(svc.dests.get_mut(dest)?), now);
        if let Some(t) = ct {
            self.control_add(cp, t);
            self.rearm(t, now);
        }
        conn_stats(svc, dest, totals);
        Some(cp)
    }

    /// A cache-bypass entry (`ip_vs_leave` with `cache_bypass` on a fwmark
    /// service): no real server, forwarded to the packet's own
    /// destination. The caller checks the conditions (fwmark service, not
    /// an ICMP error, remote unicast destination) and then processes the
    /// packet with it.
    pub fn bypass(&mut self, svc: &Service, pkt: &Packet<'_>, now: Time) -> ConnId {
        let af = svc.key.af();
        let unspecified = match af {
            Af::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Af::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let spec = NewConn {
            proto: pkt.proto as u8,
            af,
            caddr: pkt.saddr,
            cport: pkt.sport,
            vaddr: pkt.daddr,
            vport: pkt.dport,
            daddr: unspecified,
            dport: 0,
            flags: CONN_F_BYPASS | one_packet_flag(svc, pkt.proto),
            fwmark: pkt.mark,
            pe: None,
        };
        self.create(spec, None, now)
    }
}

fn one_packet_flag(svc: &Service, proto: Protocol) -> u32 {
    if svc.config.is_onepacket() && proto == Protocol::Udp {
        CONN_F_ONE_PACKET
    } else {
        0
    }
}
