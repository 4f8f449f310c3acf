//! Test harness: a director with the real schedulers, the engine on top of
//! it, real servers that answer with their name, and clients — all real
//! sockets on loopback.
#![allow(dead_code)]

use rvs_conn::Sysctls;
use rvs_core::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use rvs_ctl::{ConnEntry, Request, Response, ServiceEntry};
use rvs_director::{Director, DirectorOptions};
use rvs_proxy::{Engine, EngineConfig, SharedDirector};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// A director and an engine carrying its services.
pub struct Lvs {
    pub director: SharedDirector,
    pub engine: Option<Engine>,
    pub epoch: Instant,
}

impl Lvs {
    pub fn new(config: EngineConfig) -> Lvs {
        Lvs::with_sysctls(config, Sysctls::default())
    }

    /// `RVS_TEST_RELAY=epoll` runs every test on the epoll relay instead
    /// of the io_uring one (scripts/test runs the suite both ways).
    pub fn with_sysctls(mut config: EngineConfig, sysctls: Sysctls) -> Lvs {
        if std::env::var("RVS_TEST_RELAY").is_ok_and(|r| r == "epoll") {
            config.io_uring = false;
        }
        let director = Director::new(DirectorOptions {
            schedulers: Box::new(rvs_sched::new_scheduler),
            interfaces: Box::new(|_| None),
            local_broadcast: Box::new(|_| false),
            sysctls,
            conn_seed: 7,
        });
        let director: SharedDirector = Arc::new(Mutex::new(director));
        let epoch = Instant::now();
        let engine = Engine::start(director.clone(), config, epoch).expect("engine starts");
        Lvs {
            director,
            engine: Some(engine),
            epoch,
        }
    }

    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().unwrap()
    }

    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// What rvsd does with a request: ask the engine, apply, sync.
    pub fn apply(&self, req: Request) -> Result<Response, String> {
        {
            let d = self.director.lock().unwrap();
            self.engine().admit(&req, d.table())?;
        }
        let resp = self.director.lock().unwrap().apply(&req, self.now());
        let problems = self.engine().sync();
        if !problems.is_empty() {
            return Err(format!("{problems:?}"));
        }
        match resp {
            Response::Err(e) => Err(format!("{e:?}")),
            r => Ok(r),
        }
    }

    pub fn ok(&self, req: Request) {
        self.apply(req.clone())
            .unwrap_or_else(|e| panic!("{req:?}: {e}"));
    }

    pub fn add_service(&self, key: ServiceKey, sched: &str) {
        self.add_service_with(key, sched, |_| {});
    }

    pub fn add_service_with(
        &self,
        key: ServiceKey,
        sched: &str,
        f: impl FnOnce(&mut ServiceConfig),
    ) {
        let mut config = ServiceConfig::defaults(key.af());
        config.scheduler = sched.into();
        f(&mut config);
        self.ok(Request::AddService { key, config });
    }

    pub fn add_rs(&self, key: ServiceKey, rs: SocketAddr, weight: i32) {
        self.add_rs_with(key, rs, |d| d.weight = weight);
    }

    pub fn add_rs_with(&self, key: ServiceKey, rs: SocketAddr, f: impl FnOnce(&mut DestConfig)) {
        let mut dest = DestConfig::new(rs.ip(), rs.port());
        dest.fwd = FwdMethod::Masq;
        f(&mut dest);
        self.ok(Request::AddDest { service: key, dest });
    }

    pub fn edit_rs(&self, key: ServiceKey, rs: SocketAddr, f: impl FnOnce(&mut DestConfig)) {
        let svc = self.service(key);
        let mut dest = svc
            .dests
            .iter()
            .find(|d| d.config.addr == rs.ip() && d.config.port == rs.port())
            .expect("real server exists")
            .config
            .clone();
        f(&mut dest);
        self.ok(Request::EditDest { service: key, dest });
    }

    pub fn service(&self, key: ServiceKey) -> ServiceEntry {
        match self
            .director
            .lock()
            .unwrap()
            .apply(&Request::GetService { key }, 0)
        {
            Response::Service(s) => s,
            r => panic!("{r:?}"),
        }
    }

    /// (real server, ActiveConn, InActConn) in listing order.
    pub fn counters(&self, key: ServiceKey) -> Vec<(SocketAddr, u32, u32)> {
        self.service(key)
            .dests
            .iter()
            .map(|d| {
                (
                    SocketAddr::new(d.config.addr, d.config.port),
                    d.activeconns,
                    d.inactconns,
                )
            })
            .collect()
    }

    pub fn conns(&self) -> Vec<ConnEntry> {
        let now = self.now();
        match self.director.lock().unwrap().apply(&Request::GetConns, now) {
            Response::Conns(c) => c,
            r => panic!("{r:?}"),
        }
    }

    /// Runs the daemon's periodic tick once.
    pub fn tick(&self) {
        let now = self.now();
        self.director.lock().unwrap().tick(now);
    }
}

