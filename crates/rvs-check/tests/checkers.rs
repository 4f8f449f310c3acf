//! Each checker against real servers on 127.0.0.1 started by the test.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rvs_check::{
    dns::qtype_by_name, run_check, CheckResult, Checker, DnsCheck, HttpCheck, MiscCheck, Reason,
    TcpCheck, UdpCheck,
};

const T: Duration = Duration::from_secs(2);

#[tokio::test]
async fn tcp_connect_passes_then_is_refused_and_binds_its_source() {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let (addr, h) = http_server("127.0.0.1:0".parse().unwrap(), seen.clone()).await;
    let mut c = TcpCheck::new(addr);
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    assert_eq!(c.describe(), format!("TCP_CHECK {addr}"));
    // From a chosen source: the server sees it (give the accept a moment).
    c.source = Some("127.0.0.2:0".parse().unwrap());
    let mut http = HttpCheck::new(addr, "/ok");
    http.source = c.source;
    assert_eq!(run_check(&http, T).await, CheckResult::pass());
    assert_eq!(
        seen.lock().unwrap().last().unwrap().0.ip().to_string(),
        "127.0.0.2"
    );
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    h.abort();
    let _ = h.await;
    assert_eq!(run_check(&c, T).await, CheckResult::fail(Reason::Refused));
    assert_eq!(
        run_check(&TcpCheck::new(closed_port()), T).await.reason,
        Reason::Refused
    );
}

#[tokio::test]
async fn http_get_judges_status_body_regex_and_digest() {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let (addr, h) = http_server("127.0.0.1:0".parse().unwrap(), seen.clone()).await;
    for path in ["/ok", "/chunked", "/close"] {
        let mut c = HttpCheck::new(addr, path);
        c.receive = Some("alive".into());
        c.digest = Some(rvs_check::http::md5_hex(b"I am alive"));
        c.regex = Some(rvs_check::http::Regex::new("^I am a.*e$").unwrap());
        assert_eq!(run_check(&c, T).await, CheckResult::pass(), "{path}");
    }
    let mut c = HttpCheck::new(addr, "/fail");
    assert_eq!(run_check(&c, T).await.reason, Reason::Status(503));
    c.status = vec![503..=503];
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    c.receive = Some("alive".into());
    assert!(matches!(run_check(&c, T).await.reason, Reason::Mismatch(_)));
    let c = HttpCheck::new(addr, "/nope");
    assert_eq!(run_check(&c, T).await.reason, Reason::Status(404));
    let mut c = HttpCheck::new(addr, "/ok");
    c.digest = Some("d41d8cd98f00b204e9800998ecf8427e".into());
    assert!(matches!(run_check(&c, T).await.reason, Reason::Mismatch(_)));
    // The Host header: the address by default, the virtual host if set.
    let mut c = HttpCheck::new(addr, "/ok");
    c.host = Some("www.example.com".into());
    assert!(run_check(&c, T).await.ok);
    let heads: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, h)| h.clone())
        .collect();
    assert!(heads[0].starts_with("GET /ok HTTP/1.1\r\n"), "{}", heads[0]);
    assert!(
        heads[0].contains(&format!("\r\nHost: {addr}\r\n")),
        "{}",
        heads[0]
    );
    assert!(heads
        .last()
        .unwrap()
        .contains("\r\nHost: www.example.com\r\n"));
    // A server that accepts and never answers times out.
    let started = Instant::now();
    let c = HttpCheck::new(addr, "/silent");
    assert_eq!(
        run_check(&c, Duration::from_millis(200)).await.reason,
        Reason::Timeout
    );
    assert!(started.elapsed() < Duration::from_millis(1000));
    h.abort();
    let _ = h.await;
    assert_eq!(
        run_check(&HttpCheck::new(addr, "/ok"), T).await.reason,
        Reason::Refused
    );
}

#[tokio::test]
async fn udp_expects_a_reply_and_sees_port_unreachable() {
    let (addr, h) = udp_echo("127.0.0.1:0".parse().unwrap()).await;
    let mut c = UdpCheck::new(addr, b"ping");
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    c.expect = Some(b"pong:ping".to_vec());
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    c.expect = Some(b"pang".to_vec());
    assert!(matches!(run_check(&c, T).await.reason, Reason::Mismatch(_)));
    h.abort();
    let _ = h.await;
    c.expect = None;
    // Loopback delivers the ICMP port unreachable: refused, not a timeout.
    assert_eq!(run_check(&c, T).await.reason, Reason::Refused);
}

#[tokio::test]
async fn dns_needs_noerror_an_answer_and_the_right_id() {
    let (addr, h) = dns_server("127.0.0.1:0".parse().unwrap()).await;
    let c = DnsCheck::new(addr, "up.test", qtype_by_name("A").unwrap());
    // Each answer is preceded by a decoy with another id, which is ignored.
    for _ in 0..3 {
        assert_eq!(run_check(&c, T).await, CheckResult::pass());
    }
    let c = DnsCheck::new(addr, "down.test.", 1);
    assert_eq!(
        run_check(&c, T).await.reason,
        Reason::Mismatch("DNS rcode 3".into())
    );
    h.abort();
    let _ = h.await;
    let c = DnsCheck::new(addr, "up.test", 1);
    assert_eq!(run_check(&c, T).await.reason, Reason::Refused);
}

fn script(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rvs-check-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn misc_exit_codes_weights_and_timeout() {
    let state = script("code", "0\n");
    let sh = script("check.sh", "#!/bin/sh\nexit $(cat \"$1\")\n");
    let mut c = MiscCheck::new("/bin/sh", &[&sh, &state]);
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    std::fs::write(&state, "1\n").unwrap();
    assert_eq!(run_check(&c, T).await, CheckResult::fail(Reason::Exit(1)));
    std::fs::write(&state, "7\n").unwrap();
    assert_eq!(run_check(&c, T).await, CheckResult::fail(Reason::Exit(7)));
    c.dynamic = true;
    assert_eq!(
        run_check(&c, T).await,
        CheckResult {
            ok: true,
            reason: Reason::Exit(7),
            weight: Some(5)
        }
    );
    let missing = MiscCheck::new("/nonexistent/rvs-check", &[]);
    assert!(matches!(
        run_check(&missing, T).await.reason,
        Reason::Error(_)
    ));
    // A hung command is cut off at the timeout (and killed on drop).
    let slow = MiscCheck::new("/bin/sleep", &["30"]);
    let started = Instant::now();
    assert_eq!(
        run_check(&slow, Duration::from_millis(200)).await.reason,
        Reason::Timeout
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    let killed = MiscCheck::new("/bin/sh", &["-c", "kill -9 $$"]);
    assert_eq!(run_check(&killed, T).await.reason, Reason::Signal(9));
    let _ = std::fs::remove_dir_all(std::path::Path::new(&sh).parent().unwrap());
}
