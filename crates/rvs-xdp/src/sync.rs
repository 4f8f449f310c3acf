//! Connection sync on the xdp engine (see docs/failover.md, "Connection
//! sync"): the master's sync sender fed from the engine's view of the
//! flows, and the backup's synced entries written into the BPF connection
//! map, so that a director taking over the VIP forwards the first mid-flow
//! packet of an established connection to the same real server.
//!
//! **Master.** The BPF program keeps no per-packet record userspace could
//! read, so the engine's tick (1 s) is where flows are seen: every entry
//! that is new or whose state or activity changed since the last tick is
//! offered to [`SyncFeed::due`], which decides as Linux's
//! `ip_vs_sync_conn_needed` does for the states (TCP in ESTABLISHED,
//! FIN_WAIT, CLOSE_WAIT, TIME_WAIT and CLOSE, sent on every change of
//! state; UDP once) and, having no packet counts, re-sends an active entry
//! once half its timeout (at least 10 s) has passed since it was last sent,
//! so the backup's copy never expires before the master's. Due entries
//! (with their persistence template) go to the sender, and the message is
//! closed at the end of the tick so it leaves at once: a flow reaches the
//! backup at most one tick after it was established. Nothing is sent while
//! [`SyncLink::sending`] says no (rvsd: while this director is a VRRP
//! backup), so a backup never echoes what it received.
//!
//! **Backup.** The sync receiver installs records in the director's
//! connection table; [`synced_entries`] picks those the BPF map can carry
//! and [`SyncHandle::install`] writes them with the local real server's
//! slot (and the NAT reply entry for masquerading). The tick then mirrors
//! them like any other entry; an entry the master stops refreshing ages
//! out with the table's timeout for its state.

use crate::engine::Inner;
use crate::maps::{self, ConnKey, ConnVal};
use rvs_conn::{tcp, ConnId, ConnTable};
use rvs_core::{DestId, FwdMethod, Protocol, Time, SEC};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The master's sender as rvsd shares it with its sync thread (lock order:
/// the director, then this).
pub type SharedSender = Arc<Mutex<Option<rvs_sync::Sender>>>;

/// Whether this director sends sync messages now.
pub type SendGate = Arc<dyn Fn() -> bool + Send + Sync>;

/// What the engine's tick feeds: the sender and the gate.
#[derive(Clone)]
pub struct SyncLink {
    pub sender: SharedSender,
    pub sending: SendGate,
}

impl std::fmt::Debug for SyncLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncLink")
            .field("sending", &(self.sending)())
            .finish()
    }
}

/// Shortest interval between two sends of an entry whose state did not
/// change (Linux's floor for `sync_refresh_period`).
pub const MIN_REFRESH: Time = 10 * SEC;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    state: u8,
    at: Time,
}

/// The master's memory of what it sent, per connection; decides what the
/// tick sends. Pure: time is an argument.
#[derive(Debug, Default)]
pub struct SyncFeed {
    sent: HashMap<ConnKey, Sent>,
    templates: HashMap<ConnId, Time>,
}

fn refresh_of(timeout: Time) -> Time {
    (timeout / 2).max(MIN_REFRESH)
}

fn syncable_tcp(state: u8) -> bool {
    matches!(
        state,
        tcp::ESTABLISHED | tcp::FIN_WAIT | tcp::CLOSE | tcp::CLOSE_WAIT | tcp::TIME_WAIT
    )
}

impl SyncFeed {
    pub fn new() -> SyncFeed {
        SyncFeed::default()
    }

    /// Whether connection `key`, now in `state` with idle timeout
    /// `timeout` (ms), is to be sent after the tick saw it new or changed;
    /// a yes is recorded as sent at `now`.
    pub fn due(&mut self, key: &ConnKey, state: u8, timeout: Time, now: Time) -> bool {
        if key.proto == Protocol::Tcp as u8 && !syncable_tcp(state) {
            return false;
        }
        let due = match self.sent.get(key) {
            None => true,
            Some(s) if s.state != state => true,
            Some(s) => now.saturating_sub(s.at) >= refresh_of(timeout),
        };
        if due {
            self.sent.insert(*key, Sent { state, at: now });
        }
        due
    }

