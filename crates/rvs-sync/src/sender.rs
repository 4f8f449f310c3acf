//! The master's side (`ip_vs_sync_conn`, `ip_vs_sync_conn_needed` and the
//! sync buffer queue of `ip_vs_sync.c`), sans I/O: which connection changes
//! are sent and when, and their batching into messages no longer than the
//! daemon's `sync_maxlen`.
//!
//! A packet engine calls [`Sender::conn_in`] after each packet it forwarded
//! from a client (Linux calls `ip_vs_sync_conn` from `ip_vs_in`). An engine
//! that does not see packets (the proxy engine) calls [`Sender::scan`]
//! periodically instead, which sends every entry whose state changed since
//! it was last sent, entries never sent, and entries whose expiry moved far
//! enough since (see [`Sender::scan`]). [`Sender::resend_all`] queues the
//! whole table, for a backup that asks for it. The driver sends what
//! [`Sender::next_datagram`] returns and sleeps until
//! [`Sender::next_wakeup`].

use crate::wire::{ConnRecord, MessageBuf, Version};
use rvs_conn::conn::{CONN_F_HASHED, CONN_F_ONE_PACKET, CONN_F_SEQ_MASK};
use rvs_conn::{sctp, tcp, ConnId, ConnTable, SyncMark};
use rvs_core::{Protocol, Time, SEC};
use std::collections::VecDeque;

/// A partly filled message is sent once it is this old (`IPVS_SYNC_FLUSH_TIME`).
pub const FLUSH_TIME: Time = 2 * SEC;
/// Most messages waiting to be sent (Linux: `sync_qlen_max`, free pages / 32);
/// more are dropped and counted.
pub const QLEN_MAX: usize = 8192;
pub use rvs_conn::sync::NEVER_SENT;

/// The sync sysctls (`net.ipv4.vs.sync_*`), with Linux's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncParams {
    /// `sync_threshold` (first value, default 3): an entry is sent when its
    /// packet count reaches this, then every `sync_period` packets.
    pub sync_threshold: u32,
    /// `sync_threshold` (second value, default 50); 0: only state changes
    /// (and the threshold once).
    pub sync_period: u32,
    /// `sync_refresh_period` in ms (default 0): when non-zero an entry is
    /// re-sent only when its expiry moved by at least this (or half its
    /// timeout, but at least 10 s), retrying `sync_retries` times.
    pub sync_refresh_period: Time,
    /// `sync_retries` (0..=3).
    pub sync_retries: u32,
    /// `sync_persist_mode`: send only templates for persistent services.
    pub sync_persist_mode: bool,
    /// `sync_version`.
    pub sync_version: Version,
}

impl Default for SyncParams {
    fn default() -> SyncParams {
        SyncParams {
            sync_threshold: 3,
            sync_period: 50,
            sync_refresh_period: 0,
            sync_retries: 0,
            sync_persist_mode: false,
            sync_version: Version::V1,
        }
    }
}

impl SyncParams {
    /// The kernel's checks: threshold < period unless period is 0; retries
    /// at most 3.
    pub fn validate(&self) -> Result<(), String> {
        if self.sync_period != 0 && self.sync_threshold >= self.sync_period {
            return Err(format!(
                "sync_threshold {} must be below sync_period {}",
                self.sync_threshold, self.sync_period
            ));
        }
        if self.sync_retries > 3 {
            return Err(format!("sync_retries {} is above 3", self.sync_retries));
        }
        Ok(())
    }
}

/// What a sender did so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderStats {
    pub records: u64,
    pub messages: u64,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
}

/// The sync master of one director.
#[derive(Debug)]
pub struct Sender {
    params: SyncParams,
    syncid: u8,
    maxlen: usize,
    /// The message being filled and when its first record went in.
    current: Option<(MessageBuf, Time)>,
    queue: VecDeque<Vec<u8>>,
    pub stats: SenderStats,
}

fn syncable_tcp(state: u8) -> bool {
    matches!(
        state,
        tcp::ESTABLISHED | tcp::FIN_WAIT | tcp::CLOSE | tcp::CLOSE_WAIT | tcp::TIME_WAIT
    )
}

fn syncable_sctp(state: u8) -> bool {
    matches!(
        state,
        sctp::ESTABLISHED
            | sctp::SHUTDOWN_SENT
            | sctp::SHUTDOWN_RECEIVED
            | sctp::SHUTDOWN_ACK_SENT
            | sctp::CLOSED
    )
}

