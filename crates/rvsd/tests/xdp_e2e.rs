//! The xdp engine end to end: the real rvsd (`--engine xdp`) in a director
//! namespace, a client namespace and three real-server namespaces, all on
//! one bridge (a one-armed director, as LVS-DR sites are built):
//!
//! ```text
//!   client 198.18.0.2 ──┐            ┌── rs1 198.19.1.2 (VIP on lo)
//!   director d0 ────────┼── bridge ──┼── rs2 198.19.2.2
//!     198.18.0.1, VIP 198.18.0.100,  └── rs3 198.19.3.2
//!     198.19.{1,2,3}.1 (the real servers' gateway)
//! ```
//!
//! The addresses are the IPVS oracle's (crates/rvs-sched/tests/data), so
//! rr and wrr sequences are compared with the kernel's traces line by line.
//! Real TCP (HTTP/1.0 and a line echo) and UDP go through NAT (-m), DR (-g:
//! the real servers answer the client directly) and tunnelling (-i: IPIP
//! and GUE; this kernel has no ipip module, so the real servers run
//! `rvs_xdp::Decap`). The director's counters (`rvsadm -L -n --stats`) are
//! checked against the real servers' own kernel counters (`/proc/net/snmp`,
//! IpExt octets) packet for packet and byte for byte. Needs root; skips
//! with a message otherwise.

mod common;

use common::{in_ns, is_root, rvsadm_output, sh, wait_for_socket};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VIP: &str = "198.18.0.100";
const CLIENT: &str = "198.18.0.2";
const GUE_PORT: u16 = 6080;
/// TCP ports the real servers listen on (HTTP or line echo, by request).
const TCP_PORTS: [u16; 5] = [80, 81, 82, 83, 8080];
/// UDP echo ports.
const UDP_PORTS: [u16; 4] = [54, 55, 56, 5353];

fn skip() -> bool {
    if !is_root() {
        eprintln!("skipped: the xdp engine's end-to-end tests need root (BPF, network namespaces)");
        return true;
    }
    false
}

fn rvsd_bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_rvsd")).with_file_name(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --bins` first",
        p.display()
    );
    p
}

/// A real server: its namespace, the decapsulation program on its
/// interface, and its TCP and UDP servers.
struct RealServer {
    ns: String,
    decap: Option<rvs_xdp::Decap>,
}

/// The namespaces, the servers and rvsd; everything is stopped and deleted
/// when dropped (processes by PID, namespaces by name, pins by path).
struct Topo {
    sw: String,
    /// The program on the director's peer port (see `Decap::passthrough`).
    pass: Option<rvs_xdp::Decap>,
    client: String,
    director: String,
    rs: Vec<RealServer>,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
    pin: PathBuf,
    rvsd: Option<Child>,
    sock: PathBuf,
}

