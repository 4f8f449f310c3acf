//! Every validation rule, with the line and column it is reported at.

use rvs_config::{parse, ConfigError, Engine, ProxyProtocol};
use rvs_core::service::{SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2};
use rvs_core::{Af, FwdMethod, Protocol, ServiceKey, TunType};

/// The errors of `text` as `line:col: message`.
fn errors(text: &str) -> Vec<String> {
    match parse(text, "rvs.toml") {
        Ok(c) => panic!("accepted:\n{text}\n{c:#?}"),
        Err(e) => e
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect(),
    }
}

/// Asserts exactly one error, at `line:col`, whose message contains `msg`.
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

/// A TCP service on 10.0.0.1:80 followed by `extra` lines, and one real
/// server with `rs` lines (line 4 is `[[service.real_server]]`).
fn svc(extra: &str, rs: &str) -> String {
    format!("[[service]]\ntcp = \"10.0.0.1:80\"\n{extra}\n[[service.real_server]]\n{rs}\n")
}

#[test]
fn display_names_path_line_and_column() {
    let text = "[[service]]\ntcp = \"10.0.0.1:80\"\n\n[[service.real_server]]\naddress = \"10.0.0.2:80\"\nweight = -1\n";
    let e = parse(text, "rvs.toml").unwrap_err();
    assert_eq!(
        e,
        vec![ConfigError {
            path: "rvs.toml".into(),
            line: 6,
            column: 10,
            message: "weight must be 0..=2147483647".into(),
        }]
    );
    assert_eq!(
        e[0].to_string(),
        "rvs.toml:6:10: weight must be 0..=2147483647"
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = "engine = \"fast\"\n[[service]]\ntcp = \"10.0.0.1:80\"\nscheduler = \"xx\"\n[[service.real_server]]\naddress = \"10.0.0.2:80\"\nweight = 1.5\nu_threshold = \"x\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].starts_with("1:10: engine must be \"proxy\" or \"xdp\""));
    assert!(e[1].starts_with("4:13: unknown scheduler `xx`"));
    assert!(e[2].starts_with("7:10: weight must be an integer, not a float"));
    assert!(e[3].starts_with("8:15: u_threshold must be an integer, not a string"));
}

#[test]
fn syntax_errors_come_from_toml_with_positions() {
    one("a = 1\na = 2\n", 2, 1, "duplicate key");
    one("engine = proxy\n", 1, 10, "string values must be quoted");
    let e = errors("[x\ny = \n");
    assert!(e[0].starts_with("1:3: "), "{e:?}");
}

#[test]
fn unknown_keys_everywhere() {
    one(
        "engin = \"proxy\"\n",
        1,
        1,
        "unknown key `engin` in the top level; did you mean `engine`?",
    );
    one("[proxy]\nworker = 2\n", 2, 1, "did you mean `workers`?");
    one(
        "[xdp]\nif = \"eth0\"\n",
        2,
        1,
        "unknown key `if` in [xdp] (known keys: interface)",
    );
    one("[timeouts]\ntcp_fin = 5\n", 2, 1, "did you mean `tcpfin`?");
    one(
        "[sysctl]\nsloppy_tcp = true\n",
        2,
        1,
        "unknown key `sloppy_tcp` in [sysctl]",
    );
    one(
        &svc("schedular = \"rr\"", "address = \"10.0.0.2:80\""),
        3,
        1,
        "did you mean `scheduler`?",
    );
    one(
        &svc("", "address = \"10.0.0.2:80\"\nwieght = 2"),
        6,
        1,
        "did you mean `weight`?",
    );
}

#[test]
fn wrong_shapes() {
    one(
        "[service]\ntcp = \"10.0.0.1:80\"\n",
        1,
        1,
        "`service` must be an array of tables ([[service]]), not a table",
    );
    one(
        "proxy = 3\n",
        1,
        9,
        "`proxy` must be a table ([proxy]), not an integer",
    );
    one(
        "[[service]]\ntcp = \"10.0.0.1:80\"\nreal_server = \"x\"\n",
        3,
        15,
        "must be an array of tables ([[service.real_server]])",
    );
    one(
        "[[service]]\ntcp = \"10.0.0.1:80\"\n[service.real_server]\naddress = \"10.0.0.2:80\"\n",
        3,
        1,
        "must be an array of tables",
    );
    one(
        "enable_schedulers = \"twos\"\n",
        1,
        21,
        "enable_schedulers must be an array of names, not a string",
    );
}

