//! Power of two choices. Mirrors `net/netfilter/ipvs/ip_vs_twos.c`
//! (Linux 6.2+; the 6.1 oracle kernel does not have it).
//!
//! With `total` = the sum of the weights of servers that are not OVERLOAD
//! and have weight > 0 (none: no destination), two independent draws r1, r2
//! uniform in `[0, total]` (inclusive: the kernel draws below total + 1)
//! each walk those servers in list order, subtracting weights; the server
//! at which a draw first reaches ≤ 0 is that draw's choice (so 0 picks the
//! first eligible server, which holds weight + 1 tickets). The second
//! choice wins if it is relatively less loaded, `weight2 * overhead1 >
//! weight1 * overhead2`; otherwise the first.
//!
//! The randomness is injectable ([`TwosRandom`]); [`PowerOfTwoChoices::with_seed`]
//! gives a reproducible stream.
//!
//! The arithmetic is the kernel's `int` arithmetic, wrapping where it wraps
//! (a weight sum past 2^31, weight × overhead products past 2^31).
//!
//! Deviation: only the random numbers themselves.

use crate::conn_overhead;
use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::Time;
use std::fmt;

/// A source of uniform draws, like the kernel's `get_random_u32_below`.
pub trait TwosRandom: Send + Sync + fmt::Debug {
    /// A uniform integer in `[0, ceil)`; `ceil` ≥ 1.
    fn below(&mut self, ceil: u32) -> u32;
}

/// SplitMix64 with Lemire's unbiased bounded draw: small, fast, seedable.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}

impl TwosRandom for SplitMix64 {
    fn below(&mut self, ceil: u32) -> u32 {
        let ceil = ceil.max(1);
        let threshold = ceil.wrapping_neg() % ceil;
        loop {
            let m = self.next_u32() as u64 * ceil as u64;
            if (m as u32) >= threshold {
                return (m >> 32) as u32;
            }
        }
    }
}

/// The `twos` scheduler.
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    random: Box<dyn TwosRandom>,
}

impl PowerOfTwoChoices {
    /// Reproducible draws from `seed`.
    pub fn with_seed(seed: u64) -> PowerOfTwoChoices {
        PowerOfTwoChoices::with_random(Box::new(SplitMix64::new(seed)))
    }

    /// Draws from any source (tests script exact draws this way).
    pub fn with_random(random: Box<dyn TwosRandom>) -> PowerOfTwoChoices {
        PowerOfTwoChoices { random }
    }

    /// Seeded from the process's per-instance random hash keys.
    pub fn from_entropy() -> PowerOfTwoChoices {
        use std::hash::{BuildHasher, Hasher};
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        PowerOfTwoChoices::with_seed(seed)
    }
}

