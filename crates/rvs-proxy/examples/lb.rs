//! A minimal load balancer on the engine, for measurements:
//! `lb LISTEN BACKEND[,BACKEND...] [WORKERS] [auto|copy|splice]` serves one
//! round-robin TCP service on LISTEN with the backends as masqueraded real
//! servers, until killed.

use rvs_core::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use rvs_ctl::Request;
use rvs_director::{Director, DirectorOptions};
use rvs_proxy::{Engine, EngineConfig, RelayMethod};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: lb LISTEN BACKEND[,BACKEND...] [WORKERS] [auto|copy|splice]");
        std::process::exit(2);
    }
    let listen: SocketAddr = args[1].parse().expect("LISTEN is address:port");
    let workers = args.get(3).map_or(1, |w| w.parse().expect("WORKERS"));
    let relay = match args.get(4).map(String::as_str) {
        Some("splice") => RelayMethod::Splice,
        Some("copy") => RelayMethod::Copy,
        _ => RelayMethod::Auto,
    };
    let director = Arc::new(Mutex::new(Director::new(DirectorOptions {
        schedulers: Box::new(rvs_sched::new_scheduler),
        interfaces: Box::new(|_| None),
        local_broadcast: Box::new(|_| false),
        sysctls: Default::default(),
        conn_seed: 1,
    })));
    let epoch = Instant::now();
    let engine = Engine::start(
        director.clone(),
        EngineConfig {
            workers,
            relay,
            ..Default::default()
        },
        epoch,
    )
    .expect("engine");
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: listen.ip(),
        port: listen.port(),
    };
    let mut config = ServiceConfig::defaults(key.af());
    config.scheduler = "rr".into();
    let mut reqs = vec![Request::AddService { key, config }];
    for b in args[2].split(',') {
        let b: SocketAddr = b.parse().expect("BACKEND is address:port");
        let mut dest = DestConfig::new(b.ip(), b.port());
        dest.fwd = FwdMethod::Masq;
        reqs.push(Request::AddDest { service: key, dest });
    }
    for r in reqs {
        let resp = director.lock().unwrap().apply(&r, 0);
        assert_eq!(resp, rvs_ctl::Response::Ok, "{r:?}");
    }
    if let Some(p) = engine.sync().first() {
        eprintln!("lb: {p}");
        std::process::exit(1);
    }
    // The daemon's periodic work: expire entries, estimators.
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let mut d = director.lock().unwrap();
        d.tick_estimators();
        d.tick(epoch.elapsed().as_millis() as u64);
    }
}