#[test]
fn engine_and_its_options() {
    one(
        "engine = \"dpdk\"\n",
        1,
        10,
        "engine must be \"proxy\" or \"xdp\", not \"dpdk\"",
    );
    one(
        "[proxy]\nworkers = 1025\n",
        2,
        11,
        "workers must be 0..=1024",
    );
    one(
        "[proxy]\nconnect_timeout = 0\n",
        2,
        19,
        "connect_timeout must be 1..=3600 seconds",
    );
    one(
        "[xdp]\ninterface = \"a/b\"\n",
        2,
        13,
        "interface must be an interface name",
    );
    one(
        "[xdp]\ninterface = \"abcdefghijklmnop\"\n",
        2,
        13,
        "1 to 15 bytes",
    );
    let c = parse("engine = \"xdp\"\n[xdp]\ninterface = \"eth0\"\n[proxy]\nworkers = 2\nconnect_timeout = 9\n", "f").unwrap();
    assert_eq!(c.engine, Engine::Xdp);
    assert_eq!(c.xdp.interface.as_deref(), Some("eth0"));
    assert_eq!((c.proxy.workers, c.proxy.connect_timeout), (2, 9));
}

#[test]
fn timeouts_and_sysctls() {
    one(
        "[timeouts]\ntcp = 0\n",
        2,
        7,
        "timeouts.tcp must be 1..=2678400 seconds",
    );
    one(
        "[timeouts]\nudp = 2678401\n",
        2,
        7,
        "timeouts.udp must be 1..=2678400",
    );
    one(
        "[timeouts]\ntcpfin = \"1m\"\n",
        2,
        10,
        "timeouts.tcpfin must be an integer, not a string",
    );
    one(
        "[sysctl]\nconn_reuse_mode = 4\n",
        2,
        19,
        "conn_reuse_mode must be 0..=3",
    );
    one(
        "[sysctl]\nsecure_tcp = 4\n",
        2,
        14,
        "secure_tcp must be 0..=3",
    );
    one(
        "[sysctl]\nexpire_nodest_conn = 1\n",
        2,
        22,
        "expire_nodest_conn must be true or false, not an integer",
    );
    let c = parse(
        "[timeouts]\ntcp = 100\n[sysctl]\nexpire_nodest_conn = true\nconn_reuse_mode = 0\n",
        "f",
    )
    .unwrap();
    assert_eq!(
        (c.timeouts().tcp, c.timeouts().tcp_fin, c.timeouts().udp),
        (100, 120, 300)
    );
    let s = c.sysctls();
    assert!(s.expire_nodest_conn && !s.expire_quiescent_template);
    assert_eq!(s.conn_reuse_mode, 0);
    assert_eq!(
        (s.secure_tcp, s.amemthresh, s.sloppy_tcp),
        (0, 1024, false),
        "sysctls a file leaves out keep Linux's defaults"
    );
    let s = parse("[sysctl]\nsecure_tcp = 2\namemthresh = 4096\n", "f")
        .unwrap()
        .sysctls();
    assert_eq!(
        (s.secure_tcp, s.amemthresh),
        (1, 4096),
        "2 is the automatic mode's on state: a file's 2 means automatic"
    );
}

#[test]
fn service_identity() {
    one(
        "[[service]]\nscheduler = \"rr\"\n",
        1,
        1,
        "a service needs one of tcp, udp, sctp or fwmark",
    );
    one(
        "[[service]]\nudp = \"10.0.0.1:53\"\ntcp = \"10.0.0.1:53\"\n",
        3,
        1,
        "not both udp and tcp",
    );
    one(
        "[[service]]\ntcp = \"10.0.0.1\"\n",
        2,
        7,
        "tcp: `10.0.0.1` needs a port, as 10.0.0.1:80",
    );
    one(
        "[[service]]\ntcp = \"2001:db8::1:80\"\n",
        2,
        7,
        "needs a port, as [2001:db8::1:80]:80",
    );
    one(
        "[[service]]\ntcp = \"10.0.0.1:http\"\n",
        2,
        7,
        "the port must be a number 0..=65535",
    );
    one(
        "[[service]]\nudp = \"host:53\"\n",
        2,
        7,
        "udp: `host:53`: `host` is not an IPv4 address",
    );
    one(
        "[[service]]\nsctp = \"[10.0.0.1]:80\"\n",
        2,
        8,
        "brackets are only for IPv6",
    );
    one(
        "[[service]]\nfwmark = 0\n",
        2,
        10,
        "fwmark must be 1..=4294967295",
    );
    one(
        "[[service]]\nfwmark = 4294967296\n",
        2,
        10,
        "fwmark must be 1..=4294967295",
    );
    one(
        "[[service]]\ntcp = \"10.0.0.1:80\"\nipv6 = true\n",
        3,
        1,
        "ipv6 is only for fwmark services",
    );
    let c = parse("[[service]]\nfwmark = 4294967295\nipv6 = true\n[[service]]\nsctp = \"[2001:db8::1]:3868\"\n", "f").unwrap();
    assert_eq!(
        c.services[0].key,
        ServiceKey::Fwmark {
            mark: u32::MAX,
            af: Af::Inet6
        }
    );
    assert_eq!(c.services[0].config.netmask, 128);
    assert_eq!(
        c.services[1].key,
        ServiceKey::Addr {
            proto: Protocol::Sctp,
            addr: "2001:db8::1".parse().unwrap(),
            port: 3868
        }
    );
}

