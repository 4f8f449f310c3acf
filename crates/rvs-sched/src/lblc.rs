//! Locality-based least connection. Mirrors
//! `net/netfilter/ipvs/ip_vs_lblc.c`, and holds the entry table and its
//! garbage collection, which `lblcr` shares.
//!
//! A 1024-bucket table (`CONFIG_IP_VS_LBLC_TAB_BITS` = 10, bucket =
//! `hash_32(fold(daddr), 10)`) maps a packet's destination address to one
//! server and the time it was last used. A lookup hit refreshes that time
//! and keeps the server if it is still in the service, has weight > 0 and
//! is not lblc-"overloaded" (below) — the OVERLOAD flag is not checked
//! there. Otherwise wlc's choice over all servers is taken and recorded, an
//! entry for another server being replaced.
//!
//! "Overloaded" is lblc's own notion: `activeconns > weight` while some
//! server of the service (any, even weight 0 or OVERLOAD) has
//! `activeconns * 2 < weight`.
//!
//! Garbage collection is a 60-second timer. Its counter starts at 1; on a
//! run where `counter % 30 == 0` every entry idle for at least the
//! expiration (sysctl `lblc_expiration`, 24 h by default) is dropped and the
//! counter goes back to 1; else, while the table holds at most 16384
//! entries, the counter just counts up; above that, entries idle for 6
//! minutes are dropped bucket by bucket from a rover until
//! `min((entries − 16384) * 4 / 3, 8192)` are gone.
//!
//! Deviations: the timer is driven by [`Scheduler::tick`] (and starts at
//! the first `tick` or `schedule`, since binding has no clock); a late tick
//! runs every period it missed. Linux 6.1 does not decrement its entry count
//! when a lookup replaces an entry, so the count drifts upwards and can
//! trigger the 6-minute collection early; we keep that count the same way.

use crate::hash::hash_32;
use crate::wlc::weighted_least;
use crate::DestRef;
use rvs_core::proto::fold_addr;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::{Dest, Time, SEC};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// log2 of the number of buckets.
pub const LBLC_TAB_BITS: u32 = 10;
/// Number of buckets.
pub const LBLC_TAB_SIZE: usize = 1 << LBLC_TAB_BITS;
/// Entries above which the 6-minute collection starts.
pub const LBLC_MAX_SIZE: i64 = LBLC_TAB_SIZE as i64 * 16;
/// The garbage-collection timer period.
pub const CHECK_EXPIRE_INTERVAL: Time = 60 * SEC;
/// Idle time after which an entry may go when the table is too full.
pub const ENTRY_TIMEOUT: Time = 6 * 60 * SEC;
/// Default `lblc_expiration` / `lblcr_expiration`.
pub const DEFAULT_EXPIRATION: Time = 24 * 60 * 60 * SEC;
/// Every this many timer runs, a full expiration check.
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// A tick this far behind resynchronises instead of replaying every period.
const MAX_CATCH_UP_RUNS: u32 = 24 * 60;

/// A live `lblc_expiration` / `lblcr_expiration` (ms). Clones share the
/// value, so a director can hand the same one to every service's scheduler
/// and change it at run time as the kernel's sysctl is changed: schedulers
/// read it at each use.
#[derive(Debug, Clone)]
pub struct Expiration(Arc<AtomicU64>);

impl Expiration {
    pub fn new(ms: Time) -> Expiration {
        Expiration(Arc::new(AtomicU64::new(ms)))
    }

    pub fn get(&self) -> Time {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, ms: Time) {
        self.0.store(ms, Ordering::Relaxed);
    }
}

impl Default for Expiration {
    /// 24 hours, the kernel default.
    fn default() -> Self {
        Expiration::new(DEFAULT_EXPIRATION)
    }
}

/// One entry: a destination address, when it was last used, and what the
/// scheduler remembers for it (a server for lblc, a server set for lblcr).
#[derive(Debug, Clone)]
pub(crate) struct Entry<V> {
    pub(crate) addr: IpAddr,
    pub(crate) lastuse: Time,
    pub(crate) value: V,
}

