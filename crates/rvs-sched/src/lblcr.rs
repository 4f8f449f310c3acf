//! Locality-based least connection with replication. Mirrors
//! `net/netfilter/ipvs/ip_vs_lblcr.c`.
//!
//! The same 1024-bucket table and garbage collection as lblc (sysctl
//! `lblcr_expiration`, 24 h by default), but each destination address maps
//! to a *set* of servers (newest member first) with the time the set was
//! last modified. On a hit (which refreshes the entry's last use):
//!
//! 1. the set's weighted-least-connection member is found: the first
//!    member that is not OVERLOAD, has weight > 0 and is still in the
//!    service, then strict cross-multiplied comparison among the following
//!    members that are not OVERLOAD and still in the service;
//! 2. if the set has more than one member and was last modified more than
//!    the expiration ago, its weighted-*most*-loaded member (first with
//!    weight > 0, replaced when `moh * w(d) < doh * w(most)` and `w(d)` >
//!    0) is removed — even if it is the one just found;
//! 3. the member found is used unless lblc-"overloaded"; otherwise wlc's
//!    choice over all servers is used and added to the set (if not already
//!    there).
//!
//! On a miss, wlc's choice starts a one-member set. Set inserts and
//! removals update the set's modification time.
//!
//! Deviations: as lblc for the timer. A member that has left the service
//! can still be "most loaded" in step 2 (the kernel reads it in the trash);
//! we judge it by its weight and connection counts at the time it was
//! deleted, since its later counts are not visible to a scheduler.

use crate::lblc::{is_overloaded, Expiration, LocalityTable};
use crate::wlc::weighted_least;
use crate::{conn_overhead, mul, DestRef};
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::{Dest, DestId, Time};
use std::collections::HashMap;
use std::net::IpAddr;

/// A destination address's server set.
#[derive(Debug, Clone)]
struct DestSet {
    /// Newest first.
    members: Vec<DestRef>,
    lastmod: Time,
}

/// What is known of a member that left the service.
#[derive(Debug, Clone, Copy)]
struct Departed {
    weight: i32,
    overhead: i32,
}

impl DestSet {
    fn insert(&mut self, member: DestRef, now: Time) {
        if self.members.iter().any(|m| m.id == member.id) {
            return;
        }
        self.members.insert(0, member);
        self.lastmod = now;
    }

    fn erase(&mut self, id: DestId, now: Time) {
        if let Some(k) = self.members.iter().position(|m| m.id == id) {
            self.members.remove(k);
            self.lastmod = now;
        }
    }

    /// `ip_vs_dest_set_min`.
    fn min(&self, dests: &[Box<Dest>]) -> Option<usize> {
        let live = |m: &DestRef| m.resolve(dests).map(|i| (i, &dests[i]));
        let mut it = self.members.iter();
        let mut least = it
            .by_ref()
            .find_map(|m| live(m).filter(|(_, d)| !d.overload && d.weight() > 0))?;
        let mut loh = conn_overhead(least.1);
        for m in it {
            let Some((i, d)) = live(m) else { continue };
            if d.overload {
                continue;
            }
            let doh = conn_overhead(d);
            if mul(loh, d.weight()) > mul(doh, least.1.weight()) {
                least = (i, d);
                loh = doh;
            }
        }
        Some(least.0)
    }

    /// `ip_vs_dest_set_max`: the member to drop.
    fn max(&self, dests: &[Box<Dest>], departed: &HashMap<DestId, Departed>) -> Option<DestId> {
        let load = |m: &DestRef| -> Option<(i32, i32)> {
            match m.resolve(dests) {
                Some(i) => Some((dests[i].weight(), conn_overhead(&dests[i]))),
                None => departed.get(&m.id).map(|g| (g.weight, g.overhead)),
            }
        };
        let mut it = self.members.iter();
        let (mut most, (mut mw, mut moh)) = it
            .by_ref()
            .find_map(|m| load(m).filter(|&(w, _)| w > 0).map(|l| (m.id, l)))?;
        for m in it {
            let Some((w, doh)) = load(m) else { continue };
            if mul(moh, w) < mul(doh, mw) && w > 0 {
                most = m.id;
                mw = w;
                moh = doh;
            }
        }
        Some(most)
    }
}

