//! rvsctl as a process: config checks name line and column; rule files
//! convert to rvs.toml and back unchanged; demo servers answer.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn rvsctl(args: &[&str], stdin: &str) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvsctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

#[test]
fn check_reports_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("rvs.toml");
    std::fs::write(&f, "[[service]]\ntcp = \"127.0.0.1:8080\"\n[[service.real_server]]\naddress = \"127.0.0.1:9001\"\nweight = -3\n").unwrap();
    let out = rvsctl(&["config", "check", f.to_str().unwrap()], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rvs.toml:5:10"), "{err}");
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rvs.toml");
    let out = rvsctl(&["config", "check", demo], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_round_trip_through_toml() {
    let rules = "-A -t 10.0.0.1:80 -s wrr -p 120 -M 255.255.255.0\n\
                 -a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -w 3\n\
                 -a -t 10.0.0.1:80 -r 192.168.1.2:8081 -m -w 1\n\
                 -A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port\n\
                 -a -u 10.0.0.1:53 -r 192.168.1.3:53 -m -w 1\n";
    let out = rvsctl(&["config", "from-rules", "-"], rules);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("rvs.toml");
    std::fs::write(&f, &out.stdout).unwrap();
    let back = rvsctl(&["config", "to-rules", f.to_str().unwrap()], "");
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&back.stdout), rules);
}

#[test]
fn demo_servers_answer_tcp_and_udp_with_their_address() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rvsctl"))
        .args(["demo-servers", &addr])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut s = loop {
        match std::net::TcpStream::connect(&addr) {
            Ok(s) => break s,
            Err(_) if t0.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    };
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with(&format!("real server {addr}\n")),
        "{reply}"
    );
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    u.send_to(b"hi", &addr).unwrap();
    let mut buf = [0u8; 64];
    let n = u.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], format!("real server {addr}\n").as_bytes());
    child.kill().unwrap();
    child.wait().unwrap();
}
