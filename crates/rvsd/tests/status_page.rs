//! The status page in a real browser: rvsd with the proxy engine and
//! `--http`, real servers run by the test, traffic through a virtual
//! service, and Debian's headless `chromium` driven over WebDriver by
//! `chromedriver` (package `chromium-driver`). The page must list the
//! services, its charts must change while traffic runs, and a real server
//! drained with `rvsadm -e ... -w 0` must be shown as drained.
//!
//! `RVS_SCREENSHOT=PATH` saves a PNG of the page at the end (the one in
//! `docs/status-page.png` comes from such a run). Without chromium and
//! chromedriver the test is skipped with a reason, unless it runs as root,
//! where `scripts/test` installs them, and then it fails.

mod common;

use common::{free_port, is_root, rvsadm, Rvsd};
use serde_json::{json, Value};
use std::io::{BufRead, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A real server: reads the request to its end, answers `reply` bytes.
fn real_server(reply: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                if s.read_to_end(&mut got).is_ok() {
                    let _ = s.write_all(&vec![b'r'; reply]);
                }
            });
        }
    });
    port
}

/// One client exchange through the virtual service; false if it failed.
fn exchange(vport: u16, request: usize) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", vport)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut got = Vec::new();
    s.write_all(&vec![b'q'; request]).is_ok()
        && s.shutdown(Shutdown::Write).is_ok()
        && s.read_to_end(&mut got).is_ok()
        && !got.is_empty()
}

