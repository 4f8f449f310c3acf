//! Weighted overflow. Mirrors `net/netfilter/ipvs/ip_vs_ovf.c`.
//!
//! Servers that are OVERLOAD, have weight 0, or have more active
//! connections than their weight are passed over (strictly more, so a
//! server can reach weight + 1 active connections); among the rest the
//! highest weight wins, the earliest on a tie. Only active connections
//! count.
//!
//! Deviation: none.

use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::Time;

/// The `ovf` scheduler (stateless).
#[derive(Debug, Default, Clone, Copy)]
pub struct WeightedOverflow;

impl Scheduler for WeightedOverflow {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let mut best: Option<(usize, i32)> = None;
        for (i, d) in svc.dests.iter().enumerate() {
            let w = d.weight();
            if d.overload || (d.activeconns as i32) > w || w == 0 {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{any_pkt, dests, svc};

    fn pick(spec: &[(i32, u32, u32)]) -> Option<usize> {
        WeightedOverflow.schedule(&svc(&dests(spec)), &any_pkt(), 0)
    }

    #[test]
    fn fills_the_heaviest_server_to_weight_plus_one_then_overflows() {
        assert_eq!(pick(&[(1, 0, 0), (3, 0, 0)]), Some(1));
        assert_eq!(pick(&[(1, 0, 0), (3, 3, 0)]), Some(1));
        assert_eq!(pick(&[(1, 0, 0), (3, 4, 0)]), Some(0));
        assert_eq!(pick(&[(1, 2, 0), (3, 4, 0)]), None);
        // Inactive connections do not count.
        assert_eq!(pick(&[(1, 0, 0), (3, 0, 1000)]), Some(1));
        assert_eq!(pick(&[(2, 0, 0), (2, 0, 0)]), Some(0));
        assert_eq!(pick(&[(0, 0, 0)]), None);
    }
}
