//! `rvsctl import` as a process, on ldirectord.cf and keepalived.conf files
//! written from the tools' manuals (tests/data/import): the output equals
//! a hand-reviewed golden rvs.toml and loads with `rvs_config::parse`; the
//! bad files fail with nothing on stdout and every error naming its file,
//! line and directive. Host and service names come from pinned files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/import")
}

/// Runs `rvsctl import FORMAT FILE` in `dir` with the pinned name files.
fn import_in(dir: &Path, format: &str, file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvsctl"))
        .args(["import", format, file])
        .current_dir(dir)
        .env("RVS_HOSTS_FILE", data().join("hosts"))
        .env("RVS_SERVICES_FILE", data().join("services"))
        .output()
        .unwrap()
}

fn import(format: &str, file: &str) -> Output {
    import_in(&data(), format, file)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Imports `file`, compares stdout with `file.toml`, checks that rvs.toml
/// accepts it, and returns it parsed with the stderr text.
fn golden(format: &str, file: &str) -> (rvs_config::Config, String) {
    let out = import(format, file);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{file}: {stderr}");
    let want = std::fs::read_to_string(data().join(format!("{file}.toml"))).unwrap();
    assert_eq!(stdout, want, "{file}: output differs from the golden");
    let c = rvs_config::parse(&stdout, file)
        .unwrap_or_else(|e| panic!("{file}: rvs_config refuses the output: {e:?}"));
    (c, stderr)
}

/// A service's identity as rvs-config names it (`tcp 10.0.0.1:80`).
fn key(s: &rvs_config::Service) -> String {
    rvs_config::describe(&s.key)
}

#[test]
fn ldirectord_web_farm() {
    let (c, err) = golden("ldirectord", "ldirectord-web.cf");
    assert_eq!(c.engine, rvs_config::Engine::Proxy);
    assert_eq!(c.services.len(), 2);
    let http = &c.services[0];
    assert_eq!(key(http), "tcp 192.0.2.10:80");
    let h = &http.health;
    assert_eq!(h.on_failure, rvs_config::OnFailure::Quiesce);
    assert_eq!(h.checks.len(), 1);
    let chk = &h.checks[0];
    assert_eq!(
        (chk.interval_ms, chk.timeout_ms, chk.fall, chk.rise),
        (6000, 5000, 3, 1)
    );
    match &chk.kind {
        rvs_config::CheckKind::Http(p) => {
            assert_eq!(p.path, "/health");
            assert_eq!(p.expect.as_deref(), Some("It works"));
            assert_eq!(p.host.as_deref(), Some("www.example.test"));
        }
        k => panic!("{k:?}"),
    }
    // The third real server's own request/receive replaces the service's check.
    assert!(http.real_servers[0].checks.is_empty());
    assert_eq!(http.real_servers[2].checks.len(), 1);
    let fb = h.fallback.as_ref().expect("fallback");
    assert_eq!(fb.dest.addr.to_string(), "127.0.0.1");
    assert_eq!(fb.dest.port, 8081);
    assert_eq!(
        h.quorum_down,
        [
            "/usr/local/sbin/sorry-page",
            "start",
            "192.0.2.10:80",
            "tcp"
        ]
    );
    // Names resolved from the pinned hosts/services files; quiescent = no in the block.
    let https = &c.services[1];
    assert_eq!(key(https), "tcp 192.0.2.10:443");
    assert_eq!(https.health.on_failure, rvs_config::OnFailure::Remove);
    assert_eq!(https.health.checks[0].port, Some(8443));
    assert!(
        err.contains("ldirectord-web.cf:8: warning: autoreload:"),
        "{err}"
    );
    assert!(
        err.contains("ldirectord-web.cf:9: warning: logfile:"),
        "{err}"
    );
}

#[test]
fn ldirectord_direct_routing_and_ipv6() {
    let (c, err) = golden("ldirectord", "ldirectord-dr.cf");
    assert_eq!(c.engine, rvs_config::Engine::Xdp);
    // 198.51.100.22->198.51.100.24 expands to three real servers.
    assert_eq!(c.services[0].real_servers.len(), 4);
    match &c.services[0].health.checks[0].kind {
        rvs_config::CheckKind::Command { argv, .. } => {
            assert_eq!(
                argv,
                &[
                    "/usr/local/bin/check-tls",
                    "{vip}",
                    "{vport}",
                    "{rip}",
                    "{rport}"
                ]
            )
        }
        k => panic!("{k:?}"),
    }
    // fork = yes: the block's checkinterval applies.
    assert_eq!(c.services[0].health.checks[0].interval_ms, 5000);
    // checktype = on: no check at all.
    assert!(c.services[1].health.checks.is_empty());
    assert_eq!(key(&c.services[2]), "tcp [2001:db8::5]:80");
    assert!(
        err.contains("ldirectord-dr.cf:8: warning: quiescent: not set"),
        "{err}"
    );
}

#[test]
fn keepalived_with_includes_groups_and_every_checker() {
    let (c, err) = golden("keepalived", "keepalived-web.conf");
    assert_eq!(c.engine, rvs_config::Engine::Xdp);
    // 2 services + the DNS group's 3 members + fwmark 7.
    assert_eq!(c.services.len(), 6);
    let web = &c.services[0];
    assert_eq!(web.health.quorum, 2);
    assert_eq!(web.health.quorum_hysteresis, 1);
    assert_eq!(
        web.health.quorum_down,
        ["/usr/local/bin/vs-event", "quorum lost"]
    );
    assert_eq!(web.health.on_failure, rvs_config::OnFailure::Quiesce);
    assert!(web.health.checks.is_empty());
    // Two url blocks are two checks; retry 3 is fall 4.
    let rs1 = &web.real_servers[0].checks;
    assert_eq!(rs1.len(), 2);
    assert_eq!(rs1[0].fall, 4);
    let tls = &c.services[1];
    assert_eq!(tls.health.initial, rvs_config::InitialState::Down);
    assert_eq!(
        tls.real_servers[1].checks[0].initial,
        Some(rvs_config::InitialState::Up)
    );
    assert_eq!(tls.health.on_failure, rvs_config::OnFailure::Remove);
    for (i, a) in ["192.0.2.53", "192.0.2.54", "192.0.2.55"]
        .iter()
        .enumerate()
    {
        assert_eq!(key(&c.services[2 + i]), format!("udp {a}:53"));
    }
    assert!(
        err.contains("keepalived-web.conf:20: note: vrrp_instance:"),
        "{err}"
    );
    assert!(
        err.contains("keepalived-web.conf:62: warning: delay_before_retry:"),
        "{err}"
    );
    assert!(
        err.contains("keepalived.d/misc.conf:12: warning: MISC_CHECK:"),
        "{err}"
    );
}

/// Fails, writes nothing, and names every `file:line: error: directive`.
fn refused(format: &str, file: &str, expected: &[&str]) {
    let out = import(format, file);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{file} was accepted");
    assert!(out.stdout.is_empty(), "{file} wrote {}", text(&out.stdout));
    for e in expected {
        assert!(
            err.contains(&format!("{file}:{e}")),
            "missing {e:?} in\n{err}"
        );
    }
    let errors = err.lines().filter(|l| l.contains(": error: ")).count();
    assert_eq!(errors, expected.len(), "{err}");
    assert!(
        err.contains(&format!(
            "{file}: {} error(s); nothing written",
            expected.len()
        )),
        "{err}"
    );
}

#[test]
fn ldirectord_errors_name_each_directive() {
    refused(
        "ldirectord",
        "ldirectord-bad.cf",
        &[
            "2: error: emailalert:",
            "3: error: maintenancedir:",
            "5: error: checktype: the service defaults to mysql for port 3306",
            "14: error: checktype: rvs has no ICMP",
            "20: error: receive:",
            "24: error: checktype: checktype = off",
            "26: error: real: indented line outside a virtual block",
        ],
    );
}

#[test]
fn keepalived_errors_name_each_directive() {
    refused(
        "keepalived",
        "keepalived-bad.conf",
        &[
            "5: error: ha_suspend:",
            "6: error: smtp_alert:",
            "9: error: notify_down:",
            "10: error: SMTP_CHECK:",
            "15: error: PING_CHECK:",
            "18: error: bindto:",
            "26: error: UDP_CHECK: without require_reply",
            "29: error: BFD_CHECK:",
            "36: error: 10.20.0.0/16:",
        ],
    );
}

#[test]
fn what_rvs_config_refuses_is_reported_at_the_directive() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("k.conf"),
        "virtual_server 192.0.2.9 80 {\n  lvs_sched bogus\n  real_server 198.51.100.9 80 {\n    weight 1\n  }\n}\n",
    )
    .unwrap();
    let out = import_in(d.path(), "keepalived", "k.conf");
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(
            "k.conf:1: error: virtual_server: rvs.toml refuses it: unknown scheduler `bogus`"
        ),
        "{err}"
    );
}

