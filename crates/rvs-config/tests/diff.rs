//! Reload diffs: the minimal requests, their order, and (property) that
//! applying them to a director loaded with the old file gives the table a
//! director loaded with the new file has, while every kept service and
//! real server keeps its identity and counters.

use proptest::prelude::*;
use rvs_config::{diff, engine_changes, parse, to_toml, Config, EngineChange, ProxyProtocol};
use rvs_core::{DestStore, ServiceKey};
use rvs_ctl::{Request, Response, Timeouts};
use rvs_director::{Director, DirectorOptions};

fn cfg(text: &str) -> Config {
    parse(text, "test.toml").unwrap_or_else(|e| panic!("{e:#?}\n{text}"))
}

const BASE: &str = r#"
[[service]]
tcp = "10.0.0.1:80"
scheduler = "wrr"
[[service.real_server]]
address = "10.0.0.2:80"
weight = 1
[[service.real_server]]
address = "10.0.0.3:80"
weight = 2

[[service]]
udp = "10.0.0.1:53"
scheduler = "rr"
[[service.real_server]]
address = "10.0.0.2:53"
"#;

fn key(s: &str) -> ServiceKey {
    let (proto, ep) = s.split_once(' ').unwrap();
    let (addr, port) = rvs_config::parse_endpoint(ep).unwrap();
    ServiceKey::Addr {
        proto: match proto {
            "tcp" => rvs_core::Protocol::Tcp,
            _ => rvs_core::Protocol::Udp,
        },
        addr,
        port: port.unwrap(),
    }
}

