//! Source hashing. Mirrors `net/netfilter/ipvs/ip_vs_sh.c`.
//!
//! A 256-bucket table (`CONFIG_IP_VS_SH_TAB_BITS` = 8), rebuilt at bind
//! time and on every add, delete **and** edit: walking the list cyclically,
//! each server takes `max(weight, 1)` consecutive buckets (a weight-0
//! server still takes one per round) until all 256 are filled. The key is
//! `fold(addr) + port` (u32, wrapping), `addr` being the client's address
//! (the destination's for an ICMP error about a reply) and `port` its port
//! when sh-port (`SVC_F_SCHED2`) is set, else 0; the bucket is
//! `hash_32(key, 8)`. The bucket's server is refused if it has weight ≤ 0 or
//! is OVERLOAD. With sh-fallback (`SVC_F_SCHED1`) a refused primary leads
//! to probing buckets `(ihash + (ihash + k)) mod 256` for k = 0..255 — the
//! first probe is at 2·ihash, not ihash + 1 — taking the first usable
//! server; an empty bucket ends the search.
//!
//! Deviation: none.

use crate::hash::hash_32;
use crate::{source_side_addr, source_side_port, DestRef};
use rvs_core::proto::fold_addr;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::service::SVC_F_SCHED1;
use rvs_core::{Dest, Time};

/// log2 of the table size.
pub const SH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;
const SH_TAB_MASK: u32 = SH_TAB_SIZE as u32 - 1;

/// The `sh` scheduler.
#[derive(Debug, Clone)]
pub struct SourceHashing {
    buckets: Vec<Option<DestRef>>,
}

impl Default for SourceHashing {
    fn default() -> Self {
        SourceHashing {
            buckets: vec![None; SH_TAB_SIZE],
        }
    }
}

/// `ip_vs_sh_hashkey`: `(offset + hash_32(port + fold(addr), 8)) & 255`.
fn hashkey(fold: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32((port as u32).wrapping_add(fold), SH_TAB_BITS)) & SH_TAB_MASK)
        as usize
}

fn usable(d: &Dest) -> bool {
    d.weight() > 0 && !d.overload
}

impl SourceHashing {
    pub fn new() -> SourceHashing {
        SourceHashing::default()
    }

    fn reassign(&mut self, dests: &[Box<Dest>]) {
        if dests.is_empty() {
            self.buckets.fill(None);
            return;
        }
        let mut p = 0;
        let mut count = 0;
        for b in self.buckets.iter_mut() {
            *b = Some(DestRef::at(dests, p));
            count += 1;
            if count >= dests[p].weight() {
                p = (p + 1) % dests.len();
                count = 0;
            }
        }
    }

    /// The server id each bucket holds, for tests and diagnostics.
    pub fn bucket_ids(&self) -> Vec<Option<rvs_core::DestId>> {
        self.buckets.iter().map(|b| b.map(|r| r.id)).collect()
    }

    /// The bucket's server if it is still in the service, else `None`
    /// (as for an empty bucket).
    fn at(&self, dests: &[Box<Dest>], bucket: usize) -> Option<usize> {
        self.buckets[bucket]?.resolve(dests)
    }
}

impl Scheduler for SourceHashing {
    fn name(&self) -> &'static str {
        "sh"
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

    fn upd_dest(&mut self, svc: &SchedService<'_>, _dest: usize) {
        self.reassign(svc.dests);
    }

