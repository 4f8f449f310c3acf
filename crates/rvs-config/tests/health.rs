//! The health-check part of rvs.toml: what each key means, every
//! validation rule with its line and column, and the writer's round trip.

use rvs_config::{
    parse, to_toml, Check, CheckKind, HttpProbe, InitialState, OnFailure, ServiceHealth,
};
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

/// A service with one real server (line 4) followed by a check table
/// (line 6 is `[[service.real_server.check]]`, its keys from line 7).
fn rs_check(check: &str) -> String {
    format!(
        "[[service]]\ntcp = \"198.18.0.1:80\"\n\n[[service.real_server]]\naddress = \"198.18.1.1:8080\"\n[[service.real_server.check]]\n{check}\n"
    )
}

const FULL: &str = r#"
[[service]]
tcp = "198.18.0.1:80"
scheduler = "wrr"
on_failure = "remove"
initial = "down"
quorum = 3
quorum_hysteresis = 1
quorum_up = ["/usr/local/bin/notify", "up"]
quorum_down = ["/usr/local/bin/notify", "down"]

[[service.check]]
type = "http"
interval = 2
timeout = 1.5
fall = 2
rise = 1
path = "/health"
host = "www.example.com"
status = [200, "300-302"]
expect = "OK"
regex = "^ok [0-9]+$"
digest = "D41D8CD98F00B204E9800998ECF8427E"

[service.fallback]
address = "127.0.0.1:8080"

[[service.real_server]]
address = "198.18.1.1:8080"
weight = 3

[[service.real_server]]
address = "198.18.1.2:8080"

[[service.real_server.check]]
type = "tcp"
port = 9000
address = "198.18.2.2"
initial = "up"

[[service.real_server.check]]
type = "command"
command = ["/bin/check", "{rip}:{rport}"]
dynamic_weight = true

[[service]]
udp = "198.18.0.1:53"

[[service.check]]
type = "dns"
name = "example.com"
query_type = "a"

[[service.check]]
type = "udp"
payload_hex = "00 01 ff"
expect = "pong"

[[service.real_server]]
address = "198.18.1.1"

[[service]]
tcp = "198.18.0.1:443"

[[service.check]]
type = "https"
sni = "www.example.com"
verify = true
interval = 0.25
"#;

