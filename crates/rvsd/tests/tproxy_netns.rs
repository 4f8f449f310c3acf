//! Firewall-mark and port-0 services through the proxy engine's TPROXY
//! listeners, end to end (root): a client namespace and a director
//! namespace on a veth pair; in the director, rvsd (proxy engine), two real
//! servers on loopback, and the nftables rules and policy routing an
//! operator adds (`tproxy to :PORT` with a mark, `ip rule fwmark`, a `local`
//! default route) to divert the virtual addresses' traffic to the ports
//! rvsd names in its log.

mod common;

use common::{in_ns, is_root, rvsadm_output, sh, wait_for_socket};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENT: &str = "198.18.9.2";
const DIRECTOR: &str = "198.18.9.1";
/// The firewall-mark service's virtual address (ports 80 and 443, mark 7).
const VIP_FWM: &str = "198.19.9.10";
/// The port-0 service's virtual address.
const VIP_ANY: &str = "198.19.9.20";

/// Whether this machine cannot run these tests (says why).
fn skip() -> bool {
    if !is_root() {
        eprintln!("skipped: TPROXY needs root (network namespaces, nftables)");
        return true;
    }
    if Command::new("nft").arg("--version").output().is_err() {
        eprintln!("skipped: nft is not installed (scripts/test installs nftables)");
        return true;
    }
    false
}

struct Topo {
    client: String,
    director: String,
    dir: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    rvsd: Option<Child>,
}

impl Drop for Topo {
    fn drop(&mut self) {
        if let Some(mut c) = self.rvsd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.client, &self.director] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Topo {
    /// `tag` tells apart the tests of one process (they run in parallel).
    fn new(tag: &str) -> Topo {
        let id = format!("{tag}{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("rvs-tproxy-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t = Topo {
            client: format!("rvstp-c-{id}"),
            director: format!("rvstp-d-{id}"),
            sock: dir.join("rvsd.sock"),
            log: dir.join("rvsd.log"),
            dir,
            rvsd: None,
        };
        let (c, d) = (&t.client, &t.director);
        sh(&format!(
            "ip netns add {c} && ip netns add {d} && \
             ip link add tpc0 netns {c} type veth peer name tpd0 netns {d} && \
             ip -n {c} addr add {CLIENT}/24 dev tpc0 && ip -n {c} link set tpc0 up && \
             ip -n {c} link set lo up && ip -n {c} route add default via {DIRECTOR} && \
             ip -n {d} addr add {DIRECTOR}/24 dev tpd0 && ip -n {d} link set tpd0 up && \
             ip -n {d} link set lo up"
        ));
        t
    }

    fn start_rvsd(&mut self) {
        self.start_rvsd_with(&[]);
    }

    fn start_rvsd_with(&mut self, extra: &[&str]) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.director])
            .arg(Path::new(env!("CARGO_BIN_EXE_rvsd")))
            .arg("--socket")
            .arg(&self.sock)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .args(["--workers", "2"])
            .args(extra)
            .env("RVS_LOG", "info")
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.rvsd = Some(child);
        wait_for_socket(&self.sock);
    }

    fn adm(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = rvsadm_output(&self.sock, &args);
        assert!(
            out.status.success(),
            "rvsadm {line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The port rvsd's log names for `service` ("FWM 7", "TCP 1.2.3.4:0").
    fn tproxy_port(&self, service: &str) -> u16 {
        self.tproxy_port_after(service, 0)
    }

    /// The port named by the `skip`+1-th such line (a reopened listener
    /// logs again).
    fn tproxy_port_after(&self, service: &str, skip: usize) -> u16 {
        let want = format!("{service}: TPROXY listener on port ");
        let t0 = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(rest) = log
                .lines()
                .filter_map(|l| l.split_once(&want).map(|x| x.1))
                .nth(skip)
            {
                return rest.split(';').next().unwrap().trim().parse().unwrap();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "no TPROXY port for {service} in rvsd's log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A real server in the director namespace: answers every connection
    /// with `NAME` and closes.
    fn real_server(&self, name: &'static str, addr: &'static str) {
        let l = in_ns(&self.director, move || TcpListener::bind(addr).unwrap());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let _ = s.write_all(format!("{name}\n").as_bytes());
            }
        });
    }

    /// Connects from the client namespace and reads the answer's first line.
    fn fetch(&self, addr: String) -> String {
        in_ns(&self.client, move || {
            let s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))
                .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            line.trim_end().to_string()
        })
    }
}

