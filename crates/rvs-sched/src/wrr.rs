//! Weighted round robin. Mirrors `net/netfilter/ipvs/ip_vs_wrr.c`.
//!
//! State: a cursor `cl` (a server, or the list head), `di` = gcd of the
//! positive weights (1 if none), `mw` = max weight − (di − 1) and the
//! current weight `cw`. Passes over the list take every server that is not
//! OVERLOAD and has weight ≥ `cw`; after each pass `cw` drops by `di`, and
//! when it falls to 0 or below it starts again at `mw`. Because `mw` is
//! reduced by `di − 1`, the last pass of a cycle runs with `cw` = 1.
//! A search that has gone once round every server with `cw` = 1 fails
//! ("all destinations are overloaded") and leaves the cursor where it
//! stopped. Adding, deleting or editing any server puts the cursor back at
//! the head, recomputes `di` and `mw`, and then sets `cw` = `mw` if `cw` >
//! `mw` or `cw` = 0, else, when `di` > 1, rounds `cw` to `(cw / di) * di + 1`.
//!
//! Example, list order A4 B3 C2: A A B A B C A B C.
//!
//! Deviation: none.

use crate::DestRef;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::{Dest, Time};

/// The `wrr` scheduler.
#[derive(Debug, Default, Clone)]
pub struct WeightedRoundRobin {
    /// `None` is the list head.
    cl: Option<DestRef>,
    cw: i32,
    mw: i32,
    di: i32,
}

fn gcd(a: i32, b: i32) -> i32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// gcd of all positive weights, 1 if there are none.
fn gcd_weight(dests: &[Box<Dest>]) -> i32 {
    let g = dests
        .iter()
        .map(|d| d.weight())
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g == 0 {
        1
    } else {
        g
    }
}

fn max_weight(dests: &[Box<Dest>]) -> i32 {
    dests.iter().map(|d| d.weight()).fold(0, i32::max)
}

impl WeightedRoundRobin {
    pub fn new() -> WeightedRoundRobin {
        WeightedRoundRobin::default()
    }

    /// `(cw, mw, di)`, for tests and diagnostics.
    pub fn weights(&self) -> (i32, i32, i32) {
        (self.cw, self.mw, self.di)
    }

    fn dest_changed(&mut self, dests: &[Box<Dest>]) {
        let di = gcd_weight(dests);
        self.reset(di, max_weight(dests));
    }

    /// The kernel's `ip_vs_wrr_dest_changed` once `di` and the maximum
    /// weight are known.
    fn reset(&mut self, di: i32, max: i32) {
        self.cl = None;
        self.di = di;
        self.mw = max - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }
}