/// Whether `state` of a `proto` connection is sent at all.
fn syncable(proto: Option<Protocol>, state: u8) -> bool {
    match proto {
        Some(Protocol::Tcp) => syncable_tcp(state),
        Some(Protocol::Sctp) => syncable_sctp(state),
        _ => true,
    }
}

/// `time_before(a, b)` on wrapping milliseconds.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Whether an entry is controlled, directly or not, by a template.
fn in_persistence(conns: &ConnTable, id: ConnId) -> bool {
    let mut cur = conns.control_of(id);
    while let Some(c) = cur {
        if conns.get(c).is_some_and(|e| e.is_template()) {
            return true;
        }
        cur = conns.control_of(c);
    }
    false
}

/// The record of a live entry. Flags are sent without HASHED, as Linux
/// does, and without the SEQ bits: rvs keeps no TCP sequence adjustments.
pub fn record_of(conns: &ConnTable, id: ConnId) -> Option<ConnRecord> {
    let c = conns.get(id)?;
    let pe = conns.pe_data(id);
    Some(ConnRecord {
        protocol: c.proto_number(),
        flags: c.flags() & !(CONN_F_HASHED | CONN_F_SEQ_MASK),
        state: c.state() as u16,
        cport: c.cport(),
        vport: c.vport(),
        dport: c.dport(),
        fwmark: c.fwmark(),
        timeout: (c.timeout() / SEC).min(u32::MAX as Time) as u32,
        caddr: c.caddr(),
        vaddr: c.vaddr(),
        daddr: c.daddr(),
        seq: None,
        pe_data: pe.map(|p| p.data.to_vec()),
        pe_name: pe.map(|p| p.name.as_bytes().to_vec()),
    })
}

impl Sender {
    /// A master stamping `syncid` on messages of at most `maxlen` bytes
    /// (the daemon's `sync_maxlen`; Linux's default 1472).
    pub fn new(syncid: u8, maxlen: u16, params: SyncParams) -> Sender {
        Sender {
            params,
            syncid,
            maxlen: (maxlen as usize).max(1),
            current: None,
            queue: VecDeque::new(),
            stats: SenderStats::default(),
        }
    }

    pub fn params(&self) -> &SyncParams {
        &self.params
    }

    /// Changes the sysctls while running; a change of `sync_version` closes
    /// the current message (Linux never mixes versions in one).
    pub fn set_params(&mut self, params: SyncParams) {
        if params.sync_version != self.params.sync_version {
            self.queue_current();
        }
        self.params = params;
    }

    /// `ip_vs_sync_conn_needed`: decides whether to send entry `id` after a
    /// packet that brought its count to `pkts`, and records the decision.
    fn needed(&self, conns: &mut ConnTable, id: ConnId, pkts: u32, now: Time) -> bool {
        let Some(c) = conns.get(id) else { return false };
        let Some(mark) = conns.sync_mark(id) else {
            return false;
        };
        let p = &self.params;
        let template = c.is_template();
        let state = c.state();
        let timeout = c.timeout().min(u32::MAX as Time) as u32;
        let orig = mark.endtime;
        let now32 = now as u32;
        let mut n = now32.wrapping_add(timeout) & !3;
        // Linux sends a changed TCP/SCTP state other than ESTABLISHED at once
        // (`force`); everything else passes the refresh and period checks.
        let mut check = true;
        if !template {
            if p.sync_persist_mode && in_persistence(conns, id) {
                return false;
            }
            if let Some(proto @ (Protocol::Tcp | Protocol::Sctp)) = c.protocol() {
                if !syncable(Some(proto), state) {
                    return false;
                }
                let established = match proto {
                    Protocol::Tcp => tcp::ESTABLISHED,
                    _ => sctp::ESTABLISHED,
                };
                if state != mark.old_state && state != established {
                    check = false;
                }
            }
        }
        if check {
            let refresh = p.sync_refresh_period.min(u32::MAX as Time) as u32;
            if refresh > 0 {
                let diff = n.wrapping_sub(orig) as i32;
                let min_diff = (timeout >> 1).max(10_000);
                if diff.unsigned_abs() < refresh.min(min_diff) {
                    let retries = orig & 3;
                    if retries >= p.sync_retries {
                        return false;
                    }
                    if before(now32, orig.wrapping_sub(timeout).wrapping_add(refresh >> 3)) {
                        return false;
                    }
                    n |= retries + 1;
                }
            }
            if p.sync_period > 0 {
                if !template && pkts % p.sync_period != p.sync_threshold {
                    return false;
                }
            } else if refresh == 0 && pkts != p.sync_threshold {
                return false;
            }
        }
        // The compare-and-swap of Linux always succeeds here (one owner).
        conns.set_sync_mark(
            id,
            SyncMark {
                old_state: state,
                endtime: n,
            },
        );
        true
    }

