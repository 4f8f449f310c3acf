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
    // The VRRP pair's instance: VRRPv2 with a password, and keepalived's
    // preemption made explicit.
    assert_eq!(c.vrrp.len(), 1);
    let vi = &c.vrrp[0];
    assert_eq!(
        (vi.name.as_str(), vi.virtual_router_id, vi.priority),
        ("VI_1", 51, 100)
    );
    assert_eq!(vi.version, rvs_config::VrrpVersion::V2);
    assert_eq!(vi.auth_pass.as_deref(), Some("1111"));
    assert!(vi.preempt);
    assert!(
        err.contains("keepalived-web.conf:21: note: state: state MASTER has no rvs equivalent"),
        "{err}"
    );
    assert!(
        err.contains("keepalived-web.conf:20: warning: vrrp_instance: VI_1: keepalived preempts"),
        "{err}"
    );
    assert!(
        err.contains("keepalived-web.conf:15: warning: vrrp_script: chk_haproxy not imported"),
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

#[test]
fn keepalived_director_pair_with_vrrp() {
    let (c, err) = golden("keepalived", "keepalived-pair.conf");
    assert_eq!(c.engine, rvs_config::Engine::Xdp);
    assert_eq!(c.services.len(), 1);
    assert_eq!(key(&c.services[0]), "tcp 192.0.2.80:80");
    assert_eq!(c.vrrp.len(), 1);
    let v = &c.vrrp[0];
    assert_eq!(v.name, "VI_WEB");
    assert_eq!(v.interface, "eth0");
    assert_eq!((v.virtual_router_id, v.priority), (51, 150));
    // vrrp_version 3 from global_defs allows the half-second adverts.
    assert_eq!(v.version, rvs_config::VrrpVersion::V3);
    assert_eq!(v.advert_interval_cs, 50);
    let vips: Vec<String> = v
        .vips
        .iter()
        .map(|x| format!("{}/{}", x.addr, x.prefix))
        .collect();
    assert_eq!(vips, ["192.0.2.80/24", "192.0.2.81/24"]);
    assert_eq!(v.unicast_src, Some("198.51.100.2".parse().unwrap()));
    assert_eq!(
        v.unicast_peers,
        ["198.51.100.3".parse::<std::net::IpAddr>().unwrap()]
    );
    // keepalived's default preemption, with its delay.
    assert!(v.preempt);
    assert_eq!(v.preempt_delay_ms, 30_000);
    // garp defaults from global_defs, the refresh from the instance.
    assert_eq!(
        (v.garp_repeat, v.garp_delay_ms, v.garp_refresh_ms),
        (3, 1000, 60_000)
    );
    assert_eq!(v.notify.fault, ["/etc/keepalived/notify.sh", "fault state"]);
    assert_eq!(v.notify.any, ["/usr/local/bin/vrrp-event"]);
    assert_eq!(v.track_interfaces.len(), 1);
    assert_eq!(
        (
            v.track_interfaces[0].name.as_str(),
            v.track_interfaces[0].weight
        ),
        ("eth1", -60)
    );
    let s = &v.track_scripts[0];
    assert_eq!(s.name, "chk_director");
    assert_eq!(s.command, ["/usr/local/sbin/check-director", "--quiet"]);
    assert_eq!(
        (s.interval_ms, s.timeout_ms, s.rise, s.fall, s.weight),
        (2000, 1000, 2, 3, -60)
    );
    assert!(
        err.contains("keepalived-pair.conf:31: warning: vrrp_instance: VI_WEB: keepalived preempts unless nopreempt"),
        "{err}"
    );
    assert!(
        err.contains("keepalived-pair.conf:42: warning: 192.0.2.80/24: not imported: label"),
        "{err}"
    );
    assert!(
        err.contains("keepalived-pair.conf:32: note: state: state BACKUP"),
        "{err}"
    );
    assert!(!err.contains("error"), "{err}");
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
fn keepalived_vrrp_errors_name_each_directive() {
    refused(
        "keepalived",
        "keepalived-vrrp-bad.conf",
        &[
            "2: error: vrrp_sync_group: rvs has no sync groups",
            "11: error: use_vmac:",
            "12: error: dont_track_primary:",
            "13: error: smtp_alert:",
            "15: error: auth_type: IPsec AH",
            "19: error: 192.0.2.10/24: dev eth1:",
            "21: error: track_file:",
            "24: error: track_process:",
            "27: error: track_bfd:",
            "30: error: virtual_routes:",
            "33: error: virtual_rules:",
            "36: error: notify_master: \"/usr/local/bin/notify master | logger\" needs a shell",
            "38: error: chk_missing: no vrrp_script chk_missing",
            "39: error: chk_reverse: a reversed weight",
            "41: error: bogus_keyword: unknown vrrp_instance keyword",
            "46: error: user:",
        ],
    );
}

/// Imports `conf` (a keepalived.conf written to a temporary directory):
/// the parsed output, or the stderr of a refusal.
fn keepalived_text(conf: &str) -> Result<(rvs_config::Config, String), String> {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("k.conf"), conf).unwrap();
    let out = import_in(d.path(), "keepalived", "k.conf");
    let err = text(&out.stderr);
    if !out.status.success() {
        assert!(out.stdout.is_empty());
        return Err(err);
    }
    let c = rvs_config::parse(&text(&out.stdout), "out.toml")
        .unwrap_or_else(|e| panic!("invalid output {e:?}"));
    Ok((c, err))
}

/// A minimal instance with `extra` lines in its block.
fn instance(extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 7\n  virtual_ipaddress {{\n    192.0.2.7\n  }}\n{extra}}}\n"
    )
}