/// Clients on a thread until dropped: a few connections every 50 ms, in
/// waves so the charts have a shape.
struct Traffic {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(vport: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let (s, d) = (stop.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let wave = (t0.elapsed().as_secs() / 4) % 3;
                for _ in 0..=wave {
                    if exchange(vport, 20_000) {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Traffic {
            stop,
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP/1.1 exchange: status and body. The body is read by its
/// Content-Length (chromedriver keeps connections open), else to the end.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        &s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = std::io::BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((h, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        }
        if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
            chunked = true;
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        out.resize(n, 0);
        r.read_exact(&mut out).unwrap();
    } else {
        r.read_to_end(&mut out).unwrap();
    }
    (status, String::from_utf8_lossy(&out).into_owned())
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(val)
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, v)| acc | (*v as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// chromedriver and one browser session; both ended when dropped (the
/// driver in its own process group, so the browser goes with it).
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let t0 = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let (status, body) = http(port, "GET", "/status", None);
                if status == 200 && body.contains("\"ready\":true") {
                    break;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "chromedriver did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-proxy-server",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", b._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let (status, body) = http(port, "POST", "/session", Some(&caps));
        assert_eq!(status, 200, "new session: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        b.session = v["value"]["sessionId"].as_str().unwrap().to_string();
        b
    }

    /// A WebDriver command on the session; its `value`.
    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let (status, text) = http(self.port, method, &path, body);
        assert_eq!(status, 200, "{method} {path}: {text}");
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["value"].take()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn eval(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// Polls `script` until `ok` holds for its value (at most `secs`).
    fn wait_for(&self, what: &str, secs: u64, script: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.eval(script);
            if ok(&v) {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{what}: the page still says {v}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn screenshot(&self, path: &Path) {
        let png = decode_base64(self.cmd("GET", "/screenshot", None).as_str().unwrap());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        std::fs::write(path, png).unwrap();
        println!("screenshot saved to {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let _ = std::panic::catch_unwind(|| http(self.port, "DELETE", &path, None));
            }
        }
        // The driver's process group: chromedriver and any browser left.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// What the page shows of one chart: `{samples, latest, d}` of the
/// service total's line in the chart `metric` of `service`.
fn chart_js(service: &str, metric: &str) -> String {
    format!(
        "const s = document.querySelector('section.service[data-service=\"{service}\"] \
         figure[data-metric=\"{metric}\"] svg');
         if (!s) return null;
         const p = s.querySelector('path.total');
         return {{samples: Number(s.dataset.samples), latest: s.dataset.latest,
                  d: p ? p.getAttribute('d') : ''}};"
    )
}

#[test]
fn the_status_page_shows_services_moving_charts_and_a_drained_server() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            !is_root(),
            "{CHROMIUM} or {CHROMEDRIVER} missing: apt-get install chromium chromium-driver \
             (scripts/test does)"
        );
        println!(
            "skipped: {CHROMIUM} or {CHROMEDRIVER} missing and not root \
             (apt-get install chromium chromium-driver)"
        );
        return;
    }
    let t_start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let hport = free_port();
    let (rs1, rs2, rs3) = (real_server(30_000), real_server(30_000), real_server(100));
    // Nobody listens there: its health check fails and it is quiesced.
    let dead = free_port();
    let (v1, v2) = (free_port(), free_port());
    let (vip1, vip2) = (format!("127.0.0.1:{v1}"), format!("127.0.0.1:{v2}"));
    let (svc1, svc2) = (format!("TCP {vip1}"), format!("TCP {vip2}"));
    let config = dir.path().join("rvs.toml");
    let check =
        "[[service.check]]\ntype = \"tcp\"\ninterval = 0.5\ntimeout = 0.4\nfall = 1\nrise = 1\n";
    let rs = |p: u16| {
        format!("[[service.real_server]]\naddress = \"127.0.0.1:{p}\"\nmethod = \"masq\"\n")
    };
    std::fs::write(
        &config,
        format!(
            "engine = \"proxy\"\n[proxy]\nworkers = 2\n\n\
             [[service]]\ntcp = \"{vip1}\"\nscheduler = \"rr\"\n{check}{}{}\n\
             [[service]]\ntcp = \"{vip2}\"\nscheduler = \"wlc\"\n{check}{}{}",
            rs(rs1),
            rs(rs2),
            rs(rs3),
            rs(dead)
        ),
    )
    .unwrap();
    let d = Rvsd::start(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--http",
            &format!("127.0.0.1:{hport}"),
        ],
    );
    let t0 = Instant::now();
    while !exchange(v1, 10) {
        assert!(t0.elapsed() < Duration::from_secs(10), "{vip1} not served");
        std::thread::sleep(Duration::from_millis(20));
    }
    let traffic = Traffic::start(v1);

    let b = Browser::start();
    b.goto(&format!("http://127.0.0.1:{hport}/"));

    // The page lists both services and their real servers.
    let listed = b.wait_for(
        "both services listed",
        15,
        "return [...document.querySelectorAll('section.service')].map(s => \
         [s.dataset.service, [...s.querySelectorAll('tr[data-rs]')].map(r => r.dataset.rs)]);",
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    );
    let listed: Vec<(String, Vec<String>)> = serde_json::from_value(listed).unwrap();
    let mut names: Vec<&str> = listed.iter().map(|(s, _)| s.as_str()).collect();
    names.sort();
    let mut want = [svc1.as_str(), svc2.as_str()];
    want.sort();
    assert_eq!(names, want);
    let chrome = b.eval(
        "const shown = (id) => getComputedStyle(document.getElementById(id)).display !== 'none';
         return {banner: shown('banner'), auth: shown('auth'),
                 updated: document.getElementById('updated').dataset.state};",
    );
    assert_eq!(
        chrome,
        json!({"banner": false, "auth": false, "updated": "ok"}),
        "no error banner or token form on a loopback listener"
    );
    let rs_of = |s: &str| listed.iter().find(|(n, _)| n == s).unwrap().1.clone();
    let mut rs_1 = rs_of(&svc1);
    rs_1.sort();
    let mut want1 = vec![format!("127.0.0.1:{rs1}"), format!("127.0.0.1:{rs2}")];
    want1.sort();
    assert_eq!(rs_1, want1);
    let mut rs_2 = rs_of(&svc2);
    rs_2.sort();
    let mut want2 = vec![format!("127.0.0.1:{rs3}"), format!("127.0.0.1:{dead}")];
    want2.sort();
    assert_eq!(rs_2, want2);

    // The busy service's connection chart shows traffic, and changes.
    let busy = chart_js(&svc1, "connections");
    let first = b.wait_for("conns/s above 0 in the chart", 20, &busy, |v| {
        v["latest"].as_str().and_then(|l| l.parse::<u64>().ok()) > Some(0)
            && v["samples"].as_u64() >= Some(2)
    });
    let second = b.wait_for("the chart to change", 10, &busy, |v| {
        v["samples"].as_u64() > first["samples"].as_u64() && v["d"] != first["d"]
    });
    println!("chart: {first} then {second}");
    for m in ["packets", "bytes"] {
        let v = b.eval(&chart_js(&svc1, m));
        assert!(
            v["latest"].as_str().and_then(|l| l.parse::<u64>().ok()) > Some(0),
            "{m} chart of {svc1}: {v}"
        );
    }
    // The idle service's chart is flat at zero: the page does not invent.
    let idle = b.eval(&chart_js(&svc2, "connections"));
    assert_eq!(idle["latest"], "0", "{idle}");

    // Drain one real server: the page says so in words.
    let drained = format!("127.0.0.1:{rs1}");
    rvsadm(&d, &["-e", "-t", &vip1, "-r", &drained, "-m", "-w", "0"]);
    let row = |svc: &str, rs: &str| {
        format!(
            "const r = document.querySelector('section.service[data-service=\"{svc}\"] \
             tr[data-rs=\"{rs}\"]');
             return r ? {{status: r.dataset.status, text: r.querySelector('td.status').textContent,
                          weight: r.querySelector('td.weight').textContent,
                          health: r.querySelector('td.health').textContent}} : null;"
        )
    };
    let v = b.wait_for(
        "the drained server shown as drained",
        10,
        &row(&svc1, &drained),
        |v| v["status"] == "drained",
    );
    assert!(v["text"].as_str().unwrap().contains("DRAINED"), "{v}");
    assert_eq!(v["weight"], "0");
    let other = b.eval(&row(&svc1, &format!("127.0.0.1:{rs2}")));
    assert_eq!(other["status"], "active", "{other}");
    assert!(
        other["text"].as_str().unwrap().contains("ACTIVE"),
        "{other}"
    );
    // Health: the checked servers are UP; the dead one is DOWN, quiesced.
    assert!(
        other["health"].as_str().unwrap().starts_with("UP"),
        "{other}"
    );
    let down = b.wait_for(
        "the dead server shown as down",
        10,
        &row(&svc2, &format!("127.0.0.1:{dead}")),
        |v| v["status"] == "down",
    );
    let text = down["text"].as_str().unwrap();
    assert!(text.contains("DOWN") && text.contains("DRAINED"), "{down}");
    assert!(
        down["health"].as_str().unwrap().starts_with("DOWN"),
        "{down}"
    );
    let summary = b.eval("return document.getElementById('summary').textContent;");
    let summary = summary.as_str().unwrap();
    assert!(
        summary.contains("1 drained") && summary.contains("1 down"),
        "{summary}"
    );

    if let Ok(path) = std::env::var("RVS_SCREENSHOT") {
        // Half a minute more of traffic after the drain, on the 1-minute range.
        b.eval("document.querySelector('.range button[data-range=\"60\"]').click(); return 0;");
        std::thread::sleep(Duration::from_secs(30));
        b.screenshot(Path::new(&path));
    }
    let served = traffic.done.load(Ordering::Relaxed);
    drop(traffic);
    assert!(served > 0);
    println!(
        "{served} client connections; test took {:.1} s",
        t_start.elapsed().as_secs_f64()
    );
}
