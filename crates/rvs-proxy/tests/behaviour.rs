//! LVS behaviour carried by the engine, each through real sockets:
//! persistence, thresholds, drain, live changes, real-server removal,
//! IPv6 with port mapping, statistics, refusals.

mod common;
use common::*;
use rvs_conn::tcp;
use rvs_core::service::SVC_F_PERSISTENT;
use rvs_ctl::Request;
use rvs_proxy::EngineConfig;
use std::time::Duration;

fn config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_keeps_a_client_on_its_real_server_and_netmask_groups_clients() {
    let lvs = Lvs::new(config());
    // Every worker relays through io_uring on this kernel, unless told not to.
    let epoll = std::env::var("RVS_TEST_RELAY").is_ok_and(|r| r == "epoll");
    assert_eq!(lvs.engine().io_uring_workers(), if epoll { 0 } else { 2 });
    let rss = [
        tcp_rs("rs1", "127.0.0.1", Mode::Close).await,
        tcp_rs("rs2", "127.0.0.1", Mode::Close).await,
        tcp_rs("rs3", "127.0.0.1", Mode::Close).await,
    ];
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service_with(key, "rr", |c| {
        c.flags |= SVC_F_PERSISTENT;
        c.timeout = 60;
    });
    for rs in &rss {
        lvs.add_rs(key, rs.addr, 1);
    }
    // rr alone would rotate rs3, rs2, rs1; the template pins 127.0.0.1.
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(open_from(Some("127.0.0.1"), vip).await.1);
    }
    assert_eq!(first, ["rs3"; 5]);
    // Another client address gets its own template: the next server.
    for _ in 0..3 {
        assert_eq!(open_from(Some("127.0.0.2"), vip).await.1, "rs2");
    }
    let templates: Vec<_> = lvs.conns().into_iter().filter(|c| c.cport == 0).collect();
    assert_eq!(templates.len(), 2, "{templates:?}");
    assert!(
        templates.iter().all(|t| t.state == "ASSURED"),
        "{templates:?}"
    );

    // -M 255.255.255.0: 127.0.0.3 and 127.0.0.4 share one template.
    let vip2 = free_addr("127.0.0.1");
    let key2 = tcp(vip2);
    lvs.add_service_with(key2, "rr", |c| {
        c.flags |= SVC_F_PERSISTENT;
        c.timeout = 60;
        c.netmask = 0xffff_ff00;
    });
    for rs in &rss {
        lvs.add_rs(key2, rs.addr, 1);
    }
    let a = open_from(Some("127.0.0.3"), vip2).await.1;
    let b = open_from(Some("127.0.0.4"), vip2).await.1;
    let c = open_from(Some("127.0.1.4"), vip2).await.1;
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upper_threshold_stops_new_connections_until_the_lower_one() {
    let lvs = Lvs::new(config());
    // Entries of closed connections linger in TIME_WAIT and count towards
    // the threshold (active + inactive), as in Linux; shorten that wait.
    lvs.director.lock().unwrap().tables_mut().1.timeouts.tcp[tcp::TIME_WAIT as usize] = 300;
    let rs = tcp_rs("rs1", "127.0.0.1", Mode::Hold).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "wlc");
    lvs.add_rs_with(key, rs.addr, |d| {
        d.u_threshold = 3;
        d.l_threshold = 2;
    });
    let mut held = Vec::new();
    for _ in 0..3 {
        let (s, name) = open(vip).await;
        assert_eq!(name, "rs1");
        held.push(s);
    }
    // OVERLOAD: the only real server takes nothing new.
    assert_eq!(open(vip).await.1, "<refused>");
    assert_eq!(rs.accepted(), 3);
    // One closed: 2 connections left, not below the lower threshold.
    held.pop();
    eventually(5, "the closed entry expires", || {
        lvs.counters(key)[0].1 + lvs.counters(key)[0].2 == 2
    })
    .await;
    assert_eq!(open(vip).await.1, "<refused>");
    // Below the lower threshold: OVERLOAD clears.
    held.pop();
    eventually(5, "the second closed entry expires", || {
        lvs.counters(key)[0].1 + lvs.counters(key)[0].2 == 1
    })
    .await;
    assert_eq!(open(vip).await.1, "rs1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_zero_drains_and_scheduler_change_keeps_connections() {
    let lvs = Lvs::new(config());
    let a = tcp_rs("rsA", "127.0.0.1", Mode::Echo).await;
    let b = tcp_rs("rsB", "127.0.0.1", Mode::Echo).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    lvs.add_rs(key, a.addr, 1);
    lvs.add_rs(key, b.addr, 1);
    let (s1, n1) = open(vip).await;
    let (s2, n2) = open(vip).await;
    let (mut s1, mut s2) = (s1.unwrap(), s2.unwrap());
    assert_eq!((n1.as_str(), n2.as_str()), ("rsB", "rsA"));
    // Drain rsA: its connection goes on, new ones avoid it.
    lvs.edit_rs(key, a.addr, |d| d.weight = 0);
    for _ in 0..4 {
        assert_eq!(fetch(vip).await, "rsB");
    }
    assert_eq!(
        roundtrip(&mut s2, "still there").await.unwrap(),
        "still there"
    );
    // -E to another scheduler: established connections are untouched.
    lvs.ok(Request::EditService {
        key,
        config: rvs_core::ServiceConfig {
            scheduler: "wlc".into(),
            ..rvs_core::ServiceConfig::defaults(key.af())
        },
    });
    assert_eq!(roundtrip(&mut s1, "after -E").await.unwrap(), "after -E");
    assert_eq!(roundtrip(&mut s2, "after -E").await.unwrap(), "after -E");
    assert_eq!(fetch(vip).await, "rsB");
    // Both held connections are ESTABLISHED in -L -c and ActiveConn.
    eventually(5, "two ESTABLISHED entries, two ActiveConn", || {
        let active: u32 = lvs.counters(key).iter().map(|c| c.1).sum();
        let est = lvs
            .conns()
            .into_iter()
            .filter(|c| c.state == "ESTABLISHED")
            .count();
        active == 2 && est == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_real_server_follows_expire_nodest_conn() {
    for expire in [false, true] {
        let lvs = Lvs::with_sysctls(
            config(),
            rvs_conn::Sysctls {
                expire_nodest_conn: expire,
                ..Default::default()
            },
        );
        let rs = tcp_rs("rs1", "127.0.0.1", Mode::Echo).await;
        let other = tcp_rs("rs2", "127.0.0.1", Mode::Echo).await;
        let vip = free_addr("127.0.0.1");
        let key = tcp(vip);
        lvs.add_service(key, "rr");
        lvs.add_rs(key, other.addr, 1);
        lvs.add_rs(key, rs.addr, 1);
        let (s, name) = open(vip).await;
        assert_eq!(name, "rs1");
        let mut s = s.unwrap();
        lvs.ok(Request::DelDest {
            service: key,
            addr: rs.addr.ip(),
            port: rs.addr.port(),
        });
        if expire {
            assert!(closed_by_peer(&mut s, 3).await, "connection closed at once");
            eventually(3, "no connection left", || lvs.engine().connections() == 0).await;
        } else {
            assert_eq!(roundtrip(&mut s, "kept").await.unwrap(), "kept");
            assert_eq!(lvs.engine().connections(), 1);
        }
        assert_eq!(fetch(vip).await, "rs2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_with_port_mapping_and_exact_statistics() {
    let lvs = Lvs::new(config());
    let rs = tcp_rs("rs6", "::1", Mode::Close).await;
    let vip = free_addr("::1");
    assert_ne!(vip.port(), rs.addr.port());
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    lvs.add_rs(key, rs.addr, 1);
    for _ in 0..5 {
        assert_eq!(fetch(vip).await, "rs6");
    }
    eventually(5, "all five closed", || lvs.engine().connections() == 0).await;
    let svc = lvs.service(key);
    let st = svc.stats;
    assert_eq!(st.conns, 5);
    // One request packet (the SYN) per connection, no client payload;
    // "rs6\n" from the real server each time.
    assert_eq!((st.inpkts, st.inbytes), (5, 0));
    assert_eq!(st.outbytes, 20);
    assert!(st.outpkts >= 5);
    assert_eq!(svc.dests[0].stats, st);
    let c = &lvs.conns()[0];
    assert_eq!((c.vaddr, c.vport), (vip.ip(), vip.port()));
    assert_eq!((c.daddr, c.dport), (rs.addr.ip(), rs.addr.port()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_bytes_are_counted_within_a_flush_interval() {
    let lvs = Lvs::new(config());
    let rs = tcp_rs("rs1", "127.0.0.1", Mode::Echo).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    lvs.add_rs(key, rs.addr, 1);
    let (s, _) = open(vip).await;
    let mut s = s.unwrap();
    for i in 0..10 {
        roundtrip(&mut s, &format!("message {i:02}")).await.unwrap();
    }
    // 10 x "message NN\n" = 110 bytes, each read separately (one round trip
    // at a time); counted while the connection is still open.
    eventually(3, "counts flushed", || {
        let st = lvs.service(key).stats;
        st.inbytes == 110 && st.inpkts == 11 && st.outbytes == 4 + 110
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_real_server_resets_and_deleting_the_service_closes_the_listener() {
    let lvs = Lvs::new(config());
    let rs = tcp_rs("rs1", "127.0.0.1", Mode::Echo).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    assert_eq!(open(vip).await.1, "<refused>");
    lvs.add_rs(key, rs.addr, 1);
    let (s, name) = open(vip).await;
    assert_eq!(name, "rs1");
    let mut s = s.unwrap();
    lvs.ok(Request::DelService { key });
    // New connections find nothing listening; the established one goes on.
    let refused = tokio::net::TcpStream::connect(vip).await;
    assert!(refused.is_err(), "listener closed");
    assert_eq!(roundtrip(&mut s, "alive").await.unwrap(), "alive");
    // And the service comes back with -A.
    lvs.add_service(key, "rr");
    lvs.add_rs(key, rs.addr, 1);
    assert_eq!(fetch(vip).await, "rs1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admit_refuses_what_needs_the_xdp_engine_or_root() {
    let lvs = Lvs::new(config());
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    let mut dr = rvs_core::DestConfig::new("127.0.0.1".parse().unwrap(), 80);
    let req = Request::AddDest {
        service: key,
        dest: dr.clone(),
    };
    let e = lvs.apply(req).unwrap_err();
    assert!(e.contains("xdp engine") && e.contains("-g"), "{e}");
    dr.fwd = rvs_core::FwdMethod::Tunnel;
    let e = lvs
        .apply(Request::AddDest {
            service: key,
            dest: dr,
        })
        .unwrap_err();
    assert!(e.contains("xdp engine") && e.contains("-i"), "{e}");
    let sctp = rvs_core::ServiceKey::Addr {
        proto: rvs_core::Protocol::Sctp,
        addr: vip.ip(),
        port: vip.port(),
    };
    let e = lvs
        .apply(Request::AddService {
            key: sctp,
            config: rvs_core::ServiceConfig::defaults(rvs_core::Af::Inet),
        })
        .unwrap_err();
    assert!(e.contains("SCTP"), "{e}");
    // An address another program holds is refused before the table changes.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let e = lvs
        .apply(Request::AddService {
            key: tcp(busy.local_addr().unwrap()),
            config: rvs_core::ServiceConfig::defaults(rvs_core::Af::Inet),
        })
        .unwrap_err();
    assert!(e.contains("cannot listen"), "{e}");
    assert_eq!(lvs.director.lock().unwrap().table().len(), 1);
    let fwm = rvs_core::ServiceKey::Fwmark {
        mark: 7,
        af: rvs_core::Af::Inet,
    };
    let r = lvs.apply(Request::AddService {
        key: fwm,
        config: rvs_core::ServiceConfig::defaults(rvs_core::Af::Inet),
    });
    if lvs.engine().privileged() {
        r.unwrap();
        assert!(lvs
            .engine()
            .tproxy_ports()
            .iter()
            .any(|(k, p)| *k == fwm && *p != 0));
    } else {
        assert!(r.unwrap_err().contains("TPROXY"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_relay_methods_carry_a_large_transfer_exactly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for relay in [rvs_proxy::RelayMethod::Copy, rvs_proxy::RelayMethod::Splice] {
        let lvs = Lvs::new(EngineConfig {
            workers: 2,
            relay,
            ..Default::default()
        });
        let rs = tcp_rs("rs1", "127.0.0.1", Mode::Echo).await;
        let vip = free_addr("127.0.0.1");
        let key = tcp(vip);
        lvs.add_service(key, "rr");
        lvs.add_rs(key, rs.addr, 1);
        let (s, _) = open(vip).await;
        let s = s.unwrap().into_inner();
        let (mut r, mut w) = s.into_split();
        const N: usize = 8 << 20;
        let data: Vec<u8> = (0..N).map(|i| (i * 7 % 251) as u8).collect();
        let expect = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::with_capacity(N);
        tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut got))
            .await
            .expect("transfer within 30 s")
            .unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), N, "{relay:?}");
        assert!(got == expect, "{relay:?}: bytes differ");
        eventually(5, "counted", || {
            let st = lvs.service(key).stats;
            st.inbytes == N as u64 && st.outbytes == N as u64 + 4
        })
        .await;
        eventually(5, "closed", || lvs.engine().connections() == 0).await;
    }
}
