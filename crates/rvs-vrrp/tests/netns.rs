//! Two rvs-vrrp instances on one L2 segment in network namespaces:
//! election, clean hand-over, no fail-back, preemption, split brain, IPv6,
//! notify order. Needs root; skips otherwise.

mod common;

use common::*;
use rvs_vrrp::{State, TrackInterface, Version, Vip};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(5);

#[test]
fn election_clean_handover_and_no_fail_back() {
    if !root_or_skip("election_clean_handover_and_no_fail_back") {
        return;
    }
    let lab = Lab::new("el", &["a", "b"]);
    let a = lab.start("a", spec("VI_A", 150));
    let b = lab.start("b", spec("VI_B", 100));
    lab.wait(LONG, || lab.has("a", VIP))
        .expect("a (priority 150) becomes master");
    lab.wait(LONG, || {
        b.status().state == State::Backup && b.status().master == Some(addr("198.18.0.1"))
    })
    .expect("b follows a");
    assert!(!lab.has("b", VIP));
    assert_eq!(a.status().state, State::Master);

    // Clean stop: priority 0, b takes over after its skew (100: 61 ms).
    a.stop();
    let took = lab.wait(LONG, || lab.has("b", VIP)).expect("b takes over");
    eprintln!("clean hand-over: VIP on b {took:?} after a stopped");
    assert!(!lab.has("a", VIP), "a removed its VIP on stop");
    assert!(
        took < Duration::from_secs(2),
        "priority 0 means skew time, not master-down: {took:?}"
    );

    // a comes back with the higher priority: no fail-back by default.
    let a = lab.start("a", spec("VI_A", 150));
    lab.wait(LONG, || {
        a.status().state == State::Backup && a.status().master == Some(addr("198.18.0.2"))
    })
    .expect("returning a is backup");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(a.status().state, State::Backup, "no fail-back");
    assert!(lab.has("b", VIP) && !lab.has("a", VIP));
    drop(b);
    drop(a);
}

#[test]
fn preemption_and_a_degraded_master_move_the_vip() {
    if !root_or_skip("preemption_and_a_degraded_master_move_the_vip") {
        return;
    }
    let lab = Lab::new("pr", &["a", "b"]);
    let b = lab.start("b", spec("VI_B", 100));
    lab.wait(LONG, || lab.has("b", VIP))
        .expect("b alone becomes master");
    let mut sa = spec("VI_A", 150);
    sa.preempt = true;
    let a = lab.start("a", sa);
    let took = lab
        .wait(LONG, || lab.has("a", VIP) && !lab.has("b", VIP))
        .expect("a preempts");
    eprintln!("preemption: {took:?}");
    assert_eq!(b.status().state, State::Backup);

    // a's pool goes bad: priority 150 - 100 = 50 < 100. b takes over even
    // without preempt, because a lowered its own priority.
    a.set_external_delta(-100);
    lab.wait(LONG, || lab.has("b", VIP) && !lab.has("a", VIP))
        .expect("degraded master replaced");
    assert_eq!(a.status().priority, 50);
}

#[test]
fn split_brain_heals_to_one_master_which_re_announces() {
    if !root_or_skip("split_brain_heals_to_one_master_which_re_announces") {
        return;
    }
    let lab = Lab::new("sb", &["a", "b", "c"]);
    let quick = |name: &str, prio| {
        let mut s = spec(name, prio);
        s.garp_delay = Some(1000);
        s
    };
    let a = lab.start("a", quick("VI_A", 150));
    let b = lab.start("b", quick("VI_B", 100));
    lab.wait(LONG, || lab.has("a", VIP)).expect("a master");
    lab.wait(LONG, || b.status().state == State::Backup)
        .expect("b backup");

    lab.partition("a");
    lab.wait(LONG, || lab.has("b", VIP))
        .expect("cut off, b becomes master too");
    assert!(lab.has("a", VIP), "a cannot tell, and stays master");
    // The client c learns b's MAC for the VIP from b's gratuitous ARP.
    ip(&[
        "-n",
        &lab.ns("c"),
        "neigh",
        "replace",
        VIP,
        "lladdr",
        "02:00:00:00:00:01",
        "dev",
        "eth0",
        "nud",
        "stale",
    ]);
    let mac_b = lab.mac("b");
    lab.wait(Duration::from_secs(3), || {
        lab.neigh("c", VIP).as_deref() == Some(mac_b.as_str())
    })
    .expect("c learns b's MAC from b's second announcement");

    lab.heal("a");
    let mac_a = lab.mac("a");
    lab.wait(LONG, || {
        !lab.has("b", VIP) && b.status().state == State::Backup
    })
    .expect("b steps down");
    assert_eq!(a.status().state, State::Master);
    assert!(lab.has("a", VIP));
    lab.wait(LONG, || {
        lab.neigh("c", VIP).as_deref() == Some(mac_a.as_str())
    })
    .expect("a re-announced the VIP after the heal");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        (a.status().state, b.status().state),
        (State::Master, State::Backup)
    );
}