    /// Whether persistence template `id` (idle timeout `timeout`) is to be
    /// sent with a connection it controls: when never sent, or last sent
    /// half its timeout (at least 10 s) ago.
    pub fn template_due(&mut self, id: ConnId, timeout: Time, now: Time) -> bool {
        let due = self
            .templates
            .get(&id)
            .is_none_or(|at| now.saturating_sub(*at) >= refresh_of(timeout));
        if due {
            self.templates.insert(id, now);
        }
        due
    }

    /// Forgets a connection whose entry is gone.
    pub fn forget(&mut self, key: &ConnKey) {
        self.sent.remove(key);
    }

    /// Forgets everything (the gate closed: when it opens again, every
    /// flow counts as never sent).
    pub fn clear(&mut self) {
        self.sent.clear();
        self.templates.clear();
    }

    /// Connections remembered.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
}

/// The engine's sync state (a field of the engine; lock order: the
/// engine's state, the director, this, the sender).
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    link: Option<SyncLink>,
    feed: SyncFeed,
}

/// Called by the tick under the director lock with the entries it
/// mirrored this time (new, or state or activity changed) and every entry
/// still in the map. Returns how many records went to the sender.
pub(crate) fn feed(
    state: &Mutex<SyncState>,
    conns: &ConnTable,
    changed: &[(ConnKey, ConnId)],
    live: &HashSet<ConnKey>,
    now: Time,
) -> usize {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.feed.sent.retain(|k, _| live.contains(k));
    let Some(link) = s.link.clone() else {
        return 0;
    };
    if !(link.sending)() {
        s.feed.clear();
        return 0;
    }
    let mut records = Vec::new();
    for (key, id) in changed {
        let Some(c) = conns.get(*id) else { continue };
        if !s.feed.due(key, c.state(), c.timeout(), now) {
            continue;
        }
        if let Some(t) = conns.control_of(*id) {
            if let Some(tc) = conns.get(t).filter(|tc| tc.is_template()) {
                if s.feed.template_due(t, tc.timeout(), now) {
                    records.extend(rvs_sync::record_of(conns, t));
                }
            }
        }
        records.extend(rvs_sync::record_of(conns, *id));
    }
    s.feed.templates.retain(|id, _| conns.get(*id).is_some());
    drop(s);
    if records.is_empty() {
        return 0;
    }
    let mut g = link.sender.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sender) = g.as_mut() else { return 0 };
    let n = records.iter().filter(|r| sender.push(r, now)).count();
    // Close the message: it leaves with the sync thread's next turn
    // instead of waiting up to 2 s for more records.
    sender.flush();
    n
}

/// A synced connection the BPF map can carry: its key, the local real
/// server it is bound to and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncedEntry {
    pub key: ConnKey,
    pub dest: DestId,
    pub state: u8,
}

/// The entries among `ids` (just installed by the sync receiver) that the
/// engine can carry: TCP and UDP connections (not templates) bound to a
/// local real server. Call under the director lock, then hand the result
/// to [`SyncHandle::install`] after releasing it.
pub fn synced_entries(conns: &ConnTable, ids: &[ConnId]) -> Vec<SyncedEntry> {
    ids.iter()
        .filter_map(|id| {
            let c = conns.get(*id)?;
            if c.is_template() || !matches!(c.protocol(), Some(Protocol::Tcp | Protocol::Udp)) {
                return None;
            }
            Some(SyncedEntry {
                key: ConnKey {
                    caddr: c.caddr(),
                    cport: c.cport(),
                    vaddr: c.vaddr(),
                    vport: c.vport(),
                    proto: c.proto_number(),
                },
                dest: c.dest()?,
                state: c.state(),
            })
        })
        .collect()
}

/// The sync daemons' handle on a running engine (cheap to clone).
#[derive(Clone)]
pub struct SyncHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle").finish()
    }
}

