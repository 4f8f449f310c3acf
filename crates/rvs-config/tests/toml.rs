//! Writing rvs.toml back: `parse(to_toml(c)) == c`, and what the writer
//! leaves out. Plus the fuzz target's invariants on damaged copies of the
//! example file, so they are checked on every `cargo test`.

use rvs_config::{parse, to_toml, Config};

const FULL: &str = r#"
engine = "xdp"
enable_schedulers = ["twos"]

[proxy]
workers = 4
connect_timeout = 2

[xdp]
interface = "veth-\"x\""

[timeouts]
tcp = 1
tcpfin = 2
udp = 3

[sysctl]
expire_nodest_conn = true
expire_quiescent_template = true
conn_reuse_mode = 3
secure_tcp = 3
amemthresh = 2048

[[service]]
tcp = "10.0.0.1:0"
scheduler = "sh"
sched_flags = ["sh-port", "flag-3", "sh-fallback"]
persistent = 2678400
netmask = "255.255.0.0"
pe = "sip"

[[service.real_server]]
address = "[2001:db8::2]"
method = "tunnel"
tunnel_type = "gue"
tunnel_port = 6080
tunnel_checksum = "remcsum"
weight = 0
u_threshold = 2147483647
l_threshold = 2147483647

[[service.real_server]]
address = "10.0.0.3"
method = "tunnel"
tunnel_type = "gre"

[[service]]
fwmark = 4294967295
ipv6 = true
scheduler = "twos"
one_packet = true
persistent = true
netmask = 1

[[service.real_server]]
address = "[2001:db8::5]:9"
method = "masq"

[[service]]
udp = "[::ffff:10.0.0.9]:53"
scheduler = "mh"
sched_flags = ["mh-fallback"]
one_packet = true
"#;

#[test]
fn every_key_round_trips() {
    let c = parse(FULL, "full.toml").unwrap();
    let text = to_toml(&c);
    assert_eq!(parse(&text, "again.toml").unwrap(), c, "{text}");
    assert_eq!(to_toml(&parse(&text, "again.toml").unwrap()), text);
}

#[test]
fn proxy_keys_round_trip() {
    let text = r#"
[[service]]
tcp = "127.0.0.1:8080"
proxy_protocol = "v2"
transparent = true
[[service.real_server]]
address = "127.0.0.1:9001"
proxy_protocol = "none"
[[service.real_server]]
address = "127.0.0.1:9002"
proxy_protocol = "v1"
"#;
    let c = parse(text, "p.toml").unwrap();
    assert_eq!(parse(&to_toml(&c), "again.toml").unwrap(), c);
}

#[test]
fn the_writer_leaves_defaults_out() {
    let c = parse(
        "[[service]]\ntcp = \"10.0.0.1:80\"\n[[service.real_server]]\naddress = \"10.0.0.2\"\n",
        "d.toml",
    )
    .unwrap();
    assert_eq!(
        to_toml(&c),
        "engine = \"proxy\"\n\n\
         [[service]]\ntcp = \"10.0.0.1:80\"\nscheduler = \"wlc\"\n\n\
         [[service.real_server]]\naddress = \"10.0.0.2:80\"\nmethod = \"masq\"\nweight = 1\n"
    );
    assert_eq!(to_toml(&Config::default()), "engine = \"proxy\"\n");
}

fn example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/rvs.toml"
    ))
    .unwrap()
}

/// The fuzz target's invariants (fuzz/fuzz_targets/config.rs).
fn invariants(text: &str) {
    match parse(text, "x.toml") {
        Ok(c) => {
            assert_eq!(parse(&to_toml(&c), "again.toml").unwrap(), c, "{text}");
            assert!(rvs_config::diff(&c, &c).is_empty());
            let _ = rvs_config::to_rules(&c);
        }
        Err(errs) => {
            assert!(!errs.is_empty());
            let last_line = text.matches('\n').count() + 1;
            for e in errs {
                assert!(
                    e.line >= 1 && e.line <= last_line && e.column >= 1,
                    "{e}\n{text}"
                );
            }
        }
    }
}

#[test]
fn damaged_examples_never_panic() {
    for base in [example(), FULL.to_string()] {
        let lines: Vec<&str> = base.lines().collect();
        for i in 0..lines.len() {
            // Without line i, and cut off after line i.
            let mut without = lines.clone();
            without.remove(i);
            invariants(&without.join("\n"));
            invariants(&lines[..i].join("\n"));
            // Line i cut in half.
            let l = lines[i];
            let half = l
                .char_indices()
                .nth(l.chars().count() / 2)
                .map_or(0, |(j, _)| j);
            let mut cut = lines.clone();
            cut[i] = &l[..half];
            invariants(&cut.join("\n"));
        }
    }
}
