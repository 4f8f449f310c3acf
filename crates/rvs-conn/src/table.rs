//! The connection table (`net/netfilter/ipvs/ip_vs_conn.c`): entries in a
//! slab, one hash chain per entry keyed like the kernel's by
//! (protocol, client address, client port) — which serves both the request
//! lookup and the reply lookup, since a reply's destination is the client —
//! templates in the same chains, and a timer queue ordered by expiry.
//!
//! Costs: lookups, inserts and removals are O(1) on average (chains are
//! kept at about one entry per bucket). A packet that re-arms an entry to a
//! later time only writes the entry; a timer item is queued only when the
//! expiry moves earlier (a state change to a shorter timeout), so the queue
//! holds O(entries) items. Nothing allocates per packet; the slab, buckets
//! and queue grow geometrically.
//!
//! Real servers are reached only through [`DestStore`] once an entry
//! exists, because a deleted real server lives on in the trash while
//! entries point at it.

use crate::conn::*;
use crate::pe::PeData;
use crate::sysctl::Sysctls;
use crate::timeouts::{Timeouts, CONTROL_REARM, NEW_CONN_TIMEOUT};
use crate::{sctp, tcp};
use rvs_core::{Af, Dest, DestId, DestStore, FwdMethod, Protocol, Time};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;

const MIN_BUCKETS: usize = 256;

/// The identity and attributes of a new entry (the kernel's
/// `ip_vs_conn_param` plus the `ip_vs_conn_new` arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConn {
    /// IP protocol number (0 for fwmark templates).
    pub proto: u8,
    pub af: Af,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// `CONN_F_*` flags requested by the caller (TEMPLATE, ONE_PACKET,
    /// NO_CPORT, BYPASS ...). The real server's forwarding flags are added
    /// when it is bound.
    pub flags: u32,
    /// The packet's firewall mark.
    pub fwmark: u32,
    /// Persistence-engine data (templates only).
    pub pe: Option<PeData>,
}

/// What [`ConnTable::check_in`] decided for a request packet that hit an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InVerdict {
    /// Use the entry.
    Hit(ConnId),
    /// Treat the packet as having no entry: schedule it afresh. The old
    /// entry, if any, was told to expire now.
    Miss,
    /// Drop the packet silently (its real server was deleted and
    /// `expire_nodest_conn` is off).
    Drop,
}

/// Memory the table holds, for `rvsctl` and the benchmark report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// `size_of::<Conn>()`.
    pub entry_bytes: usize,
    /// Live entries (connections and templates).
    pub entries: usize,
    /// Allocated entry slots.
    pub slots: usize,
    pub buckets: usize,
    pub timer_items: usize,
    /// Bytes held by slots, buckets, timer queue and PE data.
    pub total_bytes: usize,
}

/// The IPVS connection table of one director.
#[derive(Debug)]
pub struct ConnTable {
    pub sysctls: Sysctls,
    pub timeouts: Timeouts,
    pub(crate) slots: Vec<Conn>,
    free: u32,
    live: usize,
    templates: usize,
    hashed: usize,
    buckets: Vec<u32>,
    seed: [u64; 2],
    timers: BinaryHeap<Reverse<(Time, u32, u32)>>,
    pub(crate) pe: HashMap<u32, PeData>,
    no_cport: usize,
}

impl Default for ConnTable {
    fn default() -> ConnTable {
        ConnTable::new()
    }
}

const K0: u64 = 0xa076_1d64_78bd_642f;
const K1: u64 = 0xe703_7ed1_a0b4_28db;
const K2: u64 = 0x8ebc_6af0_9c88_c6e3;