#[test]
fn keepalived_preemption_follows_keepalived() {
    // nopreempt on a BACKUP: no fail-back, no warning about preemption.
    let (c, err) = keepalived_text(&instance("  state BACKUP\n  nopreempt\n")).unwrap();
    assert!(!c.vrrp[0].preempt);
    assert!(!err.contains("preempt"), "{err}");
    // keepalived ignores nopreempt with state MASTER, and preempt_delay too.
    let (c, err) = keepalived_text(&instance(
        "  state MASTER\n  nopreempt\n  preempt_delay 10\n",
    ))
    .unwrap();
    assert!(c.vrrp[0].preempt);
    assert_eq!(c.vrrp[0].preempt_delay_ms, 0);
    assert!(
        err.contains(
            "k.conf:8: warning: nopreempt: keepalived ignores nopreempt with state MASTER"
        ),
        "{err}"
    );
    assert!(
        err.contains("k.conf:9: warning: preempt_delay: not imported"),
        "{err}"
    );
    // ... and with priority 255.
    let (c, _) = keepalived_text(&instance("  priority 255\n  nopreempt\n")).unwrap();
    assert!(c.vrrp[0].preempt);
    // Without either, keepalived preempts: said in the file and on stderr.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("k.conf"), instance("")).unwrap();
    let out = import_in(d.path(), "keepalived", "k.conf");
    let toml = text(&out.stdout);
    assert!(
        toml.contains("# keepalived preempts by default (no nopreempt); rvs only when told to\npreempt = true\n"),
        "{toml}"
    );
    assert!(
        text(&out.stderr).contains("k.conf:1: warning: vrrp_instance: VI_1: keepalived preempts")
    );
    // No services and no warning about that: a VRRP-only keepalived.conf
    // (keepalived in front of HAProxy, say) is a whole import.
    assert!(!text(&out.stderr).contains("no virtual service"));
}

#[test]
fn keepalived_track_script_weights_and_timeouts() {
    let conf = format!(
        "vrrp_script chk {{\n  script \"/usr/bin/pgrep -x 'my daemon'\"\n  interval 2\n  timeout 5\n  weight -10\n  fall 2\n}}\n{}",
        instance("  track_script {\n    chk weight -40\n  }\n  track_interface {\n    eth0\n    eth1\n  }\n")
    );
    let (c, err) = keepalived_text(&conf).unwrap();
    let s = &c.vrrp[0].track_scripts[0];
    // The instance's weight overrides the script's; the timeout is cut to
    // the interval; the script line is split as keepalived splits it.
    assert_eq!(s.weight, -40);
    assert_eq!((s.interval_ms, s.timeout_ms, s.fall), (2000, 2000, 2));
    assert_eq!(s.command, ["/usr/bin/pgrep", "-x", "my daemon"]);
    assert!(
        err.contains(
            "k.conf:1: warning: timeout: vrrp_script chk: timeout 5 s exceeds interval 2 s"
        ),
        "{err}"
    );
    // Its own interface is always tracked; eth1 with weight 0 means FAULT.
    let t = &c.vrrp[0].track_interfaces;
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].name.as_str(), t[0].weight), ("eth1", 0));
    assert!(
        err.contains("k.conf:18: warning: eth0: not imported"),
        "{err}"
    );
}