impl Scheduler for PowerOfTwoChoices {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn schedule(&mut self, svc: &SchedService<'_>, _pkt: &PacketInfo, _now: Time) -> Option<usize> {
        let dests = svc.dests;
        // The kernel's choice1 starts as the last eligible server.
        let mut total: i32 = 0;
        let mut last = None;
        for (i, d) in dests.iter().enumerate().filter(|(_, d)| d.is_eligible()) {
            total = total.wrapping_add(d.weight());
            last = Some(i);
        }
        let last = last?;
        // "below total + 1": both ends of [0, total] can be drawn.
        let ceil = total.wrapping_add(1) as u32;
        let mut r1 = self.random.below(ceil) as i32;
        let mut r2 = self.random.below(ceil) as i32;
        let mut c1: Option<(usize, i32, i32)> = None;
        let mut c2: Option<(usize, i32, i32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.is_eligible() {
                continue;
            }
            let w = d.weight();
            r1 = r1.wrapping_sub(w);
            r2 = r2.wrapping_sub(w);
            if r1 <= 0 && c1.is_none() {
                c1 = Some((i, w, conn_overhead(d)));
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some((i, w, conn_overhead(d)));
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        // A draw the walk never brings to 0 (only possible after wrapping)
        // leaves choice1 at its start value, weight1 at -1.
        let Some((i2, w2, oh2)) = c2 else {
            return Some(c1.map_or(last, |c| c.0));
        };
        let (i1, w1, oh1) = c1.unwrap_or((last, -1, 0));
        if w2.wrapping_mul(oh1) > w1.wrapping_mul(oh2) {
            Some(i2)
        } else {
            Some(i1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{any_pkt, dests, svc};
    use std::collections::VecDeque;

    /// Hands out scripted draws and records the bounds it was asked for.
    #[derive(Debug, Default)]
    struct Script {
        draws: VecDeque<u32>,
        ceils: Vec<u32>,
    }

    impl TwosRandom for std::sync::Arc<std::sync::Mutex<Script>> {
        fn below(&mut self, ceil: u32) -> u32 {
            let mut s = self.lock().unwrap();
            s.ceils.push(ceil);
            let v = s.draws.pop_front().unwrap();
            assert!(v < ceil);
            v
        }
    }

    fn scripted(draws: &[u32]) -> (PowerOfTwoChoices, std::sync::Arc<std::sync::Mutex<Script>>) {
        let script = std::sync::Arc::new(std::sync::Mutex::new(Script {
            draws: draws.iter().copied().collect(),
            ceils: vec![],
        }));
        (
            PowerOfTwoChoices::with_random(Box::new(script.clone())),
            script,
        )
    }

    #[test]
    fn draws_walk_the_weights_and_the_less_loaded_choice_wins() {
        // A2 B0 C3 (B not eligible): total 5, draws below 6.
        let ds = dests(&[(2, 4, 0), (0, 0, 0), (3, 0, 3)]);
        // r1 = 0 -> A (first eligible); r2 = 3 -> 3-2 = 1 > 0, 1-3 <= 0 -> C.
        // A: 1024/2 vs C: 3/3 -> C is less loaded.
        let (mut s, script) = scripted(&[0, 3]);
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), Some(2));
        assert_eq!(script.lock().unwrap().ceils, vec![6, 6]);
        // r1 = 2 -> A (2-2 = 0), r2 = 1 -> A.
        let (mut s, _) = scripted(&[2, 1]);
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), Some(0));
        // r1 = 5 -> C, r2 = 0 -> A: C (3/3) vs A (1024/2): C stays.
        let (mut s, _) = scripted(&[5, 0]);
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), Some(2));
    }

    #[test]
    fn equal_relative_load_keeps_the_first_choice() {
        let ds = dests(&[(1, 1, 0), (2, 2, 0)]);
        let (mut s, _) = scripted(&[3, 0]);
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), Some(1));
    }

    #[test]
    fn no_eligible_server_draws_nothing() {
        let mut ds = dests(&[(0, 0, 0), (1, 0, 0)]);
        ds[1].overload = true;
        let (mut s, script) = scripted(&[]);
        assert_eq!(s.schedule(&svc(&ds), &any_pkt(), 0), None);
        assert!(script.lock().unwrap().ceils.is_empty());
    }

    #[test]
    fn seeded_streams_repeat_and_stay_in_bounds() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for ceil in [1u32, 2, 3, 10, 1000, u32::MAX] {
            let x = a.below(ceil);
            assert_eq!(x, b.below(ceil));
            assert!(x < ceil);
        }
        let ds = dests(&[(1, 0, 0), (1, 0, 0), (1, 0, 0)]);
        let mut s = PowerOfTwoChoices::with_seed(42);
        let mut counts = [0; 3];
        for _ in 0..3000 {
            counts[s.schedule(&svc(&ds), &any_pkt(), 0).unwrap()] += 1;
        }
        // No connections are ever counted here, so load never differs and
        // the first draw decides; the first server holds 2 of 4 tickets.
        assert!(
            counts[0] > 1300 && counts[1] > 600 && counts[2] > 600,
            "{counts:?}"
        );
    }
}