#[test]
fn includes_missing_looping_and_matching_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir(p.join("conf.d")).unwrap();
    std::fs::write(
        p.join("main.conf"),
        "include conf.d/*.conf\ninclude missing.conf\ninclude nothing/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        p.join("conf.d/vs.conf"),
        "virtual_server 192.0.2.1 80 {\n  real_server 198.51.100.1 80 {\n    TCP_CHECK {\n    }\n  }\n}\n",
    )
    .unwrap();
    let out = import_in(p, "keepalived", "main.conf");
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("main.conf:2: error: include: cannot read missing.conf"),
        "{err}"
    );
    assert!(
        err.contains("main.conf:3: warning: include: nothing/*.conf matches no file"),
        "{err}"
    );
    // Without the missing file the included service comes through, with
    // keepalived's defaults: delay_loop 60, connect_timeout 5, retry 1.
    std::fs::write(p.join("main.conf"), "include conf.d/*.conf\n").unwrap();
    let out = import_in(p, "keepalived", "main.conf");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let c = rvs_config::parse(&text(&out.stdout), "out").unwrap();
    let chk = &c.services[0].real_servers[0].checks[0];
    assert_eq!(
        (chk.interval_ms, chk.timeout_ms, chk.fall),
        (60_000, 5000, 2)
    );
    assert_eq!(
        c.services[0].health.on_failure,
        rvs_config::OnFailure::Remove
    );
    // A file that includes itself stops at the nesting limit.
    std::fs::write(p.join("loop.conf"), "include loop.conf\n").unwrap();
    let out = import_in(p, "keepalived", "loop.conf");
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("error: include: includes nested deeper than"),
        "{err}"
    );
}