impl Drop for Lvs {
    fn drop(&mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown();
        }
    }
}

pub fn tcp(addr: SocketAddr) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: addr.ip(),
        port: addr.port(),
    }
}

pub fn udp(addr: SocketAddr) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: addr.ip(),
        port: addr.port(),
    }
}

/// A port that was free on `ip` a moment ago (TCP and UDP).
pub fn free_addr(ip: &str) -> SocketAddr {
    let ip: IpAddr = ip.parse().unwrap();
    loop {
        let l = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
        let a = l.local_addr().unwrap();
        if std::net::UdpSocket::bind(a).is_ok() {
            return a;
        }
    }
}

/// Polls `f` until it holds, for at most `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a real server treats a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sends "NAME\n" and closes (the oracle's `close`).
    Close,
    /// Sends "NAME\n" and waits for the client to close (`hold`).
    Hold,
    /// Sends "NAME\n", then echoes everything.
    Echo,
    /// Reads a PROXY header (v1 or v2), answers "NAME SRC DST\n" and closes.
    ProxyEcho,
    /// Answers "NAME PEER\n" (the address the connection came from), then holds.
    Peer,
}

/// A real server running on the test's runtime.
pub struct Rs {
    pub name: String,
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Rs {
    /// Stops the server at once, as if its process died: listener and
    /// every open connection are dropped.
    pub fn kill(&self) {
        self.task.abort();
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Rs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn tcp_rs(name: &str, ip: &str, mode: Mode) -> Rs {
    let l = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (n, acc) = (name.to_string(), accepted.clone());
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((s, _)) = l.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            acc.fetch_add(1, Ordering::SeqCst);
            let n = n.clone();
            conns.spawn(serve_rs(s, n, mode));
            while conns.try_join_next().is_some() {}
        }
    });
    Rs {
        name: name.into(),
        addr,
        accepted,
        task,
    }
}

async fn serve_rs(mut s: TcpStream, name: String, mode: Mode) {
    match mode {
        Mode::Peer => {
            let peer = s.peer_addr().unwrap();
            let _ = s.write_all(format!("{name} {peer}\n").as_bytes()).await;
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        Mode::Close => {
            let _ = s.write_all(format!("{name}\n").as_bytes()).await;
        }
        Mode::Hold => {
            let _ = s.write_all(format!("{name}\n").as_bytes()).await;
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        Mode::Echo => {
            let _ = s.write_all(format!("{name}\n").as_bytes()).await;
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
        Mode::ProxyEcho => {
            let mut buf = vec![0u8; 0];
            let (src, dst) = loop {
                if let Some(r) = parse_proxy_header(&buf) {
                    break r;
                }
                let mut chunk = [0u8; 256];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let _ = s
                .write_all(format!("{name} {src} {dst}\n").as_bytes())
                .await;
        }
    }
}

/// Parses a PROXY v1 or v2 header at the start of `b`, written from the
/// specification independently of the engine's encoder: `Some((src, dst))`
/// once it is complete, "-" for unknown addresses.
pub fn parse_proxy_header(b: &[u8]) -> Option<(String, String)> {
    const SIG: [u8; 12] = [
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
    ];
    if b.starts_with(b"PROXY ") {
        let end = b.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&b[..end]).ok()?;
        let f: Vec<&str> = line.split(' ').collect();
        assert!(matches!(f[1], "TCP4" | "TCP6"), "{line}");
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        let src = SocketAddr::new(ip(f[2]), f[4].parse().unwrap());
        let dst = SocketAddr::new(ip(f[3]), f[5].parse().unwrap());
        return Some((format!("v1:{src}"), dst.to_string()));
    }
    if b.len() < 16 {
        return None;
    }
    assert_eq!(&b[..12], &SIG, "not a PROXY header: {b:?}");
    assert_eq!(b[12], 0x21, "version 2, PROXY command");
    let len = u16::from_be_bytes([b[14], b[15]]) as usize;
    if b.len() < 16 + len {
        return None;
    }
    let a = &b[16..16 + len];
    let (src, dst) = match b[13] >> 4 {
        1 => {
            let ip = |o: usize| IpAddr::from([a[o], a[o + 1], a[o + 2], a[o + 3]]);
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            (
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            )
        }
        2 => {
            let ip = |o: usize| IpAddr::from(<[u8; 16]>::try_from(&a[o..o + 16]).unwrap());
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            (
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            )
        }
        f => panic!("family {f}"),
    };
    let kind = if b[13] & 0x0f == 2 { "v2dgram" } else { "v2" };
    Some((format!("{kind}:{src}"), dst.to_string()))
}

/// A UDP real server: answers every datagram with "NAME " + the datagram
/// (after a PROXY v2 header, which it replaces by the source it names).
pub async fn udp_rs(name: &str, ip: &str) -> Rs {
    let s = UdpSocket::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let addr = s.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (n, acc) = (name.to_string(), accepted.clone());
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((len, from)) = s.recv_from(&mut buf).await else {
                continue;
            };
            acc.fetch_add(1, Ordering::SeqCst);
            let data = &buf[..len];
            let reply = if data.starts_with(&[0x0D, 0x0A, 0x0D, 0x0A]) {
                let (src, _) = parse_proxy_header(data).expect("complete header");
                let hl = 16 + u16::from_be_bytes([data[14], data[15]]) as usize;
                format!("{n} {src} {}", String::from_utf8_lossy(&data[hl..]))
            } else {
                format!("{n} {}", String::from_utf8_lossy(data))
            };
            let _ = s.send_to(reply.as_bytes(), from).await;
        }
    });
    Rs {
        name: name.into(),
        addr,
        accepted,
        task,
    }
}

