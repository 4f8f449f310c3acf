//! The connection table's side of connection synchronisation
//! (`ip_vs_proc_conn` and the entry fields `ip_vs_sync_conn_needed` uses in
//! `net/netfilter/ipvs/ip_vs_sync.c`): installing an entry a sync master
//! described on a backup, and the per-entry bookkeeping a master keeps to
//! decide when to send an entry again. The wire format and the decisions
//! themselves live in the `rvs-sync` crate.

use crate::conn::*;
use crate::pe::PeData;
use crate::table::{bind_dest, ConnTable, NewConn};
use crate::{sctp, tcp, udp};
use rvs_core::{Af, DestId, DestStore, Protocol, Time, SEC};
use std::net::IpAddr;

/// Timeout of a synced entry whose message carried none and whose state has
/// no protocol timeout (templates from version 0 messages): 3 minutes.
pub const SYNC_DEFAULT_TIMEOUT: Time = 3 * 60 * SEC;

/// [`SyncMark::old_state`] of an entry the master has never sent (no
/// protocol has this many states).
pub const NEVER_SENT: u8 = u8::MAX;

/// One connection as a sync master described it (a decoded record; the
/// arguments of `ip_vs_proc_conn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedConn {
    /// IP protocol number (0 for fwmark templates).
    pub proto: u8,
    pub af: Af,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// `CONN_F_*` flags as sent; only [`CONN_F_BACKUP_MASK`] is kept.
    pub flags: u32,
    /// Protocol state (templates: NONE / ASSURED) as sent.
    pub state: u16,
    /// Idle timeout in seconds; 0 (version 0 messages) means the backup's
    /// own timeout for that state.
    pub timeout_secs: u32,
    pub fwmark: u32,
    /// Persistence-engine data (kept for templates only, as in Linux).
    pub pe: Option<PeData>,
}

/// Why a synced record was not installed (the kernel's "single msg
/// dropped" cases of `ip_vs_proc_sync_conn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRefused {
    /// A connection (not a template) of a protocol IPVS does not handle.
    Protocol(u8),
    /// A state number the protocol does not have.
    State(u8, u16),
    /// The addresses are not all of the record's family.
    Family,
}

impl std::fmt::Display for SyncRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncRefused::Protocol(p) => write!(f, "unsupported protocol {p}"),
            SyncRefused::State(p, s) => write!(f, "invalid {} state {s}", proto_name(*p)),
            SyncRefused::Family => write!(f, "addresses of mixed families"),
        }
    }
}

/// What [`ConnTable::install_synced`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// A new entry, flagged [`CONN_F_SYNC`].
    Created(ConnId),
    /// An existing entry took the record's state, timeout and activity bit.
    Updated(ConnId),
    /// The late expiry notice (inactive) of a connection the backup has
    /// already replaced with one to another real server: ignored.
    Ignored,
}

/// The per-entry bookkeeping of a sync master (`old_state` and
/// `sync_endtime` of `struct ip_vs_conn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncMark {
    /// The state last sent, or [`NEVER_SENT`].
    pub old_state: u8,
    /// Wrapping milliseconds: the expiry time as of the last send, with a
    /// retry count in the low 2 bits. A new entry starts at its creation
    /// time with no retries.
    pub endtime: u32,
}

/// The number of states of a protocol, if IPVS handles it.
fn state_count(proto: u8) -> Option<usize> {
    match proto_from_number(proto)? {
        Protocol::Tcp => Some(tcp::STATES),
        Protocol::Udp => Some(udp::STATES),
        Protocol::Sctp => Some(sctp::STATES),
    }
}

