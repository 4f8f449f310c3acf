//! Weighted failover. Mirrors `net/netfilter/ipvs/ip_vs_fo.c`.
//!
//! The server with the highest weight among those not OVERLOAD; on equal
//! weights the earliest in list order. Weight 0 is never chosen.
//!
//! Deviation: none.

use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::Time;

/// The `fo` scheduler (stateless).
#[derive(Debug, Default, Clone, Copy)]
pub struct WeightedFailover;

impl Scheduler for WeightedFailover {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let mut best = None;
        let mut hw = 0;
        for (i, d) in svc.dests.iter().enumerate() {
            if !d.overload && d.weight() > hw {
                best = Some(i);
                hw = d.weight();
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{any_pkt, dests, svc};

    #[test]
    fn highest_weight_first_then_list_order() {
        let mut ds = dests(&[(2, 0, 0), (5, 9, 9), (5, 0, 0), (0, 0, 0)]);
        let mut s = WeightedFailover;
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), Some(1));
        ds[1].overload = true;
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), Some(2));
        ds[2].config.weight = 0;
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), Some(0));
        ds[0].config.weight = 0;
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), None);
    }
}
