//! rvsd with `--http`: real TCP traffic through the proxy engine to real
//! servers run by the test, `/metrics` scraped and checked against what was
//! sent, the API's authorisation, and a drain through the API seen by
//! `rvsadm`.

mod common;

use common::{free_port, rvsadm, Rvsd};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "t0k3n-for-the-test";
/// Bytes each client sends, and each real server answers.
const REQUEST: usize = 10_000;
const REPLY: usize = 5_000;

fn real_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                if s.read_to_end(&mut got).is_ok() {
                    let _ = s.write_all(&vec![b'r'; REPLY]);
                }
            });
        }
    });
    port
}

/// One HTTP/1.1 exchange (`Connection: close`): status and body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    (status, if chunked { dechunk(body) } else { body.into() })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

/// Waits until the HTTP listener answers.
fn wait_http(port: u16) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no HTTP on {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The value of the one sample `name{labels}` in an exposition.
fn sample(metrics: &str, series: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes until `ok` holds for the exposition (stats are flushed by the
/// engine every second, rates tick every 2 s).
fn scrape_until(port: u16, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let t0 = Instant::now();
    loop {
        let (status, m) = http(port, "GET", "/metrics", None, "");
        assert_eq!(status, 200, "{m}");
        if ok(&m) {
            return m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{what}; last scrape:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One client exchange through the virtual service: REQUEST bytes up, the
/// whole reply down. Retries only while the listener is not up yet.
fn exchange(vport: u16) {
    let t0 = Instant::now();
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", vport)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(t0.elapsed() < Duration::from_secs(10), "{vport}: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&vec![b'q'; REQUEST]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), REPLY);
}

#[test]
fn metrics_follow_real_traffic_and_the_api_drains_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let hport = free_port();
    let haddr = format!("127.0.0.1:{hport}");
    let d = Rvsd::start(
        dir.path(),
        &[
            "--http",
            &haddr,
            "--api-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    wait_http(hport);
    let (rs1, rs2) = (real_server(), real_server());
    let vport = free_port();
    let vip = format!("127.0.0.1:{vport}");
    rvsadm(&d, &["-A", "-t", &vip, "-s", "rr"]);
    for rs in [rs1, rs2] {
        rvsadm(
            &d,
            &["-a", "-t", &vip, "-r", &format!("127.0.0.1:{rs}"), "-m"],
        );
    }

    const CONNS: u64 = 6;
    for _ in 0..CONNS {
        exchange(vport);
    }
    let svc =
        format!("service=\"TCP {vip}\",protocol=\"TCP\",address=\"127.0.0.1\",port=\"{vport}\"");
    let total = |m: &str, name: &str, extra: &str| sample(m, &format!("{name}{{{svc}{extra}}}"));
    let m = scrape_until(hport, "byte counters never reached what was sent", |m| {
        total(m, "rvs_service_bytes_total", ",direction=\"out\"") == Some(CONNS * REPLY as u64)
            && total(m, "rvs_service_bytes_total", ",direction=\"in\"")
                == Some(CONNS * REQUEST as u64)
    });
    assert_eq!(sample(&m, "rvs_up"), Some(1));
    assert_eq!(
        sample(&m, "rvs_engine_info{engine=\"proxy\",relay=\"io_uring\"}"),
        Some(1),
        "this kernel has io_uring: the proxy engine relays through it"
    );
    assert_eq!(sample(&m, "rvs_services"), Some(1));
    assert_eq!(total(&m, "rvs_service_connections_total", ""), Some(CONNS));
    // A packet is a read; at least the SYN and one read per connection in,
    // one read per connection out.
    let pin = total(&m, "rvs_service_packets_total", ",direction=\"in\"").unwrap();
    let pout = total(&m, "rvs_service_packets_total", ",direction=\"out\"").unwrap();
    assert!(pin >= 2 * CONNS && pout >= CONNS, "in {pin} out {pout}");
    // Round robin split the connections evenly over the two real servers.
    for rs in [rs1, rs2] {
        let l = format!(
            "{svc},real_server=\"127.0.0.1:{rs}\",real_address=\"127.0.0.1\",real_port=\"{rs}\""
        );
        let get = |name: &str, extra: &str| sample(&m, &format!("{name}{{{l}{extra}}}"));
        assert_eq!(
            get("rvs_real_server_connections_total", ""),
            Some(CONNS / 2),
            "{m}"
        );
        assert_eq!(
            get("rvs_real_server_bytes_total", ",direction=\"in\""),
            Some(CONNS / 2 * REQUEST as u64)
        );
        assert_eq!(
            get("rvs_real_server_bytes_total", ",direction=\"out\""),
            Some(CONNS / 2 * REPLY as u64)
        );
        assert_eq!(get("rvs_real_server_weight", ""), Some(1));
    }
    // The numbers agree with rvsadm --stats.
    let stats = rvsadm(&d, &["-L", "-n", "--stats", "--exact"]);
    assert!(
        stats.lines().any(|l| l.starts_with(&format!("TCP  {vip}"))
            && l.split_whitespace().nth(2) == Some(&CONNS.to_string())),
        "{stats}"
    );
    // The 2 s estimator picks the traffic up.
    scrape_until(hport, "the byte rate never moved", |m| {
        total(m, "rvs_service_byte_rate", ",direction=\"in\"").is_some_and(|v| v > 0)
    });

    // Held connections are active and listed, a page at a time.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", vport)).unwrap())
        .collect();
    let m = scrape_until(hport, "held connections never became active", |m| {
        total(m, "rvs_service_active_connections", "") == Some(3)
    });
    let rs1_conns = format!(
        "rvs_real_server_connections_total{{{svc},real_server=\"127.0.0.1:{rs1}\",real_address=\"127.0.0.1\",real_port=\"{rs1}\"}}"
    );
    let rs1_before = sample(&m, &rs1_conns).unwrap();
    assert!(rs1_before > CONNS / 2, "{m}");
    let (status, body) = http(hport, "GET", "/api/v1/connections?limit=2", None, "");
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"].as_u64(), Some(CONNS + 3), "{body}");
    assert_eq!(page["connections"].as_array().unwrap().len(), 2);
    drop(held);

    // Authorisation and bad requests change nothing.
    let before = rvsadm(&d, &["-S", "-n"]);
    let drain =
        format!("/api/v1/services/tcp/127.0.0.1/{vport}/real-servers/127.0.0.1/{rs1}/drain");
    let weight = drain.replace("/drain", "/weight");
    for (method, path, token, body, want) in [
        ("POST", drain.as_str(), None, "", 401),
        ("POST", drain.as_str(), Some("wrong"), "", 401),
        ("PUT", weight.as_str(), None, r#"{"weight":5}"#, 401),
        ("PUT", weight.as_str(), Some(TOKEN), r#"{"weight":"#, 400),
        ("PUT", weight.as_str(), Some(TOKEN), r#"{"weight":-3}"#, 422),
        (
            "POST",
            &drain.replace(&format!("/{rs1}/drain"), "/1/drain"),
            Some(TOKEN),
            "",
            404,
        ),
    ] {
        let (status, resp) = http(hport, method, path, token, body);
        assert_eq!(status, want, "{method} {path} {token:?} {body}: {resp}");
        let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
        assert!(v["error"].is_string(), "{resp}");
    }
    assert_eq!(rvsadm(&d, &["-S", "-n"]), before);

    let (status, resp) = http(hport, "POST", &drain, Some(TOKEN), "");
    assert_eq!(status, 200, "{resp}");
    let list = rvsadm(&d, &["-L", "-n"]);
    let row = list
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{rs1}")))
        .unwrap();
    assert_eq!(row.split_whitespace().nth(3), Some("0"), "{list}");
    let other = list
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{rs2}")))
        .unwrap();
    assert_eq!(other.split_whitespace().nth(3), Some("1"), "{list}");
    assert!(row.contains("Masq"), "{row}");
    // The drained server gets no new connections.
    for _ in 0..4 {
        exchange(vport);
    }
    let m = scrape_until(hport, "new connections never counted", |m| {
        total(m, "rvs_service_connections_total", "") == Some(CONNS + 3 + 4)
    });
    assert_eq!(sample(&m, &rs1_conns), Some(rs1_before), "{m}");
    let (status, resp) = http(hport, "PUT", &weight, Some(TOKEN), r#"{"weight": 4}"#);
    assert_eq!(
        (status, resp.contains("\"weight\":4")),
        (200, true),
        "{resp}"
    );
    assert!(rvsadm(&d, &["-S", "-n"]).contains(&format!("-r 127.0.0.1:{rs1} -m -w 4")));
}

#[test]
fn off_loopback_reads_need_the_token_unless_opened() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let port = free_port();
    let any = format!("0.0.0.0:{port}");
    // Without a token nobody could read: rvsd refuses to start.
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("--socket")
        .arg(dir.path().join("x.sock"))
        .arg("--state-dir")
        .arg(dir.path().join("x"))
        .args(["--engine", "none", "--http", &any])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--api-token-file") && err.contains("--api-public-reads"),
        "{err}"
    );

    let d = Rvsd::start(
        dir.path(),
        &[
            "--engine",
            "none",
            "--http",
            &any,
            "--api-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    wait_http(port);
    for path in ["/metrics", "/api/v1/services", "/api/v1/connections"] {
        assert_eq!(http(port, "GET", path, None, "").0, 401, "{path}");
        assert_eq!(http(port, "GET", path, Some("nope"), "").0, 401, "{path}");
        assert_eq!(http(port, "GET", path, Some(TOKEN), "").0, 200, "{path}");
    }
    let (_, m) = http(port, "GET", "/metrics", Some(TOKEN), "");
    assert_eq!(
        sample(&m, "rvs_engine_info{engine=\"none\"}"),
        Some(1),
        "{m}"
    );
    drop(d);

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let any = format!("0.0.0.0:{port}");
    let _d = Rvsd::start(
        dir.path(),
        &["--engine", "none", "--http", &any, "--api-public-reads"],
    );
    wait_http(port);
    assert_eq!(http(port, "GET", "/metrics", None, "").0, 200);
    // No token file: the API is read-only.
    let (status, body) = http(
        port,
        "PUT",
        "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.2/80/weight",
        Some(TOKEN),
        r#"{"weight":1}"#,
    );
    assert_eq!(status, 403, "{body}");
}