    /// After a packet from the client of entry `id` was forwarded (and the
    /// table processed it): sends the entry if it is due, then its
    /// controllers (a template counts one more packet each time), as
    /// `ip_vs_sync_conn` does. For a one-packet entry, which the table frees
    /// as it processes it, pass its template: see [`Sender::one_packet_in`].
    pub fn conn_in(&mut self, conns: &mut ConnTable, id: ConnId, now: Time) {
        let Some(c) = conns.get(id) else { return };
        if c.flags() & CONN_F_ONE_PACKET != 0 {
            let ct = conns.control_of(id);
            self.one_packet_in(conns, ct, now);
            return;
        }
        let pkts = c.in_pkts();
        self.chain(conns, id, pkts, now);
    }

    /// A one-packet entry's packet: the entry itself is never sent, its
    /// template (whose count the table already raised) is considered.
    pub fn one_packet_in(&mut self, conns: &mut ConnTable, template: Option<ConnId>, now: Time) {
        if self.params.sync_version == Version::V0 {
            return;
        }
        if let Some(ct) = template {
            if let Some(t) = conns.get(ct) {
                let pkts = if t.is_template() {
                    t.in_pkts()
                } else {
                    self.params.sync_threshold
                };
                self.chain(conns, ct, pkts, now);
            }
        }
    }

    fn chain(&mut self, conns: &mut ConnTable, id: ConnId, mut pkts: u32, now: Time) {
        let mut cur = id;
        loop {
            let v0 = self.params.sync_version == Version::V0;
            let sent = self.needed(conns, cur, pkts, now) && self.send_entry(conns, cur, now);
            // Version 0 sends the controller only after the connection.
            if v0 && !sent {
                return;
            }
            let Some(ct) = conns.control_of(cur) else {
                return;
            };
            pkts = match conns.get(ct) {
                Some(t) if t.is_template() => conns.bump_in_pkts(ct).unwrap_or(0),
                Some(_) => self.params.sync_threshold,
                None => return,
            };
            cur = ct;
        }
    }

    /// Appends an entry to the current message (queueing the message first
    /// if the entry does not fit). Returns whether it was added.
    fn send_entry(&mut self, conns: &ConnTable, id: ConnId, now: Time) -> bool {
        match record_of(conns, id) {
            Some(r) => self.push(&r, now),
            None => false,
        }
    }

    /// Appends a record. Version 0 cannot carry IPv6 entries (skipped).
    pub fn push(&mut self, r: &ConnRecord, now: Time) -> bool {
        let version = self.params.sync_version;
        if r.check(version).is_err() {
            return false;
        }
        if let Some((m, _)) = &self.current {
            if m.version() != version || !m.fits(r) {
                self.queue_current();
            }
        }
        let (m, _) = self
            .current
            .get_or_insert_with(|| (MessageBuf::new(version, self.syncid, self.maxlen), now));
        if m.push(r).is_err() {
            return false;
        }
        self.stats.records += 1;
        true
    }

    fn queue_current(&mut self) {
        if let Some((m, _)) = self.current.take() {
            if m.is_empty() {
                return;
            }
            if self.queue.len() >= QLEN_MAX {
                self.stats.dropped += 1;
                return;
            }
            self.queue.push_back(m.into_bytes());
        }
    }

    /// Closes the current message so it is sent at once.
    pub fn flush(&mut self) {
        self.queue_current();
    }

    /// The next datagram to send now: queued full messages first, then the
    /// current one if it has waited [`FLUSH_TIME`].
    pub fn next_datagram(&mut self, now: Time) -> Option<Vec<u8>> {
        if self.queue.is_empty() {
            if let Some((_, first)) = &self.current {
                if now.saturating_sub(*first) >= FLUSH_TIME {
                    self.queue_current();
                }
            }
        }
        let d = self.queue.pop_front()?;
        self.stats.messages += 1;
        Some(d)
    }

    /// When [`Sender::next_datagram`] will next have something, if ever
    /// without new records.
    pub fn next_wakeup(&self) -> Option<Time> {
        if !self.queue.is_empty() {
            return Some(0);
        }
        self.current.as_ref().map(|(_, first)| first + FLUSH_TIME)
    }