#[test]
fn duplicate_services() {
    one(
        "[[service]]\ntcp = \"10.0.0.1:80\"\n[[service]]\ntcp = \"10.0.0.1:80\"\n",
        4,
        7,
        "duplicate service tcp 10.0.0.1:80 (first declared at line 2)",
    );
    one(
        "[[service]]\nfwmark = 7\n[[service]]\nfwmark = 7\nscheduler = \"rr\"\n",
        4,
        10,
        "duplicate service fwmark 7 (first declared at line 2)",
    );
    // Same address, other protocol or family: different services.
    parse("[[service]]\ntcp = \"10.0.0.1:80\"\n[[service]]\nudp = \"10.0.0.1:80\"\n[[service]]\nfwmark = 7\n[[service]]\nfwmark = 7\nipv6 = true\n", "f").unwrap();
}

#[test]
fn schedulers_and_flags() {
    one(
        &svc("scheduler = \"RR\"", "address = \"10.0.0.2:80\""),
        3,
        13,
        "unknown scheduler `RR`",
    );
    one(
        &svc("scheduler = \"twos\"", "address = \"10.0.0.2:80\""),
        3,
        13,
        "enable it with enable_schedulers = [\"twos\"]",
    );
    one(
        "enable_schedulers = [\"threes\"]\n",
        1,
        22,
        "unknown scheduler `threes`",
    );
    let c = parse(
        &format!(
            "enable_schedulers = [\"twos\"]\n{}",
            svc("scheduler = \"twos\"", "address = \"10.0.0.2:80\"")
        ),
        "f",
    )
    .unwrap();
    assert_eq!(c.services[0].config.scheduler, "twos");
    assert!(c.scheduler_allowed("twos") && c.scheduler_allowed("rr") && !c.scheduler_allowed("x"));

    one(
        &svc("sched_flags = [\"sh-port\"]", "address = \"10.0.0.2:80\""),
        3,
        16,
        "scheduler flag `sh-port` is for the sh scheduler, not wlc",
    );
    one(
        &svc(
            "scheduler = \"sh\"\nsched_flags = [\"mh-port\"]",
            "address = \"10.0.0.2:80\"",
        ),
        4,
        16,
        "is for the mh scheduler, not sh",
    );
    one(
        &svc("sched_flags = [\"flag-4\"]", "address = \"10.0.0.2:80\""),
        3,
        16,
        "unknown scheduler flag `flag-4`",
    );
    one(
        &svc("sched_flags = \"flag-1\"", "address = \"10.0.0.2:80\""),
        3,
        15,
        "sched_flags must be an array of flag names",
    );
    let c = parse(
        &svc(
            "scheduler = \"mh\"\nsched_flags = [\"mh-fallback\", \"mh-port\"]",
            "address = \"10.0.0.2:80\"",
        ),
        "f",
    )
    .unwrap();
    assert_eq!(c.services[0].config.flags, SVC_F_SCHED1 | SVC_F_SCHED2);
    let c = parse(
        &svc(
            "scheduler = \"rr\"\nsched_flags = [\"flag-1\"]",
            "address = \"10.0.0.2:80\"",
        ),
        "f",
    )
    .unwrap();
    assert_eq!(c.services[0].config.flags, SVC_F_SCHED1);
}