#[test]
fn firewall_mark_and_port_zero_services_through_tproxy() {
    if skip() {
        return;
    }
    let mut t = Topo::new("a");
    t.real_server("rs1", "127.0.0.1:9001");
    t.real_server("rs2", "127.0.0.1:9002");
    t.start_rvsd();
    t.adm("-A -f 7 -s rr");
    t.adm("-a -f 7 -r 127.0.0.1:9001 -m");
    t.adm("-a -f 7 -r 127.0.0.1:9002 -m");
    t.adm(&format!("-A -t {VIP_ANY}:0 -s rr -p 60"));
    t.adm(&format!("-a -t {VIP_ANY}:0 -r 127.0.0.1:0 -m"));
    let fwm_port = t.tproxy_port("FWM 7");
    let any_port = t.tproxy_port(&format!("TCP {VIP_ANY}:0"));
    assert_ne!(fwm_port, any_port);
    // What an operator adds, as rvsd's log says (nftables form). The
    // port-0 service's listener is bound to its virtual address, so its
    // rule names that address (TPROXY's default is the incoming
    // interface's address).
    let log = std::fs::read_to_string(&t.log).unwrap();
    assert!(
        log.contains(&format!("--on-ip {VIP_ANY} --on-port {any_port}")),
        "{log}"
    );
    let d = &t.director;
    sh(&format!(
        "ip netns exec {d} nft -f - <<'EOF'
table ip rvstp {{
  chain pre {{
    type filter hook prerouting priority mangle; policy accept;
    ip daddr {VIP_FWM} tcp dport {{ 80, 443 }} meta mark set 7 tproxy to :{fwm_port} accept
    ip daddr {VIP_ANY} meta l4proto tcp meta mark set 1 tproxy to {VIP_ANY}:{any_port} accept
  }}
}}
EOF
ip -n {d} rule add fwmark 7 lookup 100 && ip -n {d} rule add fwmark 1 lookup 100 && \
ip -n {d} route add local 0.0.0.0/0 dev lo table 100"
    ));

    // The firewall-mark service takes both ports, round robin across them.
    let got: Vec<String> = [80, 443, 80, 443]
        .iter()
        .map(|p| t.fetch(format!("{VIP_FWM}:{p}")))
        .collect();
    assert_eq!(got, ["rs2", "rs1", "rs2", "rs1"], "rr over FWM 7");
    // A port the mark does not cover is not diverted: nothing answers.
    let refused = in_ns(&t.client, || {
        TcpStream::connect_timeout(
            &format!("{VIP_FWM}:8080").parse().unwrap(),
            Duration::from_millis(500),
        )
        .is_err()
    });
    assert!(refused, "port 8080 is not part of mark 7");

    // The port-0 service keeps the client's destination port.
    assert_eq!(t.fetch(format!("{VIP_ANY}:9001")), "rs1");
    assert_eq!(t.fetch(format!("{VIP_ANY}:9002")), "rs2");

    // The table shows the services and the connections as LVS would: the
    // virtual address the client used, the real server it reached.
    let list = t.adm("-L -n");
    assert!(list.contains("FWM  7 rr"), "{list}");
    assert!(
        list.contains(&format!("TCP  {VIP_ANY}:0 rr persistent 60")),
        "{list}"
    );
    let conns = t.adm("-L -n -c");
    for (vip, rs) in [
        (format!("{VIP_FWM}:80"), "127.0.0.1:9002"),
        (format!("{VIP_FWM}:443"), "127.0.0.1:9001"),
        (format!("{VIP_ANY}:9001"), "127.0.0.1:9001"),
        (format!("{VIP_ANY}:9002"), "127.0.0.1:9002"),
    ] {
        assert!(
            conns
                .lines()
                .any(|l| l.contains(CLIENT) && l.contains(&vip) && l.contains(rs)),
            "no entry {CLIENT} -> {vip} -> {rs} in:\n{conns}"
        );
    }
    let stats = t.adm("-L -n --stats");
    let fwm = stats
        .lines()
        .find(|l| l.starts_with("FWM  7"))
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(
        fwm.split_whitespace().nth(2),
        Some("4"),
        "4 connections: {fwm}"
    );
}

/// `tproxy_port` in rvs.toml fixes the listener's port, so the diverting
/// rule can be written before rvsd starts; a reload that changes it moves
/// the listener.
#[test]
fn a_configured_tproxy_port_is_used_and_follows_a_reload() {
    if skip() {
        return;
    }
    let mut t = Topo::new("b");
    t.real_server("rs1", "127.0.0.1:9001");
    let config = |port: u16| {
        format!(
            "[[service]]\nfwmark = 7\nscheduler = \"rr\"\ntproxy_port = {port}\n\
             [[service.real_server]]\naddress = \"127.0.0.1:9001\"\nmethod = \"masq\"\n"
        )
    };
    let path = t.dir.join("rvs.toml");
    std::fs::write(&path, config(15007)).unwrap();
    let d = t.director.clone();
    // The rule exists before rvsd does.
    let rules = |port: u16| {
        format!(
            "ip netns exec {d} nft -f - <<'EOF'
table ip rvstp {{
  chain pre {{
    type filter hook prerouting priority mangle; policy accept;
    ip daddr {VIP_FWM} tcp dport 80 meta mark set 7 tproxy to :{port} accept
  }}
}}
EOF"
        )
    };
    sh(&rules(15007));
    sh(&format!(
        "ip -n {d} rule add fwmark 7 lookup 100 && ip -n {d} route add local 0.0.0.0/0 dev lo table 100"
    ));
    t.start_rvsd_with(&["--config", path.to_str().unwrap()]);
    assert_eq!(t.tproxy_port("FWM 7"), 15007);
    assert_eq!(t.fetch(format!("{VIP_FWM}:80")), "rs1");
    // Reload with another port: the listener moves.
    std::fs::write(&path, config(15008)).unwrap();
    let pid = t.rvsd.as_ref().unwrap().id();
    // `ip netns exec` runs rvsd as its child: signal the daemon itself.
    let daemon = sh(&format!("pgrep -P {pid} -x rvsd || echo {pid}"));
    sh(&format!("kill -HUP {}", daemon.trim()));
    assert_eq!(t.tproxy_port_after("FWM 7", 1), 15008);
    sh(&format!("ip netns exec {d} nft flush ruleset"));
    sh(&rules(15008));
    assert_eq!(t.fetch(format!("{VIP_FWM}:80")), "rs1");
    let gone = in_ns(&t.director, || {
        TcpStream::connect("127.0.0.1:15007").is_err()
    });
    assert!(gone, "the old listener is closed");
}