fn fold(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

impl ConnTable {
    /// An empty table with default sysctls and timeouts and a fixed hash
    /// seed (deterministic; see [`ConnTable::with_seed`]).
    pub fn new() -> ConnTable {
        ConnTable::with_seed(0x05ee_d1b5_c0de)
    }

    /// An empty table whose bucket hash is keyed by `seed`. A daemon facing
    /// untrusted clients should pass a random seed, as the kernel does.
    pub fn with_seed(seed: u64) -> ConnTable {
        ConnTable {
            sysctls: Sysctls::default(),
            timeouts: Timeouts::default(),
            slots: Vec::new(),
            free: NIL,
            live: 0,
            templates: 0,
            hashed: 0,
            buckets: vec![NIL; MIN_BUCKETS],
            seed: [fold(seed ^ K0, K1), fold(seed ^ K2, K0)],
            timers: BinaryHeap::new(),
            pe: HashMap::new(),
            no_cport: 0,
        }
    }

    // ---- counts and access ----------------------------------------------

    /// Live entries, templates included.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Live persistence templates.
    pub fn template_count(&self) -> usize {
        self.templates
    }

    /// Live connections (entries that are not templates).
    pub fn conn_count(&self) -> usize {
        self.live - self.templates
    }

    /// The entry `id` names, if it is still live.
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.idx as usize)
            .filter(|c| c.gen == id.gen && c.is_live())
    }

    pub(crate) fn id_of(&self, idx: u32) -> ConnId {
        ConnId {
            idx,
            gen: self.slots[idx as usize].gen,
        }
    }

    fn valid(&self, id: ConnId) -> bool {
        self.get(id).is_some()
    }

    /// The entry controlling `id` (its template), if any.
    pub fn control_of(&self, id: ConnId) -> Option<ConnId> {
        let c = self.get(id)?;
        (c.control != NIL).then(|| self.id_of(c.control))
    }

    /// Persistence-engine name and data of an entry (sip templates).
    pub fn pe_data(&self, id: ConnId) -> Option<&PeData> {
        self.get(id)?;
        self.pe.get(&id.idx)
    }

    /// Every live entry, in slot order, as `ipvsadm -L -c` lists them.
    pub fn iter(&self) -> impl Iterator<Item = ConnEntry<'_>> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_live())
            .map(move |(i, c)| {
                let pe = self.pe.get(&(i as u32));
                ConnEntry {
                    id: ConnId {
                        idx: i as u32,
                        gen: c.gen,
                    },
                    proto: proto_name(c.proto),
                    af: c.af,
                    caddr: c.caddr(),
                    cport: c.cport,
                    vaddr: c.vaddr(),
                    vport: c.vport,
                    daddr: c.daddr(),
                    dport: c.dport,
                    state: c.state_name(),
                    expires: c.expires,
                    template: c.is_template(),
                    flags: c.flags,
                    dest: c.dest(),
                    pe_name: pe.map(|p| p.name),
                    pe_data: pe.map(|p| &p.data[..]),
                }
            })
    }

    /// Memory held by the table.
    pub fn memory(&self) -> MemoryUse {
        let entry_bytes = std::mem::size_of::<Conn>();
        let pe_bytes: usize = self
            .pe
            .values()
            .map(|p| p.data.len() + std::mem::size_of::<(u32, PeData)>() + 8)
            .sum();
        MemoryUse {
            entry_bytes,
            entries: self.live,
            slots: self.slots.capacity(),
            buckets: self.buckets.capacity(),
            timer_items: self.timers.len(),
            total_bytes: self.slots.capacity() * entry_bytes
                + self.buckets.capacity() * 4
                + self.timers.capacity() * std::mem::size_of::<Reverse<(Time, u32, u32)>>()
                + pe_bytes,
        }
    }

    // ---- hashing ----------------------------------------------------------

    fn hash_addr(&self, proto: u8, addr: &Addr, port: u16) -> u64 {
        let (a, b) = addr.words();
        let x = fold(a ^ self.seed[0] ^ K0, b ^ self.seed[1] ^ K1);
        fold(
            x ^ ((proto as u64) << 16 | port as u64) ^ K2,
            self.seed[0] ^ K1,
        )
    }

    fn hash_bytes(&self, data: &[u8]) -> u64 {
        let mut h = self.seed[1] ^ data.len() as u64;
        for chunk in data.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            h = fold(h ^ u64::from_le_bytes(w) ^ K0, self.seed[0] ^ K2);
        }
        h
    }

    fn bucket_of(&self, h: u64) -> usize {
        (h as usize) & (self.buckets.len() - 1)
    }

    fn entry_hash(&self, idx: u32) -> u64 {
        match self.pe.get(&idx) {
            Some(p) => self.hash_bytes(&p.data),
            None => {
                let c = &self.slots[idx as usize];
                self.hash_addr(c.proto, &c.caddr, c.cport)
            }
        }
    }

    fn hash(&mut self, idx: u32) {
        if self.hashed + 1 > self.buckets.len() {
            self.grow();
        }
        let b = self.bucket_of(self.entry_hash(idx));
        let c = &mut self.slots[idx as usize];
        c.next = self.buckets[b];
        c.flags |= CONN_F_HASHED;
        self.buckets[b] = idx;
        self.hashed += 1;
    }

    fn unhash(&mut self, idx: u32) {
        if self.slots[idx as usize].flags & CONN_F_HASHED == 0 {
            return;
        }
        let b = self.bucket_of(self.entry_hash(idx));
        let next = self.slots[idx as usize].next;
        if self.buckets[b] == idx {
            self.buckets[b] = next;
        } else {
            let mut cur = self.buckets[b];
            while cur != NIL {
                let n = self.slots[cur as usize].next;
                if n == idx {
                    self.slots[cur as usize].next = next;
                    break;
                }
                cur = n;
            }
        }
        let c = &mut self.slots[idx as usize];
        c.flags &= !CONN_F_HASHED;
        c.next = NIL;
        self.hashed -= 1;
    }

    /// Doubles the bucket array, keeping each chain's order (newest first).
    fn grow(&mut self) {
        let old = std::mem::replace(&mut self.buckets, vec![NIL; 0]);
        let n = old.len() * 2;
        self.buckets = vec![NIL; n];
        let mut tails = vec![NIL; n];
        for head in old {
            let mut cur = head;
            while cur != NIL {
                let next = self.slots[cur as usize].next;
                let b = self.bucket_of(self.entry_hash(cur));
                self.slots[cur as usize].next = NIL;
                if tails[b] == NIL {
                    self.buckets[b] = cur;
                } else {
                    self.slots[tails[b] as usize].next = cur;
                }
                tails[b] = cur;
                cur = next;
            }
        }
    }

    // ---- lookups ----------------------------------------------------------

    fn find_in(&self, proto: u8, af: Af, c: &Addr, cport: u16, v: &Addr, vport: u16) -> u32 {
        let mut cur = self.buckets[self.bucket_of(self.hash_addr(proto, c, cport))];
        while cur != NIL {
            let e = &self.slots[cur as usize];
            if e.cport == cport
                && e.vport == vport
                && e.af == af
                && e.caddr == *c
                && e.vaddr == *v
                && (cport == 0) == (e.flags & CONN_F_NO_CPORT != 0)
                && e.proto == proto
                && e.flags & CONN_F_TEMPLATE == 0
            {
                return cur;
            }
            cur = e.next;
        }
        NIL
    }

    /// The request-side lookup (`ip_vs_conn_in_get`): the entry for a packet
    /// from `caddr:cport` to `vaddr:vport`, trying client port 0 (entries
    /// whose client port is not known yet) when nothing matches.
    pub fn lookup_in(
        &self,
        proto: Protocol,
        caddr: IpAddr,
        cport: u16,
        vaddr: IpAddr,
        vport: u16,
    ) -> Option<ConnId> {
        let af = Af::of(&caddr);
        let (c, v) = (Addr::from_ip(&caddr), Addr::from_ip(&vaddr));
        let p = proto as u8;
        let mut idx = self.find_in(p, af, &c, cport, &v, vport);
        if idx == NIL && self.no_cport > 0 && cport != 0 {
            idx = self.find_in(p, af, &c, 0, &v, vport);
        }
        (idx != NIL).then(|| self.id_of(idx))
    }

    /// The reply-side lookup (`ip_vs_conn_out_get`) for a packet from
    /// `saddr:sport` to `daddr:dport`: the client is the destination; the
    /// source must be the real server for NAT entries and the virtual
    /// address for the other methods.
    pub fn lookup_out(
        &self,
        proto: Protocol,
        saddr: IpAddr,
        sport: u16,
        daddr: IpAddr,
        dport: u16,
    ) -> Option<ConnId> {
        let af = Af::of(&daddr);
        let (s, d) = (Addr::from_ip(&saddr), Addr::from_ip(&daddr));
        let p = proto as u8;
        let mut cur = self.buckets[self.bucket_of(self.hash_addr(p, &d, dport))];
        while cur != NIL {
            let e = &self.slots[cur as usize];
            if e.cport == dport && e.flags & CONN_F_TEMPLATE == 0 {
                let (sa, sp) = if e.flags & CONN_F_FWD_MASK == CONN_F_MASQ {
                    (&e.daddr, e.dport)
                } else {
                    (&e.vaddr, e.vport)
                };
                if sport == sp && e.af == af && e.caddr == d && *sa == s && e.proto == p {
                    return Some(self.id_of(cur));
                }
            }
            cur = e.next;
        }
        None
    }

    /// The template lookup (`ip_vs_ct_in_get`): by masked client, virtual
    /// address (or fwmark) and port, or — for a persistence engine — by its
    /// data.
    pub(crate) fn find_template(
        &self,
        proto: u8,
        af: Af,
        c: &Addr,
        v: &Addr,
        vport: u16,
        pe: Option<&[u8]>,
    ) -> u32 {
        let h = match pe {
            Some(d) => self.hash_bytes(d),
            None => self.hash_addr(proto, c, 0),
        };
        let mut cur = self.buckets[self.bucket_of(h)];
        while cur != NIL {
            let e = &self.slots[cur as usize];
            if e.flags & CONN_F_TEMPLATE != 0
                && e.af == af
                && e.caddr == *c
                && e.vaddr == *v
                && e.vport == vport
                && e.cport == 0
                && e.proto == proto
            {
                let own = self.pe.get(&cur).map(|p| &p.data[..]);
                if own == pe {
                    return cur;
                }
            }
            cur = e.next;
        }
        NIL
    }

    /// Public form of the template lookup, for listings and tests.
    pub fn lookup_template(
        &self,
        proto: u8,
        caddr: IpAddr,
        vaddr: IpAddr,
        vport: u16,
        pe_data: Option<&[u8]>,
    ) -> Option<ConnId> {
        let af = Af::of(&caddr);
        let idx = self.find_template(
            proto,
            af,
            &Addr::from_ip(&caddr),
            &Addr::from_ip(&vaddr),
            vport,
            pe_data,
        );
        (idx != NIL).then(|| self.id_of(idx))
    }

    // ---- creation, binding, timers -----------------------------------------

    /// Creates an entry (`ip_vs_conn_new`): binds it to `dest` (counting it
    /// there), hashes it unless it is a one-packet entry, and arms its
    /// timer for 3 s (templates: the caller sets their timeout). The
    /// protocol state machine has not run yet.
    pub fn create(&mut self, spec: NewConn, dest: Option<&mut Dest>, now: Time) -> ConnId {
        let idx = self.alloc();
        let mut flags = spec.flags & !CONN_F_HASHED;
        let mut dest_raw = NO_DEST;
        if let Some(d) = dest {
            flags = bind_dest(d, flags);
            dest_raw = d.id.0;
        }
        {
            let c = &mut self.slots[idx as usize];
            c.caddr = Addr::from_ip(&spec.caddr);
            c.vaddr = Addr::from_ip(&spec.vaddr);
            c.daddr = Addr::from_ip(&spec.daddr);
            c.cport = spec.cport;
            c.vport = spec.vport;
            c.dport = spec.dport;
            c.proto = spec.proto;
            c.af = spec.af;
            c.daf = Af::of(&spec.daddr);
            c.flags = flags;
            c.fwmark = spec.fwmark;
            c.dest = dest_raw;
            c.state = 0;
            c.old_state = crate::sync::NEVER_SENT;
            c.sync_endtime = (now as u32) & !3;
            c.timeout = NEW_CONN_TIMEOUT as u32;
            c.in_pkts = 0;
            c.n_control = 0;
            c.control = NIL;
            c.next = NIL;
        }
        if flags & CONN_F_NO_CPORT != 0 {
            self.no_cport += 1;
        }
        if flags & CONN_F_TEMPLATE != 0 {
            self.templates += 1;
            if let Some(pe) = spec.pe {
                self.pe.insert(idx, pe);
            }
        }
        if flags & CONN_F_ONE_PACKET == 0 {
            self.hash(idx);
        }
        self.live += 1;
        let c = &mut self.slots[idx as usize];
        c.expires = now + NEW_CONN_TIMEOUT;
        c.wake = c.expires;
        let (w, g) = (c.wake, c.gen);
        self.timers.push(Reverse((w, idx, g)));
        self.id_of(idx)
    }

    fn alloc(&mut self) -> u32 {
        if self.free != NIL {
            let idx = self.free;
            let c = &mut self.slots[idx as usize];
            self.free = c.next;
            c.gen = c.gen.wrapping_add(1);
            idx
        } else {
            let idx = self.slots.len() as u32;
            let mut c = Conn::vacant();
            c.gen = 1;
            self.slots.push(c);
            idx
        }
    }

    /// Makes `template` control `conn` (`ip_vs_control_add`).
    pub fn control_add(&mut self, conn: ConnId, template: ConnId) {
        if !self.valid(conn) || !self.valid(template) {
            return;
        }
        let c = &mut self.slots[conn.idx as usize];
        if c.control != NIL {
            return;
        }
        c.control = template.idx;
        self.slots[template.idx as usize].n_control += 1;
    }

    /// Sets the entry's idle timeout (ms) without touching its timer.
    pub fn set_timeout(&mut self, id: ConnId, timeout: Time) {
        if self.valid(id) {
            self.slots[id.idx as usize].timeout = timeout.min(u32::MAX as Time) as u32;
        }
    }

    /// Puts an entry back after use (`ip_vs_conn_put`): restarts its timer
    /// with its timeout; a one-packet entry is freed at once instead.
    pub fn put(&mut self, id: ConnId, now: Time, store: &mut (impl DestStore + ?Sized)) {
        if !self.valid(id) {
            return;
        }
        let idx = id.idx;
        if self.slots[idx as usize].flags & CONN_F_ONE_PACKET != 0 {
            self.fire(idx, now, store);
        } else {
            let t = now + self.slots[idx as usize].timeout as Time;
            self.arm(idx, t);
        }
    }

    pub(crate) fn arm(&mut self, idx: u32, at: Time) {
        let c = &mut self.slots[idx as usize];
        c.expires = at;
        if at < c.wake {
            c.wake = at;
            let g = c.gen;
            self.timers.push(Reverse((at, idx, g)));
        }
    }

    /// Makes the entry's timer fire at `now` at the latest
    /// (`ip_vs_conn_expire_now`); it is freed by the next [`ConnTable::expire`].
    pub fn expire_now(&mut self, id: ConnId, now: Time) {
        if self.valid(id) && self.slots[id.idx as usize].expires > now {
            self.arm(id.idx, now);
        }
    }

    /// Runs every timer due at or before `now`, each at its own due time
    /// (so an entry that still controls others is re-armed for 60 s from
    /// when it fell due). Returns how many entries were freed.
    pub fn expire(&mut self, now: Time, store: &mut (impl DestStore + ?Sized)) -> usize {
        let before = self.live;
        while let Some(&Reverse((t, idx, gen))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let c = &mut self.slots[idx as usize];
            if c.gen != gen || !c.is_live() || c.wake != t {
                continue;
            }
            if c.expires > now {
                c.wake = c.expires;
                let w = c.wake;
                self.timers.push(Reverse((w, idx, gen)));
                continue;
            }
            let at = c.expires;
            self.fire(idx, at, store);
        }
        before - self.live
    }

    /// The timer handler (`ip_vs_conn_expire`), run at time `at`.
    fn fire(&mut self, idx: u32, at: Time, store: &mut (impl DestStore + ?Sized)) {
        let c = &mut self.slots[idx as usize];
        if c.n_control > 0 {
            c.timeout = CONTROL_REARM as u32;
            c.expires = at + CONTROL_REARM;
            c.wake = c.expires;
            let (w, g) = (c.wake, c.gen);
            self.timers.push(Reverse((w, idx, g)));
            return;
        }
        self.free_entry(idx, at, store);
    }

    fn free_entry(&mut self, idx: u32, at: Time, store: &mut (impl DestStore + ?Sized)) {
        self.unhash(idx);
        let (control, chain_drop) = {
            let c = &self.slots[idx as usize];
            (c.control, c.timeout == 0)
        };
        if control != NIL {
            self.slots[idx as usize].control = NIL;
            let ct = &mut self.slots[control as usize];
            ct.n_control = ct.n_control.saturating_sub(1);
            let drop_ct = chain_drop
                && ct.n_control == 0
                && (ct.flags & CONN_F_TEMPLATE == 0 || ct.state & CTPL_ASSURED == 0);
            if drop_ct {
                let id = self.id_of(control);
                self.expire_now(id, at);
            }
        }
        let c = &self.slots[idx as usize];
        let (flags, dest) = (c.flags, c.dest);
        if dest != NO_DEST {
            if let Some(d) = store.dest_mut(DestId(dest)) {
                unbind_dest(d, flags);
            }
        }
        if flags & CONN_F_NO_CPORT != 0 {
            self.no_cport -= 1;
        }
        if flags & CONN_F_TEMPLATE != 0 {
            self.templates -= 1;
            self.pe.remove(&idx);
        }
        self.live -= 1;
        let c = &mut self.slots[idx as usize];
        c.gen = c.gen.wrapping_add(1);
        c.flags = 0;
        c.dest = NO_DEST;
        c.next = self.free;
        self.free = idx;
    }

    /// Deletes an entry and the chain it belongs to (`ip_vs_conn_del`): its
    /// timeout is set to 0, so a controlling template that is left with no
    /// connections and is not ASSURED goes too. An entry that still
    /// controls others is re-armed for 60 s instead.
    pub fn delete(&mut self, id: ConnId, now: Time, store: &mut (impl DestStore + ?Sized)) {
        if !self.valid(id) {
            return;
        }
        self.slots[id.idx as usize].timeout = 0;
        self.fire(id.idx, now, store);
    }

    /// Fills in the client port of a NO_CPORT entry on its first packet
    /// (`ip_vs_conn_fill_cport`).
    pub fn fill_cport(&mut self, id: ConnId, cport: u16) {
        if !self.valid(id) || self.slots[id.idx as usize].flags & CONN_F_NO_CPORT == 0 {
            return;
        }
        let hashed = self.slots[id.idx as usize].flags & CONN_F_HASHED != 0;
        self.unhash(id.idx);
        let c = &mut self.slots[id.idx as usize];
        c.flags &= !CONN_F_NO_CPORT;
        c.cport = cport;
        self.no_cport -= 1;
        if hashed {
            self.hash(id.idx);
        }
    }

    /// Invalidates a template so it can never match again (6.1's
    /// `ip_vs_check_template` failure): virtual and real ports become
    /// 65535, the client port 0. Its timer is left alone.
    pub(crate) fn invalidate_template(&mut self, idx: u32) {
        let c = &mut self.slots[idx as usize];
        if c.vport != INVALID_PORT {
            c.dport = INVALID_PORT;
            c.vport = INVALID_PORT;
            c.cport = 0;
        }
    }

    // ---- packets ------------------------------------------------------------

    /// Checks a request packet that found entry `id` (the part of
    /// `ip_vs_in` between lookup and scheduling): port reuse by a new
    /// connection (`conn_reuse_mode`, and `expire_nodest_conn` with a
    /// weight-0 real server) and entries whose real server was deleted.
    /// `new_conn` is [`crate::sched::is_new_conn`] of the packet (and false
    /// for non-first fragments). There is no netfilter conntrack here, so a
    /// reused port is always rescheduled at once (never the "1-second delay").
    pub fn check_in(
        &mut self,
        id: ConnId,
        new_conn: bool,
        now: Time,
        store: &mut (impl DestStore + ?Sized),
    ) -> InVerdict {
        let Some(c) = self.get(id) else {
            return InVerdict::Miss;
        };
        let (dest, n_control) = (c.dest(), c.n_control);
        if new_conn {
            let weight0 = self.sysctls.expire_nodest_conn
                && dest
                    .and_then(|d| store.dest_mut(d))
                    .is_some_and(|d| d.config.weight == 0);
            let resched = weight0
                || (self.sysctls.conn_reuse_mode != 0
                    && new_conn_expected(c, self.sysctls.conn_reuse_mode));
            if resched {
                if n_control == 0 {
                    self.expire_now(id, now);
                }
                return InVerdict::Miss;
            }
        }
        if let Some(d) = dest {
            let available = store.dest_mut(d).is_some_and(|d| d.available);
            if !available {
                if self.sysctls.expire_nodest_conn {
                    self.expire_now(id, now);
                    return InVerdict::Miss;
                }
                return InVerdict::Drop;
            }
        }
        InVerdict::Hit(id)
    }

    /// Handles one packet of entry `id`: counts it in the real server's
    /// statistics through the store (`bytes` = IP length; the store counts
    /// only while the server is available, as Linux does), runs the protocol state machine for
    /// `dir`, and puts the entry back (re-arming its timer; a one-packet
    /// entry is freed). Returns the entry as it is after the packet, or
    /// `None` if `id` is stale.
    pub fn process(
        &mut self,
        id: ConnId,
        dir: Direction,
        l4: Transport,
        bytes: u64,
        now: Time,
        store: &mut (impl DestStore + ?Sized),
    ) -> Option<ConnInfo> {
        let c = self.get(id)?;
        if c.is_template() {
            return None;
        }
        if let Some(d) = c.dest() {
            match dir {
                Direction::Input => store.count_in(d, bytes),
                Direction::Output => store.count_out(d, bytes),
            }
        }
        self.transition(id.idx, dir, l4, store);
        if dir == Direction::Input {
            let c = &mut self.slots[id.idx as usize];
            if c.flags & CONN_F_ONE_PACKET != 0 {
                if c.control != NIL {
                    let ct = c.control as usize;
                    self.slots[ct].in_pkts = self.slots[ct].in_pkts.wrapping_add(1);
                }
            } else {
                c.in_pkts = c.in_pkts.wrapping_add(1);
            }
        }
        let info = self.slots[id.idx as usize].info();
        self.put(id, now, store);
        Some(info)
    }

    /// Runs the protocol state machine for one packet (`ip_vs_set_state`),
    /// without statistics or timer.
    pub(crate) fn transition(
        &mut self,
        idx: u32,
        dir: Direction,
        l4: Transport,
        store: &mut (impl DestStore + ?Sized),
    ) {
        let c = &self.slots[idx as usize];
        let proto = c.protocol();
        match (proto, l4) {
            (Some(Protocol::Tcp), Transport::Tcp(flags)) => {
                let td = self.table_dir(idx, dir);
                let state = self.slots[idx as usize].state;
                let secure = self.sysctls.secure_tcp_active();
                let new = tcp::next_state(secure, td, flags, state);
                if new != state {
                    self.set_activity(idx, tcp::is_active(new), store);
                    if new == tcp::ESTABLISHED {
                        self.assure_control(idx);
                    }
                }
                let t = self.timeouts.tcp[new as usize];
                let c = &mut self.slots[idx as usize];
                c.state = new;
                c.timeout = t as u32;
            }
            (Some(Protocol::Sctp), Transport::Sctp(chunks)) => {
                let td = self.table_dir(idx, dir);
                let state = self.slots[idx as usize].state;
                let new = sctp::next_state(td, chunks, state);
                if new != state {
                    self.set_activity(idx, sctp::is_active(new), store);
                    if new == sctp::ESTABLISHED {
                        self.assure_control(idx);
                    }
                }
                let t = self.timeouts.sctp[new as usize];
                let c = &mut self.slots[idx as usize];
                c.state = new;
                c.timeout = t as u32;
            }
            (Some(Protocol::Udp), Transport::Udp) => {
                let t = self.timeouts.udp[crate::udp::NORMAL as usize];
                self.slots[idx as usize].timeout = t as u32;
                if dir == Direction::Output {
                    self.assure_control(idx);
                }
            }
            // A packet of another protocol than the entry's: no transition.
            _ => {}
        }
    }

    /// INPUT becomes INPUT_ONLY for entries whose replies are not seen; the
    /// first reply clears that.
    fn table_dir(&mut self, idx: u32, dir: Direction) -> tcp::TableDir {
        let c = &mut self.slots[idx as usize];
        match dir {
            Direction::Output => {
                c.flags &= !CONN_F_NOOUTPUT;
                tcp::TableDir::Output
            }
            Direction::Input if c.flags & CONN_F_NOOUTPUT != 0 => tcp::TableDir::InputOnly,
            Direction::Input => tcp::TableDir::Input,
        }
    }

    /// Moves the entry between the real server's active and inactive counts.
    fn set_activity(&mut self, idx: u32, active: bool, store: &mut (impl DestStore + ?Sized)) {
        let c = &mut self.slots[idx as usize];
        if c.dest == NO_DEST {
            return;
        }
        let inactive = c.flags & CONN_F_INACTIVE != 0;
        if inactive == active {
            if active {
                c.flags &= !CONN_F_INACTIVE;
            } else {
                c.flags |= CONN_F_INACTIVE;
            }
            if let Some(d) = store.dest_mut(DestId(c.dest)) {
                if active {
                    d.inactconns = d.inactconns.saturating_sub(1);
                    d.activeconns += 1;
                } else {
                    d.activeconns = d.activeconns.saturating_sub(1);
                    d.inactconns += 1;
                }
            }
        }
    }

    /// `ip_vs_control_assure_ct`: the controlling template becomes ASSURED.
    fn assure_control(&mut self, idx: u32) {
        let ct = self.slots[idx as usize].control;
        if ct != NIL {
            let t = &mut self.slots[ct as usize];
            if t.flags & CONN_F_TEMPLATE != 0 {
                t.state |= CTPL_ASSURED;
            }
        }
    }

    // ---- real-server removal ------------------------------------------------

    /// `ip_vs_expire_nodest_conn_flush`: deletes every entry whose real
    /// server is no longer available (deleted), except those that still
    /// control others; a template goes with its last connection. Run after
    /// a real server is deleted while `expire_nodest_conn` is on.
    pub fn expire_nodest_conn_flush(
        &mut self,
        now: Time,
        store: &mut (impl DestStore + ?Sized),
    ) -> usize {
        self.flush_where(None, now, store)
    }

    /// The same walk restricted to entries of one real server (skipped if
    /// that server is available again, e.g. re-added from the trash).
    pub fn flush_dest(
        &mut self,
        dest: DestId,
        now: Time,
        store: &mut (impl DestStore + ?Sized),
    ) -> usize {
        self.flush_where(Some(dest), now, store)
    }

    fn flush_where(
        &mut self,
        only: Option<DestId>,
        now: Time,
        store: &mut (impl DestStore + ?Sized),
    ) -> usize {
        let before = self.live;
        let mut availability: HashMap<u64, bool> = HashMap::new();
        for idx in 0..self.slots.len() as u32 {
            let c = &self.slots[idx as usize];
            if !c.is_live() || c.dest == NO_DEST || only.is_some_and(|d| d.0 != c.dest) {
                continue;
            }
            let dest = c.dest;
            let available = *availability
                .entry(dest)
                .or_insert_with(|| store.dest_mut(DestId(dest)).is_some_and(|d| d.available));
            if available || c.n_control > 0 {
                continue;
            }
            let control = c.control;
            let id = self.id_of(idx);
            self.delete(id, now, store);
            if control != NIL {
                let ct = &self.slots[control as usize];
                if ct.is_live() && ct.n_control == 0 {
                    let cid = self.id_of(control);
                    self.delete(cid, now, store);
                }
            }
        }
        before - self.live
    }
}

