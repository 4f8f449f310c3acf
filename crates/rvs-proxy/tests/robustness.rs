//! Failure and load: a real server dying mid-transfer, idle and half-open
//! connections bounded by timeouts, and 10,000 concurrent connections.
//! Every test is bounded in time and count.

mod common;
use common::*;
use rvs_ctl::{Request, Timeouts};
use rvs_proxy::EngineConfig;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fast() -> EngineConfig {
    EngineConfig {
        workers: 2,
        flush_interval: Duration::from_millis(200),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_server_killed_mid_transfer_closes_the_client_and_leaks_nothing() {
    let lvs = Lvs::new(fast());
    let rs = tcp_rs("rs1", "127.0.0.1", Mode::Echo).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    lvs.add_rs(key, rs.addr, 1);
    let (s, name) = open(vip).await;
    assert_eq!(name, "rs1");
    let (mut r, mut w) = s.unwrap().into_inner().into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 16 * 1024];
        while w.write_all(&chunk).await.is_ok() {}
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    while got < 1 << 20 {
        got += r.read(&mut buf).await.unwrap();
    }
    rs.kill();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the client saw the end of the connection");
    tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .expect("the client's writes fail too")
        .unwrap();
    eventually(5, "no connection left, nothing active", || {
        lvs.engine().connections() == 0 && lvs.counters(key)[0].1 == 0
    })
    .await;
    let states: Vec<String> = lvs.conns().into_iter().map(|c| c.state).collect();
    assert!(
        states.iter().all(|s| s == "CLOSE" || s == "TIME_WAIT"),
        "{states:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_idle_timeout_closes_silent_connections() {
    let lvs = Lvs::new(EngineConfig {
        idle_timeout: Some(Duration::from_millis(600)),
        ..fast()
    });
    let rs = tcp_rs("rs1", "127.0.0.1", Mode::Echo).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    lvs.add_rs(key, rs.addr, 1);
    let (busy, _) = open(vip).await;
    let (idle, _) = open(vip).await;
    let (mut busy, mut idle) = (busy.unwrap(), idle.unwrap());
    // Traffic keeps one alive past the timeout; the other is closed.
    for i in 0..8 {
        roundtrip(&mut busy, &i.to_string()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(closed_by_peer(&mut idle, 1).await, "idle connection closed");
    assert_eq!(roundtrip(&mut busy, "alive").await.unwrap(), "alive");
    eventually(3, "one connection left", || lvs.engine().connections() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_timeouts_bound_idle_and_half_closed_connections() {
    let lvs = Lvs::new(fast());
    let hold = tcp_rs("hold", "127.0.0.1", Mode::Hold).await;
    let close = tcp_rs("close", "127.0.0.1", Mode::Close).await;
    let (v1, v2) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    lvs.add_service(tcp(v1), "rr");
    lvs.add_rs(tcp(v1), hold.addr, 1);
    lvs.add_service(tcp(v2), "rr");
    lvs.add_rs(tcp(v2), close.addr, 1);
    // --set tcp 2 tcpfin 2: ESTABLISHED and FIN_WAIT entries expire after 2 s.
    lvs.ok(Request::SetTimeouts(Timeouts {
        tcp: 2,
        tcp_fin: 2,
        udp: 0,
    }));
    let (idle, _) = open(v1).await;
    // The real server closes; the client never does: FIN_WAIT.
    let (half, name) = open(v2).await;
    assert_eq!(name, "close");
    let (mut idle, mut half) = (idle.unwrap(), half.unwrap());
    eventually(2, "FIN_WAIT entry", || {
        lvs.conns().iter().any(|c| c.state == "FIN_WAIT")
    })
    .await;
    assert_eq!(lvs.engine().connections(), 2);
    assert!(closed_by_peer(&mut idle, 5).await, "idle ESTABLISHED closed");
    // The half-closed client already read EOF; its socket is reset now.
    let mut b = [0u8; 1];
    let _ = half.read(&mut b).await;
    eventually(5, "both gone", || lvs.engine().connections() == 0).await;
    assert!(lvs.conns().iter().all(|c| c.state == "CLOSE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_connections() {
    const N: usize = 10_000;
    // Client, proxy (two sockets) and real server ends of every connection
    // live in this process.
    let limit = rvs_proxy::set_fd_limit((4 * N + 1000) as u64).unwrap();
    assert!(
        limit as usize >= 4 * N + 1000,
        "open-files limit {limit} too low for this test"
    );
    let lvs = Lvs::new(fast());
    let rs = tcp_rs("rs1", "127.0.0.1", Mode::Hold).await;
    let rs2 = tcp_rs("rs2", "127.0.0.1", Mode::Hold).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "wlc");
    lvs.add_rs(key, rs.addr, 1);
    lvs.add_rs(key, rs2.addr, 1);
    let started = std::time::Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..N {
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let r = open(vip).await;
            drop(permit);
            r
        });
    }
    let mut held = Vec::with_capacity(N);
    let mut names = std::collections::HashMap::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(r) = tasks.join_next().await {
            let (s, name) = r.unwrap();
            *names.entry(name).or_insert(0) += 1;
            held.push(s.expect("connected"));
        }
    })
    .await
    .expect("10,000 connections within 120 s");
    let opened = started.elapsed();
    // wlc spreads them evenly; all are ESTABLISHED at once.
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.values().all(|&n| n == N / 2), "{names:?}");
    eventually(10, "10,000 active connections", || {
        lvs.engine().connections() == N
            && lvs.counters(key).iter().map(|c| c.1).sum::<u32>() == N as u32
    })
    .await;
    drop(held);
    eventually(30, "every connection closed", || {
        lvs.engine().connections() == 0 && lvs.counters(key).iter().all(|c| c.1 == 0)
    })
    .await;
    eprintln!("10,000 connections opened in {opened:?}");
}