    /// Sends, for an engine that reports no packets, every entry that is
    /// due: a connection whose state changed since it was last sent (TCP
    /// and SCTP only in the states Linux syncs), any entry never sent, and
    /// an entry whose expiry moved by at least `sync_refresh_period` (when
    /// 0: by half its timeout, at least 10 s) since it was last sent, so a
    /// backup's copy of a busy connection does not expire before the
    /// master's. Returns how many records were added.
    pub fn scan(&mut self, conns: &mut ConnTable, now: Time) -> usize {
        let ids: Vec<ConnId> = conns.iter().map(|e| e.id).collect();
        let mut n = 0;
        for id in ids {
            let Some(c) = conns.get(id) else { continue };
            let Some(mark) = conns.sync_mark(id) else {
                continue;
            };
            if c.flags() & CONN_F_ONE_PACKET != 0 {
                continue;
            }
            let template = c.is_template();
            if !template && self.params.sync_persist_mode && in_persistence(conns, id) {
                continue;
            }
            let state = c.state();
            if !template && !syncable(c.protocol(), state) {
                continue;
            }
            let timeout = c.timeout().min(u32::MAX as Time) as u32;
            let end = (c.expires() as u32) & !3;
            let due = if mark.old_state == NEVER_SENT || state != mark.old_state {
                true
            } else {
                let refresh = match self.params.sync_refresh_period {
                    0 => (timeout >> 1).max(10_000),
                    r => r.min(u32::MAX as Time) as u32,
                };
                end.wrapping_sub(mark.endtime) as i32 >= refresh as i32
            };
            if !due {
                continue;
            }
            if self.send_entry(conns, id, now) {
                n += 1;
                conns.set_sync_mark(
                    id,
                    SyncMark {
                        old_state: state,
                        endtime: end,
                    },
                );
            }
        }
        n
    }