#[test]
fn persistence_netmask_and_pe() {
    one(
        &svc("persistent = 0", "address = \"10.0.0.2:80\""),
        3,
        14,
        "persistent must be 1..=2678400 seconds (or true for 360)",
    );
    one(
        &svc("persistent = 2678401", "address = \"10.0.0.2:80\""),
        3,
        14,
        "persistent must be 1..=2678400",
    );
    one(
        &svc("persistent = \"yes\"", "address = \"10.0.0.2:80\""),
        3,
        14,
        "persistent must be an integer",
    );
    one(
        &svc("netmask = \"255.255.255.0\"", "address = \"10.0.0.2:80\""),
        3,
        1,
        "netmask only applies with persistent",
    );
    one(
        &svc(
            "persistent = true\nnetmask = \"255.255.255\"",
            "address = \"10.0.0.2:80\"",
        ),
        4,
        11,
        "is not a dotted IPv4 netmask",
    );
    one(
        &svc(
            "persistent = true\nnetmask = 33",
            "address = \"10.0.0.2:80\"",
        ),
        4,
        11,
        "an IPv4 netmask prefix must be 0..=32",
    );
    one(
        "[[service]]\ntcp = \"[2001:db8::1]:80\"\npersistent = 60\nnetmask = 0\n",
        4,
        11,
        "an IPv6 netmask (prefix length) must be 1..=128",
    );
    one(
        "[[service]]\ntcp = \"[2001:db8::1]:80\"\npersistent = 60\nnetmask = \"ffff::\"\n",
        4,
        11,
        "an IPv6 service's netmask is a prefix length 1..=128, not a string",
    );
    one(
        &svc("pe = \"http\"", "address = \"10.0.0.2:80\""),
        3,
        6,
        "unknown persistence engine `http` (engines: sip)",
    );

    let c = parse(
        &svc(
            "persistent = true\nnetmask = 24\npe = \"sip\"",
            "address = \"10.0.0.2:80\"",
        ),
        "f",
    )
    .unwrap();
    let sc = &c.services[0].config;
    assert_eq!(sc.flags, SVC_F_PERSISTENT);
    assert_eq!((sc.timeout, sc.netmask), (360, 0xffff_ff00));
    assert_eq!(sc.pe_name.as_deref(), Some("sip"));
    // Like the kernel, any mask: ipvsadm's `-M 24` means 0.0.0.24.
    let c = parse(
        &svc(
            "persistent = 5\nnetmask = \"0.0.0.24\"",
            "address = \"10.0.0.2:80\"",
        ),
        "f",
    )
    .unwrap();
    assert_eq!(c.services[0].config.netmask, 24);
    let c = parse(
        "[[service]]\nfwmark = 3\nipv6 = true\npersistent = 90\nnetmask = 64\n",
        "f",
    )
    .unwrap();
    assert_eq!(
        (c.services[0].config.timeout, c.services[0].config.netmask),
        (90, 64)
    );
    let c = parse(&svc("persistent = false", "address = \"10.0.0.2:80\""), "f").unwrap();
    assert!(!c.services[0].config.is_persistent());
}

#[test]
fn zero_port_needs_persistence() {
    one(
        "[[service]]\ntcp = \"10.0.0.1:0\"\n",
        2,
        7,
        "port 0 is only allowed for a persistent service",
    );
    parse("[[service]]\ntcp = \"10.0.0.1:0\"\npersistent = 30\n", "f").unwrap();
    // fwmark services have no port.
    parse("[[service]]\nfwmark = 1\n", "f").unwrap();
}

#[test]
fn one_packet_is_for_udp() {
    one(
        &svc("one_packet = true", "address = \"10.0.0.2:80\""),
        3,
        14,
        "only for UDP virtual services",
    );
    one(
        "[[service]]\nsctp = \"10.0.0.1:80\"\none_packet = true\n",
        3,
        14,
        "only for UDP",
    );
    let c = parse("[[service]]\nudp = \"10.0.0.1:53\"\none_packet = true\n[[service]]\nfwmark = 2\none_packet = true\n", "f").unwrap();
    assert!(c
        .services
        .iter()
        .all(|s| s.config.flags & SVC_F_ONEPACKET != 0));
    parse(&svc("one_packet = false", "address = \"10.0.0.2:80\""), "f").unwrap();
}

