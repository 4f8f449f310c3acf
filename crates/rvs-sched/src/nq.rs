//! Never queue. Mirrors `net/netfilter/ipvs/ip_vs_nq.c`.
//!
//! Walking the list and skipping OVERLOAD and weight-0 servers, the first
//! server with no active connection is taken at once; otherwise the least
//! by sed's measure (`(activeconns + 1) / weight`, cross-multiplied,
//! strict, earliest wins).
//!
//! Deviation: none.

use crate::mul;
use crate::sed::expected_delay;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::Time;

/// The `nq` scheduler (stateless).
#[derive(Debug, Default, Clone, Copy)]
pub struct NeverQueue;

impl Scheduler for NeverQueue {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let dests = svc.dests;
        let mut least: Option<(usize, i32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if d.overload || d.weight() == 0 {
                continue;
            }
            if d.activeconns == 0 {
                return Some(i);
            }
            let doh = expected_delay(d);
            let better = match least {
                None => true,
                Some((l, loh)) => mul(loh, d.weight()) > mul(doh, dests[l].weight()),
            };
            if better {
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
        NeverQueue.schedule(&svc(&dests(spec)), &any_pkt(), 0)
    }

    #[test]
    fn an_idle_server_is_taken_at_once_whatever_its_weight() {
        assert_eq!(pick(&[(1, 0, 0), (3, 0, 0)]), Some(0));
        assert_eq!(pick(&[(9, 1, 0), (1, 0, 50)]), Some(1));
    }

    #[test]
    fn otherwise_the_sed_measure_decides() {
        // 2/1 vs 3/3: B.
        assert_eq!(pick(&[(1, 1, 0), (3, 2, 0)]), Some(1));
        // 2/2 vs 2/2: tie, A.
        assert_eq!(pick(&[(2, 1, 0), (2, 1, 0)]), Some(0));
        assert_eq!(pick(&[(0, 0, 0), (1, 4, 0)]), Some(1));
        assert_eq!(pick(&[(0, 0, 0)]), None);
    }
}
