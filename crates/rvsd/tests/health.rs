//! Health checks end to end: rvsd with the proxy engine and real servers on
//! loopback that the test stops, starts and breaks. Real servers leave the
//! pool within interval × fall (+ timeout) and rejoin within interval ×
//! rise; traffic through the proxy never reaches a server that is down;
//! flapping is damped; the fallback server comes and goes; a reload keeps
//! the state of unchanged checks; `rvsctl status` shows all of it.

mod common;

use common::{free_port, rvsadm, Rvsd};
use rvs_ctl::{HealthReport, Request, Response};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What a test HTTP server answers.
const OK: u8 = 0;
const FAIL_503: u8 = 1;
const ALTERNATE: u8 = 2;

/// A real server on 127.0.0.1: answers every HTTP request with its name
/// (or a 503), and can be stopped (its port then refuses connections) and
/// started again on the same port.
struct HttpServer {
    name: &'static str,
    port: u16,
    mode: Arc<AtomicU8>,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    fn start(name: &'static str, port: u16) -> HttpServer {
        let mut s = HttpServer {
            name,
            port,
            mode: Arc::new(AtomicU8::new(OK)),
            hits: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        s.resume();
        s
    }

    /// Listens again (after [`HttpServer::halt`]).
    fn resume(&mut self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        l.set_nonblocking(true).unwrap();
        self.stop.store(false, Ordering::SeqCst);
        let (name, mode, hits, stop) = (
            self.name,
            self.mode.clone(),
            self.hits.clone(),
            self.stop.clone(),
        );
        let mut n = 0u64;
        self.thread = Some(thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((mut c, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                n += 1;
                let fail = match mode.load(Ordering::SeqCst) {
                    FAIL_503 => true,
                    ALTERNATE => n.is_multiple_of(2),
                    _ => false,
                };
                let health = got.starts_with(b"GET /health");
                if !health {
                    hits.fetch_add(1, Ordering::SeqCst);
                }
                let resp = if fail {
                    "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy".to_string()
                } else {
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\nOK {name}",
                        3 + name.len()
                    )
                };
                let _ = c.write_all(resp.as_bytes());
            }
        }));
    }

    /// Stops listening: connections to its port are refused.
    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One request through the virtual service; the body (`OK name`).
fn ask(vport: u16) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", vport)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out.rsplit("\r\n\r\n").next().unwrap_or("").to_string()
}

fn health(d: &Rvsd) -> HealthReport {
    match d.client().call(&Request::GetHealth).unwrap() {
        Response::Health(r) => r,
        other => panic!("{other:?}"),
    }
}

/// The weight rvsadm lists for real server 127.0.0.1:`port`, or `None`
/// if it is not in the table.
fn listed_weight(d: &Rvsd, port: u16) -> Option<u32> {
    let out = rvsadm(d, &["-L", "-n"]);
    out.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[0] == "->" && f[1] == format!("127.0.0.1:{port}"))
            .then(|| f[3].parse().unwrap())
    })
}

/// Polls `cond` every 10 ms for up to `limit`; the time it took.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
    t0.elapsed()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("rvs.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn start(dir: &Path, config: &Path) -> Rvsd {
    Rvsd::start(dir, &["--config", config.to_str().unwrap()])
}