#[test]
fn proxy_options_and_engines() {
    one(
        &svc("proxy_protocol = \"v3\"", "address = \"10.0.0.2:80\""),
        3,
        18,
        "proxy_protocol must be \"none\", \"v1\" or \"v2\", not \"v3\"",
    );
    let xdp = |s: &str| format!("engine = \"xdp\"\n{s}");
    one(
        &xdp(&svc("proxy_protocol = \"v1\"", "address = \"10.0.0.2:80\"")),
        4,
        18,
        "proxy_protocol needs the proxy engine",
    );
    one(
        &xdp(&svc("transparent = true", "address = \"10.0.0.2:80\"")),
        4,
        15,
        "transparent applies to the proxy engine",
    );
    one(
        &xdp(&svc(
            "",
            "address = \"10.0.0.2:80\"\nmethod = \"masq\"\nproxy_protocol = \"v2\"",
        )),
        8,
        18,
        "proxy_protocol needs the proxy engine",
    );
    one(
        &svc("", "address = \"10.0.0.2:80\"\nmethod = \"route\""),
        6,
        10,
        "method \"route\" needs the xdp engine",
    );
    one(
        &svc("", "address = \"10.0.0.2:80\"\nmethod = \"tunnel\""),
        6,
        10,
        "method \"tunnel\" needs the xdp engine",
    );

    let c = parse(&svc("proxy_protocol = \"v2\"\ntransparent = true", "address = \"10.0.0.2:80\"\n[[service.real_server]]\naddress = \"10.0.0.3:80\"\nproxy_protocol = \"none\""), "f").unwrap();
    let s = &c.services[0];
    assert_eq!(s.proxy_protocol, ProxyProtocol::V2);
    assert!(s.transparent);
    assert_eq!(s.proxy_protocol_for(&s.real_servers[0]), ProxyProtocol::V2);
    assert_eq!(
        s.proxy_protocol_for(&s.real_servers[1]),
        ProxyProtocol::None
    );
    assert_eq!(c.proxy_protocols().len(), 2);
    assert!(c.proxy_options()[0].1.transparent);
}

#[test]
fn default_method_depends_on_the_engine() {
    let c = parse(&svc("", "address = \"10.0.0.2:8080\""), "f").unwrap();
    assert_eq!(c.services[0].real_servers[0].dest.fwd, FwdMethod::Masq);
    assert_eq!(c.services[0].real_servers[0].dest.port, 8080);
    let c = parse(
        &format!("engine = \"xdp\"\n{}", svc("", "address = \"10.0.0.2\"")),
        "f",
    )
    .unwrap();
    let d = &c.services[0].real_servers[0].dest;
    assert_eq!((d.fwd, d.port, d.weight), (FwdMethod::Route, 80, 1));
}

#[test]
fn real_server_addresses_and_ports() {
    one(
        &svc("", "weight = 2"),
        4,
        1,
        "a real server needs an address",
    );
    one(
        &svc("", "address = \"10.0.0.2:80:1\""),
        5,
        11,
        "address: `10.0.0.2:80:1`",
    );
    one(
        &svc("", "address = 10"),
        5,
        11,
        "address must be a string, not an integer",
    );
    one(
        &svc("", "address = \"0.0.0.0:80\""),
        5,
        11,
        "0.0.0.0 is not a unicast address",
    );
    one(
        &svc("", "address = \"255.255.255.255:80\""),
        5,
        11,
        "not a unicast address",
    );
    one("engine = \"xdp\"\n[[service]]\ntcp = \"[2001:db8::1]:80\"\n[[service.real_server]]\naddress = \"[fe80::1]:80\"\n", 5, 11, "fe80::1 is not a unicast address");
    // Without a port: the service's port; for fwmark services 0.
    let c = parse(
        "[[service]]\nfwmark = 1\n[[service.real_server]]\naddress = \"10.0.0.2\"\n",
        "f",
    )
    .unwrap();
    assert_eq!(c.services[0].real_servers[0].dest.port, 0);
    // route/tunnel real servers get the service's port, as ipvsadm forces it.
    one(
        &format!(
            "engine = \"xdp\"\n{}",
            svc("", "address = \"10.0.0.2:8080\"\nmethod = \"route\"")
        ),
        6,
        11,
        "a route real server receives the service's port 80, not 8080",
    );
    // fwmark services keep whatever port is given, for every method.
    parse("engine = \"xdp\"\n[[service]]\nfwmark = 1\n[[service.real_server]]\naddress = \"10.0.0.2:8080\"\nmethod = \"route\"\n", "f").unwrap();
}

#[test]
fn duplicate_real_servers() {
    one(
        &svc("", "address = \"10.0.0.2:80\"\n[[service.real_server]]\naddress = \"10.0.0.2\"\nweight = 3"),
        7,
        11,
        "duplicate real server 10.0.0.2:80 in tcp 10.0.0.1:80 (first declared at line 5)",
    );
    // The method is not part of a real server's identity; the port is.
    parse(
        &svc(
            "",
            "address = \"10.0.0.2:80\"\n[[service.real_server]]\naddress = \"10.0.0.2:81\"",
        ),
        "f",
    )
    .unwrap();
}