#[test]
fn keepalived_vrrp_version_auth_and_global_defaults() {
    // IPv6 VIPs make VRRPv3 whatever the instance says; a long password
    // is cut to the 8 bytes keepalived sends; global garp defaults apply.
    let conf = "global_defs {\n  vrrp_garp_master_repeat 2\n  v3_checksum_as_v2\n}\n\
                vrrp_instance V6 {\n  interface eth0\n  virtual_router_id 9\n  version 2\n  virtual_ipaddress {\n    2001:db8::9/64\n  }\n  nopreempt\n}\n\
                vrrp_instance V4 {\n  interface eth0\n  virtual_router_id 10\n  authentication {\n    auth_type PASS\n    auth_pass longersecret\n  }\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n  nopreempt\n}\n";
    let (c, err) = keepalived_text(conf).unwrap();
    let (v6, v4) = (&c.vrrp[0], &c.vrrp[1]);
    assert_eq!(v6.version, rvs_config::VrrpVersion::V3);
    assert_eq!(v6.checksum, rvs_config::VrrpChecksum::Rfc9568);
    assert_eq!(v6.garp_repeat, 2);
    assert!(
        err.contains("k.conf:8: warning: version: IPv6 needs VRRPv3"),
        "{err}"
    );
    assert_eq!(v4.version, rvs_config::VrrpVersion::V2);
    assert_eq!(v4.checksum, rvs_config::VrrpChecksum::Keepalived);
    assert_eq!(v4.auth_pass.as_deref(), Some("longerse"));
    assert!(
        err.contains("k.conf:19: warning: auth_pass: longer than 8 bytes"),
        "{err}"
    );
}

#[test]
fn keepalived_vrrp_refusals_at_the_directive() {
    // What rvs.toml refuses is reported at the keepalived line that set it.
    let err = keepalived_text(&instance("  advert_int 0.5\n")).unwrap_err();
    assert!(
        err.contains("k.conf:7: error: advert_int: rvs.toml refuses it: advert_interval must be whole seconds"),
        "{err}"
    );
    // Two instances with one router id on one interface.
    let err = keepalived_text(&format!(
        "{}{}",
        instance(""),
        instance("").replace("VI_1", "VI_2")
    ))
    .unwrap_err();
    assert!(
        err.contains("k.conf:10: error: virtual_router_id: rvs.toml refuses it: virtual_router_id 7 on eth0 (IPv4) is already used"),
        "{err}"
    );
    // Missing pieces, a VIP of the other family, AH, a strict mode.
    let err = keepalived_text("vrrp_instance X {\n  state BACKUP\n}\n").unwrap_err();
    for e in [
        "k.conf:1: error: vrrp_instance: X has no interface",
        "k.conf:1: error: vrrp_instance: X has no virtual_router_id",
        "k.conf:1: error: vrrp_instance: X has no virtual_ipaddress",
    ] {
        assert!(err.contains(e), "{e}\n{err}");
    }
    let err = keepalived_text(&instance(
        "  virtual_ipaddress_excluded {\n    2001:db8::1\n  }\n",
    ))
    .unwrap_err();
    assert!(
        err.contains("k.conf:7: error: virtual_ipaddress_excluded:"),
        "{err}"
    );
    let err = keepalived_text(&instance("").replace("192.0.2.7", "192.0.2.7\n    2001:db8::7"))
        .unwrap_err();
    assert!(
        err.contains("k.conf:6: error: 2001:db8::7: of another address family"),
        "{err}"
    );
    let err = keepalived_text(&format!(
        "global_defs {{\n  vrrp_strict\n}}\n{}",
        instance("")
    ))
    .unwrap_err();
    assert!(
        err.contains("k.conf:2: error: vrrp_strict: strict mode"),
        "{err}"
    );
    // vrrp_strict without instances does not matter.
    let conf = "global_defs {\n  vrrp_strict\n}\nvirtual_server 192.0.2.1 80 {\n  real_server 198.51.100.1 80 {\n  }\n}\n";
    keepalived_text(conf).unwrap();
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
        (Format::Keepalived, "keepalived-pair.conf"),
        (Format::Keepalived, "keepalived-vrrp-bad.conf"),
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