#[test]
fn every_key_means_what_the_docs_say() {
    let c = parse(FULL, "rvs.toml").unwrap();
    assert!(c.has_health());
    let s = &c.services[0];
    let h = &s.health;
    assert_eq!(h.on_failure, OnFailure::Remove);
    assert_eq!(h.initial, InitialState::Down);
    assert_eq!((h.quorum, h.quorum_hysteresis), (3, 1));
    assert_eq!(h.quorum_up, ["/usr/local/bin/notify", "up"]);
    assert_eq!(h.quorum_down[1], "down");
    let f = h.fallback.as_ref().unwrap();
    assert_eq!(f.dest.addr, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!((f.dest.port, f.dest.weight), (8080, 1));
    assert_eq!(h.checks.len(), 1);
    let hc = &h.checks[0];
    assert_eq!(
        (hc.interval_ms, hc.timeout_ms, hc.fall, hc.rise),
        (2000, 1500, 2, 1)
    );
    assert_eq!(
        hc.kind,
        CheckKind::Http(HttpProbe {
            path: "/health".into(),
            host: Some("www.example.com".into()),
            status: vec![(200, 200), (300, 302)],
            expect: Some("OK".into()),
            regex: Some("^ok [0-9]+$".into()),
            regex_no_match: false,
            digest: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
        })
    );
    // The first real server has no checks of its own: the service's apply.
    assert_eq!(s.checks_for(&s.real_servers[0]), &h.checks[..]);
    // The second has its own, which replace the service's.
    let own = s.checks_for(&s.real_servers[1]);
    assert_eq!(own.len(), 2);
    assert_eq!(own[0].kind, CheckKind::Tcp);
    assert_eq!(own[0].port, Some(9000));
    assert_eq!(own[0].address, Some("198.18.2.2".parse().unwrap()));
    assert_eq!(own[0].initial, Some(InitialState::Up));
    assert_eq!(
        (
            own[0].interval_ms,
            own[0].timeout_ms,
            own[0].fall,
            own[0].rise
        ),
        (5000, 3000, 3, 2),
        "defaults"
    );
    assert_eq!(
        own[1].kind,
        CheckKind::Command {
            argv: vec!["/bin/check".into(), "{rip}:{rport}".into()],
            dynamic_weight: true
        }
    );

    let u = &c.services[1].health;
    assert_eq!(u.on_failure, OnFailure::Quiesce, "default");
    assert_eq!((u.quorum, u.quorum_hysteresis), (1, 0), "defaults");
    assert_eq!(
        u.checks[0].kind,
        CheckKind::Dns {
            name: "example.com".into(),
            query_type: "A".into()
        }
    );
    assert_eq!(
        u.checks[1].kind,
        CheckKind::Udp {
            payload: vec![0, 1, 0xff],
            expect: Some(b"pong".to_vec())
        }
    );
    let t = &c.services[2].health.checks[0];
    assert_eq!((t.interval_ms, t.timeout_ms), (250, 250), "timeout capped");
    match &t.kind {
        CheckKind::Https { http, sni, verify } => {
            assert_eq!(http, &HttpProbe::default());
            assert_eq!(sni.as_deref(), Some("www.example.com"));
            assert!(verify);
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn writer_round_trips_checks() {
    let c = parse(FULL, "rvs.toml").unwrap();
    let text = to_toml(&c);
    let back = parse(&text, "out.toml").unwrap_or_else(|e| panic!("{text}\n{e:?}"));
    assert_eq!(back, c, "{text}");
}

#[test]
fn no_health_keys_means_no_health() {
    let c = parse(
        "[[service]]\ntcp = \"198.18.0.1:80\"\n[[service.real_server]]\naddress = \"198.18.1.1\"\n",
        "f",
    )
    .unwrap();
    assert!(!c.has_health());
    assert_eq!(c.services[0].health, ServiceHealth::default());
    assert!(c.services[0].real_servers[0].checks.is_empty());
}

#[test]
fn check_errors_have_line_and_column() {
    one(&rs_check(""), 6, 1, "a check needs a type");
    one(
        &rs_check("type = \"smtp\""),
        7,
        8,
        "type must be \"tcp\", \"http\"",
    );
    one(
        &rs_check("type = \"tcp\"\npath = \"/\""),
        8,
        1,
        "`path` does not apply to a tcp check (it is for type http)",
    );
    one(
        &rs_check("type = \"http\"\nintervall = 3"),
        8,
        1,
        "did you mean `interval`?",
    );
    one(
        &rs_check("type = \"tcp\"\ninterval = 0"),
        8,
        12,
        "interval must be more than 0",
    );
    one(
        &rs_check("type = \"tcp\"\ninterval = -1.5"),
        8,
        12,
        "interval must be more than 0",
    );
    one(
        &rs_check("type = \"tcp\"\ninterval = \"5s\""),
        8,
        12,
        "must be a number of seconds, not a string",
    );
    one(
        &rs_check("type = \"tcp\"\ninterval = 2\ntimeout = 3"),
        9,
        11,
        "timeout (3 s) must not be longer than the interval (2 s)",
    );
    one(
        &rs_check("type = \"tcp\"\nfall = 0"),
        8,
        8,
        "fall must be 1..=1000",
    );
    one(
        &rs_check("type = \"tcp\"\nrise = 1001"),
        8,
        8,
        "rise must be 1..=1000",
    );
    one(
        &rs_check("type = \"tcp\"\ninitial = \"maybe\""),
        8,
        11,
        "initial must be \"up\" or \"down\"",
    );
    one(
        &rs_check("type = \"tcp\"\naddress = \"198.18.0.1:80\""),
        8,
        11,
        "not an IP address",
    );
    one(
        &rs_check("type = \"tcp\"\nport = 0"),
        8,
        8,
        "port must be 1..=65535",
    );
    one(
        &rs_check("type = \"http\"\npath = \"health\""),
        8,
        8,
        "must start with `/`",
    );
    one(
        &rs_check("type = \"http\"\nstatus = [99]"),
        8,
        11,
        "each 100..=599",
    );
    one(
        &rs_check("type = \"http\"\nstatus = [\"300-200\"]"),
        8,
        11,
        "ranges",
    );
    one(
        &rs_check("type = \"http\"\nstatus = []"),
        8,
        10,
        "non-empty array",
    );
    one(
        &rs_check("type = \"http\"\nregex = \"(\""),
        8,
        9,
        "regex is not valid",
    );
    one(
        &rs_check("type = \"http\"\nregex_no_match = true"),
        8,
        18,
        "regex_no_match needs a regex",
    );
    one(
        &rs_check("type = \"http\"\ndigest = \"abc\""),
        8,
        10,
        "32 hexadecimal digits",
    );
    one(
        &rs_check("type = \"https\"\nsni = \"10.0.0.1\""),
        8,
        7,
        "sni must be a DNS name",
    );
    one(
        &rs_check("type = \"udp\"\npayload_hex = \"0g\""),
        8,
        15,
        "pairs of hexadecimal digits",
    );
    one(
        &rs_check("type = \"udp\"\npayload = \"a\"\npayload_hex = \"00\""),
        9,
        1,
        "give payload or payload_hex, not both",
    );
    one(
        &rs_check("type = \"dns\"\nquery_type = \"ANY\""),
        8,
        14,
        "query_type `ANY` is not one of",
    );
    one(
        &rs_check("type = \"dns\"\nname = \"a..b\""),
        8,
        8,
        "not a DNS name",
    );
    one(
        &rs_check("type = \"command\""),
        6,
        1,
        "a command check needs command",
    );
    one(
        &rs_check("type = \"command\"\ncommand = []"),
        8,
        11,
        "non-empty array of strings",
    );
    one(
        &rs_check("type = \"command\"\ncommand = \"/bin/true\""),
        8,
        11,
        "(no shell)",
    );
}

#[test]
fn service_health_errors() {
    let svc = |extra: &str| {
        format!("[[service]]\ntcp = \"198.18.0.1:80\"\n{extra}\n[[service.real_server]]\naddress = \"198.18.1.1\"\n")
    };
    one(
        &svc("on_failure = \"drop\""),
        3,
        14,
        "on_failure must be \"quiesce\" or \"remove\"",
    );
    one(&svc("quorum = -1"), 3, 10, "quorum must be 0..=2147483647");
    one(
        &svc("quorum_down = [1]"),
        3,
        15,
        "quorum_down must be a non-empty array of strings",
    );
    one(
        &svc("check = { type = \"tcp\" }"),
        3,
        9,
        "must be an array of tables",
    );
    one(
        &svc("[service.fallback]\naddress = \"198.18.1.1:80\""),
        3,
        1,
        "the fallback server 198.18.1.1:80 is also a real server of tcp 198.18.0.1:80",
    );
    one(
        &svc("[service.fallback]\nweight = 2"),
        3,
        1,
        "needs an address",
    );
    one(
        &svc("[service.fallback]\naddress = \"127.0.0.1\"\n[[service.fallback.check]]\ntype = \"tcp\""),
        5,
        20,
        "a fallback server is not checked",
    );
    one(
        &svc("[service.fallback]\naddress = \"127.0.0.1\"\nmethod = \"route\""),
        5,
        10,
        "needs the xdp engine",
    );
}

#[test]
fn a_port_0_real_server_needs_a_check_port() {
    one(
        "[[service]]\nfwmark = 1\n[[service.check]]\ntype = \"tcp\"\n[[service.real_server]]\naddress = \"198.18.1.1\"\n",
        2,
        10,
        "real server 198.18.1.1 of fwmark 1 has port 0, so its tcp check needs a port",
    );
    let ok = "[[service]]\nfwmark = 1\n[[service.check]]\ntype = \"tcp\"\nport = 80\n[[service.real_server]]\naddress = \"198.18.1.1\"\n";
    assert!(parse(ok, "f").is_ok());
}

#[test]
fn every_problem_is_reported() {
    let text = rs_check("type = \"http\"\ninterval = 0\nfall = 0\npath = \"x\"\nport = 70000");
    assert_eq!(errors(&text).len(), 4, "{:#?}", errors(&text));
}

#[test]
fn check_new_has_the_documented_defaults() {
    let c = Check::new(CheckKind::Tcp);
    assert_eq!(
        (c.interval_ms, c.timeout_ms, c.fall, c.rise),
        (5000, 3000, 3, 2)
    );
    assert_eq!((c.initial, c.address, c.port), (None, None, None));
}
