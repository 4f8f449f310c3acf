//! Maglev hashing. Mirrors `net/netfilter/ipvs/ip_vs_mh.c` with the
//! default `CONFIG_IP_VS_MH_TAB_INDEX` = 12 (table size M = 4093).
//!
//! Every server gets a preference list over the M slots from two hashes of
//! `fold(addr) + port`: `offset = H1 % M`, `skip = H2 % (M − 1) + 1`, where
//! H1/H2 are the kernel's `hsiphash` with the fixed keys (2654435761 ×2)
//! and (2654446892 ×2), so every director builds the same table. Weights
//! enter through **last_weight** (the last non-zero weight), not the
//! current one: g = gcd of the positive last weights, shift = max(0,
//! fls(max / g) − 6), and a server claims `turns = (last_weight / g) >>
//! shift` slots per round (at least 1 if its last weight is non-zero).
//! Walking the list cyclically, each server claims its next free preferred
//! slot `turns` times before the next server's go, until all M slots are
//! taken. Rebuilt at bind time and on every add, delete and edit; with no
//! positive last weight the table is emptied; with more than M servers the
//! kernel refuses the rebuild (EINVAL) and the old table stays.
//!
//! Lookup: the client's address (the destination's for an ICMP error about
//! a reply) plus its port when mh-port (`SVC_F_SCHED2`) is set; slot =
//! `H1(port + fold(addr)) % M`. The slot's server is refused if it has
//! weight ≤ 0 or is OVERLOAD — so a server edited to weight 0 keeps its
//! slots and its clients get no destination. With mh-fallback
//! (`SVC_F_SCHED1`) a refused primary leads to rehashing with the offset
//! *inside* the hashed value, `H1(((ihash + k) % M) + port + fold(addr)) %
//! M` for k = 0..M−1, taking the first usable server; an empty slot ends
//! the search.
//!
//! Deviation: for a server of the other address family than its service
//! (IPv6 tunnel servers behind an IPv4 service) the kernel folds only the
//! first 32-bit word of the address; we fold the address by its own family.

use crate::hash::{hsiphash_u32, HsipKey};
use crate::{source_side_addr, source_side_port, DestRef};
use rvs_core::proto::fold_addr;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::service::SVC_F_SCHED1;
use rvs_core::{Dest, Time};

