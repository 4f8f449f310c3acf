//! Time to add 10,000 real servers to one service through the director
//! (one `-R`-style batch), per scheduler: the control-plane half of "apply
//! 10,000 real servers" (the xdp engine's map writes are measured by
//! `scripts/bench-xdp`).
//!
//!   cargo bench -p rvs-director --bench add_dests

use rvs_conn::Sysctls;
use rvs_core::{Af, DestConfig, Protocol, ServiceConfig, ServiceKey};
use rvs_ctl::{Request, Response};
use rvs_director::{Director, DirectorOptions};

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    for sched in ["rr", "wrr", "wlc", "sh", "mh"] {
        let mut d = Director::new(DirectorOptions {
            schedulers: Box::new(rvs_sched::new_scheduler),
            interfaces: Box::new(|_| None),
            local_broadcast: Box::new(|_| false),
            sysctls: Sysctls::default(),
            conn_seed: 1,
        });
        let key = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "198.18.0.1".parse().unwrap(),
            port: 80,
        };
        let mut cfg = ServiceConfig::defaults(Af::Inet);
        cfg.scheduler = sched.into();
        assert_eq!(
            d.apply(&Request::AddService { key, config: cfg }, 0),
            Response::Ok
        );
        let reqs: Vec<Request> = (0..n)
            .map(|i| {
                let a = std::net::Ipv4Addr::from(0xC613_0100u32 + i);
                Request::AddDest {
                    service: key,
                    dest: DestConfig::new(a.into(), 80),
                }
            })
            .collect();
        let t = std::time::Instant::now();
        let Response::Batch(rs) = d.apply(&Request::Batch(reqs), 0) else {
            panic!("not a batch answer");
        };
        let took = t.elapsed();
        assert!(rs.iter().all(|r| *r == Response::Ok));
        println!("{sched:>4}: {n} AddDest in one batch: {took:.1?}");
    }
}