/// `is_new_conn_expected`: may a new connection take over this entry's ports?
fn new_conn_expected(c: &Conn, mode: u8) -> bool {
    if c.control != NIL {
        return false;
    }
    match c.protocol() {
        Some(Protocol::Tcp) => {
            c.state == tcp::TIME_WAIT
                || c.state == tcp::CLOSE
                || (mode & 2 != 0 && c.state == tcp::FIN_WAIT && c.flags & CONN_F_NOOUTPUT != 0)
        }
        Some(Protocol::Sctp) => c.state == sctp::CLOSED,
        _ => false,
    }
}

/// The flags a real server gives its entries (`dest->conn_flags`): its
/// forwarding method, INACTIVE, and NOOUTPUT unless it is NAT.
pub fn dest_conn_flags(d: &Dest) -> u32 {
    let fwd = match d.config.fwd {
        FwdMethod::Masq => CONN_F_MASQ,
        FwdMethod::Local => CONN_F_LOCALNODE,
        FwdMethod::Tunnel => CONN_F_TUNNEL,
        FwdMethod::Route => CONN_F_DROUTE,
        FwdMethod::Bypass => CONN_F_BYPASS,
    };
    let mut f = fwd | CONN_F_INACTIVE;
    if fwd != CONN_F_MASQ {
        f |= CONN_F_NOOUTPUT;
    }
    f
}