/// `GET path` on rvsd's HTTP API; the body.
fn http_get(port: u16, path: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// interval 0.2 s, timeout 0.1 s, fall 2, rise 2.
const INTERVAL: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_millis(100);
/// Slack for process scheduling on a loaded 2-core CI machine, on top of
/// the bound the timing promises.
const SLACK: Duration = Duration::from_millis(1500);

fn http_config(vport: u16, a: u16, b: u16, extra: &str) -> String {
    format!(
        r#"
[proxy]
workers = 1

[[service]]
tcp = "127.0.0.1:{vport}"
scheduler = "rr"
{extra}

[[service.check]]
type = "http"
path = "/health"
expect = "OK"
interval = 0.2
timeout = 0.1
fall = 2
rise = 2

[[service.real_server]]
address = "127.0.0.1:{a}"
weight = 3

[[service.real_server]]
address = "127.0.0.1:{b}"
weight = 2
"#
    )
}

#[test]
fn a_failing_http_server_leaves_the_pool_and_rejoins_it() {
    let dir = tempfile::tempdir().unwrap();
    let (vport, pa, pb) = (free_port(), free_port(), free_port());
    let mut a = HttpServer::start("a", pa);
    let b = HttpServer::start("b", pb);
    let cfg = write_config(dir.path(), &http_config(vport, pa, pb, ""));
    let api = free_port();
    let api_addr = format!("127.0.0.1:{api}");
    let d = Rvsd::start(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "--http", &api_addr],
    );

    // Both up: every check has run and passed.
    wait_until(Duration::from_secs(5), "first check results", || {
        health(&d)
            .servers
            .iter()
            .all(|s| s.checks[0].last.as_ref().is_some_and(|l| l.ok))
    });
    assert_eq!(listed_weight(&d, pa), Some(3));
    assert_eq!(listed_weight(&d, pb), Some(2));

    // a stops: quiesced (weight 0, still listed) within interval × fall + timeout.
    a.halt();
    let took = wait_until(Duration::from_secs(10), "a quiesced", || {
        listed_weight(&d, pa) == Some(0)
    });
    assert!(
        took <= INTERVAL * 2 + TIMEOUT + SLACK,
        "a left the pool after {took:?}"
    );
    let r = health(&d);
    let sa = r.servers.iter().find(|s| s.port == pa).unwrap();
    assert_eq!(sa.state, "down");
    let last = sa.checks[0].last.as_ref().unwrap();
    assert!(!last.ok);
    assert_eq!(last.reason, "connection refused");
    assert_eq!(listed_weight(&d, pb), Some(2), "b untouched");

    // The API and the metrics say so too.
    let m = http_get(api, "/metrics");
    let a_label = format!("real_server=\"127.0.0.1:{pa}\"");
    let line = m
        .lines()
        .find(|l| l.starts_with("rvs_real_server_healthy{") && l.contains(&a_label))
        .unwrap_or_else(|| panic!("{m}"));
    assert!(line.ends_with(" 0"), "{line}");
    let v: serde_json::Value = serde_json::from_str(&http_get(api, "/api/v1/services")).unwrap();
    let rs = v[0]["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["port"] == pa)
        .unwrap();
    assert_eq!(rs["health"]["state"], "down", "{rs}");
    assert_eq!(rs["health"]["last"], "connection refused", "{rs}");
    assert_eq!(rs["weight"], 0);

    // No traffic reaches a while it is down.
    let before = a.hits.load(Ordering::SeqCst);
    for _ in 0..20 {
        assert_eq!(ask(vport), "OK b");
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), before);

    // a answers 503 when it comes back: still down (the check wants 2xx).
    a.mode.store(FAIL_503, Ordering::SeqCst);
    a.resume();
    thread::sleep(INTERVAL * 4);
    assert_eq!(listed_weight(&d, pa), Some(0));
    let r = health(&d);
    let sa = r.servers.iter().find(|s| s.port == pa).unwrap();
    assert_eq!(sa.checks[0].last.as_ref().unwrap().reason, "status 503");

    // Healthy again: weight 3 restored within interval × rise.
    let t0 = Instant::now();
    a.mode.store(OK, Ordering::SeqCst);
    wait_until(Duration::from_secs(10), "a restored", || {
        listed_weight(&d, pa) == Some(3)
    });
    let took = t0.elapsed();
    assert!(took <= INTERVAL * 2 + SLACK, "a rejoined after {took:?}");
    let answers: Vec<String> = (0..10).map(|_| ask(vport)).collect();
    assert!(answers.iter().any(|x| x == "OK a"), "{answers:?}");

    // rvsctl status, for people and for scripts.
    let rvsctl = Path::new(env!("CARGO_BIN_EXE_rvsd")).with_file_name("rvsctl");
    if rvsctl.exists() {
        let out = Command::new(&rvsctl)
            .args(["status", "--socket"])
            .arg(&d.sock)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("tcp 127.0.0.1:{vport}  quorum up")),
            "{text}"
        );
        assert!(text.contains(&format!("127.0.0.1:{pa}")), "{text}");
        assert!(text.contains("http 127.0.0.1:"), "{text}");
        let out = Command::new(&rvsctl)
            .args(["status", "--json", "--socket"])
            .arg(&d.sock)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["daemon"]["engine"], "proxy");
        let r: HealthReport = serde_json::from_value(v["health"].clone()).unwrap();
        assert_eq!(r.servers.len(), 2);
        assert!(r.servers.iter().all(|s| s.state == "up"));
    } else {
        eprintln!("rvsctl not built; skipping its part (run `cargo build --bins`)");
    }
    drop(b);
}

