//! The failover part of rvs.toml (`[[vrrp]]`): defaults, every key, every
//! validation rule at its line and column, and the writer's round trip.

use rvs_config::{parse, to_toml, VrrpChecksum, VrrpVersion, VrrpVip};
use std::net::IpAddr;

fn errors(text: &str) -> Vec<String> {
    match parse(text, "rvs.toml") {
        Ok(c) => panic!("accepted:\n{text}\n{c:#?}"),
        Err(e) => e
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect(),
    }
}

#[track_caller]
fn one(text: &str, line: usize, col: usize, msg: &str) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{text}\n{e:#?}");
    let want = format!("{line}:{col}: ");
    assert!(
        e[0].starts_with(&want) && e[0].contains(msg),
        "want {want}…{msg}…, got {}",
        e[0]
    );
}

/// A minimal instance (lines 1-5) followed by `extra` from line 6.
fn inst(extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\nvips = [\"198.18.0.100/24\"]\n{extra}\n"
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn minimal_instance_gets_keepalived_defaults() {
    let c = parse(&inst(""), "rvs.toml").unwrap();
    let v = &c.vrrp[0];
    assert_eq!(
        (v.name.as_str(), v.interface.as_str(), v.virtual_router_id),
        ("VI_1", "eth0", 51)
    );
    assert_eq!(
        v.vips,
        vec![VrrpVip {
            addr: ip("198.18.0.100"),
            prefix: 24
        }]
    );
    assert_eq!(
        (v.priority, v.version, v.advert_interval_cs),
        (100, VrrpVersion::V2, 100)
    );
    assert!(!v.preempt);
    assert_eq!(
        (v.garp_repeat, v.garp_delay_ms, v.down_timer_adverts),
        (5, 5000, 3)
    );
    // IPv6 VIPs default to VRRPv3 (keepalived does the same); a bare
    // address is a host route.
    let c = parse(
        "[[vrrp]]\nname = \"v6\"\ninterface = \"eth0\"\nvirtual_router_id = 52\nvips = [\"2001:db8::100\"]\n",
        "rvs.toml",
    )
    .unwrap();
    assert_eq!(c.vrrp[0].version, VrrpVersion::V3);
    assert_eq!(c.vrrp[0].vips[0].prefix, 128);
}

const FULL: &str = r#"
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
version = 3
advert_interval = 0.1
vips = ["198.18.0.100/24", "198.18.0.101/24"]
unicast_src = "198.18.0.1"
unicast_peers = ["198.18.0.2", "198.18.0.3"]
preempt = true
preempt_delay = 2.5
checksum = "rfc9568"
down_timer_adverts = 4
garp_repeat = 3
garp_delay = 0
garp_refresh = 60
notify_master = ["/usr/local/bin/became", "master"]
notify = ["/usr/local/bin/notify"]
notify_timeout = 5

[[vrrp.track_interface]]
name = "eth1"
weight = -20

[[vrrp.track_script]]
command = ["/usr/local/bin/check-upstream", "--quiet"]
interval = 0.5
timeout = 0.2
rise = 2
fall = 3
weight = -60

[[vrrp]]
name = "VI_2"
interface = "eth0"
virtual_router_id = 51
vips = ["2001:db8::100/64"]
"#;

#[test]
fn every_key_and_the_round_trip() {
    let c = parse(FULL, "rvs.toml").unwrap();
    let v = &c.vrrp[0];
    assert_eq!(
        (v.priority, v.version, v.advert_interval_cs),
        (150, VrrpVersion::V3, 10)
    );
    assert_eq!(v.unicast_peers, vec![ip("198.18.0.2"), ip("198.18.0.3")]);
    assert_eq!(v.unicast_src, Some(ip("198.18.0.1")));
    assert!(v.preempt);
    assert_eq!(v.preempt_delay_ms, 2500);
    assert_eq!(v.checksum, VrrpChecksum::Rfc9568);
    assert_eq!(
        (
            v.down_timer_adverts,
            v.garp_repeat,
            v.garp_delay_ms,
            v.garp_refresh_ms
        ),
        (4, 3, 0, 60_000)
    );
    assert_eq!(v.notify.master, vec!["/usr/local/bin/became", "master"]);
    assert_eq!(v.notify.timeout_ms, 5000);
    assert_eq!(v.track_interfaces[0].weight, -20);
    let s = &v.track_scripts[0];
    assert_eq!(
        s.name, "check-upstream",
        "named after the program by default"
    );
    assert_eq!(
        (s.interval_ms, s.timeout_ms, s.rise, s.fall, s.weight),
        (500, 200, 2, 3, -60)
    );
    // The same VRID on the same interface is fine for the other family.
    assert_eq!(c.vrrp[1].virtual_router_id, 51);
    let again = parse(&to_toml(&c), "again.toml").unwrap();
    assert_eq!(again, c, "{}", to_toml(&c));
}

#[test]
fn unknown_and_missing_keys() {
    one(
        &inst("preemt = true"),
        6,
        1,
        "unknown key `preemt` in [[vrrp]]; did you mean `preempt`?",
    );
    one(
        "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvips = [\"198.18.0.100\"]\n",
        1,
        1,
        "needs virtual_router_id",
    );
    one(
        "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 1\n",
        1,
        1,
        "needs vips",
    );
    one(
        &inst("[[vrrp.track_script]]\nweight = -5"),
        6,
        1,
        "needs command",
    );
    one(
        &inst("[[vrrp.track_interface]]\nname = \"eth1\"\nmode = 1"),
        8,
        1,
        "unknown key `mode`",
    );
}

#[test]
fn values_are_checked_where_they_are() {
    one(
        &inst("virtual_router_id = 0").replace("virtual_router_id = 51\n", ""),
        5,
        21,
        "virtual_router_id must be 1..=255",
    );
    one(&inst("priority = 0"), 6, 12, "priority must be 1..=255");
    one(&inst("version = 4"), 6, 11, "version must be 2..=3");
    one(
        &inst("advert_interval = 0.5"),
        6,
        19,
        "whole seconds 1..=255 with version = 2",
    );
    one(
        &inst("version = 3\nadvert_interval = 0.005"),
        7,
        19,
        "0.01..=40.95 seconds",
    );
    one(
        &inst("version = 3\nadvert_interval = 41"),
        7,
        19,
        "0.01..=40.95 seconds",
    );
    one(
        &inst("auth_pass = \"toolongpassword\""),
        6,
        13,
        "1 to 8 bytes",
    );
    one(
        &inst("version = 3\nauth_pass = \"x\""),
        7,
        13,
        "VRRPv3 has no authentication",
    );
    one(
        &inst("checksum = \"rfc9568\""),
        6,
        12,
        "checksum needs version = 3",
    );
    one(
        &inst("checksum = \"cisco\""),
        6,
        12,
        "checksum must be \"keepalived\" or \"rfc9568\"",
    );
    one(
        &inst("preempt_delay = 5"),
        6,
        17,
        "preempt_delay needs preempt = true",
    );
    one(
        &inst("preempt = true\npreempt_delay = 2000"),
        7,
        17,
        "preempt_delay must be 0..=1000 seconds",
    );
    one(
        &inst("unicast_peers = [\"2001:db8::2\"]"),
        6,
        18,
        "of the VIPs' address family",
    );
    one(&inst("unicast_peers = []"), 6, 17, "non-empty array");
    one(
        &inst("unicast_src = \"198.18.0.1\"\nunicast_peers = [\"198.18.0.1\"]"),
        7,
        18,
        "is unicast_src itself",
    );
    one(
        &inst("notify_master = \"/bin/true\""),
        6,
        17,
        "non-empty array of strings",
    );
    one(
        &inst("[[vrrp.track_interface]]\nname = \"eth1\"\nweight = 300"),
        8,
        10,
        "weight must be -253..=253",
    );
    one(
        &inst("[[vrrp.track_script]]\ncommand = [\"/bin/true\"]\ninterval = 1\ntimeout = 2"),
        9,
        11,
        "not be longer than interval",
    );
    one(
        "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 5\nvips = [\"198.18.0.100\", \"2001:db8::1\"]\n",
        5,
        25,
        "one address family",
    );
    one(
        "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 5\nvips = [\"2001:db8::1\"]\nversion = 2\n",
        6,
        11,
        "IPv6 VIPs need version = 3",
    );
    one(
        "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 5\nvips = [\"198.18.0.1/33\"]\n",
        5,
        9,
        "prefix of \"198.18.0.1/33\" must be 1..=32",
    );
}

#[test]
fn duplicates_across_instances() {
    let two = format!("{}{}", inst(""), inst("").replace("VI_1", "VI_2"));
    one(
        &two,
        10,
        1,
        "virtual_router_id 51 on eth0 (IPv4) is already used at line 1",
    );
    let same_name = format!("{}{}", inst(""), inst("").replace("= 51", "= 52"));
    one(
        &same_name,
        8,
        1,
        "a [[vrrp]] named `VI_1` is already declared at line 1",
    );
}

#[test]
fn track_service_names_a_declared_service_and_a_negative_weight() {
    let svc = "[[service]]\ntcp = \"198.18.0.100:80\"\n[[service.real_server]]\naddress = \"198.18.1.1\"\n";
    // Lines 1-4 the service, 5-9 the instance, the track table from 10.
    let text = |extra: &str| format!("{svc}{}", inst(extra));
    let c = parse(
        &text("[[vrrp.track_service]]\nservice = \"tcp:198.18.0.100:80\"\nweight = -60"),
        "rvs.toml",
    )
    .unwrap();
    let t = &c.vrrp[0].track_services[0];
    assert_eq!((t.service, t.weight), (c.services[0].key, -60));
    let back = to_toml(&c);
    assert_eq!(parse(&back, "again.toml").unwrap(), c, "{back}");

    one(
        &text("[[vrrp.track_service]]\nservice = \"tcp:198.18.0.100:81\"\nweight = -1"),
        11,
        11,
        "service tcp 198.18.0.100:81 is not declared in this file",
    );
    one(
        &text("[[vrrp.track_service]]\nservice = \"http:198.18.0.100:80\"\nweight = -1"),
        11,
        11,
        "unknown service kind `http`",
    );
    one(
        &text("[[vrrp.track_service]]\nservice = \"tcp:198.18.0.100:80\"\nweight = 0"),
        12,
        10,
        "weight must be -253..=-1",
    );
    one(
        &text("[[vrrp.track_service]]\nservice = \"tcp:198.18.0.100:80\""),
        10,
        1,
        "needs a negative weight",
    );
}