#[test]
fn ipv6_v3_and_unicast_and_tracked_interface() {
    if !root_or_skip("ipv6_v3_and_unicast_and_tracked_interface") {
        return;
    }
    let lab = Lab::new("v6", &["a", "b"]);
    let six = |name: &str, prio| {
        let mut s = spec(name, prio);
        s.vips = vec![Vip {
            addr: addr(VIP6),
            prefix: 64,
        }];
        s
    };
    let a = lab.start("a", six("VI_A", 150));
    let b = lab.start("b", six("VI_B", 100));
    lab.wait(LONG, || lab.has("a", VIP6))
        .expect("a master over IPv6");
    lab.wait(LONG, || {
        b.status().state == State::Backup && b.status().master.is_some_and(|m| m.is_ipv6())
    })
    .expect("b follows a over IPv6");
    drop(a);
    lab.wait(LONG, || lab.has("b", VIP6))
        .expect("b takes the IPv6 VIP");
    drop(b);

    // IPv4 unicast peers, VRRPv2 with a password, and a tracked interface
    // with weight 0: when it goes down the master goes FAULT.
    let uni = |name: &str, prio, me: &str, peer: &str| {
        let mut s = spec(name, prio);
        s.version = Version::V2;
        s.interval_cs = 100;
        s.auth = rvs_vrrp::Auth::pass("s3cr3t");
        s.unicast_src = Some(addr(me));
        s.unicast_peers = vec![addr(peer)];
        s
    };
    ip(&[
        "-n",
        &lab.ns("a"),
        "link",
        "add",
        "trk0",
        "type",
        "veth",
        "peer",
        "name",
        "trk1",
    ]);
    ip(&["-n", &lab.ns("a"), "link", "set", "trk0", "up"]);
    ip(&["-n", &lab.ns("a"), "link", "set", "trk1", "up"]);
    let mut sa = uni("VI_A", 150, "198.18.0.1", "198.18.0.2");
    sa.track_interfaces = vec![TrackInterface {
        name: "trk0".into(),
        weight: 0,
    }];
    let a = lab.start("a", sa);
    let b = lab.start("b", uni("VI_B", 100, "198.18.0.2", "198.18.0.1"));
    lab.wait(Duration::from_secs(10), || lab.has("a", VIP))
        .expect("a master over unicast v2");
    lab.wait(LONG, || {
        b.status().state == State::Backup && b.status().master == Some(addr("198.18.0.1"))
    })
    .expect("b hears a's unicast adverts");
    ip(&["-n", &lab.ns("a"), "link", "set", "trk1", "down"]);
    lab.wait(LONG, || a.status().state == State::Fault)
        .expect("tracked interface down: FAULT");
    lab.wait(LONG, || lab.has("b", VIP))
        .expect("b takes over from the faulty a");
    assert!(a.status().fault.unwrap().contains("trk0"));
    assert!(!lab.has("a", VIP));
}

#[test]
fn stale_vip_is_removed_at_start_and_notify_runs_in_order() {
    if !root_or_skip("stale_vip_is_removed_at_start_and_notify_runs_in_order") {
        return;
    }
    let lab = Lab::new("st", &["a"]);
    // What a SIGKILLed master leaves behind.
    ip(&[
        "-n",
        &lab.ns("a"),
        "addr",
        "add",
        &format!("{VIP}/24"),
        "dev",
        "eth0",
    ]);
    let log = lab.dir.join("notify.log");
    let script = lab.dir.join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nsleep 0.05\necho \"$*\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut s = spec("VI_1", 100);
    s.notify.any = vec![script.display().to_string()];
    s.notify.master = vec![script.display().to_string(), "master-hook".into()];
    // 1 s adverts: the stale VIP must go at start, long before it would
    // become master (3.6 s).
    s.interval_cs = 100;
    let a = lab.start("a", s);
    lab.wait(Duration::from_millis(500), || !lab.has("a", VIP))
        .expect("stale VIP removed at start");
    lab.wait(Duration::from_secs(12), || lab.has("a", VIP))
        .expect("then master");
    a.stop();
    assert!(!lab.has("a", VIP));
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        lines,
        vec![
            "INSTANCE VI_1 BACKUP 100",
            "master-hook",
            "INSTANCE VI_1 MASTER 100",
            "INSTANCE VI_1 STOP 100",
        ]
    );
}
