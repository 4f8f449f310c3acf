//! Decision time of every scheduler on services of 10, 100 and 1000 real
//! servers (weights 1..=5, every server busy with 1..=7 active and 0..=12
//! inactive connections), cycling over 1024 different clients / destination
//! addresses after a warm-up of 2048 decisions (so lblc/lblcr measure table
//! hits, their steady state); plus the table rebuild that dh, sh and mh do on
//! a real-server change.

use divan::{black_box, Bencher};
use rvs_core::sched::{PacketInfo, SchedService};
use rvs_core::{Dest, DestConfig, DestId, Protocol};
use rvs_sched::new_scheduler;
use std::net::{IpAddr, Ipv4Addr};

fn main() {
    divan::main();
}

const SIZES: &[usize] = &[10, 100, 1000];

fn servers(n: usize) -> Vec<Box<Dest>> {
    (0..n)
        .map(|i| {
            let addr = IpAddr::V4(Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 2));
            let mut cfg = DestConfig::new(addr, 80);
            cfg.weight = (i % 5) as i32 + 1;
            let mut d = Dest::new(DestId(i as u64 + 1), cfg);
            d.activeconns = (i % 7) as u32 + 1;
            d.inactconns = (i % 13) as u32;
            Box::new(d)
        })
        .collect()
}

fn packets() -> Vec<PacketInfo> {
    (0..1024u32)
        .map(|k| PacketInfo {
            proto: Protocol::Tcp,
            saddr: IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + k * 7919)),
            sport: 1024 + k as u16,
            daddr: IpAddr::V4(Ipv4Addr::from(0xC612_0100 + k)),
            dport: 80,
            inverse: false,
        })
        .collect()
}

fn decide(bencher: Bencher, name: &str, n: usize) {
    let dests = servers(n);
    let view = SchedService {
        flags: 0,
        dests: &dests,
    };
    let mut sched = new_scheduler(name).expect("known scheduler");
    sched.init_service(&view);
    let pkts = packets();
    for p in pkts.iter().chain(&pkts) {
        sched.schedule(&view, p, 0);
    }
    let mut k = 0;
    bencher.bench_local(|| {
        k = (k + 1) & 1023;
        black_box(sched.schedule(&view, &pkts[k], 0))
    });
}

macro_rules! decision_benches {
    ($($name:ident),* $(,)?) => {
        /// One `schedule()` call.
        mod decide {
            use super::*;
            $(
                #[divan::bench(args = SIZES)]
                fn $name(bencher: Bencher, n: usize) {
                    decide(bencher, stringify!($name), n);
                }
            )*
        }
    };
}

decision_benches!(rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos);

macro_rules! rebuild_benches {
    ($($name:ident),* $(,)?) => {
        /// The table rebuild after a real-server edit (`upd_dest`; dh has
        /// none, so it is measured through `add_dest`).
        mod rebuild {
            use super::*;
            $(
                #[divan::bench(args = SIZES)]
                fn $name(bencher: Bencher, n: usize) {
                    let dests = servers(n);
                    let view = SchedService { flags: 0, dests: &dests };
                    let mut sched = new_scheduler(stringify!($name)).expect("known scheduler");
                    sched.init_service(&view);
                    bencher.bench_local(|| {
                        sched.add_dest(&view, 0);
                        sched.upd_dest(&view, 0);
                    });
                }
            )*
        }
    };
}

rebuild_benches!(dh, sh, mh);