/// The kernel's `ip_vs_lblc_table` / `ip_vs_lblcr_table`.
#[derive(Debug, Clone)]
pub(crate) struct LocalityTable<V> {
    buckets: Vec<Vec<Entry<V>>>,
    /// The kernel's `entries` counter (see the lblc drift above).
    entries: i64,
    rover: usize,
    counter: u32,
    next_check: Option<Time>,
    expiration: Expiration,
}

fn bucket_of(addr: &IpAddr) -> usize {
    hash_32(fold_addr(addr), LBLC_TAB_BITS) as usize
}

impl<V> LocalityTable<V> {
    pub(crate) fn new(expiration: Expiration) -> LocalityTable<V> {
        LocalityTable {
            buckets: (0..LBLC_TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_check: None,
            expiration,
        }
    }

    pub(crate) fn expiration(&self) -> Time {
        self.expiration.get()
    }

    pub(crate) fn entries(&self) -> i64 {
        self.entries
    }

    pub(crate) fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    pub(crate) fn get_mut(&mut self, addr: &IpAddr) -> Option<&mut Entry<V>> {
        self.buckets[bucket_of(addr)]
            .iter_mut()
            .find(|e| e.addr == *addr)
    }

    pub(crate) fn get(&self, addr: &IpAddr) -> Option<&Entry<V>> {
        self.buckets[bucket_of(addr)]
            .iter()
            .find(|e| e.addr == *addr)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry<V>> {
        self.buckets.iter().flatten()
    }

    /// `ip_vs_lblc_hash`: adds an entry and counts it.
    pub(crate) fn insert(&mut self, addr: IpAddr, value: V, now: Time) {
        self.buckets[bucket_of(&addr)].push(Entry {
            addr,
            lastuse: now,
            value,
        });
        self.entries += 1;
    }

    /// `ip_vs_lblc_del` as `ip_vs_lblc_new` calls it: unlinks without
    /// touching the count.
    pub(crate) fn unlink(&mut self, addr: &IpAddr) {
        self.buckets[bucket_of(addr)].retain(|e| e.addr != *addr);
    }

    /// Starts the timer on first use (binding has no clock).
    pub(crate) fn start_timer(&mut self, now: Time) {
        self.next_check.get_or_insert(now + CHECK_EXPIRE_INTERVAL);
    }

    /// Runs every timer period that has come by `now`.
    pub(crate) fn tick(&mut self, now: Time) {
        self.start_timer(now);
        let mut runs = 0;
        while let Some(due) = self.next_check.filter(|&due| due <= now) {
            self.check_expire(now);
            runs += 1;
            self.next_check = Some(if runs >= MAX_CATCH_UP_RUNS {
                now + CHECK_EXPIRE_INTERVAL
            } else {
                due + CHECK_EXPIRE_INTERVAL
            });
        }
    }

    /// Drops the stale entries of bucket `j`; returns how many went.
    fn sweep(&mut self, j: usize, stale: impl Fn(&Entry<V>) -> bool) -> i64 {
        let before = self.buckets[j].len();
        self.buckets[j].retain(|e| !stale(e));
        let gone = (before - self.buckets[j].len()) as i64;
        self.entries -= gone;
        gone
    }

    /// `ip_vs_lblc_check_expire`: one timer run.
    fn check_expire(&mut self, now: Time) {
        const MASK: usize = LBLC_TAB_SIZE - 1;
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            let expiration = self.expiration.get();
            let mut j = self.rover;
            for _ in 0..LBLC_TAB_SIZE {
                j = (j + 1) & MASK;
                self.sweep(j, |e| now >= e.lastuse.saturating_add(expiration));
            }
            self.rover = j;
            self.counter = 1;
            return;
        }
        if self.entries <= LBLC_MAX_SIZE {
            self.counter += 1;
            return;
        }
        let mut goal = ((self.entries - LBLC_MAX_SIZE) * 4 / 3).min(LBLC_MAX_SIZE / 2);
        let mut j = self.rover;
        for _ in 0..LBLC_TAB_SIZE {
            j = (j + 1) & MASK;
            goal -= self.sweep(j, |e| now >= e.lastuse.saturating_add(ENTRY_TIMEOUT));
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }
}

/// lblc's "overloaded": more active connections than weight while some
/// server of the service is below half its weight.
pub(crate) fn is_overloaded(d: &Dest, dests: &[Box<Dest>]) -> bool {
    (d.activeconns as i32) > d.weight()
        && dests
            .iter()
            .any(|m| (m.activeconns as i32).wrapping_mul(2) < m.weight())
}

/// The `lblc` scheduler.
#[derive(Debug, Clone)]
pub struct LocalityBasedLeastConnection {
    table: LocalityTable<DestRef>,
}

impl Default for LocalityBasedLeastConnection {
    fn default() -> Self {
        LocalityBasedLeastConnection::with_expiration(DEFAULT_EXPIRATION)
    }
}

impl LocalityBasedLeastConnection {
    /// With the default `lblc_expiration` of 24 hours.
    pub fn new() -> LocalityBasedLeastConnection {
        LocalityBasedLeastConnection::default()
    }

    /// With sysctl `lblc_expiration` set to `expiration` (ms).
    pub fn with_expiration(expiration: Time) -> LocalityBasedLeastConnection {
        LocalityBasedLeastConnection::with_shared_expiration(Expiration::new(expiration))
    }

    /// Reading a `lblc_expiration` shared with others.
    pub fn with_shared_expiration(expiration: Expiration) -> LocalityBasedLeastConnection {
        LocalityBasedLeastConnection {
            table: LocalityTable::new(expiration),
        }
    }

    pub fn expiration(&self) -> Time {
        self.table.expiration()
    }

    /// Entries actually held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kernel's entry count (it can exceed [`len`](Self::len), see the
    /// module doc).
    pub fn counted_entries(&self) -> i64 {
        self.table.entries()
    }

    /// The server id and last use recorded for a destination address.
    pub fn entry(&self, daddr: &IpAddr) -> Option<(rvs_core::DestId, Time)> {
        self.table.get(daddr).map(|e| (e.value.id, e.lastuse))
    }
}

impl Scheduler for LocalityBasedLeastConnection {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn schedule(&mut self, svc: &SchedService<'_>, pkt: &PacketInfo, now: Time) -> Option<usize> {
        let dests = svc.dests;
        self.table.start_timer(now);
        if let Some(en) = self.table.get_mut(&pkt.daddr) {
            en.lastuse = now;
            if let Some(i) = en.value.resolve(dests) {
                if dests[i].weight() > 0 && !is_overloaded(&dests[i], dests) {
                    return Some(i);
                }
            }
        }
        let i = weighted_least(dests)?;
        // ip_vs_lblc_new: keep an entry that already names this server,
        // else replace it (without uncounting the old one).
        let id = dests[i].id;
        match self.table.get(&pkt.daddr) {
            Some(en) if en.value.id == id => {}
            Some(_) => {
                self.table.unlink(&pkt.daddr);
                self.table.insert(pkt.daddr, DestRef::at(dests, i), now);
            }
            None => self.table.insert(pkt.daddr, DestRef::at(dests, i), now),
        }
        Some(i)
    }

    fn tick(&mut self, now: Time) {
        self.table.tick(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{dests, pkt, svc};

    fn to(x: u8) -> PacketInfo {
        pkt([198, 18, 0, 2], 40000, [198, 18, 1, x])
    }

    #[test]
    fn a_destination_sticks_to_its_first_wlc_choice() {
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0)]);
        let mut s = LocalityBasedLeastConnection::new();
        assert_eq!(s.schedule(&svc(&ds), &to(1), 0), Some(0));
        ds[0].inactconns = 10;
        // wlc would now say B, but the entry keeps A.
        assert_eq!(s.schedule(&svc(&ds), &to(1), 5), Some(0));
        assert_eq!(s.entry(&to(1).daddr), Some((ds[0].id, 5)));
        assert_eq!(s.schedule(&svc(&ds), &to(2), 6), Some(1));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn overloaded_means_above_weight_while_another_is_below_half() {
        let mut ds = dests(&[(1, 0, 0), (4, 0, 0)]);
        let mut s = LocalityBasedLeastConnection::new();
        // wlc: 0/1 vs 0/4 -> A (tie).
        assert_eq!(s.schedule(&svc(&ds), &to(1), 0), Some(0));
        ds[0].activeconns = 2; // 2 > 1
        ds[1].activeconns = 2; // 2*2 < 4 is false: nobody is below half
        assert_eq!(s.schedule(&svc(&ds), &to(1), 1), Some(0));
        ds[1].activeconns = 1; // 1*2 < 4: now A is overloaded
        assert_eq!(s.schedule(&svc(&ds), &to(1), 2), Some(1));
        assert_eq!(s.entry(&to(1).daddr).unwrap().0, ds[1].id);
        // The replacement was not uncounted, as in the kernel.
        assert_eq!((s.len(), s.counted_entries()), (1, 2));
    }

    #[test]
    fn the_overload_flag_does_not_evict_a_cached_server_but_weight_zero_does() {
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0)]);
        let mut s = LocalityBasedLeastConnection::new();
        assert_eq!(s.schedule(&svc(&ds), &to(1), 0), Some(0));
        ds[0].overload = true;
        assert_eq!(s.schedule(&svc(&ds), &to(1), 1), Some(0));
        // A new destination skips the OVERLOAD server through wlc.
        assert_eq!(s.schedule(&svc(&ds), &to(2), 1), Some(1));
        ds[0].overload = false;
        ds[0].config.weight = 0;
        assert_eq!(s.schedule(&svc(&ds), &to(1), 2), Some(1));
    }

    #[test]
    fn a_server_that_left_is_replaced() {
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0)]);
        let mut s = LocalityBasedLeastConnection::new();
        assert_eq!(s.schedule(&svc(&ds), &to(1), 0), Some(0));
        let removed = ds.remove(0);
        s.del_dest(&svc(&ds), &removed, 0);
        assert_eq!(s.schedule(&svc(&ds), &to(1), 1), Some(0));
        assert_eq!(s.entry(&to(1).daddr).unwrap().0, ds[0].id);
        ds.clear();
        assert_eq!(s.schedule(&svc(&ds), &to(1), 2), None);
    }

    #[test]
    fn garbage_collection_runs_a_full_check_every_thirty_minutes() {
        let ds = dests(&[(1, 0, 0)]);
        let min = 60 * SEC;
        let mut s = LocalityBasedLeastConnection::with_expiration(10 * min);
        s.tick(0); // timer due at 1 min
        s.schedule(&svc(&ds), &to(1), 0);
        s.schedule(&svc(&ds), &to(2), 25 * min);
        // Runs at 1..29 min only count; the 30th run (at 30 min) checks.
        for t in 1..30 {
            s.tick(t * min);
            assert_eq!(s.len(), 2, "at {t} min");
        }
        s.tick(30 * min);
        assert_eq!(s.len(), 1);
        assert!(s.entry(&to(2).daddr).is_some());
        // A tick two periods late runs both.
        s.tick(32 * min);
        assert_eq!(s.table.counter, 3);
    }

    #[test]
    fn a_shared_expiration_is_read_at_use() {
        let ds = dests(&[(1, 0, 0)]);
        let min = 60 * SEC;
        let exp = Expiration::default();
        let mut s = LocalityBasedLeastConnection::with_shared_expiration(exp.clone());
        s.tick(0);
        s.schedule(&svc(&ds), &to(1), 0);
        exp.set(5 * min);
        assert_eq!(s.expiration(), 5 * min);
        s.tick(30 * min); // the 30th run: full check with the new value
        assert!(s.is_empty());
    }

    #[test]
    fn an_overfull_table_drops_entries_idle_for_six_minutes() {
        let mut t: LocalityTable<()> = LocalityTable::new(Expiration::default());
        let n = LBLC_MAX_SIZE + 300;
        for k in 0..n {
            let addr = IpAddr::V4((0x0A00_0000u32 + k as u32).into());
            t.insert(addr, (), if k < 1000 { 0 } else { 10 * 60 * SEC });
        }
        t.start_timer(0);
        // At 11 min, the 1000 oldest are 11 min idle, the rest 1 min.
        t.tick(11 * 60 * SEC);
        let gone = n - t.len() as i64;
        // goal = 300 * 4 / 3 = 400, reached bucket by bucket.
        assert!((400..1000).contains(&gone), "{gone}");
        assert_eq!(t.entries(), t.len() as i64);
    }
}
