//! Shortest expected delay. Mirrors `net/netfilter/ipvs/ip_vs_sed.c`.
//!
//! wlc's choice with the overhead replaced by `activeconns + 1`: inactive
//! connections do not count at all.
//!
//! Deviation: none.

use crate::wlc::weighted_least_by;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::{Dest, Time};

/// The `sed` scheduler (stateless).
#[derive(Debug, Default, Clone, Copy)]
pub struct ShortestExpectedDelay;

/// sed's and nq's overhead, `activeconns + 1` in the kernel's `int`.
pub(crate) fn expected_delay(d: &Dest) -> i32 {
    (d.activeconns as i32).wrapping_add(1)
}

impl Scheduler for ShortestExpectedDelay {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        weighted_least_by(svc.dests, expected_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{any_pkt, dests, svc};

    fn pick(spec: &[(i32, u32, u32)]) -> Option<usize> {
        ShortestExpectedDelay.schedule(&svc(&dests(spec)), &any_pkt(), 0)
    }

    #[test]
    fn active_plus_one_over_weight() {
        // (0+1)/1 vs (0+1)/3: the heavier server first even when idle.
        assert_eq!(pick(&[(1, 0, 0), (3, 0, 0)]), Some(1));
        // 1/1 vs 3/3: tie, earliest.
        assert_eq!(pick(&[(1, 0, 0), (3, 2, 0)]), Some(0));
        // Inactive connections are ignored.
        assert_eq!(pick(&[(1, 0, 1000), (1, 1, 0)]), Some(0));
        assert_eq!(pick(&[(0, 0, 0)]), None);
    }
}