#[test]
fn weights_and_thresholds() {
    one(
        &svc("", "address = \"10.0.0.2:80\"\nweight = 2147483648"),
        6,
        10,
        "weight must be 0..=2147483647",
    );
    one(
        &svc("", "address = \"10.0.0.2:80\"\nu_threshold = -1"),
        6,
        15,
        "u_threshold must be 0..=2147483647",
    );
    one(
        &svc("", "address = \"10.0.0.2:80\"\nl_threshold = 5"),
        6,
        1,
        "l_threshold 5 is above u_threshold 0",
    );
    one(
        &svc(
            "",
            "address = \"10.0.0.2:80\"\nu_threshold = 10\nl_threshold = 11",
        ),
        7,
        1,
        "l_threshold 11 is above u_threshold 10",
    );
    let c = parse(
        &svc(
            "",
            "address = \"10.0.0.2:80\"\nweight = 0\nu_threshold = 10\nl_threshold = 10",
        ),
        "f",
    )
    .unwrap();
    let d = &c.services[0].real_servers[0].dest;
    assert_eq!((d.weight, d.u_threshold, d.l_threshold), (0, 10, 10));
    let c = parse(
        &svc(
            "",
            "address = \"10.0.0.2:80\"\nweight = 2147483647\nu_threshold = 0x10",
        ),
        "f",
    )
    .unwrap();
    assert_eq!(c.services[0].real_servers[0].dest.weight, i32::MAX);
    assert_eq!(c.services[0].real_servers[0].dest.u_threshold, 16);
}

#[test]
fn address_families_need_tunnelling_to_mix() {
    let xdp = |rs: &str| format!("engine = \"xdp\"\n{}", svc("", rs));
    one(
        &xdp("address = \"[2001:db8::2]:80\"\nmethod = \"route\""),
        6,
        11,
        "a different family is allowed only for tunnel real servers",
    );
    one(
        &svc("", "address = \"[2001:db8::2]:80\""),
        5,
        11,
        "a different family is allowed only for tunnel",
    );
    // An IPv4 fwmark service with an IPv6 real server needs tunnelling too.
    one("engine = \"xdp\"\n[[service]]\nfwmark = 1\n[[service.real_server]]\naddress = \"[2001:db8::2]:80\"\n", 5, 11, "allowed only for tunnel");
    let c = parse(
        &xdp("address = \"[2001:db8::2]:80\"\nmethod = \"tunnel\""),
        "f",
    )
    .unwrap();
    assert_eq!(c.services[0].real_servers[0].dest.tun_type, TunType::Ipip);
}

#[test]
fn tunnel_options_follow_ipvsadms_table() {
    let xdp = |rs: &str| {
        format!(
            "engine = \"xdp\"\n{}",
            svc("", &format!("address = \"10.0.0.2:80\"\n{rs}"))
        )
    };
    one(
        &xdp("tunnel_type = \"gue\""),
        7,
        1,
        "tunnel_type applies only to method = \"tunnel\"",
    );
    one(
        &xdp("method = \"masq\"\ntunnel_port = 6080"),
        8,
        1,
        "tunnel_port applies only to method = \"tunnel\"",
    );
    one(
        &xdp("method = \"tunnel\"\ntunnel_type = \"gue\""),
        8,
        1,
        "the gue tunnel type needs tunnel_port",
    );
    one(
        &xdp("method = \"tunnel\"\ntunnel_port = 6080"),
        8,
        1,
        "tunnel_port applies only to the gue tunnel type, not ipip",
    );
    one(
        &xdp("method = \"tunnel\"\ntunnel_type = \"gre\"\ntunnel_port = 6080"),
        9,
        1,
        "not gre",
    );
    one(
        &xdp("method = \"tunnel\"\ntunnel_checksum = \"csum\""),
        8,
        1,
        "tunnel_checksum does not apply to the ipip tunnel type",
    );
    one(
        &xdp("method = \"tunnel\"\ntunnel_type = \"gre\"\ntunnel_checksum = \"remcsum\""),
        9,
        19,
        "remcsum is only for the gue tunnel type",
    );
    one(
        &xdp("method = \"tunnel\"\ntunnel_type = \"vxlan\""),
        8,
        15,
        "tunnel_type must be \"ipip\", \"gue\" or \"gre\"",
    );
    one(
        &xdp("method = \"tunnel\"\ntunnel_type = \"gue\"\ntunnel_port = 0"),
        9,
        15,
        "tunnel_port must be 1..=65535",
    );
    let c = parse(&xdp("method = \"tunnel\"\ntunnel_type = \"gue\"\ntunnel_port = 6080\ntunnel_checksum = \"remcsum\""), "f").unwrap();
    let d = &c.services[0].real_servers[0].dest;
    assert_eq!(
        (d.fwd, d.tun_type, d.tun_port, d.tun_flags),
        (FwdMethod::Tunnel, TunType::Gue, 6080, 2)
    );
    let c = parse(
        &xdp("method = \"tunnel\"\ntunnel_type = \"gre\"\ntunnel_checksum = \"csum\""),
        "f",
    )
    .unwrap();
    assert_eq!(c.services[0].real_servers[0].dest.tun_flags, 1);
}

