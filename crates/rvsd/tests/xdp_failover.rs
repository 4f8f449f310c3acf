//! Established flows survive a director takeover on the xdp engine: two
//! rvsd directors (`engine = "xdp"`, one `[[vrrp]]` instance each, VRRPv3
//! with 0.1 s adverts, both sync daemons, `--sync-peer` unicast), a client
//! and two direct-routing real servers, all on one bridged segment in
//! network namespaces:
//!
//! ```text
//!   client 198.18.70.10 ──┐            ┌── rs1 198.18.70.21 (VIP on lo)
//!   director a .1 (150) ──┼── bridge ──┼── rs2 198.18.70.22 (VIP on lo)
//!   director b .2 (100) ──┘
//!   VIP 198.18.70.100: the VRRP address and the service (tcp :80, rr, -g)
//! ```
//!
//! The client runs long echo transfers through the VIP and a stream of
//! short connections. Once the backup's BPF connection map holds every
//! long flow (synced from the master's tick), the master dies: rvsd is
//! killed with SIGKILL and its link cut (its XDP program outlives the
//! process and would otherwise keep forwarding). The test measures the
//! time until the backup holds the VIP and serves a new connection, and
//! counts the established flows that were reset or stalled (must be 0);
//! every long flow must end with every byte echoed. The same with NAT
//! (real servers on 198.19.70.0/24 behind a second VIP of the instance,
//! their gateway), and a control without the sync daemons, where every
//! established flow must be reset. Prints the numbers (BENCHMARKS.md).
//! Nothing is set up to help the backup: the bridge floods the frames for
//! the dead master's MAC to its port too (its program must leave them to
//! its kernel), and with NAT it has never resolved the client (the first
//! replies after the takeover must resolve it, not be lost).
//! Needs root (skips otherwise).

mod common;

use common::{is_root, sh};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VIP: &str = "198.18.70.100";
const CLIENT: &str = "198.18.70.10";
const DIRECTORS: [(&str, &str, u8); 2] = [("a", "198.18.70.1", 150), ("b", "198.18.70.2", 100)];
/// The real servers and the last byte of their address: 198.18.70.x for
/// direct routing, 198.19.70.x behind the directors for NAT.
const REAL_SERVERS: [(&str, u8); 2] = [("rs1", 21), ("rs2", 22)];
/// NAT: the real servers' gateway, a second VIP of the VRRP instance.
const NAT_GATEWAY: &str = "198.19.70.1";
/// Long transfers running through the takeover.
const LONG_FLOWS: usize = 8;

/// Runs `f` on a thread inside network namespace `ns`; sockets it creates
/// (and threads it spawns) belong to `ns`.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

fn mac_of(ns: &str, dev: &str) -> String {
    sh(&format!(
        "ip netns exec {ns} cat /sys/class/net/{dev}/address"
    ))
    .trim()
    .to_string()
}

