//! Traffic counters and the kernel's rate estimator (`ip_vs_est.c`).
//!
//! Counters only grow; `-Z` records a zero point and listings show the
//! difference. Rates come from an estimator fed every 2 s with the kernel's
//! fixed-point EWMA (weight ¼): packet and connection rates are kept scaled
//! by 2^10, byte rates by 2^5, and rounded the same way when read.

use serde::{Deserialize, Serialize};

/// The five IPVS counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl Counters {
    fn wrapping_sub(&self, o: &Counters) -> Counters {
        Counters {
            conns: self.conns.wrapping_sub(o.conns),
            inpkts: self.inpkts.wrapping_sub(o.inpkts),
            outpkts: self.outpkts.wrapping_sub(o.outpkts),
            inbytes: self.inbytes.wrapping_sub(o.inbytes),
            outbytes: self.outbytes.wrapping_sub(o.outbytes),
        }
    }
}

/// The five rates as ipvsadm prints them (per second; "bps" is bytes/s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// Interval between estimator runs, in milliseconds (2 s, as in Linux).
pub const ESTIMATOR_PERIOD_MS: u64 = 2000;

/// The kernel's rate estimator state for one stats object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimator {
    last: Counters,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

fn ewma(est: &mut i64, delta: u64, shift: u32) {
    let rate = (delta as i64).wrapping_shl(shift);
    // Arithmetic shift of a possibly negative difference, as in the kernel.
    *est += (rate - *est) >> 2;
}

impl Estimator {
    /// One 2-second tick with the current (absolute) counters.
    pub fn tick(&mut self, now: &Counters) {
        let d = now.wrapping_sub(&self.last);
        self.last = *now;
        ewma(&mut self.cps, d.conns, 9);
        ewma(&mut self.inpps, d.inpkts, 9);
        ewma(&mut self.outpps, d.outpkts, 9);
        ewma(&mut self.inbps, d.inbytes, 4);
        ewma(&mut self.outbps, d.outbytes, 4);
    }

    /// Rates as ipvsadm reads them, rounded like `ip_vs_read_estimator`.
    pub fn rates(&self) -> Rates {
        let r10 = |e: i64| ((e + 0x1FF) >> 10).max(0) as u64;
        let r5 = |e: i64| ((e + 0xF) >> 5).max(0) as u64;
        Rates {
            cps: r10(self.cps),
            inpps: r10(self.inpps),
            outpps: r10(self.outpps),
            inbps: r5(self.inbps),
            outbps: r5(self.outbps),
        }
    }

    /// `-Z`: forget the history; the next tick measures from `now`.
    pub fn zero(&mut self, now: &Counters) {
        *self = Estimator {
            last: *now,
            ..Default::default()
        };
    }
}

/// Counters, the zero point set by `-Z`, and the estimator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Absolute counters since the object was created.
    pub total: Counters,
    /// Values recorded by the last `-Z`.
    pub zero_point: Counters,
    pub est: Estimator,
}

impl Stats {
    /// Counters as listings show them (since the last `-Z`).
    pub fn shown(&self) -> Counters {
        self.total.wrapping_sub(&self.zero_point)
    }

    pub fn rates(&self) -> Rates {
        self.est.rates()
    }

    pub fn zero(&mut self) {
        self.zero_point = self.total;
        self.est.zero(&self.total);
    }

    pub fn tick(&mut self) {
        let t = self.total;
        self.est.tick(&t);
    }

    /// Counts one packet of `bytes` from the client side.
    pub fn count_in(&mut self, bytes: u64) {
        self.total.inpkts += 1;
        self.total.inbytes += bytes;
    }

    /// Counts `pkts` packets of `bytes` in all from the client side.
    pub fn count_in_n(&mut self, pkts: u64, bytes: u64) {
        self.total.inpkts += pkts;
        self.total.inbytes += bytes;
    }

    /// Counts `pkts` packets of `bytes` in all from the real-server side.
    pub fn count_out_n(&mut self, pkts: u64, bytes: u64) {
        self.total.outpkts += pkts;
        self.total.outbytes += bytes;
    }

    /// Counts one packet of `bytes` from the real-server side.
    pub fn count_out(&mut self, bytes: u64) {
        self.total.outpkts += 1;
        self.total.outbytes += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_converges_to_exact_value() {
        let mut s = Stats::default();
        for _ in 0..40 {
            s.total.conns += 20; // 10 conn/s
            s.total.inpkts += 200; // 100 pkt/s
            s.total.inbytes += 20_000; // 10 000 B/s
            s.tick();
        }
        let r = s.rates();
        assert_eq!((r.cps, r.inpps, r.inbps), (10, 100, 10_000));
    }

    #[test]
    fn first_tick_is_a_quarter_of_the_rate() {
        let mut s = Stats::default();
        s.total.inpkts = 80; // 40 pkt/s over 2 s
        s.tick();
        // est = (80 << 9) / 4 = 10240 -> (10240 + 511) >> 10 = 10
        assert_eq!(s.rates().inpps, 10);
    }

    #[test]
    fn zero_resets_shown_counters_and_rates() {
        let mut s = Stats::default();
        s.count_in(100);
        s.tick();
        s.zero();
        assert_eq!(s.shown(), Counters::default());
        assert_eq!(s.rates(), Rates::default());
        s.count_in(10);
        assert_eq!(s.shown().inpkts, 1);
        assert_eq!(s.shown().inbytes, 10);
    }

    #[test]
    fn rate_decays_after_traffic_stops() {
        let mut s = Stats::default();
        s.total.conns = 1000;
        s.tick();
        let high = s.rates().cps;
        s.tick();
        s.tick();
        assert!(s.rates().cps < high);
    }
}