#[test]
fn an_empty_file_is_an_empty_proxy_table() {
    let c = parse("", "f").unwrap();
    assert_eq!(c, rvs_config::Config::default());
    assert_eq!(c.engine, Engine::Proxy);
    assert!(c.services().is_empty() && c.requests().is_empty());
}

#[test]
fn services_come_in_declaration_order() {
    let text = "[[service]]\nudp = \"10.0.0.9:53\"\n[[service.real_server]]\naddress = \"10.0.0.3\"\n[[service.real_server]]\naddress = \"10.0.0.1\"\n[[service]]\ntcp = \"10.0.0.1:80\"\n";
    let c = parse(text, "f").unwrap();
    let s = c.services();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].0.protocol(), Protocol::Udp);
    let addrs: Vec<String> = s[0].2.iter().map(|d| d.addr.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.3", "10.0.0.1"]);
    assert_eq!(s[0].1.scheduler, "wlc");
}

#[test]
fn the_example_file_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rvs.toml");
    let c = rvs_config::load(std::path::Path::new(path)).unwrap();
    assert_eq!(c.engine, Engine::Proxy);
    assert_eq!(c.services.len(), 2);
    let tcp = &c.services[0];
    assert_eq!(tcp.config.scheduler, "wrr");
    let w: Vec<(u16, i32)> = tcp
        .real_servers
        .iter()
        .map(|r| (r.dest.port, r.dest.weight))
        .collect();
    assert_eq!(w, [(9001, 1), (9002, 2), (9003, 3)]);
    assert!(tcp
        .real_servers
        .iter()
        .all(|r| r.dest.fwd == FwdMethod::Masq));
    assert_eq!(c.services[1].key.protocol(), Protocol::Udp);
    // Every demo real server is health-checked (HTTP for TCP, a datagram for UDP).
    assert_eq!(tcp.health.checks[0].kind.name(), "http");
    assert_eq!(c.services[1].health.checks[0].kind.name(), "udp");
    assert!(tcp.health.fallback.is_none());
}

#[test]
fn unreadable_files_are_reported_too() {
    let e = rvs_config::load(std::path::Path::new("/nonexistent/rvs.toml")).unwrap_err();
    assert_eq!((e[0].line, e[0].column), (1, 1));
    assert!(e[0]
        .to_string()
        .starts_with("/nonexistent/rvs.toml:1:1: cannot read the file"));
}