/// The `lblcr` scheduler.
#[derive(Debug, Clone)]
pub struct LocalityBasedLeastConnectionReplication {
    table: LocalityTable<DestSet>,
    departed: HashMap<DestId, Departed>,
}

impl Default for LocalityBasedLeastConnectionReplication {
    fn default() -> Self {
        LocalityBasedLeastConnectionReplication::with_shared_expiration(Expiration::default())
    }
}

impl LocalityBasedLeastConnectionReplication {
    /// With the default `lblcr_expiration` of 24 hours.
    pub fn new() -> LocalityBasedLeastConnectionReplication {
        LocalityBasedLeastConnectionReplication::default()
    }

    /// With sysctl `lblcr_expiration` set to `expiration` (ms).
    pub fn with_expiration(expiration: Time) -> LocalityBasedLeastConnectionReplication {
        LocalityBasedLeastConnectionReplication::with_shared_expiration(Expiration::new(expiration))
    }

    /// Reading a `lblcr_expiration` shared with others.
    pub fn with_shared_expiration(
        expiration: Expiration,
    ) -> LocalityBasedLeastConnectionReplication {
        LocalityBasedLeastConnectionReplication {
            table: LocalityTable::new(expiration),
            departed: HashMap::new(),
        }
    }

    pub fn expiration(&self) -> Time {
        self.table.expiration()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The set recorded for a destination address (newest member first)
    /// and its modification time.
    pub fn set(&self, daddr: &IpAddr) -> Option<(Vec<DestId>, Time)> {
        self.table.get(daddr).map(|e| {
            (
                e.value.members.iter().map(|m| m.id).collect(),
                e.value.lastmod,
            )
        })
    }
}

impl Scheduler for LocalityBasedLeastConnectionReplication {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn add_dest(&mut self, svc: &SchedService<'_>, dest: usize) {
        self.departed.remove(&svc.dests[dest].id);
    }

    fn del_dest(&mut self, _svc: &SchedService<'_>, removed: &Dest, _index: usize) {
        self.departed.insert(
            removed.id,
            Departed {
                weight: removed.weight(),
                overhead: conn_overhead(removed),
            },
        );
    }

    fn schedule(&mut self, svc: &SchedService<'_>, pkt: &PacketInfo, now: Time) -> Option<usize> {
        let dests = svc.dests;
        self.table.start_timer(now);
        let expiration = self.table.expiration();
        if let Some(en) = self.table.get_mut(&pkt.daddr) {
            en.lastuse = now;
            let set = &mut en.value;
            let found = set.min(dests);
            if set.members.len() > 1 && now > set.lastmod.saturating_add(expiration) {
                if let Some(m) = set.max(dests, &self.departed) {
                    set.erase(m, now);
                }
            }
            if let Some(i) = found {
                if !is_overloaded(&dests[i], dests) {
                    return Some(i);
                }
            }
            let i = weighted_least(dests)?;
            set.insert(DestRef::at(dests, i), now);
            return Some(i);
        }
        let i = weighted_least(dests)?;
        let set = DestSet {
            members: vec![DestRef::at(dests, i)],
            lastmod: now,
        };
        self.table.insert(pkt.daddr, set, now);
        Some(i)
    }

