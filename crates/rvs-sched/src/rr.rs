//! Round robin. Mirrors `net/netfilter/ipvs/ip_vs_rr.c`.
//!
//! A cursor remembers the last chosen server (initially the list head,
//! "before the first"). A pick walks on from the cursor, wrapping round,
//! and takes the first server that is not OVERLOAD and has weight > 0; the
//! cursor's own server is tried last. Weights other than 0 are ignored.
//! Deleting the server under the cursor moves the cursor to the previous
//! element (the head if it was first), so the pick after a delete is the
//! server that followed the deleted one. Adds and edits leave the cursor.
//!
//! Deviation: none.

use crate::DestRef;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::{Dest, Time};

/// The `rr` scheduler.
#[derive(Debug, Default, Clone)]
pub struct RoundRobin {
    /// `None` is the list head.
    cursor: Option<DestRef>,
}

impl RoundRobin {
    pub fn new() -> RoundRobin {
        RoundRobin::default()
    }
}

impl Scheduler for RoundRobin {
    fn snapshot(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(self.clone()))
    }

    fn name(&self) -> &'static str {
        "rr"
    }

    fn init_service(&mut self, _svc: &SchedService<'_>) {
        self.cursor = None;
    }

    fn del_dest(&mut self, svc: &SchedService<'_>, removed: &Dest, index: usize) {
        if self.cursor.is_some_and(|c| c.id == removed.id) {
            self.cursor = index
                .checked_sub(1)
                .map(|prev| DestRef::at(svc.dests, prev));
        }
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let dests = svc.dests;
        let n = dests.len();
        // A cursor whose server vanished behaves as the head: one full pass.
        let start = match self.cursor.and_then(|c| c.resolve(dests)) {
            Some(last) => last + 1,
            None => 0,
        };
        let pick = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| dests[i].is_eligible())?;
        self.cursor = Some(DestRef::at(dests, pick));
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{any_pkt, dests, svc};

    fn picks(s: &mut RoundRobin, ds: &[Box<Dest>], n: usize) -> Vec<Option<usize>> {
        (0..n)
            .map(|_| s.schedule(&svc(ds), &any_pkt(), 0))
            .collect()
    }

    #[test]
    fn cycles_in_list_order_ignoring_weights() {
        let ds = dests(&[(1, 0, 0), (5, 0, 0), (2, 0, 0)]);
        let mut s = RoundRobin::new();
        s.init_service(&svc(&ds));
        let got = picks(&mut s, &ds, 7);
        let want: Vec<_> = [0, 1, 2, 0, 1, 2, 0].into_iter().map(Some).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn skips_quiesced_and_overloaded_and_fails_when_none_left() {
        let mut ds = dests(&[(1, 0, 0), (0, 0, 0), (1, 0, 0)]);
        ds[2].overload = true;
        let mut s = RoundRobin::new();
        assert_eq!(picks(&mut s, &ds, 3), vec![Some(0), Some(0), Some(0)]);
        ds[0].config.weight = 0;
        assert_eq!(picks(&mut s, &ds, 1), vec![None]);
    }

    #[test]
    fn deleting_the_cursor_server_continues_with_its_successor() {
        // list A B C; pick A, B; delete B (cursor) -> cursor on A -> next C.
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let mut s = RoundRobin::new();
        assert_eq!(picks(&mut s, &ds, 2), vec![Some(0), Some(1)]);
        let removed = ds.remove(1);
        s.del_dest(&svc(&ds), &removed, 1);
        // C is now at index 1.
        assert_eq!(picks(&mut s, &ds, 3), vec![Some(1), Some(0), Some(1)]);
    }

    #[test]
    fn deleting_the_first_server_under_the_cursor_goes_back_to_the_head() {
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let mut s = RoundRobin::new();
        assert_eq!(picks(&mut s, &ds, 1), vec![Some(0)]);
        let removed = ds.remove(0);
        s.del_dest(&svc(&ds), &removed, 0);
        assert_eq!(picks(&mut s, &ds, 1), vec![Some(0)]);
    }

    #[test]
    fn deleting_another_server_keeps_the_cursor_and_adds_do_not_move_it() {
        let mut ds = dests(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let mut s = RoundRobin::new();
        assert_eq!(picks(&mut s, &ds, 2), vec![Some(0), Some(1)]);
        let removed = ds.remove(2);
        s.del_dest(&svc(&ds), &removed, 2);
        // The cursor stays on B (index 1): next is A after wrapping.
        assert_eq!(picks(&mut s, &ds, 1), vec![Some(0)]);
        // A new server goes to the front; the cursor (A, now index 1) stays.
        let mut fresh = dests(&[(1, 0, 0)]);
        fresh[0].id = rvs_core::DestId(99);
        ds.insert(0, fresh.remove(0));
        s.add_dest(&svc(&ds), 0);
        assert_eq!(picks(&mut s, &ds, 2), vec![Some(2), Some(0)]);
    }
}