/// `match`: the xdp engine's classification of a firewall-mark service.
#[test]
fn fwmark_match_lists() {
    let fw = |m: &str| format!("engine = \"xdp\"\n[[service]]\nfwmark = 1\nmatch = {m}\n");
    let c = parse(
        &format!(
            "{}[[service]]\nfwmark = 2\nipv6 = true\nmatch = [\"udp:[2001:db8::]/64:53\", \"tcp:[2001:db8::1]:80-81\", \"tcp:[2001:db8:1::/48]:443\"]\n",
            fw(r#"["tcp:198.18.0.100:80", "tcp:198.18.0.100:443", "udp:198.18.0.0/24:0-65535"]"#)
        ),
        "f",
    )
    .unwrap();
    let m1 = c.matches_of(&ServiceKey::Fwmark {
        mark: 1,
        af: Af::Inet,
    });
    let shown: Vec<String> = m1.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        shown,
        [
            "tcp:198.18.0.100:80",
            "tcp:198.18.0.100:443",
            "udp:198.18.0.0/24:0-65535"
        ]
    );
    assert_eq!(m1[2].proto, Protocol::Udp);
    let m2 = c.matches_of(&ServiceKey::Fwmark {
        mark: 2,
        af: Af::Inet6,
    });
    let shown: Vec<String> = m2.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        shown,
        [
            "udp:[2001:db8::]/64:53",
            "tcp:[2001:db8::1]:80-81",
            "tcp:[2001:db8:1::]/48:443"
        ]
    );
    // What the file says is what it writes back.
    let again = parse(&rvs_config::to_toml(&c), "g").unwrap();
    assert_eq!(again.matches, c.matches);

    one(&fw(r#"["tcp:198.18.0.100"]"#), 4, 10, "write PROTO:ADDRESS");
    one(&fw(r#"["sctp:198.18.0.100:80"]"#), 4, 10, "not SCTP");
    one(
        &fw(r#"["icmp:198.18.0.100:80"]"#),
        4,
        10,
        "unknown protocol `icmp`",
    );
    one(
        &fw(r#"["tcp:198.18.0.1/24:80"]"#),
        4,
        10,
        "the network is tcp:198.18.0.0/24:80",
    );
    one(&fw(r#"["tcp:198.18.0.0/33:80"]"#), 4, 10, "0..=32");
    one(&fw(r#"["tcp:198.18.0.100:90-80"]"#), 4, 10, "is empty");
    one(&fw(r#"["tcp:198.18.0.100:65536"]"#), 4, 10, "not a port");
    one(&fw(r#"["tcp:2001:db8::1:80"]"#), 4, 10, "in brackets");
    one(
        &fw(r#"["tcp:[2001:db8::1]:80"]"#),
        4,
        10,
        "the service is IPv4",
    );
    one(
        &fw(r#"["tcp:198.18.0.100:80", "tcp:198.18.0.100:80"]"#),
        4,
        33,
        "listed twice",
    );
    one(&fw("[]"), 4, 9, "at least one entry");
    one(&fw("\"tcp:198.18.0.100:80\""), 4, 9, "must be an array");
    one(
        "[[service]]\nfwmark = 1\nmatch = [\"tcp:198.18.0.100:80\"]\n",
        3,
        1,
        "engine = \"xdp\"",
    );
    one(
        "engine = \"xdp\"\n[[service]]\ntcp = \"198.18.0.100:80\"\nmatch = [\"tcp:198.18.0.100:80\"]\n",
        4,
        1,
        "firewall-mark services",
    );
    // A packet gets one mark.
    one(
        &format!(
            "{}[[service]]\nfwmark = 2\nmatch = [\"tcp:198.18.0.0/16:443-450\"]\n",
            fw(r#"["tcp:198.18.0.100:400-443"]"#)
        ),
        7,
        10,
        "overlaps `tcp:198.18.0.100:400-443` of fwmark 1 (line 4)",
    );
    // 17 port ranges reach one address.
    let many: Vec<String> = (0..16)
        .map(|p| format!("\"udp:198.18.0.0/24:{p}\""))
        .collect();
    let e = errors(&fw(&format!(
        "[{}, \"udp:198.18.0.100:100\"]",
        many.join(", ")
    )));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].contains("17 port ranges apply to 198.18.0.100/32"),
        "{e:?}"
    );
    // An xdp fwmark service without match is accepted (the engine says it
    // cannot carry it), as `rvsctl config from-rules` writes them.
    assert!(parse("engine = \"xdp\"\n[[service]]\nfwmark = 1\n", "f").is_ok());
}

#[test]
fn tproxy_port_is_for_firewall_mark_and_port_zero_tcp_services() {
    one(
        &svc("tproxy_port = 15000", "address = \"10.0.0.2:80\""),
        3,
        15,
        "tproxy_port is for firewall-mark and port-0 TCP services",
    );
    one(
        "engine = \"xdp\"\n[[service]]\nfwmark = 7\ntproxy_port = 15000\n",
        4,
        15,
        "tproxy_port applies to the proxy engine",
    );
    one(
        "[[service]]\nfwmark = 7\ntproxy_port = 0\n",
        3,
        15,
        "tproxy_port must be 1..=65535",
    );
    let text = "[[service]]\nfwmark = 7\ntproxy_port = 15007\n\n\
                [[service]]\ntcp = \"10.0.0.1:0\"\npersistent = 60\ntproxy_port = 15000\n";
    let c = parse(text, "f").unwrap();
    let ports: Vec<Option<u16>> = c.services.iter().map(|s| s.tproxy_port).collect();
    assert_eq!(ports, [Some(15007), Some(15000)]);
    assert_eq!(
        parse(&rvs_config::to_toml(&c), "f").unwrap(),
        c,
        "written back"
    );
}