impl Drop for Topo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.kill_rvsd();
        // The decapsulation programs are detached from inside their
        // namespace (a detach elsewhere would name another interface).
        for r in &mut self.rs {
            if let Some(d) = r.decap.take() {
                in_ns(&r.ns, move || drop(d));
            }
        }
        if let Some(d) = self.pass.take() {
            in_ns(&self.sw, move || drop(d));
        }
        let mut all = vec![self.sw.clone(), self.client.clone(), self.director.clone()];
        all.extend(self.rs.iter().map(|r| r.ns.clone()));
        for ns in all {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
        for name in rvs_xdp::PINNED_MAPS {
            let _ = std::fs::remove_file(self.pin.join(name));
        }
        let _ = std::fs::remove_dir(&self.pin);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mac_of(ns: &str, dev: &str) -> String {
    sh(&format!(
        "ip netns exec {ns} cat /sys/class/net/{dev}/address"
    ))
    .trim()
    .to_string()
}

impl Topo {
    fn new(tag: &str) -> Topo {
        let id = format!("{}{tag}", std::process::id());
        let dir = std::env::temp_dir().join(format!("rvs-xdp-e2e-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut t = Topo {
            sw: format!("rxe{id}sw"),
            pass: None,
            client: format!("rxe{id}c"),
            director: format!("rxe{id}d"),
            rs: (1..=3)
                .map(|i| RealServer {
                    ns: format!("rxe{id}r{i}"),
                    decap: None,
                })
                .collect(),
            stop: Arc::new(AtomicBool::new(false)),
            sock: dir.join("rvsd.sock"),
            dir,
            pin: PathBuf::from(format!("/sys/fs/bpf/rvs-xdp-e2e-{id}")),
            rvsd: None,
        };
        let (sw, c, d) = (t.sw.clone(), t.client.clone(), t.director.clone());
        let rs: Vec<String> = t.rs.iter().map(|r| r.ns.clone()).collect();
        for ns in [&sw, &c, &d].into_iter().chain(rs.iter()) {
            sh(&format!("ip netns add {ns}"));
            sh(&format!("ip -n {ns} link set lo up"));
            sh(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv4.conf.all.rp_filter=0 \
                 net.ipv4.conf.default.rp_filter=0"
            ));
        }
        sh(&format!(
            "ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up"
        ));
        let mut ports = vec![(c.clone(), "c0", "pc"), (d.clone(), "d0", "pd")];
        for (i, r) in rs.iter().enumerate() {
            ports.push((r.clone(), "r0", ["p1", "p2", "p3"][i]));
        }
        for (ns, inner, outer) in &ports {
            sh(&format!(
                "ip -n {sw} link add {outer} type veth peer name {inner} netns {ns} && \
                 ip -n {sw} link set {outer} master br0 up && ip -n {ns} link set {inner} up"
            ));
            // Senders on the same host hand veth packets whose TCP/UDP
            // checksum is only the pseudo-header's (CHECKSUM_PARTIAL);
            // XDP cannot see that and a frame it forwards loses the mark,
            // so the hosts compute full checksums, as on a wire.
            sh(&format!(
                "ip netns exec {ns} ethtool -K {inner} tx off >/dev/null"
            ));
        }
        sh(&format!(
            "ip -n {c} addr add {CLIENT}/24 dev c0 && \
             ip -n {c} route add 198.19.0.0/16 via 198.18.0.1"
        ));
        sh(&format!(
            "ip -n {d} addr add 198.18.0.1/24 dev d0 && ip -n {d} addr add {VIP}/32 dev d0 && \
             ip netns exec {d} sysctl -qw net.ipv4.ip_forward=1"
        ));
        let dmac = mac_of(&d, "d0");
        let cmac = mac_of(&c, "c0");
        sh(&format!(
            "ip -n {c} neigh replace {VIP} lladdr {dmac} dev c0 nud permanent && \
             ip -n {c} neigh replace 198.18.0.1 lladdr {dmac} dev c0 nud permanent && \
             ip -n {d} neigh replace {CLIENT} lladdr {cmac} dev d0 nud permanent"
        ));
        for (i, r) in rs.iter().enumerate() {
            let n = i + 1;
            sh(&format!(
                "ip -n {d} addr add 198.19.{n}.1/24 dev d0 && \
                 ip -n {r} addr add 198.19.{n}.2/24 dev r0 && \
                 ip -n {r} route add default via 198.19.{n}.1 && \
                 ip -n {r} addr add {VIP}/32 dev lo && \
                 ip netns exec {r} sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
                   net.ipv4.conf.all.arp_announce=2 && \
                 ip -n {r} rule add from {VIP} lookup 100 && \
                 ip -n {r} route add 198.18.0.0/24 dev r0 table 100"
            ));
            // Static neighbours: no ARP races in what the counters see.
            let rmac = mac_of(r, "r0");
            sh(&format!(
                "ip -n {d} neigh replace 198.19.{n}.2 lladdr {rmac} dev d0 nud permanent && \
                 ip -n {r} neigh replace 198.19.{n}.1 lladdr {dmac} dev r0 nud permanent && \
                 ip -n {r} neigh replace {CLIENT} lladdr {cmac} dev r0 nud permanent"
            ));
        }
        // The director answers with XDP_TX: on veth the kernel delivers
        // those frames only to a peer that runs XDP.
        t.pass = Some(in_ns(&sw, || {
            let mut p = rvs_xdp::Decap::passthrough().expect("pass program");
            let ifindex = nix::net::if_::if_nametoindex("pd").unwrap();
            p.attach(ifindex as i32).expect("attach the pass program");
            p
        }));
        for (i, r) in t.rs.iter_mut().enumerate() {
            let name = format!("rs{}", i + 1);
            let stop = t.stop.clone();
            r.decap = Some(in_ns(&r.ns, move || {
                let mut decap = rvs_xdp::Decap::load(GUE_PORT).expect("decap program");
                let ifindex = nix::net::if_::if_nametoindex("r0").unwrap();
                decap.attach(ifindex as i32).expect("attach decap");
                for port in TCP_PORTS {
                    let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
                    let (name, stop) = (name.clone(), stop.clone());
                    std::thread::spawn(move || serve_tcp(l, &name, &stop));
                }
                // One socket per local address, so an answer leaves from
                // the address the request was sent to (the VIP for DR and
                // tunnels), as DR real servers' UDP services must.
                for port in UDP_PORTS {
                    for addr in [VIP.to_string(), rs_addr(i + 1)] {
                        let s = UdpSocket::bind((addr.as_str(), port)).unwrap();
                        let (name, stop) = (name.clone(), stop.clone());
                        std::thread::spawn(move || serve_udp(s, &name, &stop));
                    }
                }
                decap
            }));
        }
        t
    }

    fn start_rvsd(&mut self) {
        self.start_rvsd_with(&[]);
    }

    /// rvsd with a configuration file (`engine = "xdp"` and services).
    fn start_rvsd_with_config(&mut self, toml: &str) {
        let path = self.dir.join("rvs.toml");
        std::fs::write(&path, toml).unwrap();
        let path = path.to_str().unwrap().to_string();
        self.start_rvsd_with(&["--config", &path]);
    }

    fn start_rvsd_with(&mut self, extra: &[&str]) {
        let _ = std::fs::remove_file(&self.sock);
        let child = Command::new("nsenter")
            // nsenter, not `ip netns exec`: the latter mounts a private
            // bpffs, and the pins would not outlive the process.
            .arg(format!("--net=/run/netns/{}", self.director))
            .arg(rvsd_bin("rvsd"))
            .arg("--socket")
            .arg(&self.sock)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .args(["--engine", "xdp", "--interface", "d0", "--xdp-pin-dir"])
            .arg(&self.pin)
            .args(extra)
            .env("RVS_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.rvsd = Some(child);
        wait_for_socket(&self.sock);
    }

    /// SIGKILL, as in a crash.
    fn kill_rvsd(&mut self) {
        if let Some(mut c) = self.rvsd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn adm(&self, args: &[&str]) -> String {
        let out = rvsadm_output(&self.sock, args);
        assert!(
            out.status.success(),
            "rvsadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs rvsadm command lines, one per line, `$VIP` replaced.
    fn adm_script(&self, script: &str) {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let line = line.replace("$VIP", VIP);
            let args: Vec<&str> = line.split_whitespace().collect();
            self.adm(&args);
        }
    }

    /// The real servers' kernel counters.
    fn rs_counters(&self) -> Vec<Counters> {
        self.rs
            .iter()
            .map(|r| in_ns(&r.ns, read_counters))
            .collect()
    }

    fn client_ns(&self) -> String {
        self.client.clone()
    }
}

// ---- the real servers' programs ----

fn serve_tcp(l: TcpListener, name: &str, stop: &AtomicBool) {
    l.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                let name = name.to_string();
                std::thread::spawn(move || {
                    let _ = handle_tcp(s, &name);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// `GET ...` gets an HTTP/1.0 answer naming the server, then the server
/// closes; `ECHO` gets every following line back prefixed with the name.
fn handle_tcp(s: TcpStream, name: &str) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    if line.starts_with("GET ") {
        while line.trim_end() != "" {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                break;
            }
        }
        let body = format!("{name}\n");
        w.write_all(
            format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )?;
        w.shutdown(std::net::Shutdown::Write)?;
        let mut rest = Vec::new();
        r.read_to_end(&mut rest)?;
        return Ok(());
    }
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        w.write_all(format!("{name} {line}").as_bytes())?;
    }
}

fn serve_udp(s: UdpSocket, name: &str, stop: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            let mut reply = format!("{name}:").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&reply, from);
        }
    }
}

// ---- the client's side ----

/// One HTTP/1.0 GET to `VIP:port` from the client; the body.
fn http_get(client: &str, port: u16) -> String {
    let addr: SocketAddr = format!("{VIP}:{port}").parse().unwrap();
    let s = in_ns(client, move || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
    })
    .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut s = s;
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {VIP}\r\n\r\n").as_bytes())
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .unwrap_or_else(|e| panic!("reading from {addr}: {e}"));
    let body = resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no HTTP body from {addr}: {resp:?}"));
    body.trim().to_string()
}