impl SyncHandle {
    pub(crate) fn new(inner: Arc<Inner>) -> SyncHandle {
        SyncHandle { inner }
    }

    /// Feeds `link`'s sender from every tick from now on (`None`: stop).
    pub fn set_link(&self, link: Option<SyncLink>) {
        let mut s = self.inner.sync.lock().unwrap_or_else(|p| p.into_inner());
        s.link = link;
        s.feed.clear();
    }

    /// Writes synced entries into the BPF connection map, each bound to
    /// its real server's slot (NAT: with the reply entry), last seen now.
    /// Entries whose real server has no slot (not in the table the engine
    /// carries) are skipped. Do not hold the director lock. Returns how
    /// many were written.
    pub fn install(&self, entries: &[SyncedEntry]) -> usize {
        let mut n = 0;
        for e in entries {
            let Some((slot, fwd, addr, port)) = self.inner.dest_slot(e.dest) else {
                continue;
            };
            let nat = (fwd == FwdMethod::Masq)
                .then_some((addr, if port != 0 { port } else { e.key.vport }));
            let val = ConnVal {
                dest: slot,
                state: e.state,
                flags: if fwd == FwdMethod::Masq {
                    0
                } else {
                    maps::CONN_NOOUTPUT
                },
                seen: crate::now_units(),
            };
            self.inner.note_vip(&e.key.vaddr);
            match self.inner.dp.put_conn(&e.key, &val, nat) {
                Ok(()) => n += 1,
                Err(err) => tracing::warn!("synced connection: {err}"),
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(proto: Protocol, cport: u16) -> ConnKey {
        ConnKey {
            caddr: "198.18.1.2".parse().unwrap(),
            cport,
            vaddr: "198.18.0.10".parse().unwrap(),
            vport: 80,
            proto: proto as u8,
        }
    }

    const EST: Time = 900 * SEC;

    #[test]
    fn tcp_is_sent_on_each_syncable_state_and_never_in_syn_recv() {
        let mut f = SyncFeed::new();
        let k = key(Protocol::Tcp, 1000);
        assert!(!f.due(&k, tcp::SYN_RECV, 60 * SEC, 0));
        assert!(f.due(&k, tcp::ESTABLISHED, EST, 100));
        // Activity without a state change: not again so soon.
        assert!(!f.due(&k, tcp::ESTABLISHED, EST, 1100));
        assert!(f.due(&k, tcp::FIN_WAIT, 120 * SEC, 2100));
        assert!(f.due(&k, tcp::TIME_WAIT, 120 * SEC, 2200));
        assert!(!f.due(&k, tcp::TIME_WAIT, 120 * SEC, 2300));
    }

    #[test]
    fn an_active_entry_is_refreshed_after_half_its_timeout() {
        let mut f = SyncFeed::new();
        let k = key(Protocol::Tcp, 1000);
        assert!(f.due(&k, tcp::ESTABLISHED, EST, 0));
        assert!(!f.due(&k, tcp::ESTABLISHED, EST, EST / 2 - 1));
        assert!(f.due(&k, tcp::ESTABLISHED, EST, EST / 2));
        // Short timeouts are refreshed no more than every 10 s.
        let u = key(Protocol::Udp, 53);
        assert!(f.due(&u, 0, 4 * SEC, 0));
        assert!(!f.due(&u, 0, 4 * SEC, 9 * SEC));
        assert!(f.due(&u, 0, 4 * SEC, 10 * SEC));
    }

    /// A DR service with one real server, and a connection to it installed
    /// the way the tick mirrors a BPF entry.
    fn table_with_conn(state: u8) -> (ConnTable, ConnId, ConnKey, DestId) {
        use rvs_core::{Af, DestConfig, ServiceConfig, ServiceKey};
        let vip: std::net::IpAddr = "198.18.0.10".parse().unwrap();
        let skey = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: vip,
            port: 80,
        };
        let mut svcs = rvs_core::table::ServiceTable::new(Box::new(rvs_sched::new_scheduler));
        let mut c = ServiceConfig::defaults(Af::Inet);
        c.scheduler = "rr".into();
        svcs.add_service(skey, &c).unwrap();
        let mut d = DestConfig::new("198.19.1.2".parse().unwrap(), 80);
        d.fwd = FwdMethod::Route;
        svcs.add_dest(&skey, &d).unwrap();
        let dest = svcs.service(&skey).unwrap().dests[0].id;
        let k = key(Protocol::Tcp, 40000);
        let mut conns = ConnTable::new();
        let s = rvs_conn::SyncedConn {
            proto: 6,
            af: Af::Inet,
            caddr: k.caddr,
            cport: k.cport,
            vaddr: k.vaddr,
            vport: k.vport,
            daddr: "198.19.1.2".parse().unwrap(),
            dport: 80,
            flags: rvs_conn::conn::CONN_F_DROUTE | rvs_conn::conn::CONN_F_NOOUTPUT,
            state: state as u16,
            timeout_secs: 0,
            fwmark: 0,
            pe: None,
        };
        let id = match conns.install_synced(s, Some(dest), 0, 0, &mut svcs) {
            Ok(rvs_conn::Installed::Created(id)) => id,
            other => panic!("{other:?}"),
        };
        (conns, id, k, dest)
    }

    fn sent_records(sender: &SharedSender, now: Time) -> Vec<rvs_sync::wire::ConnRecord> {
        let mut g = sender.lock().unwrap();
        let s = g.as_mut().unwrap();
        let mut out = Vec::new();
        while let Some(d) = s.next_datagram(now) {
            out.extend(rvs_sync::decode(&d).unwrap().records);
        }
        out
    }

    #[test]
    fn the_tick_feeds_the_sender_only_through_an_open_gate() {
        let (conns, id, k, dest) = table_with_conn(tcp::ESTABLISHED);
        let sender: SharedSender = Arc::new(Mutex::new(Some(rvs_sync::Sender::new(
            7,
            1472,
            rvs_sync::SyncParams::default(),
        ))));
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let o = open.clone();
        let state = Mutex::new(SyncState::default());
        let live: HashSet<ConnKey> = [k].into_iter().collect();
        // No link: nothing.
        assert_eq!(feed(&state, &conns, &[(k, id)], &live, 0), 0);
        state.lock().unwrap().link = Some(SyncLink {
            sender: sender.clone(),
            sending: Arc::new(move || o.load(std::sync::atomic::Ordering::Relaxed)),
        });
        // A backup (gate closed) sends nothing.
        assert_eq!(feed(&state, &conns, &[(k, id)], &live, 0), 0);
        assert!(sent_records(&sender, 0).is_empty());
        // A master sends at once: the message is closed, not held 2 s.
        open.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(feed(&state, &conns, &[(k, id)], &live, 10), 1);
        let r = sent_records(&sender, 10);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].caddr, r[0].cport, r[0].dport), (k.caddr, 40000, 80));
        assert_eq!(r[0].state, tcp::ESTABLISHED as u16);
        // Seen again with no change: not re-sent.
        assert_eq!(feed(&state, &conns, &[(k, id)], &live, 1010), 0);
        // What a backup installs from such a record.
        assert_eq!(
            synced_entries(&conns, &[id]),
            vec![SyncedEntry {
                key: k,
                dest,
                state: tcp::ESTABLISHED
            }]
        );
    }

    #[test]
    fn a_forgotten_connection_is_sent_again() {
        let mut f = SyncFeed::new();
        let k = key(Protocol::Tcp, 1000);
        assert!(f.due(&k, tcp::ESTABLISHED, EST, 0));
        assert_eq!(f.len(), 1);
        f.forget(&k);
        assert!(f.is_empty());
        assert!(f.due(&k, tcp::ESTABLISHED, EST, 10));
        f.clear();
        assert!(f.due(&k, tcp::ESTABLISHED, EST, 20));
    }
}
