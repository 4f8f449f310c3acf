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
    assert!(
        closed_by_peer(&mut idle, 5).await,
        "idle ESTABLISHED closed"
    );
    // The half-closed client already read EOF; its socket is reset now.
    let mut b = [0u8; 1];
    let _ = half.read(&mut b).await;
    eventually(5, "both gone", || lvs.engine().connections() == 0).await;
    assert!(lvs.conns().iter().all(|c| c.state == "CLOSE"));
}

/// Connections carried at once. The real servers and the clients run in
/// two child processes (`load_peer`), so that each process's descriptors
/// fit its open-files limit and this process's are the proxy's. A proxied
/// connection holds two sockets: with the epoll relay the count is capped
/// by the limit (CAP_SYS_RESOURCE is needed to raise it: a hard limit of
/// 20,000 leaves room for 9,850), while the io_uring relay moves
/// connections past half the limit into its file table and carries all.
const LOAD: usize = 10_000;

/// A `load_peer` child process and its lines.
struct Peer {
    child: tokio::process::Child,
    to: tokio::process::ChildStdin,
    from: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Peer {
    fn spawn(role: &str, n: usize) -> Peer {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["load_peer", "--exact", "--ignored", "--nocapture"])
            .env("RVS_PROXY_LOAD_PEER", format!("{role} {n}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let to = child.stdin.take().unwrap();
        let from = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Peer { child, to, from }
    }

    async fn say(&mut self, line: &str) {
        self.to
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The words after `prefix` on the first line that starts with it.
    async fn expect(&mut self, prefix: &str) -> Vec<String> {
        let f = async {
            while let Some(l) = self.from.next_line().await.unwrap() {
                if let Some(rest) = l.strip_prefix(prefix) {
                    return rest.split_whitespace().map(String::from).collect();
                }
            }
            panic!("peer exited before {prefix}");
        };
        tokio::time::timeout(Duration::from_secs(180), f)
            .await
            .unwrap_or_else(|_| panic!("peer did not say {prefix} within 180 s"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_connections() {
    let limit = rvs_proxy::set_fd_limit(1 << 20).unwrap() as usize;
    let lvs = Lvs::new(fast());
    let direct = lvs.engine().io_uring_workers() == lvs.engine().workers();
    let n = if direct {
        LOAD
    } else {
        LOAD.min(limit.saturating_sub(300) / 2)
    };
    if n < LOAD {
        eprintln!("open-files hard limit {limit}: carrying {n} connections instead of {LOAD}");
    }
    assert!(
        n >= 5_000,
        "open-files limit {limit} is too low for a load test"
    );
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "wlc");
    let mut servers = Peer::spawn("servers", n);
    for a in servers.expect("SERVERS ").await {
        lvs.add_rs(key, a.parse().unwrap(), 1);
    }
    let mut clients = Peer::spawn("clients", n);
    let started = std::time::Instant::now();
    clients.say(&vip.to_string()).await;
    let opened = clients.expect("OPENED ").await;
    let took = started.elapsed();
    // wlc spread them evenly, every one answered by its real server.
    let counts: Vec<usize> = opened.iter().map(|c| c.parse().unwrap()).collect();
    assert_eq!(counts, [n / 2, n - n / 2], "per real server");
    eventually(10, "all connections active at once", || {
        lvs.engine().connections() == n
            && lvs.counters(key).iter().map(|c| c.1).sum::<u32>() == n as u32
    })
    .await;
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let held = lvs.engine().direct_sockets();
    eprintln!("{n} connections: {fds} descriptors open, {held} direct descriptors");
    if direct && 2 * n > limit {
        // Past half the limit, connections moved into the rings' tables.
        assert!(held > 0 && fds + held >= 2 * n, "{fds} + {held} for {n}");
        assert!(fds < limit, "{fds} of {limit}");
    }
    clients.say("release").await;
    clients.expect("RELEASED").await;
    eventually(30, "every connection closed", || {
        lvs.engine().connections() == 0
            && lvs.counters(key).iter().all(|c| c.1 == 0)
            && lvs.engine().direct_sockets() == 0
    })
    .await;
    servers.say("stop").await;
    let _ = clients.child.wait().await;
    let _ = servers.child.wait().await;
    eprintln!("{n} concurrent connections opened in {took:?}");
}

/// The other sides of `ten_thousand_concurrent_connections`, by role:
/// `servers` runs two real servers until told to stop; `clients` opens as
/// many clients as asked and holds them until told to release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a peer process of ten_thousand_concurrent_connections"]
async fn load_peer() {
    use tokio::io::AsyncBufReadExt;
    let Ok(what) = std::env::var("RVS_PROXY_LOAD_PEER") else {
        return;
    };
    let (role, n) = what.split_once(' ').unwrap();
    let n: usize = n.parse().unwrap();
    rvs_proxy::raise_fd_limit().unwrap();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    if role == "servers" {
        let rs1 = tcp_rs("rs1", "127.0.0.1", Mode::Hold).await;
        let rs2 = tcp_rs("rs2", "127.0.0.1", Mode::Hold).await;
        println!("SERVERS {} {}", rs1.addr, rs2.addr);
        let _ = stdin.next_line().await;
        return;
    }
    let vip: std::net::SocketAddr = stdin.next_line().await.unwrap().unwrap().parse().unwrap();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let r = open(vip).await;
            drop(permit);
            r
        });
    }
    let mut held = Vec::with_capacity(n);
    let (mut a, mut b) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (s, name) = r.unwrap();
        match name.as_str() {
            "rs1" => a += 1,
            "rs2" => b += 1,
            other => panic!("unexpected answer {other}"),
        }
        held.push(s);
    }
    println!("OPENED {b} {a}");
    let _ = stdin.next_line().await;
    drop(held);
    println!("RELEASED");
}

/// Receivers that do not read hold the io_uring relay's buffers (each
/// direction keeps the one whose send is stuck): the worker adds buffers
/// instead of leaving other connections without any, nothing read for the
/// slow receivers is lost or reordered, and the added buffers are given
/// back once they are all free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_do_not_read_do_not_starve_other_connections() {
    const FLOOD: usize = 12 << 20;
    const SLOW: usize = 6;
    let lvs = Lvs::new(EngineConfig {
        workers: 1,
        // Copy: every byte stays in the ring (no hand-over to splice).
        relay: rvs_proxy::RelayMethod::Copy,
        io_uring_buffers: 4,
        ..Default::default()
    });
    if lvs.engine().io_uring_workers() == 0 {
        eprintln!("skipped: the relay is not io_uring here");
        return;
    }
    assert_eq!(lvs.engine().io_uring_buffers(), 4);
    // A real server that sends FLOOD bytes of a known pattern and closes.
    let flood = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let flood_addr = flood.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = flood.accept().await {
            tokio::spawn(async move {
                let mut sent = 0;
                while sent < FLOOD {
                    let n = (FLOOD - sent).min(65536);
                    let buf: Vec<u8> = (sent..sent + n).map(|i| (i % 251) as u8).collect();
                    if s.write_all(&buf).await.is_err() {
                        return;
                    }
                    sent += n;
                }
            });
        }
    });
    let slow_vip = free_addr("127.0.0.1");
    lvs.add_service(tcp(slow_vip), "rr");
    lvs.add_rs(tcp(slow_vip), flood_addr, 1);
    let echo = tcp_rs("echo", "127.0.0.1", Mode::Echo).await;
    let vip = free_addr("127.0.0.1");
    lvs.add_service(tcp(vip), "rr");
    lvs.add_rs(tcp(vip), echo.addr, 1);

    let mut slow = Vec::new();
    for _ in 0..SLOW {
        slow.push(tokio::net::TcpStream::connect(slow_vip).await.unwrap());
    }
    // Every slow connection ends up holding a buffer its send cannot
    // deliver: more than the 4 the worker started with.
    eventually(20, "the relay adds buffers", || {
        lvs.engine().io_uring_buffers() > 4
    })
    .await;
    // Another client is served while they are stuck.
    let (c, name) = open(vip).await;
    assert_eq!(name, "echo");
    let mut c = c.unwrap();
    assert_eq!(
        roundtrip(&mut c, "not starved").await.unwrap(),
        "not starved"
    );
    // The slow receivers get every byte, in order.
    for mut s in slow {
        let got = tokio::time::timeout(Duration::from_secs(60), async {
            let mut buf = vec![0u8; 1 << 16];
            let mut at = 0usize;
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return at;
                }
                for (i, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, ((at + i) % 251) as u8, "byte {} out of order", at + i);
                }
                at += n;
            }
        })
        .await
        .expect("slow receiver drained within 60 s");
        assert_eq!(got, FLOOD);
    }
    // Once nobody holds them, the added groups are given back.
    eventually(10, "the relay gives the added buffers back", || {
        lvs.engine().io_uring_buffers() == 4
    })
    .await;
}
