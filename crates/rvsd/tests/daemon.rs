//! rvsd as a process: socket mode, persistence across restarts and crashes,
//! concurrent clients, refusal of garbage, and rvsadm without a daemon.

mod common;

use common::{rvsadm_output, wait_for_socket, Rvsd};
use rvs_core::{Af, DestConfig, Protocol, ServiceConfig, ServiceKey};
use rvs_ctl::Response;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;

fn key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port,
    }
}

#[test]
fn socket_is_private_and_rules_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let d = Rvsd::start(dir.path(), &[]);
    let mode = std::fs::metadata(&d.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut c = d.client();
    c.add_service(
        key(80),
        ServiceConfig {
            scheduler: "rr".into(),
            ..ServiceConfig::defaults(Af::Inet)
        },
    )
    .unwrap();
    c.add_dest(key(80), DestConfig::new("192.168.1.1".parse().unwrap(), 80))
        .unwrap();
    c.add_dest(key(80), DestConfig::new("192.168.1.2".parse().unwrap(), 80))
        .unwrap();
    let before = rvsadm_output(&d.sock, &["-S", "-n"]).stdout;
    d.crash();
    let d = Rvsd::start(dir.path(), &[]);
    let after = rvsadm_output(&d.sock, &["-S", "-n"]);
    assert_eq!(
        String::from_utf8_lossy(&after.stdout),
        String::from_utf8_lossy(&before)
    );
    assert!(
        String::from_utf8_lossy(&before).contains("-a -t 10.0.0.1:80 -r 192.168.1.2:80 -g -w 1")
    );
    // Kernel order (newest first) is restored too.
    let nosort = String::from_utf8_lossy(&rvsadm_output(&d.sock, &["-L", "-n", "--nosort"]).stdout)
        .to_string();
    let (p1, p2) = (
        nosort.find("192.168.1.1").unwrap(),
        nosort.find("192.168.1.2").unwrap(),
    );
    assert!(p2 < p1, "{nosort}");
}

#[test]
fn a_second_daemon_does_not_steal_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let _d = Rvsd::start(dir.path(), &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("--socket")
        .arg(dir.path().join("rvsd.sock"))
        .arg("--state-dir")
        .arg(dir.path().join("state2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already listening"));
}

#[test]
fn a_corrupt_rules_file_stops_the_daemon_instead_of_erasing_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/rules.json"),
        "{\"version\": 1, \"services\": [",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("--socket")
        .arg(dir.path().join("s"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rules.json:1:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state/rules.json")).unwrap(),
        "{\"version\": 1, \"services\": ["
    );
}

#[test]
fn concurrent_clients_are_serialised_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let d = Rvsd::start(dir.path(), &[]);
    let threads: Vec<_> = (0..8u16)
        .map(|t| {
            let sock = d.sock.clone();
            std::thread::spawn(move || {
                for i in 0..25u16 {
                    let out = rvsadm_output(
                        &sock,
                        &["-A", "-t", &format!("10.1.{t}.{i}:80"), "-s", "rr"],
                    );
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(d.client().services().unwrap().len(), 200);
    let saved = std::fs::read_to_string(dir.path().join("state/rules.json")).unwrap();
    assert_eq!(saved.matches("\"scheduler\"").count(), 200);
}

#[test]
fn garbage_requests_get_an_error_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Rvsd::start(dir.path(), &[]);
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.write_all(b"{\"AddService\": 42}\nnot json at all\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let resp: Response = serde_json::from_str(&line).unwrap();
        assert!(matches!(resp, Response::BadRequest(_)), "{line}");
    }
    assert!(d.client().services().unwrap().is_empty());
}

#[test]
fn rvsadm_without_a_daemon_says_so_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = rvsadm_output(&dir.path().join("nothing.sock"), &["-L", "-n"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rvsd") && err.contains("nothing.sock"),
        "{err}"
    );
}

#[test]
fn twos_exists_only_when_enabled_as_linux_6_1_lacks_it() {
    for (flag, ok) in [(None, false), (Some("twos"), true)] {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvsd"));
        cmd.arg("--socket")
            .arg(&sock)
            .arg("--state-dir")
            .arg(dir.path().join("st"))
            .args(["--engine", "none"]);
        if let Some(f) = flag {
            cmd.args(["--enable-scheduler", f]);
        }
        let mut child = cmd.env("RVS_LOG", "warn").spawn().unwrap();
        wait_for_socket(&sock);
        let out = rvsadm_output(&sock, &["-A", "-t", "10.0.0.1:80", "-s", "twos"]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            out.status.success(),
            ok,
            "{flag:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !ok {
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "Scheduler or persistence engine not found\n"
            );
        }
    }
}

#[test]
fn check_reports_every_config_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rvs.toml");
    std::fs::write(
        &cfg,
        "[[service]]\ntcp = \"10.0.0.1:80\"\nscheduler = \"nope\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rvs.toml:3:13"), "{err}");
}