/// One datagram to `VIP:port` and its answer (which names the server).
fn udp_ask(client: &str, port: u16, payload: &[u8]) -> String {
    let s = in_ns(client, || UdpSocket::bind((CLIENT, 0)).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.send_to(payload, (VIP, port)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no answer from {VIP}:{port}: {e}"));
    assert_eq!(from, format!("{VIP}:{port}").parse().unwrap());
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let (name, echoed) = text.split_once(':').unwrap();
    assert_eq!(echoed.as_bytes(), payload);
    name.to_string()
}

/// A held TCP connection in line-echo mode.
struct Echo {
    s: BufReader<TcpStream>,
    local: SocketAddr,
}

impl Echo {
    fn open(client: &str, port: u16) -> Echo {
        let addr: SocketAddr = format!("{VIP}:{port}").parse().unwrap();
        let s = in_ns(client, move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let local = s.local_addr().unwrap();
        let mut e = Echo {
            s: BufReader::new(s),
            local,
        };
        e.s.get_mut().write_all(b"ECHO\n").unwrap();
        e
    }

    /// Sends a line; the name of the server that echoed it.
    fn say(&mut self, what: &str) -> String {
        self.s
            .get_mut()
            .write_all(format!("{what}\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        self.s
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("echo of {what:?}: {e}"));
        let (name, said) = line
            .trim_end()
            .split_once(' ')
            .unwrap_or_else(|| panic!("echo of {what:?}: {line:?}"));
        assert_eq!(said, what);
        name.to_string()
    }
}

// ---- counters ----

/// A real server's kernel counters (its whole namespace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    tcp_in: u64,
    tcp_out: u64,
    udp_in: u64,
    udp_out: u64,
    in_octets: u64,
    out_octets: u64,
    icmp_in: u64,
    icmp_out: u64,
    udp_noports: u64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, b: Counters) -> Counters {
        Counters {
            tcp_in: self.tcp_in - b.tcp_in,
            tcp_out: self.tcp_out - b.tcp_out,
            udp_in: self.udp_in - b.udp_in,
            udp_out: self.udp_out - b.udp_out,
            in_octets: self.in_octets - b.in_octets,
            out_octets: self.out_octets - b.out_octets,
            icmp_in: self.icmp_in - b.icmp_in,
            icmp_out: self.icmp_out - b.icmp_out,
            udp_noports: self.udp_noports - b.udp_noports,
        }
    }
}

/// `Name: k1 k2 ...` / `Name: v1 v2 ...` line pairs as a map.
fn snmp(file: &str) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(format!("/proc/thread-self/net/{file}")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut m = HashMap::new();
    for pair in lines.chunks(2) {
        let [keys, vals] = pair else { continue };
        let (group, keys) = keys.split_once(':').unwrap();
        let vals = vals.split_once(':').unwrap().1;
        for (k, v) in keys.split_whitespace().zip(vals.split_whitespace()) {
            if let Ok(v) = v.parse() {
                m.insert(format!("{group}.{k}"), v);
            }
        }
    }
    m
}

fn read_counters() -> Counters {
    let s = snmp("snmp");
    let n = snmp("netstat");
    Counters {
        tcp_in: s["Tcp.InSegs"],
        tcp_out: s["Tcp.OutSegs"],
        udp_in: s["Udp.InDatagrams"],
        udp_out: s["Udp.OutDatagrams"],
        in_octets: n["IpExt.InOctets"],
        out_octets: n["IpExt.OutOctets"],
        icmp_in: s["Icmp.InMsgs"],
        icmp_out: s["Icmp.OutMsgs"],
        udp_noports: s["Udp.NoPorts"],
    }
}

/// One real-server row of `-L -n --stats --exact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    conns: u64,
    inpkts: u64,
    outpkts: u64,
    inbytes: u64,
    outbytes: u64,
}

/// `--stats --exact` rows of service `svc` ("TCP 198.18.0.100:80"), by
/// real-server address.
fn stats_rows(listing: &str, svc: &str) -> HashMap<String, Row> {
    let mut out = HashMap::new();
    let mut inside = false;
    for l in listing.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 7 && f[0] != "->" {
            inside = format!("{} {}", f[0], f[1]) == svc;
        } else if inside && f.len() == 7 && f[0] == "->" {
            let n: Vec<u64> = f[2..].iter().map(|x| x.parse().unwrap()).collect();
            out.insert(
                f[1].to_string(),
                Row {
                    conns: n[0],
                    inpkts: n[1],
                    outpkts: n[2],
                    inbytes: n[3],
                    outbytes: n[4],
                },
            );
        }
    }
    out
}