/// The namespaces, the pass programs, the rvsd processes, the pins and the
/// scratch directory; all removed on drop (processes killed by PID).
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    pass: Vec<(String, rvs_xdp::Decap)>,
    rvsd: Vec<(String, Child)>,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
    /// NAT (`-m`) instead of direct routing (`-g`).
    nat: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (_, c) in &mut self.rvsd {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Pass programs are detached from inside their namespace.
        for (ns, p) in self.pass.drain(..) {
            let _ = in_ns(&ns, move || drop(p)).join();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for (h, _, _) in DIRECTORS {
            let pin = self.pin(h);
            for name in rvs_xdp::PINNED_MAPS {
                let _ = std::fs::remove_file(pin.join(name));
            }
            let _ = std::fs::remove_dir(&pin);
        }
        if std::thread::panicking() || std::env::var_os("RVS_KEEP_LOGS").is_some() {
            eprintln!("logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Lab {
    /// A lab whose names start with `rvsxf`, the PID and `tag`.
    fn new(tag: &str, nat: bool) -> Lab {
        let prefix = format!("rvsxf{}{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            prefix,
            namespaces: Vec::new(),
            pass: Vec::new(),
            rvsd: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            dir,
            nat,
        };
        let sw = lab.add_ns("sw");
        sh(&format!(
            "ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up"
        ));
        let mut hosts = vec![("c", CLIENT.to_string())];
        hosts.extend(DIRECTORS.iter().map(|(h, a, _)| (*h, a.to_string())));
        hosts.extend(REAL_SERVERS.iter().map(|(h, n)| (*h, lab.rs_addr(*n))));
        for (h, addr) in &hosts {
            let ns = lab.add_ns(h);
            let port = format!("p{h}");
            sh(&format!(
                "ip -n {sw} link add {port} type veth peer name eth0 netns {ns} && \
                 ip -n {sw} link set {port} master br0 up && \
                 ip -n {ns} link set lo up && ip -n {ns} addr add {addr}/24 dev eth0 && \
                 ip -n {ns} link set eth0 up && \
                 ip netns exec {ns} sysctl -qw net.ipv4.conf.all.rp_filter=0 \
                   net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0"
            ));
            // Full checksums from the senders: XDP forwards a frame without
            // the CHECKSUM_PARTIAL mark a local veth sender would give it.
            sh(&format!(
                "ip netns exec {ns} ethtool -K eth0 tx off >/dev/null"
            ));
        }
        let rs_macs: Vec<String> = REAL_SERVERS
            .iter()
            .map(|(h, _)| mac_of(&lab.ns(h), "eth0"))
            .collect();
        for (h, _, _) in DIRECTORS {
            let ns = lab.ns(h);
            sh(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv4.ip_forward=1"
            ));
            for ((_, n), mac) in REAL_SERVERS.iter().zip(&rs_macs) {
                let addr = lab.rs_addr(*n);
                sh(&format!(
                    "ip -n {ns} neigh replace {addr} lladdr {mac} dev eth0 nud permanent"
                ));
            }
            if nat {
                // The directors' own addresses on the real servers' subnet.
                let own = if h == "a" { 3 } else { 4 };
                sh(&format!("ip -n {ns} addr add 198.19.70.{own}/24 dev eth0"));
                // The neighbour toward the client is left to the
                // director: the backup never talked to it, and resolves it
                // with the first reply after the takeover.
            }
            // The director answers with XDP_TX: on veth the kernel
            // delivers those frames only to a peer that runs XDP.
            let port = format!("p{h}");
            let p = in_ns(&sw, move || {
                let mut p = rvs_xdp::Decap::passthrough().expect("pass program");
                let ifindex = nix::net::if_::if_nametoindex(port.as_str()).unwrap();
                p.attach(ifindex as i32).expect("attach the pass program");
                p
            })
            .join()
            .unwrap();
            lab.pass.push((sw.clone(), p));
        }
        for (h, _) in REAL_SERVERS {
            let ns = lab.ns(h);
            if nat {
                sh(&format!("ip -n {ns} route add default via {NAT_GATEWAY}"));
            } else {
                sh(&format!(
                    "ip -n {ns} addr add {VIP}/32 dev lo && \
                     ip netns exec {ns} sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
                       net.ipv4.conf.all.arp_announce=2"
                ));
            }
            real_server(&ns, h, lab.stop.clone());
        }
        lab
    }

    fn rs_addr(&self, n: u8) -> String {
        if self.nat {
            format!("198.19.70.{n}")
        } else {
            format!("198.18.70.{n}")
        }
    }

    fn add_ns(&mut self, h: &str) -> String {
        let ns = self.ns(h);
        sh(&format!("ip netns add {ns}"));
        self.namespaces.push(ns.clone());
        ns
    }

    fn ns(&self, h: &str) -> String {
        format!("{}{h}", self.prefix)
    }

    fn pin(&self, h: &str) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/{}{h}", self.prefix))
    }

    fn sock(&self, h: &str) -> PathBuf {
        self.dir.join(h).join("rvsd.sock")
    }

    /// rvsd on director `h` (priority `prio`), syncing with `peer`.
    fn rvsd(&mut self, h: &str, prio: u8, peer: &str) {
        let d = self.dir.join(h);
        std::fs::create_dir_all(&d).unwrap();
        let conf = d.join("rvs.toml");
        let mut servers = String::new();
        let (method, vips) = if self.nat {
            ("masq", format!("\"{VIP}/24\", \"{NAT_GATEWAY}/24\""))
        } else {
            ("route", format!("\"{VIP}/24\""))
        };
        for (_, n) in REAL_SERVERS {
            let addr = self.rs_addr(n);
            servers.push_str(&format!(
                "\n[[service.real_server]]\naddress = \"{addr}:80\"\nmethod = \"{method}\"\n"
            ));
        }
        std::fs::write(
            &conf,
            format!(
                "engine = \"xdp\"\n\n[xdp]\ninterface = \"eth0\"\n\n\
                 [[service]]\ntcp = \"{VIP}:80\"\nscheduler = \"rr\"\n{servers}\n\
                 [[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 70\n\
                 priority = {prio}\nversion = 3\nadvert_interval = 0.1\nvips = [{vips}]\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("rvsd.log")).unwrap();
        let sock = self.sock(h);
        let _ = std::fs::remove_file(&sock);
        // nsenter, not `ip netns exec` (which mounts a private /sys, so
        // the pins would not be on the host's bpffs).
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns(h)))
            .arg(env!("CARGO_BIN_EXE_rvsd"))
            .arg("--socket")
            .arg(&sock)
            .arg("--state-dir")
            .arg(d.join("state"))
            .arg("--config")
            .arg(&conf)
            .arg("--xdp-pin-dir")
            .arg(self.pin(h))
            .args(["--sync-peer", peer])
            .env("RVS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.rvsd.push((h.to_string(), child));
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "rvsd {h} did not start:\n{}",
                self.log(h)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn adm(&self, h: &str, args: &[&str]) -> String {
        let out = Command::new(Path::new(env!("CARGO_BIN_EXE_rvsd")).with_file_name("rvsadm"))
            .args(args)
            .env("RVS_SOCKET", self.sock(h))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rvsadm {args:?} on {h}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The director `h` dies: its link is cut and rvsd gets SIGKILL.
    /// Returns when the link was down.
    fn kill_director(&mut self, h: &str) -> Instant {
        sh(&format!("ip -n {} link set eth0 down", self.ns(h)));
        let cut = Instant::now();
        if let Some((_, c)) = self.rvsd.iter_mut().find(|(n, _)| n == h) {
            let _ = c.kill();
            let _ = c.wait();
        }
        cut
    }

    fn has_vip(&self, h: &str) -> bool {
        sh(&format!("ip -n {} -o addr show dev eth0", self.ns(h))).contains(&format!(" {VIP}/"))
    }

    fn log(&self, h: &str) -> String {
        std::fs::read_to_string(self.dir.join(h).join("rvsd.log")).unwrap_or_default()
    }
}

/// The real servers: `short\n` gets `ok NAME\n`; `long\n` is followed by
/// an echo of everything until the client's FIN.
fn real_server(ns: &str, name: &'static str, stop: Arc<AtomicBool>) {
    let (tx, rx) = std::sync::mpsc::channel();
    in_ns(ns, move || {
        let l = TcpListener::bind(("0.0.0.0", 80)).unwrap();
        l.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let Ok((s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            std::thread::spawn(move || serve(s, name));
        }
    });
    rx.recv().unwrap();
}

fn serve(mut s: TcpStream, name: &str) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut first = [0u8; 6];
    let mut got = 0;
    while got < 5 {
        match s.read(&mut first[got..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => got += n,
        }
    }
    if first.starts_with(b"short") {
        let _ = writeln!(s, "ok {name}");
        return;
    }
    // "long\n" and whatever came after it: echo everything.
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = first[5..got].to_vec();
    loop {
        if !pending.is_empty() && s.write_all(&pending).is_err() {
            return;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = s.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => pending = buf[..n].to_vec(),
        }
    }
}

/// A long echo transfer's progress, as the client sees it.
#[derive(Default)]
struct Flow {
    sent: AtomicU64,
    echoed: AtomicU64,
    /// Milliseconds since the test's start of the last echoed byte.
    last_progress: AtomicU64,
    /// The longest time without an echoed byte (ms).
    longest_pause: AtomicU64,
    error: Mutex<Option<std::io::Error>>,
    done: AtomicBool,
    /// The client's port.
    port: AtomicU64,
}

/// Starts a long transfer: `long\n`, then 4 KiB every 2 ms until `stop`,
/// then FIN and the rest of the echo.
fn long_flow(client_ns: &str, t0: Instant, stop: Arc<AtomicBool>) -> Arc<Flow> {
    let f = Arc::new(Flow::default());
    let flow = f.clone();
    in_ns(client_ns, move || {
        let vip: SocketAddr = format!("{VIP}:80").parse().unwrap();
        let s = match TcpStream::connect_timeout(&vip, Duration::from_secs(3)) {
            Ok(s) => s,
            Err(e) => {
                *flow.error.lock().unwrap() = Some(e);
                flow.done.store(true, Ordering::Relaxed);
                return;
            }
        };
        flow.port
            .store(s.local_addr().unwrap().port() as u64, Ordering::Relaxed);
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let wf = flow.clone();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            w.write_all(b"long\n")?;
            let chunk = vec![b'y'; 4096];
            while !stop.load(Ordering::Relaxed) {
                w.write_all(&chunk)?;
                wf.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
            w.shutdown(Shutdown::Write)
        });
        let mut r = s;
        let mut buf = vec![0u8; 64 * 1024];
        let mut last = t0.elapsed().as_millis() as u64;
        let result = loop {
            match r.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    let now = t0.elapsed().as_millis() as u64;
                    flow.longest_pause
                        .fetch_max(now.saturating_sub(last), Ordering::Relaxed);
                    last = now;
                    flow.last_progress.store(now, Ordering::Relaxed);
                    flow.echoed.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => break Err(e),
            }
        };
        let wrote = writer.join().unwrap();
        if let Some(e) = result.err().or(wrote.err()) {
            *flow.error.lock().unwrap() = Some(e);
        }
        flow.done.store(true, Ordering::Relaxed);
    });
    f
}

/// One short connection: the real server's name, if served.
fn short(vip: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&vip, Duration::from_millis(150)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(b"short\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.strip_prefix("ok ").map(|x| x.trim().to_string())
}

/// Short connections: when each started and ended, and whether it was served.
type Shorts = Arc<Mutex<Vec<(Instant, Instant, bool)>>>;

/// Four clients, 40 ms apart, each making one short connection after the
/// other (a lost SYN fails after 150 ms): a new connection is tried about
/// every 40 ms through the takeover.
fn short_stream(client_ns: &str, stop: Arc<AtomicBool>) -> Shorts {
    let log: Shorts = Arc::new(Mutex::new(Vec::new()));
    for i in 0..4 {
        let (l, stop) = (log.clone(), stop.clone());
        in_ns(client_ns, move || {
            std::thread::sleep(Duration::from_millis(40 * i));
            let vip: SocketAddr = format!("{VIP}:80").parse().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let ok = short(vip).is_some();
                l.lock().unwrap().push((start, Instant::now(), ok));
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }
    log
}

/// What one takeover did.
#[derive(Debug)]
struct Outcome {
    /// From the long flows' start until the backup's BPF map held them all.
    synced: Option<Duration>,
    /// From the kill until the backup held the VIP.
    vip: Option<Duration>,
    /// From the kill until a short connection started after it was served.
    served: Option<Duration>,
    /// Long flows that ended with a reset.
    reset: usize,
    /// Long flows that failed in any way (reset included), with why.
    broken: Vec<String>,
    /// The longest time a long flow went without an echoed byte (ms).
    longest_pause: u64,
    short_ok: usize,
    short_failed: usize,
}

/// Serialises the labs: each measures times.
static LABS: Mutex<()> = Mutex::new(());

/// Builds the lab (NAT or direct routing), runs the traffic, kills the
/// master and measures. With `sync` false the sync daemons are not started
/// (the control case).
fn takeover(sync: bool, nat: bool) -> Outcome {
    let _one = LABS.lock().unwrap_or_else(|p| p.into_inner());
    let tag = match (sync, nat) {
        (true, false) => "s",
        (true, true) => "m",
        (false, _) => "n",
    };
    let mut lab = Lab::new(tag, nat);
    let (a_ip, b_ip) = (DIRECTORS[0].1, DIRECTORS[1].1);
    lab.rvsd("a", DIRECTORS[0].2, b_ip);
    assert!(
        wait(Duration::from_secs(5), || lab.has_vip("a")).is_some(),
        "a never became master:\n{}",
        lab.log("a")
    );
    lab.rvsd("b", DIRECTORS[1].2, a_ip);
    if sync {
        // Both daemons on both directors: VRRP decides who sends.
        for h in ["a", "b"] {
            for role in ["master", "backup"] {
                lab.adm(
                    h,
                    &[
                        "--start-daemon",
                        role,
                        "--mcast-interface",
                        "eth0",
                        "--syncid",
                        "70",
                    ],
                );
            }
        }
    }
    // The backup's BPF connection map, read through its pins.
    let b_maps = rvs_xdp::Datapath::load(&lab.pin("b")).expect("the backup's pinned maps");

    let client = lab.ns("c");
    let t0 = Instant::now();
    let stop_long = Arc::new(AtomicBool::new(false));
    let stop_short = Arc::new(AtomicBool::new(false));
    let shorts = short_stream(&client, stop_short.clone());
    let flows: Vec<Arc<Flow>> = (0..LONG_FLOWS)
        .map(|_| long_flow(&client, t0, stop_long.clone()))
        .collect();
    let connected = wait(Duration::from_secs(5), || {
        flows.iter().all(|f| f.echoed.load(Ordering::Relaxed) > 0)
    });
    assert!(
        connected.is_some(),
        "the long flows did not start through the master:\n{}",
        lab.log("a")
    );
    let vip: std::net::IpAddr = VIP.parse().unwrap();
    let client_ip: std::net::IpAddr = CLIENT.parse().unwrap();
    let ports: Vec<u16> = flows
        .iter()
        .map(|f| f.port.load(Ordering::Relaxed) as u16)
        .collect();
    let synced_long = || {
        b_maps
            .conns()
            .iter()
            .filter(|(k, v)| {
                k.vaddr == vip
                    && k.caddr == client_ip
                    && ports.contains(&k.cport)
                    && v.state == rvs_conn::tcp::ESTABLISHED
            })
            .count()
    };
    // With sync, every long flow is in the backup's map within about a
    // tick (1 s) of the master's xdp engine.
    let synced = if sync {
        let w = wait(Duration::from_secs(5), || synced_long() >= LONG_FLOWS);
        assert!(
            w.is_some(),
            "the backup's BPF map holds {} of {LONG_FLOWS} long flows:\n{}\n{}",
            synced_long(),
            lab.adm("b", &["-L", "-n", "-c"]),
            lab.log("b")
        );
        w
    } else {
        std::thread::sleep(Duration::from_secs(1));
        None
    };
    // Traffic keeps flowing a while, then the master dies at a random
    // point of its advert interval.
    std::thread::sleep(Duration::from_millis(
        500 + (std::process::id() as u64 * 37) % 100,
    ));
    let before: Vec<u64> = flows
        .iter()
        .map(|f| f.echoed.load(Ordering::Relaxed))
        .collect();
    if nat {
        // What the takeover must cope with: the backup never resolved the
        // client (its kernel saw none of the client's traffic).
        let neigh = sh(&format!("ip -n {} neigh show {CLIENT}", lab.ns("b")));
        assert!(
            !neigh.contains("lladdr"),
            "the backup knows the client already: {neigh}"
        );
    }
    let killed = lab.kill_director("a");
    let vip_after = wait(Duration::from_secs(5), || lab.has_vip("b"));
    // Flows run on for 6 s after the kill, then end with FIN.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(killed.elapsed()));
    stop_short.store(true, Ordering::Relaxed);
    stop_long.store(true, Ordering::Relaxed);
    let ended = wait(Duration::from_secs(25), || {
        flows.iter().all(|f| f.done.load(Ordering::Relaxed))
    });
    assert!(ended.is_some(), "long flows still running");

    let shorts = shorts.lock().unwrap();
    let served = shorts
        .iter()
        .filter(|(start, _, ok)| *ok && *start >= killed)
        .map(|(_, end, _)| end.duration_since(killed))
        .min();
    let short_ok = shorts.iter().filter(|(_, _, ok)| *ok).count();
    let mut reset = 0;
    let mut broken = Vec::new();
    for (i, f) in flows.iter().enumerate() {
        let err = f.error.lock().unwrap();
        let (sent, echoed) = (
            f.sent.load(Ordering::Relaxed),
            f.echoed.load(Ordering::Relaxed),
        );
        if let Some(e) = err.as_ref() {
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
            ) {
                reset += 1;
            }
            broken.push(format!(
                "flow {i} (port {}): {e}",
                f.port.load(Ordering::Relaxed)
            ));
        } else if echoed != sent || echoed <= before[i] {
            broken.push(format!(
                "flow {i}: sent {sent} bytes, {echoed} echoed ({} before the kill)",
                before[i]
            ));
        }
    }
    let o = Outcome {
        synced,
        vip: vip_after,
        served,
        reset,
        broken,
        longest_pause: flows
            .iter()
            .map(|f| f.longest_pause.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0),
        short_ok,
        short_failed: shorts.len() - short_ok,
    };
    println!(
        "xdp failover ({}): {LONG_FLOWS} long flows in the backup's BPF map after {:?}; \
         after the SIGKILL the backup holds the VIP at {:?} and serves a new connection at \
         {:?}; established flows reset {} (broken {} of {LONG_FLOWS}); longest pause of a \
         long flow {} ms; short connections {} served, {} failed",
        match (sync, nat) {
            (true, false) => "DR, sync",
            (true, true) => "NAT, sync",
            (false, false) => "DR, no sync",
            (false, true) => "NAT, no sync",
        },
        o.synced,
        o.vip,
        o.served,
        o.reset,
        o.broken.len(),
        o.longest_pause,
        o.short_ok,
        o.short_failed
    );
    assert!(o.vip.is_some(), "b never took the VIP:\n{}", lab.log("b"));
    // Generous bounds (3 × 0.1 s + skew is 0.36 s; TCP's retransmission
    // timer adds its backoff to a flow's pause), which a black-holed path
    // would exceed.
    assert!(
        o.served.is_some_and(|d| d < Duration::from_secs(2)),
        "no new connection was served within 2 s of the takeover: {:?}\n{}",
        o.served,
        lab.log("b")
    );
    if sync {
        assert!(
            o.longest_pause < 3000,
            "a long flow paused {} ms",
            o.longest_pause
        );
    }
    if sync && !o.broken.is_empty() {
        let mut resets = String::new();
        for h in ["b", "rs1", "rs2"] {
            resets.push_str(&format!(
                "{h}: {}",
                sh(&format!(
                    "ip netns exec {} nstat -az TcpOutRsts TcpExtTCPAbortOnData",
                    lab.ns(h)
                ))
            ));
        }
        let entries: Vec<String> = b_maps
            .conns()
            .iter()
            .filter(|(k, _)| k.caddr == client_ip && ports.contains(&k.cport))
            .map(|(k, v)| format!("{}:{} slot {} state {}", k.caddr, k.cport, v.dest, v.state))
            .collect();
        // Keep the logs (the lab's drop sees the panic).
        panic!(
            "established flows broken by the takeover: {:?}\n{resets}\nthe backup's entries: \
             {entries:?}\n{}",
            o.broken,
            lab.log("b")
        );
    }
    o
}

#[test]
fn established_flows_survive_a_takeover() {
    if !is_root() {
        eprintln!(
            "skipping established_flows_survive_a_takeover: needs root (BPF, network namespaces)"
        );
        return;
    }
    let o = takeover(true, false);
    assert_eq!(o.reset, 0);
    assert!(o.broken.is_empty());
}

/// NAT: the backup also needs the reply entries (the real servers' replies
/// come back through the director, to the gateway VIP it takes over).
#[test]
fn nat_flows_survive_a_takeover() {
    if !is_root() {
        eprintln!("skipping nat_flows_survive_a_takeover: needs root (BPF, network namespaces)");
        return;
    }
    let o = takeover(true, true);
    assert_eq!(o.reset, 0);
    assert!(o.broken.is_empty());
}

/// The control: the same takeover without connection sync resets every
/// established flow (the backup's kernel answers their packets with RST),
/// so the test above can tell.
#[test]
fn without_sync_established_flows_are_reset() {
    if !is_root() {
        eprintln!(
            "skipping without_sync_established_flows_are_reset: needs root (BPF, network \
             namespaces)"
        );
        return;
    }
    let o = takeover(false, false);
    assert_eq!(o.reset, LONG_FLOWS, "{:?}", o.broken);
}

fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}