#[test]
fn flapping_is_damped() {
    let dir = tempfile::tempdir().unwrap();
    let (vport, pa, pb) = (free_port(), free_port(), free_port());
    let a = HttpServer::start("a", pa);
    let _b = HttpServer::start("b", pb);
    // Every other answer of a is a 503: with fall 2 it never goes down.
    a.mode.store(ALTERNATE, Ordering::SeqCst);
    let cfg = write_config(dir.path(), &http_config(vport, pa, pb, ""));
    let d = start(dir.path(), &cfg);
    let t0 = Instant::now();
    let mut failures_seen = 0;
    while t0.elapsed() < INTERVAL * 12 {
        assert_eq!(listed_weight(&d, pa), Some(3), "a flapped out of the pool");
        let r = health(&d);
        let sa = r.servers.iter().find(|s| s.port == pa).unwrap();
        assert_eq!(sa.state, "up");
        if sa.checks[0].streak > 0 {
            failures_seen += 1;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        failures_seen > 0,
        "the 503s never registered as soft failures"
    );
}

#[test]
fn the_fallback_server_comes_in_when_all_are_down_and_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let (vport, pa, pb, pf) = (free_port(), free_port(), free_port(), free_port());
    let mut a = HttpServer::start("a", pa);
    let mut b = HttpServer::start("b", pb);
    let _sorry = HttpServer::start("sorry", pf);
    let extra =
        format!("on_failure = \"remove\"\n[service.fallback]\naddress = \"127.0.0.1:{pf}\"\n");
    let cfg = write_config(dir.path(), &http_config(vport, pa, pb, &extra));
    let d = start(dir.path(), &cfg);
    wait_until(Duration::from_secs(5), "first checks", || {
        health(&d)
            .servers
            .iter()
            .all(|s| s.checks[0].last.is_some())
    });
    assert_eq!(
        listed_weight(&d, pf),
        None,
        "no fallback while servers are up"
    );

    a.halt();
    wait_until(Duration::from_secs(10), "a removed", || {
        listed_weight(&d, pa).is_none()
    });
    assert_eq!(listed_weight(&d, pf), None, "b still serves");
    b.halt();
    wait_until(Duration::from_secs(10), "fallback in", || {
        listed_weight(&d, pf) == Some(1)
    });
    assert_eq!(listed_weight(&d, pb), None);
    assert_eq!(ask(vport), "OK sorry");
    let r = health(&d);
    assert!(!r.services[0].quorum_up);
    assert!(r.services[0].fallback_active);

    b.resume();
    wait_until(Duration::from_secs(10), "fallback out", || {
        listed_weight(&d, pf).is_none()
    });
    assert_eq!(listed_weight(&d, pb), Some(2));
    assert_eq!(ask(vport), "OK b");
    assert!(health(&d).services[0].quorum_up);
}