/// `CONFIG_IP_VS_MH_TAB_INDEX`, the kernel default.
pub const MH_TAB_INDEX: u32 = 12;
/// The table size for index 12: the fifth of the kernel's primes.
pub const MH_TAB_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` = index / 2: the number of weight bits kept.
const MH_TAB_BITS: u32 = MH_TAB_INDEX / 2;

/// The key of the first hash (offsets and lookups).
pub const MH_KEY1: HsipKey = HsipKey(2_654_435_761, 2_654_435_761);
/// The key of the second hash (skips).
pub const MH_KEY2: HsipKey = HsipKey(2_654_446_892, 2_654_446_892);

/// `ip_vs_mh_hashkey`: hsiphash of `offset + port + fold(addr)`.
pub fn mh_hashkey(fold: u32, port: u16, key: HsipKey, offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(port as u32).wrapping_add(fold), key)
}

/// The `mh` scheduler.
#[derive(Debug, Clone)]
pub struct MaglevHashing {
    lookup: Vec<Option<DestRef>>,
}

impl Default for MaglevHashing {
    fn default() -> Self {
        MaglevHashing {
            lookup: vec![None; MH_TAB_SIZE],
        }
    }
}

fn gcd(a: i32, b: i32) -> i32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `fls`: 1-based index of the highest set bit, 0 for 0.
fn fls(x: i32) -> i32 {
    32 - (x as u32).leading_zeros() as i32
}

fn usable(d: &Dest) -> bool {
    d.weight() > 0 && !d.overload
}

struct Setup {
    skip: usize,
    perm: usize,
    turns: i32,
}

impl MaglevHashing {
    pub fn new() -> MaglevHashing {
        MaglevHashing::default()
    }

    /// The server id each slot holds, for tests and diagnostics.
    pub fn slot_ids(&self) -> Vec<Option<rvs_core::DestId>> {
        self.lookup.iter().map(|b| b.map(|r| r.id)).collect()
    }

    fn reassign(&mut self, dests: &[Box<Dest>]) {
        if dests.len() > MH_TAB_SIZE {
            return;
        }
        let g = dests
            .iter()
            .map(|d| d.last_weight)
            .filter(|&w| w > 0)
            .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
        if g < 1 {
            self.lookup.fill(None);
            return;
        }
        let mw = dests.iter().map(|d| d.last_weight).fold(0, i32::max) / g;
        let rshift = (fls(mw) - MH_TAB_BITS as i32).max(0);

        let mut setup: Vec<Setup> = dests
            .iter()
            .map(|d| {
                let fold = fold_addr(&d.config.addr);
                let port = d.config.port;
                let offset = mh_hashkey(fold, port, MH_KEY1, 0) as usize % MH_TAB_SIZE;
                let skip = mh_hashkey(fold, port, MH_KEY2, 0) as usize % (MH_TAB_SIZE - 1) + 1;
                let lw = d.last_weight;
                let turns = match (lw / g) >> rshift {
                    0 => i32::from(lw != 0),
                    t => t,
                };
                Setup {
                    skip,
                    perm: offset,
                    turns,
                }
            })
            .collect();

        // Every slot is claimed below (some server has turns >= 1), so
        // the previous table is entirely overwritten, as in the kernel.
        let mut taken = vec![false; MH_TAB_SIZE];
        let mut filled = 0;
        let mut count = 0;
        let mut p = 0;
        while filled < MH_TAB_SIZE {
            let ds = &mut setup[p];
            if ds.turns < 1 {
                p = (p + 1) % dests.len();
                continue;
            }
            while taken[ds.perm] {
                ds.perm += ds.skip;
                if ds.perm >= MH_TAB_SIZE {
                    ds.perm -= MH_TAB_SIZE;
                }
            }
            taken[ds.perm] = true;
            self.lookup[ds.perm] = Some(DestRef::at(dests, p));
            filled += 1;
            count += 1;
            if count >= ds.turns {
                count = 0;
                p = (p + 1) % dests.len();
            }
        }
    }

    fn at(&self, dests: &[Box<Dest>], slot: u32) -> Option<usize> {
        self.lookup[slot as usize % MH_TAB_SIZE]?.resolve(dests)
    }
}

impl Scheduler for MaglevHashing {
    fn name(&self) -> &'static str {
        "mh"
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
        let m = MH_TAB_SIZE as u32;
        let ihash = mh_hashkey(fold, port, MH_KEY1, 0) % m;
        let primary = self.at(dests, ihash)?;
        if usable(&dests[primary]) {
            return Some(primary);
        }
        if svc.flags & SVC_F_SCHED1 == 0 {
            return None;
        }
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let i = self.at(dests, mh_hashkey(fold, port, MH_KEY1, roffset) % m)?;
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
    use std::collections::HashMap;

    fn built(spec: &[(i32, u32, u32)]) -> (MaglevHashing, Vec<Box<Dest>>) {
        let ds = dests(spec);
        let mut s = MaglevHashing::new();
        s.init_service(&svc(&ds));
        (s, ds)
    }

    fn shares(s: &MaglevHashing) -> HashMap<u64, usize> {
        let mut m = HashMap::new();
        for id in s.slot_ids() {
            *m.entry(id.unwrap().0).or_default() += 1;
        }
        m
    }

    #[test]
    fn the_table_is_full_and_shares_follow_last_weights() {
        let (s, _) = built(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let sh = shares(&s);
        assert_eq!(sh.values().sum::<usize>(), MH_TAB_SIZE);
        // Round-robin claiming: equal weights differ by at most one slot.
        let (lo, hi) = (sh.values().min().unwrap(), sh.values().max().unwrap());
        assert!(hi - lo <= 1, "{sh:?}");
        let (s, _) = built(&[(1, 0, 0), (3, 0, 0)]);
        let sh = shares(&s);
        assert!(sh[&2] > 3 * sh[&1] - 4 && sh[&2] < 3 * sh[&1] + 4, "{sh:?}");
    }

    #[test]
    fn weight_zero_keeps_the_slots_and_only_fallback_escapes_them() {
        let (mut s, mut ds) = built(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let before = s.slot_ids();
        ds[1].config.weight = 0; // last_weight stays 1, as the table keeps it
        s.upd_dest(&svc(&ds), 1);
        assert_eq!(s.slot_ids(), before);
        let mut refused = 0;
        for x in 1..=200u8 {
            let p = pkt([198, 18, 0, x], 0, [198, 18, 0, 100]);
            match s.schedule(&svc(&ds), &p, 0) {
                None => {
                    refused += 1;
                    let f = s.schedule(&svc_flags(&ds, SVC_F_SCHED1), &p, 0);
                    assert!(matches!(f, Some(0) | Some(2)), "{f:?}");
                }
                Some(i) => assert_ne!(i, 1),
            }
        }
        assert!(refused > 30, "{refused}");
    }

    #[test]
    fn gcd_and_shift_cap_the_turns() {
        // 64 and 128: g 64 -> turns 1 and 2. 1 and 1000: fls(1000) = 10,
        // shift 4 -> turns 0→1 and 62.
        let (s, _) = built(&[(64, 0, 0), (128, 0, 0)]);
        let sh = shares(&s);
        assert!((sh[&2] as i64 - 2 * sh[&1] as i64).abs() <= 2, "{sh:?}");
        let (s, _) = built(&[(1, 0, 0), (1000, 0, 0)]);
        let sh = shares(&s);
        assert!((sh[&2] as i64 - 62 * sh[&1] as i64).abs() <= 62, "{sh:?}");
    }

    #[test]
    fn no_positive_last_weight_empties_the_table() {
        let (s, _) = built(&[(0, 0, 0), (0, 0, 0)]);
        assert!(s.slot_ids().iter().all(Option::is_none));
        let (s, _) = built(&[]);
        assert!(s.slot_ids().iter().all(Option::is_none));
    }

    #[test]
    fn lookup_hashes_the_source_with_key1() {
        let (mut s, ds) = built(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let ids = s.slot_ids();
        for x in [3u8, 77, 200] {
            let p = pkt([198, 18, 0, x], 4000, [198, 18, 0, 100]);
            let fold = u32::from_be_bytes([198, 18, 0, x]);
            let slot = hsiphash_u32(fold, MH_KEY1) as usize % MH_TAB_SIZE;
            let i = s.schedule(&svc(&ds), &p, 0).unwrap();
            assert_eq!(Some(ds[i].id), ids[slot]);
        }
    }
}
