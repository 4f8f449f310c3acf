//! Property tests: after any sequence of packets, proxy events, real-server
//! edits and deletions, sysctl changes and time, every real server's
//! counters equal what the table holds, every template's control count is
//! right, and once everything has expired all counters are back to zero.

mod common;

use common::*;
use proptest::prelude::*;
use rvs_conn::conn::{CONN_F_INACTIVE, CONN_F_TEMPLATE};
use rvs_conn::{tcp, Packet, ProxyEvent, Transport};
use rvs_core::service::SVC_F_ONEPACKET;
use rvs_core::{DestId, DestStore, FwdMethod, Protocol, ServiceKey, SEC};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone)]
enum Op {
    Tcp { client: u8, port: u8, flags: u8 },
    TcpReply { client: u8, port: u8, flags: u8 },
    Udp { client: u8, port: u8, reply: bool },
    Proxy { client: u8, port: u8, ev: u8 },
    DelDest { svc: u8, rs: u8 },
    AddDest { svc: u8, rs: u8, fwd: u8, upper: u8 },
    Weight { svc: u8, rs: u8, w: u8 },
    Sysctl { which: u8, on: bool },
    Flush,
    Wait { secs: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop::sample::select(vec![
        tcp::SYN,
        tcp::SYN | tcp::ACK,
        tcp::ACK,
        tcp::ACK | tcp::PSH,
        tcp::FIN | tcp::ACK,
        tcp::RST,
        tcp::RST | tcp::ACK,
        0,
    ]);
    prop_oneof![
        4 => (0..6u8, 0..3u8, flags.clone()).prop_map(|(client, port, flags)| Op::Tcp { client, port, flags }),
        3 => (0..6u8, 0..3u8, flags).prop_map(|(client, port, flags)| Op::TcpReply { client, port, flags }),
        2 => (0..6u8, 0..3u8, any::<bool>()).prop_map(|(client, port, reply)| Op::Udp { client, port, reply }),
        1 => (0..6u8, 0..3u8, 0..6u8).prop_map(|(client, port, ev)| Op::Proxy { client, port, ev }),
        1 => (0..4u8, 1..4u8).prop_map(|(svc, rs)| Op::DelDest { svc, rs }),
        1 => (0..4u8, 1..4u8, 0..3u8, 0..4u8).prop_map(|(svc, rs, fwd, upper)| Op::AddDest { svc, rs, fwd, upper }),
        1 => (0..4u8, 1..4u8, 0..3u8).prop_map(|(svc, rs, w)| Op::Weight { svc, rs, w }),
        1 => (0..5u8, any::<bool>()).prop_map(|(which, on)| Op::Sysctl { which, on }),
        1 => Just(Op::Flush),
        3 => (0..400u16).prop_map(|secs| Op::Wait { secs }),
    ]
}

/// Service `i`: 0 TCP:80 plain, 1 TCP:81 persistent, 2 UDP:53 one-packet
/// persistent, 3 UDP:54 plain.
fn svc_key(i: u8) -> ServiceKey {
    match i % 4 {
        0 => tcp_svc(80),
        1 => tcp_svc(81),
        2 => udp_svc(53),
        _ => udp_svc(54),
    }
}

fn add_services(d: &mut Director) {
    d.add_service(tcp_svc(80), "wlc", 0, None);
    d.add_service(tcp_svc(81), "rr", 30, None);
    d.add_service(udp_svc(53), "rr", 20, None);
    d.edit_service(udp_svc(53), |c| c.flags |= SVC_F_ONEPACKET);
    d.add_service(udp_svc(54), "lc", 0, None);
    for s in 0..4 {
        for r in 1..=3 {
            let port = svc_key(s).port();
            d.add_dest(svc_key(s), rs(r), port);
        }
    }
}

/// Checks the counters of every real server ever seen against the table.
fn check_counts(d: &mut Director, seen: &BTreeSet<DestId>) {
    let mut want: HashMap<DestId, (u32, u32, u32)> = HashMap::new();
    let mut controls: HashMap<rvs_conn::ConnId, u32> = HashMap::new();
    for e in d.conns.iter() {
        if let Some(c) = d.conns.control_of(e.id) {
            *controls.entry(c).or_default() += 1;
        }
        let Some(id) = e.dest else { continue };
        let w = want.entry(id).or_default();
        if e.flags & CONN_F_TEMPLATE != 0 {
            w.2 += 1;
        } else if e.flags & CONN_F_INACTIVE != 0 {
            w.1 += 1;
        } else {
            w.0 += 1;
        }
    }
    for e in d.conns.iter() {
        let n = d.conns.get(e.id).unwrap().n_control();
        assert_eq!(
            n,
            controls.get(&e.id).copied().unwrap_or(0),
            "n_control of {e:?}"
        );
    }
    for id in seen {
        if let Some(dest) = d.services.dest_mut(*id) {
            let got = (dest.activeconns, dest.inactconns, dest.persistconns);
            assert_eq!(
                got,
                want.get(id).copied().unwrap_or_default(),
                "counters of {id:?}"
            );
        }
    }
}

fn run(ops: &[Op]) {
    let mut d = Director::new();
    add_services(&mut d);
    let mut seen: BTreeSet<DestId> = BTreeSet::new();
    let mut now = 0u64;
    let cl = |c: u8| client(10 + c);
    for op in ops {
        now += 7;
        for s in d.services.services() {
            seen.extend(s.dests.iter().map(|x| x.id));
        }
        match *op {
            Op::Tcp {
                client,
                port,
                flags,
            } => {
                let key = svc_key(port % 2);
                let vport = key.port();
                let p = Packet::new(
                    Protocol::Tcp,
                    cl(client),
                    1000 + port as u16,
                    rvs_core_vip(),
                    vport,
                );
                let _ = d.request(key, &p, Transport::Tcp(flags), 60, now);
            }
            Op::TcpReply {
                client,
                port,
                flags,
            } => {
                let key = svc_key(port % 2);
                let c = (cl(client), 1000 + port as u16);
                if let Some(id) =
                    d.conns
                        .lookup_in(Protocol::Tcp, c.0, c.1, rvs_core_vip(), key.port())
                {
                    let e = d.conns.get(id).unwrap();
                    let from = if e.fwd() == FwdMethod::Masq {
                        (e.daddr(), e.dport())
                    } else {
                        (e.vaddr(), e.vport())
                    };
                    assert!(d
                        .reply(Protocol::Tcp, from, c, Transport::Tcp(flags), 60, now)
                        .is_some());
                }
            }
            Op::Udp {
                client,
                port,
                reply,
            } => {
                let key = svc_key(2 + port % 2);
                let c = (cl(client), 2000 + port as u16);
                let p = Packet::new(Protocol::Udp, c.0, c.1, rvs_core_vip(), key.port());
                if let Ok(info) = d.request(key, &p, Transport::Udp, 40, now) {
                    if reply {
                        d.reply(
                            Protocol::Udp,
                            (info.daddr, info.dport),
                            c,
                            Transport::Udp,
                            40,
                            now,
                        );
                    }
                }
            }
            Op::Proxy { client, port, ev } => {
                let key = svc_key(port % 2);
                let c = (cl(client), 1000 + port as u16);
                if let Some(id) =
                    d.conns
                        .lookup_in(Protocol::Tcp, c.0, c.1, rvs_core_vip(), key.port())
                {
                    let ev = [
                        ProxyEvent::Established,
                        ProxyEvent::ClientFin,
                        ProxyEvent::ServerFin,
                        ProxyEvent::ClientReset,
                        ProxyEvent::ServerReset,
                        ProxyEvent::Closed,
                    ][ev as usize];
                    d.conns.proxy_event(id, ev, now, &mut d.services);
                }
            }
            Op::DelDest { svc, rs: r } => {
                let key = svc_key(svc);
                if d.services
                    .service(&key)
                    .and_then(|s| s.dest_index(&rs(r), key.port()))
                    .is_some()
                {
                    d.del_dest(key, rs(r), key.port(), now);
                }
            }
            Op::AddDest {
                svc,
                rs: r,
                fwd,
                upper,
            } => {
                let key = svc_key(svc);
                let exists = d
                    .services
                    .service(&key)
                    .map(|s| s.dest_index(&rs(r), key.port()).is_some());
                if exists == Some(false) {
                    d.add_dest_with(key, rs(r), key.port(), |c| {
                        c.fwd =
                            [FwdMethod::Masq, FwdMethod::Route, FwdMethod::Tunnel][fwd as usize];
                        c.u_threshold = upper as u32;
                    });
                }
            }
            Op::Weight { svc, rs: r, w } => {
                let key = svc_key(svc);
                if d.services
                    .service(&key)
                    .and_then(|s| s.dest_index(&rs(r), key.port()))
                    .is_some()
                {
                    d.edit_dest(key, rs(r), key.port(), |c| c.weight = w as i32);
                }
            }
            Op::Sysctl { which, on } => {
                let s = &mut d.conns.sysctls;
                match which {
                    0 => s.expire_nodest_conn = on,
                    1 => s.expire_quiescent_template = on,
                    2 => s.conn_reuse_mode = if on { 3 } else { 0 },
                    3 => s.secure_tcp = if on { 3 } else { 0 },
                    _ => s.sloppy_tcp = on,
                }
            }
            Op::Flush => {
                d.flush(now);
                add_services(&mut d);
            }
            Op::Wait { secs } => {
                now += secs as u64 * SEC;
                d.conns.expire(now, &mut d.services);
            }
        }
        check_counts(&mut d, &seen);
    }
    // Everything expires (templates in 60 s steps after their last
    // connection) and every counter returns to zero.
    d.conns.expire(now + 10 * 3600 * SEC, &mut d.services);
    assert!(
        d.conns.is_empty(),
        "left: {:?}",
        d.conns.iter().collect::<Vec<_>>()
    );
    for id in &seen {
        if let Some(dest) = d.services.dest_mut(*id) {
            assert_eq!(
                (dest.activeconns, dest.inactconns, dest.persistconns),
                (0, 0, 0),
                "{id:?}"
            );
            assert!(!dest.overload, "{id:?} still OVERLOAD");
        }
    }
}

fn rvs_core_vip() -> std::net::IpAddr {
    VIP
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn counters_match_the_table_and_drain_to_zero(ops in prop::collection::vec(op(), 1..120)) {
        run(&ops);
    }
}