/// `-L -c -n` rows as (proto, state, source, virtual, destination).
fn conn_rows(listing: &str) -> Vec<(String, String, String, String, String)> {
    listing
        .lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 6).then(|| {
                (
                    f[0].to_string(),
                    f[2].to_string(),
                    f[3].to_string(),
                    f[4].to_string(),
                    f[5].to_string(),
                )
            })
        })
        .collect()
}

/// Waits past one engine tick (1 s): BPF entries and counters are
/// mirrored into the director.
fn after_tick() {
    std::thread::sleep(Duration::from_millis(1300));
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rs_addr(i: usize) -> String {
    format!("198.19.{i}.2")
}

// ---- the tests ----

/// How a service forwards, for what the director counts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Nat,
    Dr,
    Tun,
}

/// TCP and UDP through NAT, DR, IPIP and GUE: every request reaches the
/// real server rr picks (newest first: rs3, rs2, rs1), answers come back,
/// and the director's counters equal what the real servers' kernels
/// counted. Then held connections show ESTABLISHED in `-L -c -n` with the
/// right real server, and closed NAT ones TIME_WAIT.
#[test]
fn nat_dr_and_tunnels_carry_tcp_and_udp_with_exact_counters() {
    if skip() {
        return;
    }
    let mut t = Topo::new("a");
    t.start_rvsd();
    // (service, rvsadm flags per real server, real-server port, method)
    let services: [(&str, u16, &str, u16, Method); 8] = [
        ("-t", 80, "-m", 8080, Method::Nat),
        ("-t", 81, "-g", 81, Method::Dr),
        ("-t", 82, "-i", 82, Method::Tun),
        (
            "-t",
            83,
            "-i --tun-type gue --tun-port 6080",
            83,
            Method::Tun,
        ),
        ("-u", 53, "-m", 5353, Method::Nat),
        ("-u", 54, "-g", 54, Method::Dr),
        ("-u", 55, "-i", 55, Method::Tun),
        (
            "-u",
            56,
            "-i --tun-type gue --tun-port 6080",
            56,
            Method::Tun,
        ),
    ];
    for (proto, port, flags, rport, _) in services {
        let mut script = format!("-A {proto} $VIP:{port} -s rr\n");
        for i in 1..=3 {
            let rs = if flags == "-m" {
                format!("{}:{rport}", rs_addr(i))
            } else {
                rs_addr(i)
            };
            script += &format!("-a {proto} $VIP:{port} -r {rs} {flags}\n");
        }
        t.adm_script(&script);
    }
    // The engine probes new real servers' neighbours at its next tick:
    // let that pass before counting.
    after_tick();
    let client = t.client_ns();
    let mut deltas = Vec::new();
    for (proto, port, _, _, method) in services {
        let before = t.rs_counters();
        let mut seen = Vec::new();
        for k in 0..6 {
            seen.push(if proto == "-t" {
                http_get(&client, port)
            } else {
                udp_ask(&client, port, format!("datagram {k} to {port}").as_bytes())
            });
        }
        assert_eq!(
            seen,
            ["rs3", "rs2", "rs1", "rs3", "rs2", "rs1"],
            "{proto} {port} ({method:?}): rr order"
        );
        // Let the last FIN/ACK exchanges land.
        std::thread::sleep(Duration::from_millis(150));
        let after = t.rs_counters();
        let d: Vec<Counters> = after.iter().zip(&before).map(|(a, b)| *a - *b).collect();
        deltas.push(d);
    }
    after_tick();
    let listing = t.adm(&["-L", "-n", "--stats", "--exact"]);
    for ((proto, port, _, rport, method), d) in services.iter().zip(&deltas) {
        let label = if *proto == "-t" { "TCP" } else { "UDP" };
        let svc = format!("{label} {VIP}:{port}");
        let rows = stats_rows(&listing, &svc);
        assert_eq!(rows.len(), 3, "{svc}: rows in\n{listing}");
        for (i, c) in d.iter().enumerate() {
            let shown = if *method == Method::Nat {
                format!("{}:{rport}", rs_addr(i + 1))
            } else {
                format!("{}:{port}", rs_addr(i + 1))
            };
            let row = rows
                .get(&shown)
                .unwrap_or_else(|| panic!("{svc}: no row {shown} in\n{listing}"));
            let (pin, pout) = if *proto == "-t" {
                (c.tcp_in, c.tcp_out)
            } else {
                (c.udp_in, c.udp_out)
            };
            let want = Row {
                conns: 2,
                inpkts: pin,
                inbytes: c.in_octets,
                // DR and tunnels: the answers do not pass the director.
                outpkts: if *method == Method::Nat { pout } else { 0 },
                outbytes: if *method == Method::Nat {
                    c.out_octets
                } else {
                    0
                },
            };
            assert_eq!(
                *row, want,
                "{svc} -> {shown}: director's counters vs the real server's kernel ({c:?})\n{listing}"
            );
        }
    }

    // Held connections: ESTABLISHED, to the real server that answers.
    let mut held = Vec::new();
    for (port, method) in [
        (80, Method::Nat),
        (81, Method::Dr),
        (82, Method::Tun),
        (83, Method::Tun),
    ] {
        let mut e = Echo::open(&client, port);
        let name = e.say("hello");
        assert_eq!(e.say("again"), name);
        held.push((port, method, name, e));
    }
    after_tick();
    let rows = conn_rows(&t.adm(&["-L", "-c", "-n"]));
    for (port, method, name, e) in &held {
        let n: usize = name[2..].parse().unwrap();
        let dport = if *method == Method::Nat { 8080 } else { *port };
        let want = (
            "TCP".to_string(),
            "ESTABLISHED".to_string(),
            e.local.to_string(),
            format!("{VIP}:{port}"),
            format!("{}:{dport}", rs_addr(n)),
        );
        assert!(rows.contains(&want), "{want:?} not in {rows:#?}");
    }
    // The NAT connections of the first phase ended: TIME_WAIT (the
    // director saw both directions); UDP entries are listed as UDP.
    let nat_closed = rows
        .iter()
        .filter(|r| r.3 == format!("{VIP}:80") && r.1 == "TIME_WAIT")
        .count();
    assert_eq!(nat_closed, 6, "{rows:#?}");
    let udp = rows
        .iter()
        .filter(|r| r.0 == "UDP" && r.1 == "UDP" && r.3 == format!("{VIP}:53"))
        .count();
    assert_eq!(udp, 6, "{rows:#?}");
    // ActiveConn in the listing counts the held ones.
    let l = t.adm(&["-L", "-n"]);
    let active: u64 = l
        .lines()
        .filter(|x| x.trim_start().starts_with("->"))
        .filter_map(|x| x.split_whitespace().nth(4)?.parse::<u64>().ok())
        .sum();
    assert_eq!(active, 4, "{l}");
}

