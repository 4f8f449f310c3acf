//! Running out of file descriptors: the engine's accept fails with EMFILE,
//! it logs and backs off, and once descriptors are available again the
//! waiting clients are served. Its own test binary, because it changes the
//! process-wide open-files limit.

mod common;
use common::*;
use rvs_proxy::EngineConfig;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_backs_off_on_emfile_and_recovers() {
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