#[test]
fn ldirectord_blank_line_ends_a_virtual_block() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("l.cf"),
        "virtual=192.0.2.1:8080\n\treal=198.51.100.1:8080 masq\n\tchecktype=connect\n\n\tquiescent=yes\n",
    )
    .unwrap();
    let out = import_in(d.path(), "ldirectord", "l.cf");
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("l.cf:5: error: quiescent: indented line outside a virtual block"),
        "{err}"
    );
}

#[test]
fn unreadable_file_is_an_error() {
    let out = import("keepalived", "no-such-file.conf");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("no-such-file.conf:0: error: file: cannot read"));
}

/// Every fixture cut short at each line and at many byte offsets, and with
/// each line deleted in turn, still gives either valid rvs.toml and no
/// error, or errors and no output; never a panic.
#[test]
fn damaged_files_give_errors_or_valid_output() {
    use rvsctl::import::{import_text, Format, NoFiles};
    let names = rvs_ipvsadm::NameDb::from_text(
        &std::fs::read_to_string(data().join("hosts")).unwrap(),
        &std::fs::read_to_string(data().join("services")).unwrap(),
    );
    let fixtures = [
        (Format::Ldirectord, "ldirectord-web.cf"),
        (Format::Ldirectord, "ldirectord-dr.cf"),
        (Format::Ldirectord, "ldirectord-bad.cf"),
        (Format::Keepalived, "keepalived-web.conf"),
        (Format::Keepalived, "keepalived-bad.conf"),
        (Format::Keepalived, "keepalived.d/dns.conf"),
        (Format::Keepalived, "keepalived.d/misc.conf"),
    ];
    let mut runs = 0;
    let mut accepted = 0;
    for (format, file) in fixtures {
        let full = std::fs::read_to_string(data().join(file)).unwrap();
        let lines: Vec<&str> = full.lines().collect();
        let mut variants: Vec<String> = Vec::new();
        for n in 0..lines.len() {
            variants.push(lines[..n].join("\n"));
            let mut without = lines.clone();
            without.remove(n);
            variants.push(without.join("\n"));
        }
        for cut in (0..full.len()).step_by(13) {
            if full.is_char_boundary(cut) {
                variants.push(full[..cut].to_string());
            }
        }
        for v in variants {
            let out = import_text(format, &v, file, None, &NoFiles, &names);
            runs += 1;
            match &out.toml {
                Some(t) => {
                    accepted += 1;
                    assert!(
                        out.diags.errors.is_empty(),
                        "{file}: {:?}",
                        out.diags.errors
                    );
                    rvs_config::parse(t, "out.toml")
                        .unwrap_or_else(|e| panic!("{file}: invalid output {e:?}\n{v}"));
                }
                None => assert!(
                    !out.diags.errors.is_empty(),
                    "{file}: no output, no error\n{v}"
                ),
            }
        }
    }
    eprintln!("{runs} damaged variants, {accepted} imported");
    // Both outcomes occur, so the invariant is exercised on each side.
    assert!(
        runs > 1000 && accepted > 100 && accepted < runs,
        "{runs} {accepted}"
    );
}