impl Scheduler for WeightedRoundRobin {
    fn snapshot(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(self.clone()))
    }

    fn name(&self) -> &'static str {
        "wrr"
    }

    fn init_service(&mut self, svc: &SchedService<'_>) {
        self.cl = None;
        self.di = gcd_weight(svc.dests);
        self.mw = max_weight(svc.dests) - (self.di - 1);
        self.cw = self.mw;
    }

    fn add_dest(&mut self, svc: &SchedService<'_>, dest: usize) {
        // The same result as recomputing over every server (gcd of the
        // positive weights, the maximum weight), from the previous values:
        // an add stays O(1), so 10,000 of them stay linear.
        let w = svc.dests[dest].weight();
        let max = self.mw + (self.di - 1);
        let (di, max) = if w <= 0 {
            (self.di, max)
        } else if max <= 0 {
            (w, w)
        } else {
            (gcd(self.di, w), max.max(w))
        };
        self.reset(di, max);
    }

    fn del_dest(&mut self, svc: &SchedService<'_>, _removed: &Dest, _index: usize) {
        self.dest_changed(svc.dests);
    }

    fn upd_dest(&mut self, svc: &SchedService<'_>, _dest: usize) {
        self.dest_changed(svc.dests);
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let dests = svc.dests;
        if self.mw == 0 {
            return None;
        }
        let last = self.cl.and_then(|c| c.resolve(dests));
        let mut pos = last;
        let mut stop = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            let from = pos.map_or(0, |p| p + 1);
            for (i, d) in dests.iter().enumerate().skip(from) {
                if !d.overload && d.weight() >= self.cw {
                    self.cl = Some(DestRef::at(dests, i));
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some(DestRef::at(dests, i));
                    return None;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // Either the previous passes already went down to cw = 1
                // from the head, or the only pass started at the head.
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_add_updates_gcd_and_max_as_a_full_recompute_would() {
        for weights in [
            vec![4, 3, 2],
            vec![0, 0, 6, 4, 0, 9],
            vec![6, 10, 15, 1],
            vec![0, 5],
            vec![7],
            vec![12, 18, 0, 24, 30],
        ] {
            let mut inc = WeightedRoundRobin::new();
            let mut full = WeightedRoundRobin::new();
            let mut list: Vec<Box<Dest>> = Vec::new();
            inc.init_service(&svc(&list));
            full.init_service(&svc(&list));
            for (k, &w) in weights.iter().enumerate() {
                let mut d = dests(&[(w, 0, 0)]).remove(0);
                d.id = rvs_core::DestId(k as u64 + 1);
                list.insert(0, d);
                inc.add_dest(&svc(&list), 0);
                full.dest_changed(&list);
                assert_eq!(inc.weights(), full.weights(), "{weights:?} after {}", k + 1);
            }
        }
    }

    use super::*;
    use crate::testutil::{any_pkt, dests, svc};

    fn run(s: &mut WeightedRoundRobin, ds: &[Box<Dest>], n: usize) -> String {
        (0..n)
            .map(|_| match s.schedule(&svc(ds), &any_pkt(), 0) {
                Some(i) => (b'A' + i as u8) as char,
                None => '-',
            })
            .collect()
    }

    fn started(spec: &[(i32, u32, u32)]) -> (WeightedRoundRobin, Vec<Box<Dest>>) {
        let ds = dests(spec);
        let mut s = WeightedRoundRobin::new();
        s.init_service(&svc(&ds));
        (s, ds)
    }

    #[test]
    fn a_snapshot_picks_ahead_without_moving_the_scheduler() {
        let (mut s, ds) = started(&[(4, 0, 0), (3, 0, 0), (2, 0, 0)]);
        assert_eq!(run(&mut s, &ds, 2), "AA");
        let mut ahead = s.snapshot().unwrap();
        let picked: String = (0..7)
            .map(|_| (b'A' + ahead.schedule(&svc(&ds), &any_pkt(), 0).unwrap() as u8) as char)
            .collect();
        assert_eq!(picked, "BABCABC");
        assert_eq!(run(&mut s, &ds, 7), "BABCABC");
    }

    #[test]
    fn four_three_two() {
        let (mut s, ds) = started(&[(4, 0, 0), (3, 0, 0), (2, 0, 0)]);
        assert_eq!(run(&mut s, &ds, 18), "AABABCABCAABABCABC");
    }

    #[test]
    fn gcd_steps_and_the_final_cw_one_pass() {
        // A4 B2: di 2, mw 3; cw 3 -> A; cw 1 -> A B.
        let (mut s, ds) = started(&[(4, 0, 0), (2, 0, 0)]);
        assert_eq!(s.weights(), (3, 3, 2));
        assert_eq!(run(&mut s, &ds, 6), "AABAAB");
        // 6 3 3 (di 3, mw 4): cw 4 -> A, cw 1 -> A B C.
        let (mut s, ds) = started(&[(6, 0, 0), (3, 0, 0), (3, 0, 0)]);
        assert_eq!(run(&mut s, &ds, 8), "AABCAABC");
    }

    #[test]
    fn all_weights_zero_means_no_destination() {
        let (mut s, ds) = started(&[(0, 0, 0), (0, 0, 0)]);
        assert_eq!(run(&mut s, &ds, 2), "--");
        let (mut s, ds) = started(&[]);
        assert_eq!(run(&mut s, &ds, 1), "-");
    }

    #[test]
    fn overloaded_servers_are_passed_over_and_all_overloaded_fails() {
        let (mut s, mut ds) = started(&[(2, 0, 0), (1, 0, 0)]);
        ds[0].overload = true;
        assert_eq!(run(&mut s, &ds, 3), "BBB");
        ds[1].overload = true;
        assert_eq!(run(&mut s, &ds, 2), "--");
        ds[0].overload = false;
        ds[1].overload = false;
        assert!(run(&mut s, &ds, 3).chars().all(|c| c != '-'));
    }

    #[test]
    fn an_edit_resets_the_cursor_and_rounds_cw_to_the_new_gcd() {
        let (mut s, mut ds) = started(&[(1, 0, 0), (2, 0, 0), (3, 0, 0)]);
        // cw 3 -> C; cw 2 -> B C; cw 1 -> A B C.
        assert_eq!(run(&mut s, &ds, 4), "CBCA");
        assert_eq!(s.weights().0, 1);
        ds[0].config.weight = 2;
        ds[1].config.weight = 4;
        ds[2].config.weight = 6;
        s.upd_dest(&svc(&ds), 0);
        // di 2, mw 5; cw 1 is neither > mw nor 0: (1/2)*2+1 = 1.
        assert_eq!(s.weights(), (1, 5, 2));
        assert_eq!(run(&mut s, &ds, 7), "ABCCBCA");
        ds[2].config.weight = 0;
        s.upd_dest(&svc(&ds), 2);
        // di 2, mw 3; cw 1 stays (1/2)*2+1 = 1: A B, then cw 3 -> B.
        assert_eq!(s.weights(), (1, 3, 2));
        assert_eq!(run(&mut s, &ds, 3), "ABB");
        // A weight above the new mw clamps cw down to mw.
        ds[1].config.weight = 2;
        s.upd_dest(&svc(&ds), 1);
        assert_eq!(s.weights(), (1, 1, 2));
    }
}
