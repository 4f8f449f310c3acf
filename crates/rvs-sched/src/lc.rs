//! Least connection. Mirrors `net/netfilter/ipvs/ip_vs_lc.c`.
//!
//! Among servers that are not OVERLOAD and have weight ≠ 0, the one with
//! the smallest overhead (`activeconns * 256 + inactconns`); on a tie the
//! earliest in list order. Weights are otherwise ignored.
//!
//! Deviation: none.

use crate::conn_overhead;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::Time;

/// The `lc` scheduler (stateless).
#[derive(Debug, Default, Clone, Copy)]
pub struct LeastConnection;

impl Scheduler for LeastConnection {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let mut least: Option<(usize, i32)> = None;
        for (i, d) in svc.dests.iter().enumerate() {
            if d.overload || d.weight() == 0 {
                continue;
            }
            let doh = conn_overhead(d);
            if least.is_none_or(|(_, loh)| doh < loh) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{any_pkt, dests, svc};

    fn pick(spec: &[(i32, u32, u32)]) -> Option<usize> {
        LeastConnection.schedule(&svc(&dests(spec)), &any_pkt(), 0)
    }

    #[test]
    fn smallest_overhead_wins_and_ties_go_to_the_earliest() {
        assert_eq!(pick(&[(1, 0, 0), (1, 0, 0)]), Some(0));
        assert_eq!(pick(&[(1, 0, 1), (1, 0, 0)]), Some(1));
        // 1 active (256) outweighs 255 inactive, not 256.
        assert_eq!(pick(&[(1, 1, 0), (1, 0, 255)]), Some(1));
        assert_eq!(pick(&[(1, 1, 0), (1, 0, 256)]), Some(0));
        // Weights do not matter beyond 0.
        assert_eq!(pick(&[(100, 0, 2), (1, 0, 1)]), Some(1));
    }

    #[test]
    fn quiesced_and_overloaded_servers_are_skipped() {
        assert_eq!(pick(&[(0, 0, 0), (1, 5, 0)]), Some(1));
        assert_eq!(pick(&[(0, 0, 0)]), None);
        let mut ds = dests(&[(1, 0, 0), (1, 9, 0)]);
        ds[0].overload = true;
        assert_eq!(LeastConnection.schedule(&svc(&ds), &any_pkt(), 0), Some(1));
    }
}
