//! Interop with keepalived (Debian 12's 2.2.7, VRRP-only mode) as the peer,
//! both ways, on one L2 segment in network namespaces (ha-health.md
//! section 5.1). Skips with a reason when not root or keepalived is absent.

mod common;

use common::*;
use nix::sys::signal::Signal;
use rvs_vrrp::{Auth, State, Version};
use std::path::Path;
use std::time::Duration;

const KEEPALIVED: &str = "/usr/sbin/keepalived";

fn keepalived_or_skip(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    if !Path::new(KEEPALIVED).exists() {
        eprintln!("skipping {test}: {KEEPALIVED} is not installed");
        return false;
    }
    true
}

/// Starts keepalived on host `h` with `instance` as its vrrp_instance body;
/// returns (parent pid, the VRRP child's pid file).
fn keepalived(lab: &mut Lab, h: &str, global: &str, instance: &str) -> (u32, std::path::PathBuf) {
    let conf = lab.dir.join(format!("ka-{h}.conf"));
    std::fs::write(
        &conf,
        format!("global_defs {{\n  router_id LVS_{h}\n{global}}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n{instance}}}\n"),
    )
    .unwrap();
    let pid = lab.dir.join(format!("{h}.pid"));
    let vpid = lab.dir.join(format!("{h}-vrrp.pid"));
    let p = lab.spawn(
        h,
        KEEPALIVED,
        &[
            "-n",
            "-l",
            "-D",
            "-P",
            "-R",
            "-f",
            conf.to_str().unwrap(),
            "-p",
            pid.to_str().unwrap(),
            "-r",
            vpid.to_str().unwrap(),
        ],
        &format!("ka-{h}.log"),
    );
    (p, vpid)
}

fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// keepalived complained about what we sent.
fn complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("invalid") || l.contains("checksum") || l.contains("ttl")
        })
        .collect()
}

#[test]
fn keepalived_master_rvs_backup_v3_sigkill() {
    if !keepalived_or_skip("keepalived_master_rvs_backup_v3_sigkill") {
        return;
    }
    let mut lab = Lab::new("km", &["a", "b"]);
    let (ka, vpid) = keepalived(
        &mut lab,
        "a",
        "  vrrp_version 3\n",
        &format!("  virtual_router_id 51\n  priority 150\n  advert_int 0.1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n"),
    );
    lab.wait(Duration::from_secs(10), || lab.has("a", VIP))
        .expect("keepalived becomes master");
    let b = lab.start("b", spec("VI_B", 100));
    lab.wait(Duration::from_secs(5), || {
        b.status().state == State::Backup && b.status().master == Some(addr("198.18.0.1"))
    })
    .expect("rvs accepts keepalived's v3 adverts (keepalived checksum form)");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!lab.has("b", VIP), "rvs stays backup");
    assert_eq!(b.status().state, State::Backup);

    // SIGKILL keepalived (the VRRP child first, as in ha-health.md 5.1).
    let child = pid_in(&vpid).expect("keepalived's VRRP pid file");
    lab.kill(child, Signal::SIGKILL);
    lab.kill(ka, Signal::SIGKILL);
    let took = lab
        .wait(Duration::from_secs(5), || lab.has("b", VIP))
        .expect("rvs takes over");
    eprintln!("keepalived SIGKILL -> VIP on rvs: {took:?} (master down 360 ms)");
    assert_eq!(b.status().state, State::Master);
    assert!(
        complaints(&lab.log("ka-a.log")).is_empty(),
        "{}",
        lab.log("ka-a.log")
    );
}

#[test]
fn rvs_master_keepalived_backup_v2_password() {
    if !keepalived_or_skip("rvs_master_keepalived_backup_v2_password") {
        return;
    }
    let mut lab = Lab::new("rm", &["a", "b"]);
    let mut s = spec("VI_A", 150);
    s.version = Version::V2;
    s.interval_cs = 100;
    s.auth = Auth::pass("s3cr3t");
    let a = lab.start("a", s);
    lab.wait(Duration::from_secs(10), || lab.has("a", VIP))
        .expect("rvs becomes master");
    keepalived(
        &mut lab,
        "b",
        "  vrrp_version 2\n",
        &format!(
            "  virtual_router_id 51\n  priority 100\n  advert_int 1\n  authentication {{\n    auth_type PASS\n    auth_pass s3cr3t\n  }}\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n"
        ),
    );
    // keepalived's first master-down interval is 3.6 s: if it did not
    // accept our adverts it would take the VIP by then.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !lab.has("b", VIP),
        "keepalived stays backup: {}",
        lab.log("ka-b.log")
    );
    assert!(
        lab.log("ka-b.log").contains("Entering BACKUP STATE"),
        "{}",
        lab.log("ka-b.log")
    );

    // Clean stop: priority 0; keepalived takes over after its skew (0.61 s).
    a.stop();
    let took = lab
        .wait(Duration::from_secs(5), || lab.has("b", VIP))
        .expect("keepalived takes over");
    eprintln!("rvs clean stop -> VIP on keepalived: {took:?} (skew 609 ms)");
    assert!(!lab.has("a", VIP));
    assert!(
        took < Duration::from_secs(2),
        "priority 0 was honoured: {took:?}"
    );
    assert!(
        complaints(&lab.log("ka-b.log")).is_empty(),
        "{}",
        lab.log("ka-b.log")
    );
}

#[test]
fn rvs_and_keepalived_over_ipv6() {
    if !keepalived_or_skip("rvs_and_keepalived_over_ipv6") {
        return;
    }
    let mut lab = Lab::new("k6", &["a", "b"]);
    let mut s = spec("VI_A", 150);
    s.vips = vec![rvs_vrrp::Vip {
        addr: addr(VIP6),
        prefix: 64,
    }];
    let a = lab.start("a", s);
    lab.wait(Duration::from_secs(5), || lab.has("a", VIP6))
        .expect("rvs master over IPv6");
    keepalived(
        &mut lab,
        "b",
        "  vrrp_version 3\n",
        &format!("  virtual_router_id 51\n  priority 100\n  advert_int 0.1\n  virtual_ipaddress {{\n    {VIP6}/64\n  }}\n"),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !lab.has("b", VIP6),
        "keepalived stays backup: {}",
        lab.log("ka-b.log")
    );
    drop(a);
    lab.wait(Duration::from_secs(5), || lab.has("b", VIP6))
        .expect("keepalived takes the IPv6 VIP");
    assert!(
        complaints(&lab.log("ka-b.log")).is_empty(),
        "{}",
        lab.log("ka-b.log")
    );
}
