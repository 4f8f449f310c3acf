//! Running out of file descriptors: the engine's accept fails with EMFILE,
//! it logs and backs off, and once descriptors are available again the
//! waiting clients are served; and connections past half the limit move
//! into the io_uring relay's file table. Its own test binary, because it
//! changes the process-wide open-files limit.

mod common;
use common::*;
use rvs_proxy::EngineConfig;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// The tests here change the process-wide open-files limit: one at a time.
static LIMIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_backs_off_on_emfile_and_recovers() {
    let _one = LIMIT.lock().await;
    let lvs = Lvs::new(EngineConfig {
        workers: 1,
        ..Default::default()
    });
    let rs = tcp_rs("rs1", "127.0.0.1", Mode::Hold).await;
    let vip = free_addr("127.0.0.1");
    lvs.add_service(tcp(vip), "rr");
    lvs.add_rs(tcp(vip), rs.addr, 1);
    assert_eq!(fetch(vip).await, "rs1");
    eventually(5, "first connection closed", || {
        lvs.engine().connections() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Client sockets exist before the limit drops; connecting needs no
    // new descriptor, but the proxy's accept does.
    const M: usize = 20;
    let socks: Vec<_> = (0..M)
        .map(|_| tokio::net::TcpSocket::new_v4().unwrap())
        .collect();
    let before = rvs_proxy::set_fd_limit(1 << 20).unwrap();
    // Well below what is open: a few descriptors freed meanwhile change nothing.
    rvs_proxy::set_fd_limit(open_fds() - 10).unwrap();
    let mut clients = Vec::new();
    for s in socks {
        clients.push(tokio::spawn(async move {
            let c = s.connect(vip).await.unwrap();
            let mut r = tokio::io::BufReader::new(c);
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            (r, line.trim_end().to_string())
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        clients.iter().all(|c| !c.is_finished()),
        "nobody can be served without descriptors"
    );
    assert_eq!(lvs.engine().connections(), 0);

    // Descriptors are back: the backlog is served, nothing crashed.
    rvs_proxy::set_fd_limit(before).unwrap();
    let mut held = Vec::new();
    for c in clients {
        let (r, name) = tokio::time::timeout(Duration::from_secs(5), c)
            .await
            .expect("served after recovery")
            .unwrap();
        assert_eq!(name, "rs1");
        held.push(r);
    }
    assert_eq!(lvs.engine().connections(), M);
    assert_eq!(fetch(vip).await, "rs1");
}

/// Connections past half the open-files limit move into the io_uring
/// relay's file table ("direct descriptors"): bytes still flow both ways,
/// a client's FIN and a client's reset still reach the real server as a
/// FIN and a reset, and the table empties when they close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_half_the_limit_use_direct_descriptors() {
    use std::io::ErrorKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _one = LIMIT.lock().await;
    let lvs = Lvs::new(EngineConfig {
        workers: 1,
        ..Default::default()
    });
    if lvs.engine().io_uring_workers() == 0 {
        eprintln!("io_uring is not available here: nothing to test");
        return;
    }
    // A real server that echoes, and says per connection (by its first
    // line) whether it ended with a FIN or a reset.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rs = l.local_addr().unwrap();
    let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut first = Vec::new();
                let mut buf = [0u8; 4096];
                let end = loop {
                    match s.read(&mut buf).await {
                        Ok(0) => {
                            let _ = s.shutdown().await;
                            break Ok(());
                        }
                        Ok(n) => {
                            if !first.contains(&b'\n') {
                                first.extend_from_slice(&buf[..n]);
                            }
                            if s.write_all(&buf[..n]).await.is_err() {
                                break Err(ErrorKind::BrokenPipe);
                            }
                        }
                        Err(e) => break Err(e.kind()),
                    }
                };
                let _ = tx.send((String::from_utf8_lossy(&first).trim().to_string(), end));
            });
        }
    });
    let vip = free_addr("127.0.0.1");
    lvs.add_service(tcp(vip), "rr");
    lvs.add_rs(tcp(vip), rs, 1);

    // Four descriptors per connection in this process (client, real
    // server, and the proxy's two): 200 connections pass fd 512.
    const N: usize = 200;
    let before = rvs_proxy::set_fd_limit(1 << 20).unwrap();
    rvs_proxy::set_fd_limit(1024).unwrap();
    let mut clients = Vec::new();
    for i in 0..N {
        let mut c = tokio::net::TcpStream::connect(vip).await.unwrap();
        let line = format!("ping {i}\n");
        c.write_all(line.as_bytes()).await.unwrap();
        let mut back = vec![0u8; line.len()];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut back))
            .await
            .expect("echoed within 5 s")
            .unwrap();
        assert_eq!(back, line.as_bytes());
        clients.push(c);
    }
    let direct = lvs.engine().direct_sockets();
    assert!(
        direct >= 20 && direct.is_multiple_of(2),
        "{direct} direct descriptors"
    );
    assert_eq!(lvs.engine().connections(), N);
    // The ones carried as direct descriptors still relay, both ways.
    for (i, c) in clients.iter_mut().enumerate().rev().take(direct / 2) {
        let more = format!("more {i}\n").repeat(1000);
        let (mut r, mut w) = c.split();
        let (_, back) = tokio::join!(w.write_all(more.as_bytes()), async {
            let mut back = vec![0u8; more.len()];
            r.read_exact(&mut back).await.map(|_| back)
        });
        assert_eq!(back.unwrap(), more.as_bytes());
    }
    // Even ones finish with a FIN, odd ones with a reset.
    for (i, c) in clients.into_iter().enumerate() {
        if i % 2 == 0 {
            let mut c = c;
            c.shutdown().await.unwrap();
            let mut rest = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
                .await
                .expect("the real server's FIN within 5 s")
                .unwrap();
            assert!(rest.is_empty());
        } else {
            socket2::SockRef::from(&c)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(c);
        }
    }
    let mut seen = std::collections::HashMap::new();
    while seen.len() < N {
        let (first, end) = tokio::time::timeout(Duration::from_secs(5), ends.recv())
            .await
            .expect("every real-server connection ends")
            .unwrap();
        seen.insert(first, end);
    }
    for i in 0..N {
        let end = seen[&format!("ping {i}")];
        if i % 2 == 0 {
            assert_eq!(end, Ok(()), "connection {i}");
        } else {
            assert_eq!(end, Err(ErrorKind::ConnectionReset), "connection {i}");
        }
    }
    eventually(5, "every connection and direct descriptor gone", || {
        lvs.engine().connections() == 0 && lvs.engine().direct_sockets() == 0
    })
    .await;
    rvs_proxy::set_fd_limit(before).unwrap();
}