    fn schedule(&mut self, svc: &SchedService<'_>, pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let dests = svc.dests;
        let fold = fold_addr(&source_side_addr(pkt));
        let port = source_side_port(svc.flags, pkt);
        let ihash = hashkey(fold, port, 0);
        let primary = self.at(dests, ihash)?;
        if usable(&dests[primary]) {
            return Some(primary);
        }
        if svc.flags & SVC_F_SCHED1 == 0 {
            return None;
        }
        for offset in 0..SH_TAB_SIZE as u32 {
            let roffset = (offset + ihash as u32) % SH_TAB_SIZE as u32;
            let i = self.at(dests, hashkey(fold, port, roffset))?;
            if usable(&dests[i]) {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{dests, pkt, svc, svc_flags};
    use rvs_core::service::SVC_F_SCHED2;

    #[test]
    fn buckets_follow_weights_and_weight_zero_still_takes_one() {
        let ds = dests(&[(2, 0, 0), (0, 0, 0), (3, 0, 0)]);
        let mut s = SourceHashing::new();
        s.init_service(&svc(&ds));
        let ids: Vec<u64> = s.bucket_ids().iter().map(|b| b.unwrap().0).collect();
        assert_eq!(&ids[..12], &[1, 1, 2, 3, 3, 3, 1, 1, 2, 3, 3, 3]);
        assert_eq!(ids.len(), 256);
        // 256 = 42 * 6 + 4: the last round is cut short.
        assert_eq!(&ids[252..], &[1, 1, 2, 3]);
    }

    #[test]
    fn the_source_address_picks_the_bucket() {
        let ds = dests(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let mut s = SourceHashing::new();
        s.init_service(&svc(&ds));
        for last in 1..=50u8 {
            let p = pkt([198, 18, 0, last], 1000 + last as u16, [198, 18, 0, 100]);
            let b = hash_32(u32::from_be_bytes([198, 18, 0, last]), 8) as usize;
            assert_eq!(s.schedule(&svc(&ds), &p, 0), Some(b % 3));
        }
    }

    #[test]
    fn sh_port_adds_the_source_port_to_the_key() {
        let ds = dests(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let mut s = SourceHashing::new();
        s.init_service(&svc(&ds));
        let src = u32::from_be_bytes([198, 18, 0, 10]);
        for port in [0u16, 1, 40000, 65535] {
            let p = pkt([198, 18, 0, 10], port, [198, 18, 0, 100]);
            let b = hash_32(src.wrapping_add(port as u32), 8) as usize;
            assert_eq!(
                s.schedule(&svc_flags(&ds, SVC_F_SCHED2), &p, 0),
                Some(b % 3)
            );
        }
    }

    #[test]
    fn the_inverse_side_is_hashed_for_icmp_errors() {
        let ds = dests(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let mut s = SourceHashing::new();
        s.init_service(&svc(&ds));
        let mut p = pkt([1, 1, 1, 1], 5, [198, 18, 0, 33]);
        p.inverse = true;
        p.dport = 77;
        let fold = u32::from_be_bytes([198, 18, 0, 33]);
        let want = hash_32(fold + 77, 8) as usize % 3;
        assert_eq!(s.schedule(&svc_flags(&ds, SVC_F_SCHED2), &p, 0), Some(want));
    }

    #[test]
    fn fallback_probes_from_twice_the_hash() {
        // A1 B0 C1: buckets A B C A B C ...; bucket b holds b % 3.
        let ds = dests(&[(1, 0, 0), (0, 0, 0), (1, 0, 0)]);
        let mut s = SourceHashing::new();
        s.init_service(&svc(&ds));
        // Find a client hashing to a bucket of B (weight 0).
        let (p, ihash) = (1..=255u8)
            .map(|x| {
                let p = pkt([198, 18, 0, x], 0, [198, 18, 0, 100]);
                (p, hash_32(u32::from_be_bytes([198, 18, 0, x]), 8) as usize)
            })
            .find(|(_, h)| h % 3 == 1)
            .unwrap();
        assert_eq!(s.schedule(&svc(&ds), &p, 0), None);
        let got = s.schedule(&svc_flags(&ds, SVC_F_SCHED1), &p, 0);
        let first_usable = (0..256)
            .map(|k| (ihash + ihash + k) % 256)
            .find(|b| b % 3 != 1)
            .unwrap();
        assert_eq!(got, Some(first_usable % 3));
    }

    #[test]
    fn an_empty_table_has_no_destination_even_with_fallback() {
        let ds = dests(&[]);
        let mut s = SourceHashing::new();
        s.init_service(&svc(&ds));
        let p = pkt([1, 2, 3, 4], 0, [5, 6, 7, 8]);
        assert_eq!(s.schedule(&svc_flags(&ds, SVC_F_SCHED1), &p, 0), None);
    }
}
