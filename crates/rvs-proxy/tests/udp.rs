//! UDP services: flows scheduled once and kept by their entry, expiry by
//! the UDP timeout, one-packet scheduling, replies from the virtual
//! address, and the PROXY v2 header on datagrams.

mod common;
use common::*;
use rvs_core::service::SVC_F_ONEPACKET;
use rvs_ctl::{Request, Timeouts};
use rvs_proxy::{ClientAddressing, EngineConfig, ProxyOptions, ProxyProtocol};
use tokio::net::UdpSocket;

fn config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        ..Default::default()
    }
}

async fn three(lvs: &Lvs, vip: std::net::SocketAddr) -> Vec<Rs> {
    let mut v = Vec::new();
    for n in ["rs1", "rs2", "rs3"] {
        let rs = udp_rs(n, "127.0.0.1").await;
        lvs.add_rs(udp(vip), rs.addr, 1);
        v.push(rs);
    }
    v
}

async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_flow_is_scheduled_once_and_stays_on_its_real_server() {
    let lvs = Lvs::new(config());
    let vip = free_addr("127.0.0.1");
    lvs.add_service(udp(vip), "rr");
    let _rss = three(&lvs, vip).await;
    let clients = [client().await, client().await, client().await];
    let mut names = Vec::new();
    for c in &clients {
        names.push(ask(c, vip, "hello").await);
    }
    assert_eq!(names, ["rs3 hello", "rs2 hello", "rs1 hello"]);
    for _ in 0..3 {
        for (c, n) in clients.iter().zip(&names) {
            assert_eq!(&ask(c, vip, "hello").await, n);
        }
    }
    let entries = lvs.conns();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(entries.iter().all(|e| e.state == "UDP"));
    // Every datagram counted: 12 requests and 12 replies of "rsN hello".
    eventually(3, "counts flushed", || {
        let st = lvs.service(udp(vip)).stats;
        (st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes) == (3, 12, 12, 60, 108)
    })
    .await;
    // UDP entries are never active.
    assert!(lvs.counters(udp(vip)).iter().all(|c| c.1 == 0 && c.2 == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_ends_with_its_entry_after_the_udp_timeout() {
    let lvs = Lvs::new(config());
    let vip = free_addr("127.0.0.1");
    lvs.add_service(udp(vip), "rr");
    let _rss = three(&lvs, vip).await;
    lvs.ok(Request::SetTimeouts(Timeouts {
        tcp: 0,
        tcp_fin: 0,
        udp: 1,
    }));
    let c = client().await;
    assert_eq!(ask(&c, vip, "a").await, "rs3 a");
    assert_eq!(ask(&c, vip, "b").await, "rs3 b");
    eventually(5, "entry expired and flow closed", || {
        lvs.conns().is_empty() && lvs.engine().connections() == 0
    })
    .await;
    // The same client is a new flow now: scheduled afresh.
    assert_eq!(ask(&c, vip, "c").await, "rs2 c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_packet_scheduling_schedules_every_datagram() {
    let lvs = Lvs::new(config());
    let vip = free_addr("127.0.0.1");
    lvs.add_service_with(udp(vip), "rr", |c| c.flags |= SVC_F_ONEPACKET);
    let rss = three(&lvs, vip).await;
    let c = client().await;
    let mut got = Vec::new();
    for i in 0..6 {
        got.push(ask(&c, vip, &i.to_string()).await);
    }
    assert_eq!(got, ["rs3 0", "rs2 1", "rs1 2", "rs3 3", "rs2 4", "rs1 5"]);
    // No entry outlives its datagram.
    assert!(lvs.conns().is_empty());
    assert!(rss.iter().all(|r| r.accepted() == 2));
    eventually(3, "reply counts flushed", || {
        let st = lvs.service(udp(vip)).stats;
        (st.conns, st.inpkts, st.outpkts) == (6, 6, 6)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_v2_precedes_every_datagram() {
    let vip = free_addr("127.0.0.1");
    let mut options = ProxyOptions::default();
    options.services.insert(
        udp(vip),
        ClientAddressing {
            proxy_protocol: ProxyProtocol::V2,
            transparent: false,
        },
    );
    let lvs = Lvs::new(EngineConfig {
        options,
        ..config()
    });
    lvs.add_service(udp(vip), "rr");
    let rs = udp_rs("rs1", "127.0.0.1").await;
    lvs.add_rs(udp(vip), rs.addr, 1);
    let c = client().await;
    let me = c.local_addr().unwrap();
    for m in ["x", "y"] {
        assert_eq!(ask(&c, vip, m).await, format!("rs1 v2dgram:{me} {m}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_udp_with_port_mapping() {
    let lvs = Lvs::new(config());
    let vip = free_addr("::1");
    lvs.add_service(udp(vip), "rr");
    let rs = udp_rs("rs6", "::1").await;
    lvs.add_rs(udp(vip), rs.addr, 1);
    let c = UdpSocket::bind("[::1]:0").await.unwrap();
    assert_eq!(ask(&c, vip, "q").await, "rs6 q");
}
