//! rvsd with its default proxy engine, driven by rvsadm and rvs.toml, on
//! loopback with real servers started by the test.

mod common;

use common::{free_port, rvsadm, rvsadm_output, Rvsd};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};

use std::process::Command;
use std::time::{Duration, Instant};

/// A real server answering each TCP connection and UDP datagram with its name.
fn real_server(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let u = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.write_all(format!("{name}\n").as_bytes());
                let mut b = [0u8; 64];
                let _ = s.read(&mut b); // hold until the client closes
            });
        }
    });
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while let Ok((_, from)) = u.recv_from(&mut b) {
            let _ = u.send_to(name.as_bytes(), from);
        }
    });
    port
}

fn ask(port: u16) -> (TcpStream, String) {
    let t0 = Instant::now();
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf) {
                if n > 0 {
                    return (s, String::from_utf8_lossy(&buf[..n]).trim().to_string());
                }
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no answer on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rvsadm_rules_carry_traffic_in_the_kernels_rr_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = Rvsd::start(dir.path(), &[]);
    let vport = free_port();
    let vip = format!("127.0.0.1:{vport}");
    rvsadm(&d, &["-A", "-t", &vip, "-s", "rr"]);
    for name in ["rs1", "rs2", "rs3"] {
        let p = real_server(name);
        rvsadm(
            &d,
            &["-a", "-t", &vip, "-r", &format!("127.0.0.1:{p}"), "-m"],
        );
    }
    let mut held = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (s, name) = ask(vport);
        seen.push(name);
        held.push(s);
    }
    // Linux: newest first, so rs3 rs2 rs1 (sched-rr.out).
    assert_eq!(seen, ["rs3", "rs2", "rs1", "rs3", "rs2", "rs1"]);
    let list = rvsadm(&d, &["-L", "-n"]);
    assert_eq!(
        list.matches("Masq    1      2          0").count(),
        3,
        "{list}"
    );
    drop(held);
}

#[test]
fn strict_mode_refuses_direct_routing_naming_the_xdp_engine() {
    let dir = tempfile::tempdir().unwrap();
    let d = Rvsd::start(dir.path(), &["--strict"]);
    let vip = format!("127.0.0.1:{}", free_port());
    rvsadm(&d, &["-A", "-t", &vip]);
    let out = rvsadm_output(&d.sock, &["-a", "-t", &vip, "-r", "127.0.0.2"]);
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("xdp engine"), "{err}");
    assert!(
        !rvsadm(&d, &["-S", "-n"]).contains("-a "),
        "the refused rule must not be in the table"
    );
}

#[test]
fn config_file_reload_keeps_connections_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let (r1, r2) = (real_server("one"), real_server("two"));
    let (vport, uport) = (free_port(), free_port());
    let cfg = dir.path().join("rvs.toml");
    let write = |weight2: u32| {
        std::fs::write(
            &cfg,
            format!(
                "[[service]]\ntcp = \"127.0.0.1:{vport}\"\nscheduler = \"wrr\"\n\
                 [[service.real_server]]\naddress = \"127.0.0.1:{r1}\"\n\
                 [[service.real_server]]\naddress = \"127.0.0.1:{r2}\"\nweight = {weight2}\n\
                 [[service]]\nudp = \"127.0.0.1:{uport}\"\nscheduler = \"rr\"\n\
                 [[service.real_server]]\naddress = \"127.0.0.1:{r1}\"\n"
            ),
        )
        .unwrap()
    };
    write(1);
    let check = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let d = Rvsd::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let (held, first) = ask(vport);
    assert!(first == "one" || first == "two");
    // UDP through the proxy.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.send_to(b"x", ("127.0.0.1", uport)).unwrap();
    let mut b = [0u8; 16];
    let n = u.recv(&mut b).unwrap();
    assert_eq!(&b[..n], b"one");
    // Drain real server two by reload: an EditDest, not a delete.
    write(0);
    let before = rvsadm(&d, &["-L", "-n", "--stats"]);
    Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
    let t0 = Instant::now();
    let weight_of_two = |list: &str| {
        list.lines()
            .find(|l| l.contains(&format!("-> 127.0.0.1:{r2} ")))
            .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
    };
    loop {
        let list = rvsadm(&d, &["-L", "-n"]);
        if weight_of_two(&list).as_deref() == Some("0") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "reload did not apply:\n{list}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..4 {
        assert_eq!(
            ask(vport).1,
            "one",
            "a drained server gets no new connections"
        );
    }
    // The held connection survived the reload.
    let mut held = held;
    held.write_all(b"still there").unwrap();
    let after = rvsadm(&d, &["-L", "-n", "--stats"]);
    let conns = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("TCP"))
            .unwrap()
            .split_whitespace()
            .nth(2)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(
        conns(&after) >= conns(&before),
        "counters survive a reload:\n{before}\n{after}"
    );
    // A broken file changes nothing.
    std::fs::write(&cfg, "[[service]]\ntcp = \"nonsense\"\n").unwrap();
    Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(rvsadm(&d, &["-L", "-n"]).contains(&format!("127.0.0.1:{vport}")));
}
