//! The client's address reaching real servers: PROXY protocol v1 and v2
//! headers (per service, overridden per real server) parsed by the real
//! server, and transparent mode where this process may use it.

mod common;
use common::*;
use rvs_proxy::{ClientAddressing, EngineConfig, ProxyOptions, ProxyProtocol};

fn pp(v: ProxyProtocol) -> ClientAddressing {
    ClientAddressing {
        proxy_protocol: v,
        transparent: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_per_service_and_per_real_server() {
    let vip = free_addr("127.0.0.1");
    let rs1 = tcp_rs("rs1", "127.0.0.1", Mode::ProxyEcho).await;
    let rs2 = tcp_rs("rs2", "127.0.0.1", Mode::ProxyEcho).await;
    let mut options = ProxyOptions::default();
    options.services.insert(tcp(vip), pp(ProxyProtocol::V1));
    options
        .real_servers
        .insert((tcp(vip), rs2.addr), pp(ProxyProtocol::V2));
    let lvs = Lvs::new(EngineConfig {
        workers: 2,
        options,
        ..Default::default()
    });
    lvs.add_service(tcp(vip), "rr");
    lvs.add_rs(tcp(vip), rs1.addr, 1);
    lvs.add_rs(tcp(vip), rs2.addr, 1);
    for _ in 0..2 {
        for (name, version) in [("rs2", "v2"), ("rs1", "v1")] {
            let s = tokio::net::TcpStream::connect(vip).await.unwrap();
            let me = s.local_addr().unwrap();
            let mut r = tokio::io::BufReader::new(s);
            let mut line = String::new();
            tokio::io::AsyncBufReadExt::read_line(&mut r, &mut line)
                .await
                .unwrap();
            assert_eq!(line.trim_end(), format!("{name} {version}:{me} {vip}"));
        }
    }
    // The header is not client traffic: no client bytes were counted.
    eventually(3, "closed", || lvs.engine().connections() == 0).await;
    assert_eq!(lvs.service(tcp(vip)).stats.inbytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_v2_over_ipv6_and_option_changes_apply_to_new_connections() {
    let vip = free_addr("::1");
    let rs = tcp_rs("rs6", "::1", Mode::ProxyEcho).await;
    let lvs = Lvs::new(EngineConfig {
        workers: 2,
        options: ProxyOptions {
            default: pp(ProxyProtocol::V2),
            ..Default::default()
        },
        ..Default::default()
    });
    lvs.add_service(tcp(vip), "rr");
    lvs.add_rs(tcp(vip), rs.addr, 1);
    let line = fetch(vip).await;
    assert!(line.starts_with("rs6 v2:[::1]:"), "{line}");
    assert!(line.ends_with(&format!(" {vip}")), "{line}");
    lvs.engine().set_options(ProxyOptions {
        default: pp(ProxyProtocol::V1),
        ..Default::default()
    });
    eventually(3, "v1 after set_options", || {
        lvs.engine().options().default.proxy_protocol == ProxyProtocol::V1
    })
    .await;
    // Workers receive the options through their command queue.
    let mut line = String::new();
    for _ in 0..50 {
        line = fetch(vip).await;
        if line.starts_with("rs6 v1:") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(line.starts_with("rs6 v1:[::1]:"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_mode_connects_from_the_clients_address_or_is_refused() {
    let transparent = ProxyOptions {
        default: ClientAddressing {
            proxy_protocol: ProxyProtocol::None,
            transparent: true,
        },
        ..Default::default()
    };
    if !rvs_proxy::privileged() {
        let director = std::sync::Arc::new(std::sync::Mutex::new(rvs_director::Director::new(
            rvs_director::DirectorOptions {
                schedulers: Box::new(rvs_sched::new_scheduler),
                interfaces: Box::new(|_| None),
                local_broadcast: Box::new(|_| false),
                sysctls: Default::default(),
                conn_seed: 1,
            },
        )));
        let e = rvs_proxy::Engine::start(
            director,
            EngineConfig {
                options: transparent,
                ..Default::default()
            },
            std::time::Instant::now(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs root"), "{e}");
        return;
    }
    let vip = free_addr("127.0.0.1");
    let rs = tcp_rs("rs1", "127.0.0.1", Mode::Peer).await;
    let lvs = Lvs::new(EngineConfig {
        workers: 1,
        options: transparent,
        ..Default::default()
    });
    lvs.add_service(tcp(vip), "rr");
    lvs.add_rs(tcp(vip), rs.addr, 1);
    // Without transparency the real server would see 127.0.0.1.
    let (_s, line) = open_from(Some("127.0.0.9"), vip).await;
    assert!(line.starts_with("rs1 127.0.0.9:"), "{line}");
}