#[test]
fn a_reload_keeps_the_state_of_unchanged_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (vport, pa, pb, pc) = (free_port(), free_port(), free_port(), free_port());
    let mut a = HttpServer::start("a", pa);
    let _b = HttpServer::start("b", pb);
    let _c = HttpServer::start("c", pc);
    let text = http_config(vport, pa, pb, "");
    let cfg = write_config(dir.path(), &text);
    let d = start(dir.path(), &cfg);
    a.halt();
    wait_until(Duration::from_secs(10), "a quiesced", || {
        listed_weight(&d, pa) == Some(0)
    });
    let since = health(&d).servers[0].since_ms;

    // Add a real server and reload: a stays down without a flap, keeps its
    // `since`; c joins.
    let more = format!("{text}\n[[service.real_server]]\naddress = \"127.0.0.1:{pc}\"\n");
    std::fs::write(&cfg, more).unwrap();
    match d.client().call(&Request::Reload).unwrap() {
        Response::Ok => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(listed_weight(&d, pa), Some(0), "a flapped on reload");
    assert_eq!(listed_weight(&d, pc), Some(1));
    let r = health(&d);
    let sa = r.servers.iter().find(|s| s.port == pa).unwrap();
    assert_eq!((sa.state.as_str(), sa.since_ms), ("down", since));
    assert_eq!(r.servers.len(), 3);

    // A broken file changes nothing and says why.
    std::fs::write(&cfg, "[[service]]\ntcp = \"127.0.0.1:1\"\nwieght = 1\n").unwrap();
    match d.client().call(&Request::Reload).unwrap() {
        Response::Refused(m) => assert!(m.contains("3:1: unknown key `wieght`"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(health(&d).servers.len(), 3);
    assert_eq!(listed_weight(&d, pc), Some(1));
    // Both reloads are counted, the last with its reason.
    let Response::Status(st) = d.client().call(&Request::GetStatus).unwrap() else {
        panic!("no status");
    };
    assert_eq!((st.reloads_ok, st.reloads_failed), (1, 1));
    let last = st.last_reload.unwrap();
    assert!(!last.ok && last.message.contains("wieght"), "{last:?}");
}

/// A UDP responder: echoes `pong` to anything, until dropped.
struct UdpResponder {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl UdpResponder {
    /// `dns`: answer queries as a DNS server with one A record.
    fn start(port: u16, dns: bool) -> UdpResponder {
        let s = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !st.load(Ordering::SeqCst) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                let reply = if dns {
                    dns_answer(&buf[..n])
                } else {
                    b"pong".to_vec()
                };
                let _ = s.send_to(&reply, from);
            }
        });
        UdpResponder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// A NOERROR answer to `q` with one A record 198.18.0.1.
fn dns_answer(q: &[u8]) -> Vec<u8> {
    let mut r = q.to_vec();
    r[2] = 0x81; // QR, RD
    r[3] = 0x80; // RA, NOERROR
    r[6] = 0;
    r[7] = 1; // ANCOUNT
    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 0, 1]);
    r
}

#[test]
fn udp_dns_and_command_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (vport, pu, pd) = (free_port(), free_port(), free_port());
    let weight_file = dir.path().join("weight-code");
    std::fs::write(&weight_file, "9").unwrap();
    let text = format!(
        r#"
[[service]]
udp = "127.0.0.1:{vport}"

[[service.real_server]]
address = "127.0.0.1:{pu}"
[[service.real_server.check]]
type = "udp"
payload = "ping"
expect = "pong"
interval = 0.2
timeout = 0.1
fall = 1
rise = 1

[[service.real_server]]
address = "127.0.0.1:{pd}"
weight = 4
[[service.real_server.check]]
type = "dns"
name = "www.example.com"
query_type = "A"
interval = 0.2
timeout = 0.1
fall = 1
rise = 1
[[service.real_server.check]]
type = "command"
command = ["/bin/sh", "-c", "exit $(cat {})", "{{rip}}"]
dynamic_weight = true
interval = 0.2
timeout = 0.2
fall = 1
rise = 1
"#,
        weight_file.display()
    );
    let udp = UdpResponder::start(pu, false);
    let _dns = UdpResponder::start(pd, true);
    let cfg = write_config(dir.path(), &text);
    let d = start(dir.path(), &cfg);
    // The command exits 9: weight 7 instead of the configured 4.
    wait_until(Duration::from_secs(10), "dynamic weight 7", || {
        listed_weight(&d, pd) == Some(7)
    });
    wait_until(Duration::from_secs(5), "udp check passed", || {
        health(&d).servers[0].checks[0]
            .last
            .as_ref()
            .is_some_and(|l| l.ok)
    });
    assert_eq!(listed_weight(&d, pu), Some(1));

    // The UDP server goes away: ICMP port unreachable, down at once.
    drop(udp);
    wait_until(Duration::from_secs(10), "udp server quiesced", || {
        listed_weight(&d, pu) == Some(0)
    });
    let r = health(&d);
    assert_eq!(
        r.servers[0].checks[0].last.as_ref().unwrap().reason,
        "connection refused"
    );

    // The command exits 1: the DNS server's real server goes down too.
    std::fs::write(&weight_file, "1").unwrap();
    wait_until(Duration::from_secs(10), "command failure quiesces", || {
        listed_weight(&d, pd) == Some(0)
    });
    let r = health(&d);
    let c = &r.servers[1].checks[1];
    assert_eq!(c.last.as_ref().unwrap().reason, "exit code 1");
    assert_eq!(r.servers[1].checks[0].state, "up", "dns still answers");
}