/// `ip_vs_bind_dest`: counts a new entry in the real server (connections
/// start inactive unless they come from the sync master, templates count
/// in `persistconns`) and sets OVERLOAD
/// once active + inactive reaches the upper threshold.
pub(crate) fn bind_dest(d: &mut Dest, flags: u32) -> u32 {
    let mut conn_flags = dest_conn_flags(d);
    let mut flags = flags;
    if flags & CONN_F_SYNC != 0 {
        // A synced connection keeps the master's activity bit and takes
        // its forwarding method from the local real server.
        if flags & CONN_F_TEMPLATE == 0 {
            conn_flags &= !CONN_F_INACTIVE;
        }
        flags &= !(CONN_F_FWD_MASK | CONN_F_NOOUTPUT);
    }
    let flags = flags | conn_flags;
    if flags & CONN_F_TEMPLATE == 0 {
        if flags & CONN_F_INACTIVE == 0 {
            d.activeconns += 1;
        } else {
            d.inactconns += 1;
        }
    } else {
        d.persistconns += 1;
    }
    let u = d.config.u_threshold;
    if u != 0 && d.activeconns as u64 + d.inactconns as u64 >= u as u64 {
        d.overload = true;
    }
    flags
}

/// `ip_vs_unbind_dest`: uncounts an entry and clears OVERLOAD below the
/// lower threshold, or below ¾ of the upper one when there is no lower
/// threshold, or at once when there is no threshold at all.
pub(crate) fn unbind_dest(d: &mut Dest, flags: u32) {
    if flags & CONN_F_TEMPLATE == 0 {
        if flags & CONN_F_INACTIVE != 0 {
            d.inactconns = d.inactconns.saturating_sub(1);
        } else {
            d.activeconns = d.activeconns.saturating_sub(1);
        }
    } else {
        d.persistconns = d.persistconns.saturating_sub(1);
    }
    let total = d.activeconns as u64 + d.inactconns as u64;
    let (l, u) = (d.config.l_threshold as u64, d.config.u_threshold as u64);
    if l != 0 {
        if total < l {
            d.overload = false;
        }
    } else if u != 0 {
        if total * 4 < u * 3 {
            d.overload = false;
        }
    } else {
        d.overload = false;
    }
}
