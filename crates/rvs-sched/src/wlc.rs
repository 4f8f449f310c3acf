//! Weighted least connection, ipvsadm's default. Mirrors
//! `net/netfilter/ipvs/ip_vs_wlc.c`.
//!
//! The first server that is not OVERLOAD and has weight > 0 starts as the
//! least loaded; every following server that is not OVERLOAD replaces it
//! when `overhead(least) * weight(d) > overhead(d) * weight(least)`
//! (strict, so ties go to the earliest). A weight-0 server is not skipped
//! in that second loop but can never win. lblc and lblcr fall back to this
//! same choice.
//!
//! Deviation: none.

use crate::{conn_overhead, mul};
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::{Dest, Time};

/// The `wlc` scheduler (stateless).
#[derive(Debug, Default, Clone, Copy)]
pub struct WeightedLeastConnection;

/// The weighted-least-connection choice with a pluggable overhead (wlc uses
/// [`conn_overhead`], sed `activeconns + 1`).
pub(crate) fn weighted_least_by(
    dests: &[Box<Dest>],
    overhead: impl Fn(&Dest) -> i32,
) -> Option<usize> {
    let first = dests.iter().position(|d| d.is_eligible())?;
    let (mut least, mut loh, mut lw) = (first, overhead(&dests[first]), dests[first].weight());
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        if d.overload {
            continue;
        }
        let doh = overhead(d);
        if mul(loh, d.weight()) > mul(doh, lw) {
            (least, loh, lw) = (i, doh, d.weight());
        }
    }
    Some(least)
}

/// `__ip_vs_lblc_schedule` / `__ip_vs_lblcr_schedule` / wlc.
pub(crate) fn weighted_least(dests: &[Box<Dest>]) -> Option<usize> {
    weighted_least_by(dests, conn_overhead)
}

impl Scheduler for WeightedLeastConnection {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        weighted_least(svc.dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{any_pkt, dests, svc};

    fn pick(spec: &[(i32, u32, u32)]) -> Option<usize> {
        WeightedLeastConnection.schedule(&svc(&dests(spec)), &any_pkt(), 0)
    }

    #[test]
    fn load_per_weight_decides_with_ties_to_the_earliest() {
        assert_eq!(pick(&[(1, 0, 0), (3, 0, 0)]), Some(0));
        // 256/1 vs 512/3: B is less loaded per weight.
        assert_eq!(pick(&[(1, 1, 0), (3, 2, 0)]), Some(1));
        // 256/1 vs 768/3: equal, A stays.
        assert_eq!(pick(&[(1, 1, 0), (3, 3, 0)]), Some(0));
        assert_eq!(pick(&[(2, 0, 4), (1, 0, 1)]), Some(1));
    }

    #[test]
    fn weight_zero_never_wins_and_overload_is_skipped() {
        assert_eq!(pick(&[(1, 9, 9), (0, 0, 0)]), Some(0));
        assert_eq!(pick(&[(0, 0, 0), (0, 0, 0)]), None);
        let mut ds = dests(&[(1, 5, 0), (1, 0, 0), (1, 1, 0)]);
        ds[1].overload = true;
        assert_eq!(
            WeightedLeastConnection.schedule(&svc(&ds), &any_pkt(), 0),
            Some(2)
        );
        ds[0].overload = true;
        ds[2].overload = true;
        assert_eq!(
            WeightedLeastConnection.schedule(&svc(&ds), &any_pkt(), 0),
            None
        );
    }
}
