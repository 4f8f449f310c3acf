//! The backup's side (`ip_vs_process_message`, `ip_vs_proc_sync_conn`,
//! `ip_vs_find_dest`): reads a datagram, filters it by syncid, maps each
//! record to the local real server through the local service of its
//! virtual address (or fwmark) and installs it in the connection table
//! with [`ConnTable::install_synced`].

use crate::wire::{decode, ConnRecord, DecodeError};
use rvs_conn::conn::{CONN_F_FWD_MASK, CONN_F_MASQ};
use rvs_conn::pe::{self, PeData};
use rvs_conn::sched::{FTPDATA, FTPPORT};
use rvs_conn::{ConnId, ConnTable, Installed, SyncedConn};
use rvs_core::table::ServiceTable;
use rvs_core::{Af, DestId, Protocol, ServiceKey, Time};
use std::net::IpAddr;

/// What one datagram did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A message with records (possibly none usable).
    Records(Tally),
    /// An rvs backup asks the master for its whole table.
    TableRequest { syncid: u8 },
    /// Another sync group's message (this backup's syncid is not 0 and differs).
    OtherSyncid(u8),
    /// Not a sync message: refused whole.
    Malformed(DecodeError),
}

/// What happened to the records of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub created: u32,
    pub updated: u32,
    /// Late inactive notices of replaced connections.
    pub ignored: u32,
    /// Records the kernel drops one by one: unknown protocol or state,
    /// unknown mandatory option, unknown persistence engine.
    pub refused: u32,
    /// The rest of the message was unreadable.
    pub truncated: bool,
}

/// Totals of a receiver, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverStats {
    pub messages: u64,
    pub malformed: u64,
    pub other_syncid: u64,
    pub created: u64,
    pub updated: u64,
    pub refused: u64,
}

/// The sync backup of one director.
#[derive(Debug, Clone)]
pub struct Receiver {
    syncid: u8,
    sync_threshold: u32,
    pub stats: ReceiverStats,
}

/// `ip_vs_find_dest`: the real server `daddr:dport` of the local service
/// that `vaddr:vport` (or `fwmark`) reaches. For a fwmark service and a
/// method other than NAT the real server's port is 0 (then `dport` is tried).
#[allow(clippy::too_many_arguments)]
pub fn find_dest(
    services: &ServiceTable,
    af: Af,
    daddr: IpAddr,
    dport: u16,
    vaddr: IpAddr,
    vport: u16,
    proto: u8,
    fwmark: u32,
    flags: u32,
) -> Option<DestId> {
    let mut svc = None;
    if fwmark != 0 {
        svc = services.service(&ServiceKey::Fwmark { mark: fwmark, af });
    }
    let protocol = match proto {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        132 => Some(Protocol::Sctp),
        _ => None,
    };
    if let Some(p) = protocol {
        let key = |port| ServiceKey::Addr {
            proto: p,
            addr: vaddr,
            port,
        };
        if svc.is_none() {
            svc = services.service(&key(vport));
        }
        // FTP data connections belong to the FTP service.
        if svc.is_none() && p == Protocol::Tcp && (vport == FTPDATA || vport >= 1024) {
            svc = services.service(&key(FTPPORT));
        }
        // The catch-all port-zero service.
        if svc.is_none() {
            svc = services.service(&key(0));
        }
    }
    let svc = svc?;
    let port = if fwmark != 0 && flags & CONN_F_FWD_MASK != CONN_F_MASQ {
        0
    } else {
        dport
    };
    let i = svc
        .dest_index(&daddr, port)
        .or_else(|| svc.dest_index(&daddr, port ^ dport))?;
    Some(svc.dests[i].id)
}

/// A record as the connection table takes it; `None` if its persistence
/// engine is unknown or missing (`ip_vs_conn_fill_param_sync` fails).
pub fn synced_conn(r: &ConnRecord) -> Option<SyncedConn> {
    let pe = match &r.pe_data {
        Some(data) => {
            let name = std::str::from_utf8(r.pe_name.as_deref()?).ok()?;
            Some(PeData {
                name: pe::engine(name)?,
                data: data.clone().into_boxed_slice(),
            })
        }
        None => None,
    };
    Some(SyncedConn {
        proto: r.protocol,
        af: Af::of(&r.caddr),
        caddr: r.caddr,
        cport: r.cport,
        vaddr: r.vaddr,
        vport: r.vport,
        daddr: r.daddr,
        dport: r.dport,
        flags: r.flags,
        state: r.state,
        timeout_secs: r.timeout,
        fwmark: r.fwmark,
        pe,
    })
}

impl Receiver {
    /// A backup of sync group `syncid` (0: accept every group), giving
    /// installed entries the packet count `sync_threshold` as Linux does.
    pub fn new(syncid: u8, sync_threshold: u32) -> Receiver {
        Receiver {
            syncid,
            sync_threshold,
            stats: ReceiverStats::default(),
        }
    }

    pub fn syncid(&self) -> u8 {
        self.syncid
    }

    /// Reads one datagram and installs its records.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        now: Time,
        services: &mut ServiceTable,
        conns: &mut ConnTable,
    ) -> Received {
        self.receive_into(datagram, now, services, conns, &mut Vec::new())
    }

    /// [`Receiver::receive`], appending the entries it created or updated
    /// to `installed` (for an engine that mirrors them into its own
    /// table, as the xdp engine does into its BPF maps).
    pub fn receive_into(
        &mut self,
        datagram: &[u8],
        now: Time,
        services: &mut ServiceTable,
        conns: &mut ConnTable,
        installed: &mut Vec<ConnId>,
    ) -> Received {
        let m = match decode(datagram) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                return Received::Malformed(e);
            }
        };
        if self.syncid != 0 && m.syncid != self.syncid {
            self.stats.other_syncid += 1;
            return Received::OtherSyncid(m.syncid);
        }
        if m.is_table_request() {
            return Received::TableRequest { syncid: m.syncid };
        }
        self.stats.messages += 1;
        let mut t = Tally {
            refused: m.skipped.len() as u32,
            truncated: m.dropped_rest.is_some(),
            ..Tally::default()
        };
        for r in &m.records {
            // Version 0 records (IPv4, no fwmark, no timeout) go through the
            // same installation.
            let Some(s) = synced_conn(r) else {
                t.refused += 1;
                continue;
            };
            let dest = find_dest(
                services, s.af, s.daddr, s.dport, s.vaddr, s.vport, s.proto, s.fwmark, s.flags,
            );
            match conns.install_synced(s, dest, self.sync_threshold, now, services) {
                Ok(Installed::Created(id)) => {
                    t.created += 1;
                    installed.push(id);
                }
                Ok(Installed::Updated(id)) => {
                    t.updated += 1;
                    installed.push(id);
                }
                Ok(Installed::Ignored) => t.ignored += 1,
                Err(_) => t.refused += 1,
            }
        }
        self.stats.created += t.created as u64;
        self.stats.updated += t.updated as u64;
        self.stats.refused += t.refused as u64;
        Received::Records(t)
    }
}