/// The picks of the oracle trace `name`, and the listings it printed.
fn trace(name: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rvs-sched/tests/data")
        .join(format!("{name}.out"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut listings = Vec::new();
    let mut lines = text.lines().peekable();
    let mut in_run = false;
    while let Some(l) = lines.next() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 4 && f[0].parse::<u32>().is_ok() && f[3].starts_with("rs") {
            if !in_run {
                runs.push(Vec::new());
                in_run = true;
            }
            runs.last_mut().unwrap().push(f[3].to_string());
            continue;
        }
        in_run = false;
        if l == "$ ipvsadm -L -n" {
            let mut block = String::new();
            while let Some(n) = lines.next_if(|n| !n.starts_with("[exit=")) {
                block += n;
                block.push('\n');
            }
            listings.push(block);
        }
    }
    (runs, listings)
}

fn run_picks(client: &str, count: usize) -> Vec<String> {
    (0..count).map(|_| http_get(client, 80)).collect()
}

/// rr through the xdp engine (scheduled in BPF from the scheduler's ring)
/// gives the kernel's sequence, and the listing after the run is the
/// kernel's (InActConn from the TIME_WAIT entries).
#[test]
fn rr_sequence_matches_the_kernel_trace() {
    if skip() {
        return;
    }
    let (runs, listings) = trace("sched-rr");
    let mut t = Topo::new("b");
    t.start_rvsd();
    t.adm_script(
        "-A -t $VIP:80 -s rr
         -a -t $VIP:80 -r 198.19.1.2:80 -m
         -a -t $VIP:80 -r 198.19.2.2:80 -m
         -a -t $VIP:80 -r 198.19.3.2:80 -m",
    );
    let client = t.client_ns();
    assert_eq!(run_picks(&client, runs[0].len()), runs[0]);
    after_tick();
    assert_eq!(t.adm(&["-L", "-n"]), listings[0]);
}

/// wrr 1 2 3, then edited to 4 0 2 mid-way: the kernel's two sequences and
/// listings.
#[test]
fn wrr_sequence_matches_the_kernel_trace() {
    if skip() {
        return;
    }
    let (runs, listings) = trace("sched-wrr");
    let mut t = Topo::new("w");
    t.start_rvsd();
    t.adm_script(
        "-A -t $VIP:80 -s wrr
         -a -t $VIP:80 -r 198.19.1.2:80 -m -w 1
         -a -t $VIP:80 -r 198.19.2.2:80 -m -w 2
         -a -t $VIP:80 -r 198.19.3.2:80 -m -w 3",
    );
    let client = t.client_ns();
    assert_eq!(run_picks(&client, runs[0].len()), runs[0], "first run");
    after_tick();
    assert_eq!(t.adm(&["-L", "-n"]), listings[0]);
    t.adm_script(
        "-e -t $VIP:80 -r 198.19.1.2:80 -m -w 4
         -e -t $VIP:80 -r 198.19.2.2:80 -m -w 0
         -e -t $VIP:80 -r 198.19.3.2:80 -m -w 2",
    );
    assert_eq!(
        run_picks(&client, runs[1].len()),
        runs[1],
        "after the edits"
    );
    after_tick();
    assert_eq!(t.adm(&["-L", "-n"]), listings[1]);
}

/// Services BPF cannot schedule (persistence, lc) go through userspace for
/// their first packet: the packet is scheduled by rvs-conn, re-injected,
/// and the connection works; persistence keeps a client on one real
/// server; lc spreads held connections by active count.
#[test]
fn persistent_and_lc_services_use_the_userspace_first_packet_path() {
    if skip() {
        return;
    }
    let mut t = Topo::new("p");
    t.start_rvsd();
    t.adm_script(
        "-A -t $VIP:80 -s rr -p 60
         -a -t $VIP:80 -r 198.19.1.2:80 -m
         -a -t $VIP:80 -r 198.19.2.2:80 -m
         -a -t $VIP:80 -r 198.19.3.2:80 -m
         -A -t $VIP:81 -s lc
         -a -t $VIP:81 -r 198.19.1.2 -g
         -a -t $VIP:81 -r 198.19.2.2 -g
         -a -t $VIP:81 -r 198.19.3.2 -g
         -A -u $VIP:54 -s lc
         -a -u $VIP:54 -r 198.19.1.2 -g
         -a -u $VIP:54 -r 198.19.2.2 -g
         -a -u $VIP:54 -r 198.19.3.2 -g",
    );
    let client = t.client_ns();
    let picks = run_picks(&client, 5);
    assert!(
        picks.iter().all(|p| *p == picks[0]),
        "persistence: one real server for one client, got {picks:?}"
    );
    let mut held: Vec<Echo> = (0..3).map(|_| Echo::open(&client, 81)).collect();
    let mut names: Vec<String> = held.iter_mut().map(|e| e.say("hi")).collect();
    names.sort();
    assert_eq!(names, ["rs1", "rs2", "rs3"], "lc: one held connection each");
    assert_eq!(held[0].say("still there"), held[0].say("and again"));
    let udp = udp_ask(&client, 54, b"lc over udp");
    assert!(udp.starts_with("rs"), "{udp}");
    after_tick();
    let rows = conn_rows(&t.adm(&["-L", "-c", "-n"]));
    let established = rows
        .iter()
        .filter(|r| r.3 == format!("{VIP}:81") && r.1 == "ESTABLISHED")
        .count();
    assert_eq!(established, 3, "{rows:#?}");
    let stats = stats_rows(
        &t.adm(&["-L", "-n", "--stats", "--exact"]),
        &format!("TCP {VIP}:81"),
    );
    let conns: u64 = stats.values().map(|r| r.conns).sum();
    assert_eq!(conns, 3, "{stats:?}");
}

/// rvsd killed with SIGKILL and started again with the same pin directory:
/// established TCP connections (NAT and DR) keep flowing throughout (the
/// program stays attached, the new one takes over the pinned entries),
/// show up ESTABLISHED again, and new connections work.
#[test]
fn a_restarted_rvsd_keeps_established_connections() {
    if skip() {
        return;
    }
    let mut t = Topo::new("r");
    t.start_rvsd();
    t.adm_script(
        "-A -t $VIP:80 -s rr
         -a -t $VIP:80 -r 198.19.1.2:8080 -m
         -a -t $VIP:80 -r 198.19.2.2:8080 -m
         -A -t $VIP:81 -s wrr
         -a -t $VIP:81 -r 198.19.3.2 -g -w 2
         -a -t $VIP:81 -r 198.19.1.2 -g",
    );
    let client = t.client_ns();
    let mut nat = Echo::open(&client, 80);
    let mut dr = Echo::open(&client, 81);
    let nat_rs = nat.say("before");
    let dr_rs = dr.say("before");
    t.kill_rvsd();
    assert_eq!(nat.say("while rvsd is down"), nat_rs);
    assert_eq!(dr.say("while rvsd is down"), dr_rs);
    t.start_rvsd();
    for k in 0..3 {
        assert_eq!(nat.say(&format!("after restart {k}")), nat_rs);
        assert_eq!(dr.say(&format!("after restart {k}")), dr_rs);
        std::thread::sleep(Duration::from_millis(400));
    }
    wait_until("the kept connections are mirrored", || {
        let rows = conn_rows(&t.adm(&["-L", "-c", "-n"]));
        [&nat, &dr].iter().all(|e| {
            rows.iter()
                .any(|r| r.2 == e.local.to_string() && r.1 == "ESTABLISHED")
        })
    });
    assert_eq!(nat.say("last"), nat_rs);
    assert_eq!(dr.say("last"), dr_rs);
    let fresh = http_get(&client, 80);
    assert!(fresh.starts_with("rs"), "{fresh}");
}

/// Firewall-mark services on the xdp engine, classified from rvs.toml's
/// `match` lists (what `iptables -j MARK` does for LVS): a persistent
/// fwmark service grouping TCP 80 and 81 and UDP 54-55 keeps a client on
/// one real server across all of them (the template is the mark's, as
/// in the kernel: persistence across ports and protocols), with first
/// packets through userspace and DR; an rr fwmark service grouping TCP
/// 82-83 over NAT, scheduled in BPF, takes one rr sequence across both
/// ports, the client's port kept (real servers of port 0); a port no
/// entry matches reaches no service.
#[test]
fn fwmark_services_group_ports_under_one_service() {
    if skip() {
        return;
    }
    let mut t = Topo::new("f");
    let rs = |method: &str| -> String {
        (1..=3)
            .map(|i| {
                format!(
                    "[[service.real_server]]\naddress = \"{}\"\nmethod = \"{method}\"\n",
                    rs_addr(i)
                )
            })
            .collect()
    };
    t.start_rvsd_with_config(&format!(
        "engine = \"xdp\"\n\
         [[service]]\nfwmark = 1\nscheduler = \"rr\"\npersistent = 60\n\
         match = [\"tcp:{VIP}:80-81\", \"udp:{VIP}:54-55\"]\n{}\n\
         [[service]]\nfwmark = 2\nscheduler = \"rr\"\n\
         match = [\"tcp:{VIP}:82\", \"tcp:198.18.0.0/24:83\"]\n{}",
        rs("route"),
        rs("masq")
    ));
    after_tick();
    let client = t.client_ns();
    let first = http_get(&client, 80);
    for port in [81, 80, 81] {
        assert_eq!(
            http_get(&client, port),
            first,
            "persistence across TCP {port}"
        );
    }
    for port in [54, 55] {
        let name = udp_ask(&client, port, format!("to {port}").as_bytes());
        assert_eq!(name, first, "persistence across UDP {port}");
    }
    let picks: Vec<String> = [82, 83, 82, 83, 82, 83]
        .iter()
        .map(|&p| http_get(&client, p))
        .collect();
    assert_eq!(
        picks,
        ["rs3", "rs2", "rs1", "rs3", "rs2", "rs1"],
        "one rr sequence across the grouped ports"
    );
    let refused = in_ns(&client, || {
        TcpStream::connect_timeout(
            &format!("{VIP}:84").parse().unwrap(),
            Duration::from_secs(2),
        )
    });
    assert!(refused.is_err(), "port 84 belongs to no service");
    after_tick();
    let listing = t.adm(&["-L", "-n", "--stats", "--exact"]);
    let conns = |svc: &str| -> u64 { stats_rows(&listing, svc).values().map(|r| r.conns).sum() };
    assert_eq!(conns("FWM 1"), 6, "{listing}");
    assert_eq!(conns("FWM 2"), 6, "{listing}");
    let rows = conn_rows(&t.adm(&["-L", "-c", "-n"]));
    let nat = rows
        .iter()
        .filter(|r| r.3 == format!("{VIP}:83") && r.4.ends_with(":83"))
        .count();
    assert_eq!(nat, 3, "NAT keeps the port: {rows:#?}");
}

/// Path MTU discovery through the tunnels: the client's full-size TCP
/// segments (1500 bytes, DF) do not fit an IPIP or GUE packet on the
/// 1500-byte link to the real servers; the director answers "fragmentation
/// needed" with the MTU less the tunnel's headers (ip_vs_tunnel_xmit), the
/// client's kernel takes it, and a 20 kB line gets through (without the
/// answer the segments would be lost until the read times out).
#[test]
fn tunnels_answer_fragmentation_needed_and_large_transfers_pass() {
    if skip() {
        return;
    }
    let mut t = Topo::new("m");
    t.start_rvsd();
    t.adm_script(
        "-A -t $VIP:82 -s rr
         -a -t $VIP:82 -r 198.19.1.2 -i
         -A -t $VIP:83 -s rr
         -a -t $VIP:83 -r 198.19.2.2 -i --tun-type gue --tun-port 6080",
    );
    after_tick();
    let client = t.client_ns();
    let big = "x".repeat(20_000);
    // IPIP leaves 1480 bytes, GUE 1468: the client's route to the VIP
    // learns one, then the other.
    for (port, rs, mtu) in [(82, "rs1", 1480), (83, "rs2", 1468)] {
        let mut e = Echo::open(&client, port);
        assert_eq!(e.say("small first"), rs);
        assert_eq!(e.say(&big), rs, "a 20 kB line through port {port}");
        assert_eq!(e.say(&big), rs, "and again at the learnt MTU");
        let route = sh(&format!("ip -n {client} route get {VIP}"));
        assert!(
            route.contains(&format!("mtu {mtu}")),
            "port {port}: the client learnt {mtu}: {route}"
        );
    }
}