#[test]
fn a_restart_starts_from_the_configured_initial_state() {
    let dir = tempfile::tempdir().unwrap();
    let (vport, pa, pb) = (free_port(), free_port(), free_port());
    let _a = HttpServer::start("a", pa);
    let _b = HttpServer::start("b", pb);
    // keepalived's `alpha`: servers start down and must pass `rise` checks.
    let cfg = write_config(
        dir.path(),
        &http_config(vport, pa, pb, "initial = \"down\""),
    );
    let d = start(dir.path(), &cfg);
    assert_eq!(
        listed_weight(&d, pa),
        Some(0),
        "not in the pool before its checks pass"
    );
    wait_until(Duration::from_secs(10), "both up", || {
        listed_weight(&d, pa) == Some(3) && listed_weight(&d, pb) == Some(2)
    });
    d.crash();
    // The same state directory and configuration: the checks start over.
    let d = start(dir.path(), &cfg);
    assert_eq!(listed_weight(&d, pa), Some(0));
    assert_eq!(listed_weight(&d, pb), Some(0));
    assert!(health(&d).servers.iter().all(|s| s.state == "down"));
    wait_until(Duration::from_secs(10), "both up again", || {
        listed_weight(&d, pa) == Some(3) && listed_weight(&d, pb) == Some(2)
    });
}

#[test]
fn rvsctl_drains_and_sets_weights_by_name() {
    let rvsctl = Path::new(env!("CARGO_BIN_EXE_rvsd")).with_file_name("rvsctl");
    if !rvsctl.exists() {
        eprintln!("rvsctl not built; skipping (run `cargo build --bins`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = Rvsd::start(dir.path(), &["--engine", "none"]);
    rvsadm(&d, &["-A", "-t", "198.18.0.1:80", "-s", "wrr"]);
    rvsadm(
        &d,
        &[
            "-a",
            "-t",
            "198.18.0.1:80",
            "-r",
            "198.18.1.1:8080",
            "-m",
            "-w",
            "5",
            "-x",
            "100",
            "-y",
            "50",
        ],
    );
    let ctl = |args: &[&str]| {
        Command::new(&rvsctl)
            .args(args)
            .arg("--socket")
            .arg(&d.sock)
            .output()
            .unwrap()
    };
    let out = ctl(&["drain", "tcp:198.18.0.1:80", "198.18.1.1:8080"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("drained (weight 5 -> 0"), "{text}");
    let list = rvsadm(&d, &["-L", "-n", "--thresholds"]);
    assert!(list.contains("198.18.1.1:8080"), "{list}");
    let row = list
        .lines()
        .find(|l| l.contains("198.18.1.1:8080"))
        .unwrap();
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((f[2], f[3]), ("100", "50"), "thresholds kept: {row}");
    let list = rvsadm(&d, &["-L", "-n"]);
    assert!(
        list.contains("198.18.1.1:8080              Masq    0"),
        "{list}"
    );
    let out = ctl(&["weight", "tcp:198.18.0.1:80", "198.18.1.1:8080", "7"]);
    assert!(out.status.success(), "{out:?}");
    assert!(rvsadm(&d, &["-L", "-n"]).contains("198.18.1.1:8080              Masq    7"));
    // Errors name what is wrong and exit non-zero.
    let out = ctl(&["drain", "tcp:198.18.0.1:81", "198.18.1.1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such service"),
        "{out:?}"
    );
    let out = ctl(&["drain", "tcp:198.18.0.1:80", "198.18.1.9"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a real server of"),
        "{out:?}"
    );
    let out = ctl(&["drain", "http:198.18.0.1:80", "198.18.1.1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown service kind"),
        "{out:?}"
    );
}
