//! Destination hashing. Mirrors `net/netfilter/ipvs/ip_vs_dh.c`.
//!
//! A 256-bucket table (`CONFIG_IP_VS_DH_TAB_BITS` = 8) is filled at bind
//! time and on every add or delete, but **not** on a weight edit: bucket
//! `i` holds the `i`-th server of the list taken cyclically, whatever the
//! weights. The packet's destination address picks the bucket
//! (`hash_32(fold(daddr), 8)`); the result is refused (no destination, no
//! fallback) if the bucket is empty, its server left the service, has
//! weight ≤ 0, or is OVERLOAD.
//!
//! Deviation: none.

use crate::hash::hash_32;
use crate::DestRef;
use rvs_core::proto::fold_addr;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::{Dest, Time};

/// log2 of the table size.
pub const DH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// The `dh` scheduler.
#[derive(Debug, Clone)]
pub struct DestinationHashing {
    buckets: Vec<Option<DestRef>>,
}

impl Default for DestinationHashing {
    fn default() -> Self {
        DestinationHashing {
            buckets: vec![None; DH_TAB_SIZE],
        }
    }
}

impl DestinationHashing {
    pub fn new() -> DestinationHashing {
        DestinationHashing::default()
    }

    fn reassign(&mut self, dests: &[Box<Dest>]) {
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = (!dests.is_empty()).then(|| DestRef::at(dests, i % dests.len()));
        }
    }

    /// The server id each bucket holds, for tests and diagnostics.
    pub fn bucket_ids(&self) -> Vec<Option<rvs_core::DestId>> {
        self.buckets.iter().map(|b| b.map(|r| r.id)).collect()
    }
}

impl Scheduler for DestinationHashing {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn init_service(&mut self, svc: &SchedService<'_>) {
        self.reassign(svc.dests);
    }

    fn add_dest(&mut self, svc: &SchedService<'_>, _dest: usize) {
        self.reassign(svc.dests);
    }

    fn del_dest(&mut self, svc: &SchedService<'_>, _removed: &Dest, _index: usize) {
        self.reassign(svc.dests);
    }

    fn schedule(&mut self, svc: &SchedService<'_>, pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let bucket = hash_32(fold_addr(&pkt.daddr), DH_TAB_BITS) as usize;
        let i = self.buckets[bucket]?.resolve(svc.dests)?;
        let d = &svc.dests[i];
        (d.weight() > 0 && !d.overload).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{dests, pkt, svc};

    fn to(addr: [u8; 4]) -> PacketInfo {
        pkt([192, 0, 2, 1], 1234, addr)
    }

    #[test]
    fn buckets_cycle_through_the_list_and_the_destination_picks_one() {
        let ds = dests(&[(1, 0, 0), (7, 0, 0), (1, 0, 0)]);
        let mut s = DestinationHashing::new();
        s.init_service(&svc(&ds));
        let ids = s.bucket_ids();
        assert_eq!(ids[0], Some(ds[0].id));
        assert_eq!(ids[1], Some(ds[1].id));
        assert_eq!(ids[255], Some(ds[0].id)); // 255 % 3 == 0
                                              // 198.18.1.7 = 0xC6120107 -> bucket hash_32(.., 8).
        let b = hash_32(0xC612_0107, 8) as usize;
        assert_eq!(s.schedule(&svc(&ds), &to([198, 18, 1, 7]), 0), Some(b % 3));
        // The source side does not matter.
        let mut p = to([198, 18, 1, 7]);
        p.saddr = "203.0.113.9".parse().unwrap();
        assert_eq!(s.schedule(&svc(&ds), &p, 0), Some(b % 3));
    }

    #[test]
    fn an_unusable_bucket_server_means_no_destination() {
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0)]);
        let mut s = DestinationHashing::new();
        s.init_service(&svc(&ds));
        let p = to([10, 9, 8, 7]);
        let i = s.schedule(&svc(&ds), &p, 0).unwrap();
        ds[i].overload = true;
        assert_eq!(s.schedule(&svc(&ds), &p, 0), None);
        ds[i].overload = false;
        ds[i].config.weight = 0;
        s.upd_dest(&svc(&ds), i);
        assert_eq!(s.schedule(&svc(&ds), &p, 0), None);
    }

    #[test]
    fn weight_edits_do_not_rebuild_but_adds_and_deletes_do() {
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0)]);
        let mut s = DestinationHashing::new();
        s.init_service(&svc(&ds));
        let before = s.bucket_ids();
        ds[0].config.weight = 5;
        s.upd_dest(&svc(&ds), 0);
        assert_eq!(s.bucket_ids(), before);
        let removed = ds.remove(0);
        s.del_dest(&svc(&ds), &removed, 0);
        assert!(s.bucket_ids().iter().all(|b| *b == Some(ds[0].id)));
        let removed = ds.remove(0);
        s.del_dest(&svc(&ds), &removed, 0);
        assert!(s.bucket_ids().iter().all(Option::is_none));
        assert_eq!(s.schedule(&svc(&ds), &to([1, 2, 3, 4]), 0), None);
    }
}
