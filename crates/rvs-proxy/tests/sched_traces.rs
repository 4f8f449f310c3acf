//! The engine against Linux: the same configurations as the oracle's
//! `sched-rr`, `sched-wrr` and `sched-lc-hold` scripts (three real servers
//! added in order rs1..rs3, each answering with its name), driven through
//! real sockets, must send each connection to the server the kernel chose,
//! and `-L -n` must show the kernel's ActiveConn/InActConn. The expected
//! sequences and listings are read from the golden traces in `crates/rvs-sched/tests/data`.

mod common;
use common::*;
use rvs_core::ServiceKey;
use rvs_proxy::EngineConfig;

fn listing(lvs: &Lvs, key: ServiceKey, rss: &[Rs]) -> Vec<(String, i32, u32, u32)> {
    let mut v: Vec<_> = lvs
        .service(key)
        .dests
        .iter()
        .map(|d| {
            let name = rss
                .iter()
                .find(|r| r.addr.ip() == d.config.addr && r.addr.port() == d.config.port)
                .map(|r| r.name.clone())
                .expect("known real server");
            (name, d.config.weight, d.activeconns, d.inactconns)
        })
        .collect();
    v.sort();
    v
}

async fn servers(mode: Mode) -> Vec<Rs> {
    let mut v = Vec::new();
    for n in ["rs1", "rs2", "rs3"] {
        v.push(tcp_rs(n, "127.0.0.1", mode).await);
    }
    v
}

fn config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rr_matches_the_kernel_trace() {
    let g = golden("sched-rr.out");
    let (runs, listings) = (trace_runs(&g), trace_listings(&g));
    assert_eq!(runs.len(), 1);
    let lvs = Lvs::new(config());
    let rss = servers(Mode::Close).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    for rs in &rss {
        lvs.add_rs(key, rs.addr, 1);
    }
    let mut got = Vec::new();
    for _ in 0..runs[0].len() {
        got.push(fetch(vip).await);
    }
    assert_eq!(got, runs[0]);
    // Every connection ends in TIME_WAIT: 0 active, 4 inactive each.
    eventually(5, "the kernel's listing after the run", || {
        listing(&lvs, key, &rss) == listings[0]
    })
    .await;
    // `-L -c`: twelve entries, each in TIME_WAIT once both FINs were relayed.
    eventually(5, "twelve TIME_WAIT entries", || {
        let conns = lvs.conns();
        conns.len() == 12 && conns.iter().all(|c| c.state == "TIME_WAIT")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrr_matches_the_kernel_trace_including_a_quiesced_server() {
    let g = golden("sched-wrr.out");
    let (runs, listings) = (trace_runs(&g), trace_listings(&g));
    assert_eq!((runs.len(), listings.len()), (2, 2));
    let lvs = Lvs::new(config());
    let rss = servers(Mode::Close).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "wrr");
    for (i, rs) in rss.iter().enumerate() {
        lvs.add_rs(key, rs.addr, i as i32 + 1);
    }
    let mut got = Vec::new();
    for _ in 0..runs[0].len() {
        got.push(fetch(vip).await);
    }
    assert_eq!(got, runs[0]);
    eventually(5, "listing after the first run", || {
        listing(&lvs, key, &rss) == listings[0]
    })
    .await;
    // Weights 4, 0, 2: rs2 is quiesced.
    for (rs, w) in rss.iter().zip([4, 0, 2]) {
        lvs.edit_rs(key, rs.addr, |d| d.weight = w);
    }
    let mut got = Vec::new();
    for _ in 0..runs[1].len() {
        got.push(fetch(vip).await);
    }
    assert_eq!(got, runs[1]);
    eventually(5, "listing after the second run", || {
        listing(&lvs, key, &rss) == listings[1]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lc_with_held_connections_matches_the_kernel_trace() {
    let g = golden("sched-lc-hold.out");
    let (runs, listings) = (trace_runs(&g), trace_listings(&g));
    assert_eq!((runs.len(), listings.len()), (2, 2));
    let lvs = Lvs::new(config());
    let rss = servers(Mode::Hold).await;

    for (run, (weights, want)) in [([1, 1, 1], &listings[0]), ([1, 2, 3], &listings[1])]
        .into_iter()
        .enumerate()
    {
        let vip = free_addr("127.0.0.1");
        let key = tcp(vip);
        lvs.add_service(key, "lc");
        for (rs, w) in rss.iter().zip(weights) {
            lvs.add_rs(key, rs.addr, w);
        }
        let mut held = Vec::new();
        let mut got = Vec::new();
        for _ in 0..runs[run].len() {
            let (s, name) = open(vip).await;
            held.push(s);
            got.push(name);
            // The kernel's client waits for each reply, so the previous
            // connection is ESTABLISHED before the next is scheduled.
            let n = got.len() as u32;
            eventually(5, "connection established", || {
                lvs.counters(key).iter().map(|c| c.1).sum::<u32>() == n
            })
            .await;
        }
        assert_eq!(got, runs[run], "run {run}");
        assert_eq!(&listing(&lvs, key, &rss), want, "run {run}");
        drop(held);
        eventually(5, "released connections become inactive", || {
            lvs.counters(key).iter().all(|c| c.1 == 0)
        })
        .await;
        lvs.ok(rvs_ctl::Request::Flush);
    }
}