/// Connects, reads the first line, and closes: the oracle's client.
pub async fn fetch(vip: SocketAddr) -> String {
    let (s, line) = open(vip).await;
    drop(s);
    line
}

/// Connects and reads the first line; the connection stays open.
/// A refused or reset connection reads as "<refused>".
pub async fn open(vip: SocketAddr) -> (Option<BufReader<TcpStream>>, String) {
    open_from(None, vip).await
}

/// [`open`] from a chosen source address.
pub async fn open_from(
    src: Option<&str>,
    vip: SocketAddr,
) -> (Option<BufReader<TcpStream>>, String) {
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        let s = match src {
            None => TcpStream::connect(vip).await?,
            Some(ip) => {
                let sock = if vip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                sock.set_reuseaddr(true)?;
                sock.bind(SocketAddr::new(ip.parse().unwrap(), 0))?;
                sock.connect(vip).await?
            }
        };
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).await?;
        Ok::<_, std::io::Error>((r, line))
    })
    .await
    .expect("client not answered within 10 s");
    match r {
        Ok((r, line)) if !line.is_empty() => (Some(r), line.trim_end().to_string()),
        _ => (None, "<refused>".into()),
    }
}

/// Writes `msg` on a held connection and reads one line back.
pub async fn roundtrip(r: &mut BufReader<TcpStream>, msg: &str) -> std::io::Result<String> {
    r.get_mut().write_all(format!("{msg}\n").as_bytes()).await?;
    let mut line = String::new();
    let n = tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::other("no answer within 5 s"))??;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end().to_string())
}

/// Waits until the peer closes or resets the connection (EOF or error).
pub async fn closed_by_peer(r: &mut BufReader<TcpStream>, secs: u64) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, r.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends one datagram from `sock` to `vip` and returns the reply.
pub async fn ask(sock: &UdpSocket, vip: SocketAddr, msg: &str) -> String {
    sock.send_to(msg.as_bytes(), vip).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("udp reply within 5 s")
        .unwrap();
    assert_eq!(from, vip, "replies come from the virtual service");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The client-result lines of one run in a golden trace, by block:
/// `i SRC DST NAME` -> NAME.
pub fn trace_runs(golden: &str) -> Vec<Vec<String>> {
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for line in golden.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let is_result = f.len() == 4 && f[0].parse::<u32>().is_ok() && f[1].contains('.');
        if is_result {
            if f[0] == "1" && !cur.is_empty() {
                runs.push(std::mem::take(&mut cur));
            }
            cur.push(f[3].to_string());
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// The `-L -n` listings of a golden trace, in order: for each, the real
/// servers as (name rsN, weight, ActiveConn, InActConn) sorted by name.
pub fn trace_listings(golden: &str) -> Vec<Vec<(String, i32, u32, u32)>> {
    let mut out = Vec::new();
    let mut lines = golden.lines().peekable();
    while let Some(l) = lines.next() {
        if l != "$ ipvsadm -L -n" {
            continue;
        }
        let mut rows = Vec::new();
        for l in lines.by_ref() {
            if l.starts_with("[exit=") {
                break;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first() == Some(&"->") && f.get(2) == Some(&"Masq") {
                let ip = f[1].split(':').next().unwrap();
                let n = ip.split('.').nth(2).unwrap();
                rows.push((
                    format!("rs{n}"),
                    f[3].parse().unwrap(),
                    f[4].parse().unwrap(),
                    f[5].parse().unwrap(),
                ));
            }
        }
        rows.sort();
        out.push(rows);
    }
    out
}

/// A kernel trace captured with the oracle; they live once, with the
/// schedulers they check, in `crates/rvs-sched/tests/data`.
pub fn golden(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rvs-sched/tests/data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