    fn tick(&mut self, now: Time) {
        self.table.tick(now);
        if !self.departed.is_empty() {
            let table = &self.table;
            self.departed.retain(|id, _| {
                table
                    .iter()
                    .any(|e| e.value.members.iter().any(|m| m.id == *id))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{dests, pkt, svc};
    use rvs_core::SEC;

    fn to(x: u8) -> PacketInfo {
        pkt([198, 18, 0, 2], 40000, [198, 18, 1, x])
    }

    #[test]
    fn an_overloaded_member_brings_in_a_replica() {
        let mut ds = dests(&[(1, 0, 0), (4, 0, 0)]);
        let mut s = LocalityBasedLeastConnectionReplication::new();
        assert_eq!(s.schedule(&svc(&ds), &to(1), 0), Some(0));
        ds[0].activeconns = 2;
        ds[1].activeconns = 1;
        // A is lblc-overloaded (2 > 1, B 2 < 4): wlc picks B, added in front.
        assert_eq!(s.schedule(&svc(&ds), &to(1), 10), Some(1));
        assert_eq!(s.set(&to(1).daddr), Some((vec![ds[1].id, ds[0].id], 10)));
        // Set minimum: B (256/4) vs A (512/1) -> B.
        assert_eq!(s.schedule(&svc(&ds), &to(1), 20), Some(1));
        assert_eq!(s.set(&to(1).daddr).unwrap().1, 10);
    }

    #[test]
    fn an_old_set_sheds_its_most_loaded_member() {
        let min = 60 * SEC;
        let mut ds = dests(&[(1, 0, 0), (4, 0, 0)]);
        let mut s = LocalityBasedLeastConnectionReplication::with_expiration(5 * min);
        s.schedule(&svc(&ds), &to(1), 0);
        ds[0].activeconns = 2;
        ds[1].activeconns = 1;
        s.schedule(&svc(&ds), &to(1), 0); // set {B, A}, lastmod 0
                                          // Exactly at lastmod + expiration nothing happens (strictly after).
        s.schedule(&svc(&ds), &to(1), 5 * min);
        assert_eq!(s.set(&to(1).daddr).unwrap().0.len(), 2);
        // After: most loaded is A (512/1 vs 256/4); B is still chosen.
        assert_eq!(s.schedule(&svc(&ds), &to(1), 5 * min + 1), Some(1));
        assert_eq!(s.set(&to(1).daddr), Some((vec![ds[1].id], 5 * min + 1)));
    }

    #[test]
    fn the_member_found_can_be_the_one_shed() {
        let min = 60 * SEC;
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0)]);
        let mut s = LocalityBasedLeastConnectionReplication::with_expiration(min);
        s.schedule(&svc(&ds), &to(1), 0); // {A}
        ds[0].activeconns = 2; // A overloaded: B (0*2 < 1) is below half
        s.schedule(&svc(&ds), &to(1), 0); // {B, A}
        ds[0].activeconns = 1;
        ds[1].activeconns = 1; // equal loads: min = B (first), max = B (first)
        assert_eq!(s.schedule(&svc(&ds), &to(1), 2 * min), Some(1));
        assert_eq!(s.set(&to(1).daddr).unwrap().0, vec![ds[0].id]);
    }

    #[test]
    fn departed_members_are_skipped_as_minimum_but_can_be_shed() {
        let min = 60 * SEC;
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0)]);
        let mut s = LocalityBasedLeastConnectionReplication::with_expiration(min);
        s.schedule(&svc(&ds), &to(1), 0); // {A}
        ds[0].activeconns = 2;
        s.schedule(&svc(&ds), &to(1), 0); // {B, A}
        ds[1].activeconns = 1;
        let removed = ds.remove(1); // B leaves with 256/1
        s.del_dest(&svc(&ds), &removed, 1);
        // min skips B: A (512/1). After expiry the most loaded is A
        // (256*1 < 512*1), so A goes and B stays.
        ds[0].activeconns = 2;
        assert_eq!(s.schedule(&svc(&ds), &to(1), 2 * min), Some(0));
        assert_eq!(s.set(&to(1).daddr).unwrap().0, vec![removed.id]);
        // B no longer in the service: the set has no usable member, wlc.
        assert_eq!(s.schedule(&svc(&ds), &to(1), 2 * min), Some(0));
        s.tick(3 * min);
        assert!(!s.departed.is_empty());
    }
}