impl ConnTable {
    /// Installs or refreshes an entry from a sync message on a backup
    /// (`ip_vs_proc_conn`). `dest` is the local real server the record
    /// maps to (`ip_vs_find_dest`: through the service of its virtual
    /// address or fwmark), if any; an entry without one exists unbound and
    /// is bound when a later record finds it. `sync_threshold` becomes the
    /// entry's packet count, as the kernel does.
    ///
    /// A connection that exists with another real server is replaced when
    /// the record is active and the record is ignored when it is inactive.
    /// On an existing entry only the INACTIVE and SEQ bits change (moving
    /// the entry between the server's active and inactive counts); state
    /// and timeout always come from the record, the timeout being the
    /// record's (seconds) or, when 0, this table's timeout for the state
    /// (3 minutes for templates). The timer restarts from `now`.
    pub fn install_synced(
        &mut self,
        s: SyncedConn,
        dest: Option<DestId>,
        sync_threshold: u32,
        now: Time,
        store: &mut (impl DestStore + ?Sized),
    ) -> Result<Installed, SyncRefused> {
        let mut flags = (s.flags & CONN_F_BACKUP_MASK) | CONN_F_SYNC;
        let template = flags & CONN_F_TEMPLATE != 0;
        let state = if template {
            // Linux keeps (and only logs) a template state it does not know.
            s.state.min(u8::MAX as u16) as u8
        } else {
            let n = state_count(s.proto).ok_or(SyncRefused::Protocol(s.proto))?;
            if s.state as usize >= n {
                return Err(SyncRefused::State(s.proto, s.state));
            }
            s.state as u8
        };
        if Af::of(&s.caddr) != s.af || Af::of(&s.vaddr) != s.af || Af::of(&s.daddr) != s.af {
            return Err(SyncRefused::Family);
        }

        let (ca, va, da) = (
            Addr::from_ip(&s.caddr),
            Addr::from_ip(&s.vaddr),
            Addr::from_ip(&s.daddr),
        );
        let mut found = if template {
            let pe = s.pe.as_ref().map(|p| &p.data[..]);
            self.find_template(s.proto, s.af, &ca, &va, s.vport, pe)
        } else {
            let p = proto_from_number(s.proto).ok_or(SyncRefused::Protocol(s.proto))?;
            self.lookup_in(p, s.caddr, s.cport, s.vaddr, s.vport)
                .map_or(NIL, |id| id.idx)
        };
        if found != NIL && !template {
            let c = &self.slots[found as usize];
            if c.dport != s.dport || c.daddr != da || c.daf != s.af {
                if flags & CONN_F_INACTIVE != 0 {
                    return Ok(Installed::Ignored);
                }
                let id = self.id_of(found);
                self.expire_now(id, now);
                found = NIL;
            }
        }

        let result = if found != NIL {
            let idx = found;
            let (old_flags, cur_dest) = {
                let c = &self.slots[idx as usize];
                (c.flags, c.dest)
            };
            if (old_flags ^ flags) & CONN_F_INACTIVE != 0 && !template && cur_dest != NO_DEST {
                if let Some(d) = store.dest_mut(DestId(cur_dest)) {
                    if flags & CONN_F_INACTIVE != 0 {
                        d.activeconns = d.activeconns.saturating_sub(1);
                        d.inactconns += 1;
                    } else {
                        d.inactconns = d.inactconns.saturating_sub(1);
                        d.activeconns += 1;
                    }
                }
            }
            flags = (flags & CONN_F_BACKUP_UPD_MASK) | (old_flags & !CONN_F_BACKUP_UPD_MASK);
            self.slots[idx as usize].flags = flags;
            if cur_dest == NO_DEST {
                // ip_vs_try_bind_dest
                if let Some(d) = dest.and_then(|id| store.dest_mut(id)) {
                    let c = &mut self.slots[idx as usize];
                    c.flags = bind_dest(d, c.flags);
                    c.dest = d.id.0;
                }
            }
            Installed::Updated(self.id_of(idx))
        } else {
            let spec = NewConn {
                proto: s.proto,
                af: s.af,
                caddr: s.caddr,
                cport: s.cport,
                vaddr: s.vaddr,
                vport: s.vport,
                daddr: s.daddr,
                dport: s.dport,
                flags,
                fwmark: s.fwmark,
                pe: if template { s.pe } else { None },
            };
            let d = dest.and_then(|id| store.dest_mut(id));
            Installed::Created(self.create(spec, d, now))
        };

        let id = match result {
            Installed::Created(id) | Installed::Updated(id) => id,
            Installed::Ignored => return Ok(result),
        };
        let timeout = if s.timeout_secs != 0 {
            (s.timeout_secs as Time * SEC).min(u32::MAX as Time)
        } else if !template {
            match proto_from_number(s.proto) {
                Some(Protocol::Tcp) => self.timeouts.tcp[state as usize],
                Some(Protocol::Udp) => self.timeouts.udp[state as usize],
                Some(Protocol::Sctp) => self.timeouts.sctp[state as usize],
                None => SYNC_DEFAULT_TIMEOUT,
            }
        } else {
            SYNC_DEFAULT_TIMEOUT
        };
        let c = &mut self.slots[id.idx as usize];
        c.in_pkts = sync_threshold;
        c.state = state;
        c.old_state = state;
        c.timeout = timeout as u32;
        self.put(id, now, store);
        Ok(result)
    }

    /// The sync master's bookkeeping of an entry.
    pub fn sync_mark(&self, id: ConnId) -> Option<SyncMark> {
        self.get(id).map(|c| SyncMark {
            old_state: c.old_state,
            endtime: c.sync_endtime,
        })
    }

    /// Records what the sync master decided for an entry.
    pub fn set_sync_mark(&mut self, id: ConnId, mark: SyncMark) {
        if self.get(id).is_some() {
            let c = &mut self.slots[id.idx as usize];
            c.old_state = mark.old_state;
            c.sync_endtime = mark.endtime;
        }
    }

    /// Adds one to an entry's packet count and returns it (a template
    /// counts the syncs of the connections it controls).
    pub fn bump_in_pkts(&mut self, id: ConnId) -> Option<u32> {
        self.get(id)?;
        let c = &mut self.slots[id.idx as usize];
        c.in_pkts = c.in_pkts.wrapping_add(1);
        Some(c.in_pkts)
    }
}