    /// Queues every entry of the table (templates first, so a backup can
    /// find them when the connections arrive) and closes the message: the
    /// answer to a backup's table request. Returns how many records.
    pub fn resend_all(&mut self, conns: &ConnTable, now: Time) -> usize {
        let mut ids: Vec<(bool, ConnId)> = conns
            .iter()
            .filter(|e| e.flags & CONN_F_ONE_PACKET == 0)
            .map(|e| (!e.template, e.id))
            .collect();
        ids.sort_by_key(|(conn, _)| *conn);
        let mut n = 0;
        for (_, id) in ids {
            if self.send_entry(conns, id, now) {
                n += 1;
            }
        }
        self.flush();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_conn::NewConn;
    use rvs_core::Af;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn conn(t: &mut ConnTable, cport: u16, proto: u8, now: Time) -> ConnId {
        t.create(
            NewConn {
                proto,
                af: Af::Inet,
                caddr: ip("198.18.0.10"),
                cport,
                vaddr: ip("198.18.0.100"),
                vport: 80,
                daddr: ip("198.19.1.2"),
                dport: 80,
                flags: 0,
                fwmark: 0,
                pe: None,
            },
            None,
            now,
        )
    }

    struct NoDests;
    impl rvs_core::DestStore for NoDests {
        fn dest_mut(&mut self, _: rvs_core::DestId) -> Option<&mut rvs_core::Dest> {
            None
        }
        fn count_conn(&mut self, _: rvs_core::DestId) {}
        fn count_in(&mut self, _: rvs_core::DestId, _: u64) {}
        fn count_out(&mut self, _: rvs_core::DestId, _: u64) {}
    }

    fn packet(t: &mut ConnTable, id: ConnId, flags: u8, now: Time) {
        use rvs_conn::{Direction, Transport};
        let l4 = if t.get(id).unwrap().proto_number() == 6 {
            Transport::Tcp(flags)
        } else {
            Transport::Udp
        };
        t.process(id, Direction::Input, l4, 60, now, &mut NoDests);
    }

    fn records(s: &mut Sender) -> usize {
        s.current.as_ref().map_or(0, |(m, _)| m.nr_conns() as usize)
            + s.queue
                .iter()
                .map(|d| crate::wire::decode(d).unwrap().records.len())
                .sum::<usize>()
    }

    #[test]
    fn established_is_sent_at_3_53_103_and_closing_states_at_once() {
        let mut t = ConnTable::new();
        let mut s = Sender::new(0, 1472, SyncParams::default());
        let id = conn(&mut t, 1000, 6, 0);
        packet(&mut t, id, tcp::SYN, 0);
        s.conn_in(&mut t, id, 0);
        assert_eq!(records(&mut s), 0, "SYN_RECV is never sent");
        let mut sent_at = vec![];
        for i in 2..=110u32 {
            let before = records(&mut s);
            packet(&mut t, id, tcp::ACK, i as Time);
            s.conn_in(&mut t, id, i as Time);
            if records(&mut s) > before {
                sent_at.push(i);
            }
        }
        assert_eq!(sent_at, vec![3, 53, 103]);
        // A FIN from the client (ESTABLISHED -> CLOSE_WAIT) goes at once.
        packet(&mut t, id, tcp::FIN | tcp::ACK, 200);
        s.conn_in(&mut t, id, 200);
        assert_eq!(records(&mut s), 4);
        assert_eq!(t.get(id).unwrap().state(), tcp::CLOSE_WAIT);
    }

    #[test]
    fn refresh_period_limits_resends_and_retries() {
        let p = SyncParams {
            sync_period: 0,
            sync_refresh_period: 60 * SEC,
            sync_retries: 1,
            ..SyncParams::default()
        };
        let mut t = ConnTable::new();
        let mut s = Sender::new(0, 1472, p);
        let id = conn(&mut t, 1000, 17, 0);
        packet(&mut t, id, 0, 0);
        s.conn_in(&mut t, id, 0);
        assert_eq!(records(&mut s), 1, "first packet: never sent before");
        // Within the refresh window: one retry once 1/8 of it has passed.
        packet(&mut t, id, 0, SEC);
        s.conn_in(&mut t, id, SEC);
        assert_eq!(records(&mut s), 1);
        packet(&mut t, id, 0, 8 * SEC);
        s.conn_in(&mut t, id, 8 * SEC);
        assert_eq!(records(&mut s), 2, "retry after refresh/8");
        packet(&mut t, id, 0, 20 * SEC);
        s.conn_in(&mut t, id, 20 * SEC);
        assert_eq!(records(&mut s), 2, "retries used up");
        // UDP timeout 300 s: min(60 s, 150 s) = 60 s since the last send.
        packet(&mut t, id, 0, 69 * SEC);
        s.conn_in(&mut t, id, 69 * SEC);
        assert_eq!(records(&mut s), 3);
    }

    #[test]
    fn messages_are_bounded_by_maxlen_and_partial_ones_wait_two_seconds() {
        let mut t = ConnTable::new();
        // Room for the header and 3 IPv4 records.
        let mut s = Sender::new(1, 8 + 3 * 36, SyncParams::default());
        for i in 0..7 {
            let id = conn(&mut t, 2000 + i, 17, 0);
            for _ in 0..3 {
                packet(&mut t, id, 0, 0);
            }
            s.conn_in(&mut t, id, 0);
        }
        let a = s.next_datagram(0).unwrap();
        let b = s.next_datagram(0).unwrap();
        assert_eq!((a.len(), b.len()), (116, 116));
        assert_eq!(s.next_datagram(FLUSH_TIME - 1), None);
        assert_eq!(s.next_wakeup(), Some(FLUSH_TIME));
        let c = s.next_datagram(FLUSH_TIME).unwrap();
        assert_eq!(crate::wire::decode(&c).unwrap().records.len(), 1);
        assert_eq!(s.next_wakeup(), None);
    }

    #[test]
    fn scan_sends_changes_new_entries_and_refreshes() {
        let mut t = ConnTable::new();
        let mut s = Sender::new(0, 1472, SyncParams::default());
        let tcp_id = conn(&mut t, 1, 6, 0);
        let udp_id = conn(&mut t, 2, 17, 0);
        packet(&mut t, tcp_id, tcp::SYN, 0);
        packet(&mut t, udp_id, 0, 0);
        assert_eq!(s.scan(&mut t, 0), 1, "UDP new; TCP SYN_RECV not synced");
        assert_eq!(s.scan(&mut t, 0), 0);
        packet(&mut t, tcp_id, tcp::ACK, SEC);
        assert_eq!(s.scan(&mut t, SEC), 1, "ESTABLISHED");
        // UDP re-armed 150 s later: its expiry moved by half its timeout.
        packet(&mut t, udp_id, 0, 149 * SEC);
        assert_eq!(s.scan(&mut t, 149 * SEC), 0);
        packet(&mut t, udp_id, 0, 150 * SEC);
        assert_eq!(s.scan(&mut t, 150 * SEC), 1);
    }

    #[test]
    fn params_are_validated_like_the_sysctl() {
        assert!(SyncParams::default().validate().is_ok());
        let p = SyncParams {
            sync_threshold: 50,
            ..SyncParams::default()
        };
        assert!(p.validate().is_err());
        let p = SyncParams {
            sync_threshold: 50,
            sync_period: 0,
            ..SyncParams::default()
        };
        assert!(p.validate().is_ok());
    }
}