/// Requests as short strings, for readable assertions.
fn show(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .map(|r| match r {
            Request::AddService { key, config } => {
                format!("A {} {}", rvs_config::describe(key), config.scheduler)
            }
            Request::EditService { key, config } => {
                format!("E {} {}", rvs_config::describe(key), config.scheduler)
            }
            Request::DelService { key } => format!("D {}", rvs_config::describe(key)),
            Request::AddDest { service, dest } => format!(
                "a {} {} w{}",
                rvs_config::describe(service),
                rvs_config::format_endpoint(&dest.addr, dest.port),
                dest.weight
            ),
            Request::EditDest { service, dest } => format!(
                "e {} {} w{}",
                rvs_config::describe(service),
                rvs_config::format_endpoint(&dest.addr, dest.port),
                dest.weight
            ),
            Request::DelDest {
                service,
                addr,
                port,
            } => format!(
                "d {} {}",
                rvs_config::describe(service),
                rvs_config::format_endpoint(addr, *port)
            ),
            Request::SetTimeouts(t) => format!("set {} {} {}", t.tcp, t.tcp_fin, t.udp),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn no_change_no_requests() {
    let a = cfg(BASE);
    assert!(diff(&a, &a).is_empty());
    assert!(engine_changes(&a, &a).is_empty());
}

#[test]
fn loading_is_a_diff_from_nothing() {
    let a = cfg(&format!("[timeouts]\ntcp = 60\n{BASE}"));
    assert_eq!(
        show(&a.requests()),
        [
            "set 60 120 300",
            "A tcp 10.0.0.1:80 wrr",
            "a tcp 10.0.0.1:80 10.0.0.2:80 w1",
            "a tcp 10.0.0.1:80 10.0.0.3:80 w2",
            "A udp 10.0.0.1:53 rr",
            "a udp 10.0.0.1:53 10.0.0.2:53 w1",
        ]
    );
}

#[test]
fn only_a_weight_changed_gives_one_edit_dest() {
    let a = cfg(BASE);
    let b = cfg(&BASE.replace("weight = 2", "weight = 5"));
    assert_eq!(show(&diff(&a, &b)), ["e tcp 10.0.0.1:80 10.0.0.3:80 w5"]);
    // Back again.
    assert_eq!(show(&diff(&b, &a)), ["e tcp 10.0.0.1:80 10.0.0.3:80 w2"]);
}

#[test]
fn a_removed_service_is_one_del_service() {
    let a = cfg(BASE);
    let b = cfg(BASE.split("[[service]]\nudp").next().unwrap());
    assert_eq!(show(&diff(&a, &b)), ["D udp 10.0.0.1:53"]);
    // Removing a service with real servers does not delete them one by one.
    let b = cfg(&format!(
        "[[service]]\nudp{}",
        BASE.split("[[service]]\nudp").nth(1).unwrap()
    ));
    assert_eq!(show(&diff(&a, &b)), ["D tcp 10.0.0.1:80"]);
}

#[test]
fn a_scheduler_change_is_an_edit_not_a_re_add() {
    let a = cfg(BASE);
    let b = cfg(&BASE.replace(
        "scheduler = \"wrr\"",
        "scheduler = \"wlc\"\npersistent = 60",
    ));
    let d = diff(&a, &b);
    assert_eq!(show(&d), ["E tcp 10.0.0.1:80 wlc"]);
    let Request::EditService { config, .. } = &d[0] else {
        unreachable!()
    };
    assert!(config.is_persistent() && config.timeout == 60);
}

#[test]
fn a_new_port_is_a_different_real_server() {
    let a = cfg(BASE);
    let b = cfg(&BASE.replace("10.0.0.3:80", "10.0.0.3:8080"));
    assert_eq!(
        show(&diff(&a, &b)),
        [
            "d tcp 10.0.0.1:80 10.0.0.3:80",
            "a tcp 10.0.0.1:80 10.0.0.3:8080 w2"
        ]
    );
}

#[test]
fn order_is_deletions_then_edits_then_additions() {
    let a = cfg(BASE);
    let b = cfg(r#"
[timeouts]
udp = 30

[[service]]
tcp = "10.0.0.9:443"
[[service.real_server]]
address = "10.0.0.4:443"

[[service]]
tcp = "10.0.0.1:80"
scheduler = "rr"
[[service.real_server]]
address = "10.0.0.5:80"
[[service.real_server]]
address = "10.0.0.3:80"
weight = 7
"#);
    assert_eq!(
        show(&diff(&a, &b)),
        [
            "d tcp 10.0.0.1:80 10.0.0.2:80",
            "D udp 10.0.0.1:53",
            "set 900 120 30",
            "E tcp 10.0.0.1:80 rr",
            "e tcp 10.0.0.1:80 10.0.0.3:80 w7",
            "A tcp 10.0.0.9:443 wlc",
            "a tcp 10.0.0.9:443 10.0.0.4:443 w1",
            "a tcp 10.0.0.1:80 10.0.0.5:80 w1",
        ]
    );
}

#[test]
fn reordering_real_servers_changes_nothing() {
    let a = cfg(BASE);
    let b = cfg(&BASE.replace(
        "address = \"10.0.0.2:80\"\nweight = 1\n[[service.real_server]]\naddress = \"10.0.0.3:80\"\nweight = 2",
        "address = \"10.0.0.3:80\"\nweight = 2\n[[service.real_server]]\naddress = \"10.0.0.2:80\"\nweight = 1",
    ));
    assert_ne!(a, b);
    assert!(diff(&a, &b).is_empty());
}

#[test]
fn engine_changes_are_listed_apart() {
    let a = cfg(BASE);
    let b = cfg(&format!(
        "enable_schedulers = [\"twos\"]\n[proxy]\nworkers = 2\n[sysctl]\nexpire_nodest_conn = true\n{}",
        BASE.replace("scheduler = \"rr\"", "scheduler = \"rr\"\nproxy_protocol = \"v1\"")
            .replace("address = \"10.0.0.3:80\"", "address = \"10.0.0.3:80\"\nproxy_protocol = \"v2\"")
    ));
    assert!(diff(&a, &b).is_empty(), "none of this is in the table");
    let ch = engine_changes(&a, &b);
    assert_eq!(ch.len(), 6, "{ch:#?}");
    assert!(matches!(&ch[0], EngineChange::Proxy(p) if p.workers == 2));
    assert!(matches!(&ch[1], EngineChange::Sysctls(s) if s.expire_nodest_conn));
    assert_eq!(ch[2], EngineChange::Schedulers(vec!["twos".into()]));
    assert!(matches!(
        &ch[3],
        EngineChange::RealServerProxy {
            port: 80,
            proxy_protocol: ProxyProtocol::V2,
            ..
        }
    ));
    assert!(
        matches!(&ch[4], EngineChange::ServiceProxy { key: k, options } if *k == key("udp 10.0.0.1:53") && options.proxy_protocol == ProxyProtocol::V1)
    );
    assert!(matches!(
        &ch[5],
        EngineChange::RealServerProxy {
            port: 53,
            proxy_protocol: ProxyProtocol::V1,
            ..
        }
    ));
    // The service default reaches its real servers that have no override.
    let c = cfg(&BASE.replace(
        "scheduler = \"wrr\"",
        "scheduler = \"wrr\"\nproxy_protocol = \"v2\"",
    ));
    let ch = engine_changes(&a, &c);
    assert_eq!(ch.len(), 3, "{ch:#?}");
    assert!(!ch.iter().any(EngineChange::needs_restart));

    let x = cfg(&format!("engine = \"xdp\"\n{BASE}"));
    let ch = engine_changes(&a, &x);
    assert_eq!(
        ch,
        [EngineChange::Engine {
            from: rvs_config::Engine::Proxy,
            to: rvs_config::Engine::Xdp
        }]
    );
    assert!(ch[0].needs_restart());
}

// ---- property: diff(old, new) applied to old gives new ----

fn director() -> Director {
    Director::new(DirectorOptions {
        schedulers: Box::new(rvs_sched::new_scheduler),
        interfaces: Box::new(|_| None),
        local_broadcast: Box::new(|_| false),
        sysctls: Default::default(),
        conn_seed: 1,
    })
}

fn apply(d: &mut Director, reqs: &[Request]) {
    for r in reqs {
        assert_eq!(d.apply(r, 0), Response::Ok, "{r:?}");
    }
}

/// The table as a sorted list: (service, config, sorted real servers).
fn snapshot(d: &Director) -> (Vec<String>, Timeouts) {
    let mut v: Vec<String> = d
        .table()
        .services()
        .iter()
        .map(|s| {
            let mut dests: Vec<String> =
                s.dests.iter().map(|x| format!("{:?}", x.config)).collect();
            dests.sort();
            format!("{:?} {:?} {dests:?}", s.key, s.config)
        })
        .collect();
    v.sort();
    (v, d.timeouts())
}

/// A small, always valid configuration drawn from a few keys and values so
/// that two draws overlap.
fn arb_config() -> impl Strategy<Value = Config> {
    let keys = [
        "tcp = \"10.0.0.1:80\"",
        "udp = \"10.0.0.1:80\"",
        "tcp = \"10.0.0.2:443\"",
        "fwmark = 3",
    ];
    let svc = (
        0..keys.len(),
        prop::sample::select(vec!["rr", "wrr", "wlc", "sh", "mh"]),
        prop::option::of(prop::sample::select(vec![60u32, 360])),
        prop::collection::vec((1u8..6, 0u16..2, 0i32..4, prop::option::of(0u32..3)), 0..5),
    );
    (prop::collection::vec(svc, 0..4), prop::option::of(1u32..5)).prop_map(move |(svcs, tcp)| {
        let mut text = String::new();
        if let Some(t) = tcp {
            text.push_str(&format!("[timeouts]\ntcp = {}\n", t * 100));
        }
        let mut used_keys = std::collections::HashSet::new();
        for (k, sched, pers, rss) in svcs {
            if !used_keys.insert(k) {
                continue;
            }
            text.push_str(&format!(
                "[[service]]\n{}\nscheduler = \"{sched}\"\n",
                keys[k]
            ));
            if let Some(p) = pers {
                text.push_str(&format!("persistent = {p}\n"));
            }
            let mut used = std::collections::HashSet::new();
            for (host, port, weight, uthr) in rss {
                if !used.insert((host, port)) {
                    continue;
                }
                text.push_str(&format!(
                    "[[service.real_server]]\naddress = \"10.0.1.{host}:{}\"\nweight = {weight}\n",
                    8000 + port
                ));
                if let Some(u) = uthr {
                    text.push_str(&format!("u_threshold = {u}\n"));
                }
            }
        }
        cfg(&text)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn diff_turns_old_into_new(old in arb_config(), new in arb_config()) {
        let mut d = director();
        apply(&mut d, &old.requests());
        // Give every real server and service some traffic to keep.
        let ids: Vec<_> = d.table().services().iter().flat_map(|s| s.dests.iter().map(|x| x.id)).collect();
        for id in &ids {
            d.table_mut().count_conn(*id);
        }
        let before: Vec<(ServiceKey, std::net::IpAddr, u16, rvs_core::DestId)> = d
            .table()
            .services()
            .iter()
            .flat_map(|s| s.dests.iter().map(move |x| (s.key, x.config.addr, x.config.port, x.id)))
            .collect();
        let before_svc: Vec<(ServiceKey, u64)> = d
            .table()
            .services()
            .iter()
            .map(|s| (s.key, s.stats.total.conns))
            .collect();

        let reqs = diff(&old, &new);
        apply(&mut d, &reqs);

        let mut fresh = director();
        apply(&mut fresh, &new.requests());
        prop_assert_eq!(snapshot(&d), snapshot(&fresh));

        // Everything kept keeps its identity and counters.
        for (k, addr, port, id) in before {
            let kept = new.service(&k).and_then(|s| s.real_server(&addr, port)).is_some();
            if kept {
                let s = d.table().service(&k).unwrap();
                let x = &s.dests[s.dest_index(&addr, port).unwrap()];
                prop_assert_eq!(x.id, id);
                prop_assert_eq!(x.stats.total.conns, 1);
            }
        }
        for (k, conns) in before_svc {
            if new.service(&k).is_some() {
                prop_assert_eq!(d.table().service(&k).unwrap().stats.total.conns, conns);
            }
        }
        // Minimal: the same diff again is empty, and nothing kept is
        // deleted or added.
        for r in &reqs {
            match r {
                Request::DelService { key } => prop_assert!(new.service(key).is_none()),
                Request::AddService { key, .. } => prop_assert!(old.service(key).is_none()),
                Request::DelDest { service, addr, port } => {
                    prop_assert!(new.service(service).unwrap().real_server(addr, *port).is_none())
                }
                Request::AddDest { service, dest } => prop_assert!(old
                    .service(service)
                    .and_then(|s| s.real_server(&dest.addr, dest.port))
                    .is_none()),
                _ => {}
            }
        }
        prop_assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn toml_round_trips(c in arb_config()) {
        prop_assert_eq!(parse(&to_toml(&c), "rt").unwrap(), c);
    }
}
