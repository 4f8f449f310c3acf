//! Entry life cycles: TCP lifetimes for NAT and direct routing, `--set`,
//! active/inactive counting, thresholds, one-packet UDP, secure_tcp, port
//! reuse, deleted real servers, proxy events and the client-port-less entries.

mod common;

use common::*;
use rvs_conn::conn::{CONN_F_INACTIVE, CONN_F_NOOUTPUT, CONN_F_NO_CPORT};
use rvs_conn::sched::Unscheduled;
use rvs_conn::{tcp, Direction, NewConn, Packet, ProxyEvent, Transport};
use rvs_core::service::SVC_F_ONEPACKET;
use rvs_core::{Af, FwdMethod, Protocol, SEC};

const T: fn(u8) -> Transport = Transport::Tcp;

fn state_and_left(d: &Director, now: u64) -> Vec<(String, u64)> {
    d.conns
        .iter()
        .map(|e| (e.state.to_string(), e.remaining_secs(now)))
        .collect()
}

#[test]
fn nat_connection_lifetime() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    let c = (client(10), 40000);
    let pkt = Packet::new(Protocol::Tcp, c.0, c.1, VIP, 80);

    // Before the first packet the new entry is inactive, 3 s.
    let id = d.schedule(svc, &pkt, 0).unwrap();
    assert_eq!(d.counts(svc, rs(1), 80), (0, 1, 0));
    assert_eq!(d.conns.get(id).unwrap().timeout(), 3 * SEC);
    d.conns
        .process(id, Direction::Input, T(tcp::SYN), 60, 0, &mut d.services)
        .unwrap();
    assert_eq!(state_and_left(&d, 0), vec![("SYN_RECV".into(), 60)]);
    assert_eq!(d.counts(svc, rs(1), 80), (1, 0, 0));

    let srv = (rs(1), 80);
    d.reply(Protocol::Tcp, srv, c, T(tcp::SYN | tcp::ACK), 60, 100)
        .unwrap();
    assert_eq!(state_and_left(&d, 100), vec![("SYN_RECV".into(), 60)]);
    d.request(svc, &pkt, T(tcp::ACK), 52, 200).unwrap();
    assert_eq!(state_and_left(&d, 200), vec![("ESTABLISHED".into(), 900)]);
    // Idle time counts from the last packet.
    assert_eq!(
        state_and_left(&d, 200 + 300 * SEC),
        vec![("ESTABLISHED".into(), 600)]
    );
    d.reply(Protocol::Tcp, srv, c, T(tcp::FIN | tcp::ACK), 52, 10 * SEC)
        .unwrap();
    assert_eq!(state_and_left(&d, 10 * SEC), vec![("FIN_WAIT".into(), 120)]);
    assert_eq!(d.counts(svc, rs(1), 80), (0, 1, 0));
    d.request(svc, &pkt, T(tcp::FIN | tcp::ACK), 52, 11 * SEC)
        .unwrap();
    assert_eq!(
        state_and_left(&d, 11 * SEC),
        vec![("TIME_WAIT".into(), 120)]
    );

    // Expires exactly 120 s after the last packet.
    assert_eq!(d.conns.expire(131 * SEC - 1, &mut d.services), 0);
    assert_eq!(d.conns.expire(131 * SEC, &mut d.services), 1);
    assert!(d.conns.is_empty());
    assert_eq!(d.counts(svc, rs(1), 80), (0, 0, 0));
}

#[test]
fn direct_routing_fin_wait_stays() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest_with(svc, rs(1), 80, |c| c.fwd = FwdMethod::Route);
    let pkt = Packet::new(Protocol::Tcp, client(10), 40000, VIP, 80);

    let info = d.request(svc, &pkt, T(tcp::SYN), 60, 0).unwrap();
    assert_eq!(info.fwd, FwdMethod::Route);
    assert_ne!(info.flags & CONN_F_NOOUTPUT, 0);
    assert_eq!(state_and_left(&d, 0), vec![("SYN_RECV".into(), 60)]);
    d.request(svc, &pkt, T(tcp::ACK), 52, SEC).unwrap();
    assert_eq!(state_and_left(&d, SEC), vec![("ESTABLISHED".into(), 900)]);
    assert_eq!(d.counts(svc, rs(1), 80), (1, 0, 0));
    d.request(svc, &pkt, T(tcp::FIN | tcp::ACK), 52, 2 * SEC)
        .unwrap();
    assert_eq!(state_and_left(&d, 2 * SEC), vec![("FIN_WAIT".into(), 120)]);
    // The replies are never seen, so the client's last ACK keeps FIN_WAIT.
    d.request(svc, &pkt, T(tcp::ACK), 52, 3 * SEC).unwrap();
    assert_eq!(state_and_left(&d, 3 * SEC), vec![("FIN_WAIT".into(), 120)]);
    assert_eq!(d.counts(svc, rs(1), 80), (0, 1, 0));
    // A reset closes it for 10 s.
    d.request(svc, &pkt, T(tcp::RST), 40, 4 * SEC).unwrap();
    assert_eq!(state_and_left(&d, 4 * SEC), vec![("CLOSE".into(), 10)]);
    d.conns.expire(14 * SEC, &mut d.services);
    assert!(d.conns.is_empty());
    assert_eq!(d.counts(svc, rs(1), 80), (0, 0, 0));
}

#[test]
fn first_reply_clears_nooutput() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest_with(svc, rs(1), 80, |c| c.fwd = FwdMethod::Tunnel);
    let c = (client(10), 40000);
    let pkt = Packet::new(Protocol::Tcp, c.0, c.1, VIP, 80);
    d.request(svc, &pkt, T(tcp::SYN), 60, 0).unwrap();
    // Replies of non-NAT entries come from the virtual address.
    assert!(d
        .reply(Protocol::Tcp, (rs(1), 80), c, T(tcp::ACK), 40, 1)
        .is_none());
    let info = d
        .reply(Protocol::Tcp, (VIP, 80), c, T(tcp::SYN | tcp::ACK), 40, 1)
        .unwrap();
    assert_eq!(info.flags & CONN_F_NOOUTPUT, 0);
    // Now INPUT (not INPUT_ONLY) applies: a client FIN in ES goes to CLOSE_WAIT.
    d.request(svc, &pkt, T(tcp::ACK), 40, 2).unwrap();
    let info = d.request(svc, &pkt, T(tcp::FIN | tcp::ACK), 40, 3).unwrap();
    assert_eq!(info.state, tcp::CLOSE_WAIT);
}

#[test]
fn set_changes_only_established_fin_wait_and_udp() {
    let mut d = Director::new();
    d.conns.timeouts.set(100, 30, 40).unwrap();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    let c = (client(10), 40000);
    let pkt = Packet::new(Protocol::Tcp, c.0, c.1, VIP, 80);
    d.request(svc, &pkt, T(tcp::SYN), 60, 0).unwrap();
    assert_eq!(state_and_left(&d, 0), vec![("SYN_RECV".into(), 60)]);
    d.request(svc, &pkt, T(tcp::ACK), 60, 0).unwrap();
    assert_eq!(state_and_left(&d, 0), vec![("ESTABLISHED".into(), 100)]);
    d.reply(Protocol::Tcp, (rs(1), 80), c, T(tcp::FIN), 60, 0)
        .unwrap();
    // The oracle: FIN_WAIT 29 a moment after `--set 100 30 40`.
    assert_eq!(state_and_left(&d, 0), vec![("FIN_WAIT".into(), 30)]);
    d.request(svc, &pkt, T(tcp::FIN | tcp::ACK), 60, 0).unwrap();
    assert_eq!(state_and_left(&d, 0), vec![("TIME_WAIT".into(), 120)]);

    let u = udp_svc(53);
    d.add_service(u, "rr", 0, None);
    d.add_dest(u, rs(1), 53);
    d.udp_exchange(u, (client(11), 5000), b"q", 0).unwrap();
    let udp: Vec<_> = state_and_left(&d, 0)
        .into_iter()
        .filter(|(s, _)| s == "UDP")
        .collect();
    assert_eq!(udp, vec![("UDP".into(), 40)]);
}

#[test]
fn udp_is_never_active() {
    let mut d = Director::new();
    let u = udp_svc(53);
    d.add_service(u, "rr", 0, None);
    for i in 1..=3 {
        d.add_dest(u, rs(i), 53);
    }
    // The oracle: two datagrams from one port share one entry on rs3.
    let a = d.udp_exchange(u, (client(10), 5000), b"ping", 0).unwrap();
    let b = d.udp_exchange(u, (client(10), 5000), b"ping", 10).unwrap();
    assert_eq!((a.daddr, b.daddr), (rs(3), rs(3)));
    assert_eq!(d.counts(u, rs(3), 53), (0, 1, 0));
    assert_eq!(state_and_left(&d, 1000), vec![("UDP".into(), 299)]);
    let st = d.services.service(&u).unwrap();
    assert_eq!(st.stats.total.conns, 1);
    assert_eq!(st.stats.total.inpkts, 2);
    assert_eq!(st.stats.total.outpkts, 2);
}

#[test]
fn one_packet_udp_schedules_every_datagram() {
    let mut d = Director::new();
    let u = udp_svc(54);
    d.add_service(u, "rr", 0, None);
    d.edit_service(u, |c| c.flags |= SVC_F_ONEPACKET);
    for i in 1..=3 {
        d.add_dest(u, rs(i), 54);
    }
    let got: Vec<_> = (0..3)
        .map(|i| {
            let info = d
                .udp_exchange(u, (client(11), 5001), b"ping", i * 10)
                .unwrap();
            Director::rs_name(info.daddr)
        })
        .collect();
    assert_eq!(got, ["rs3", "rs2", "rs1"]);
    assert!(d.conns.is_empty());
    for i in 1..=3 {
        assert_eq!(d.counts(u, rs(i), 54), (0, 0, 0));
    }
    assert_eq!(d.services.service(&u).unwrap().stats.total.conns, 3);
    // One-packet only applies to UDP: a TCP service with -o keeps entries.
    let t = tcp_svc(80);
    d.add_service(t, "rr", 0, None);
    d.edit_service(t, |c| c.flags |= SVC_F_ONEPACKET);
    d.add_dest(t, rs(1), 80);
    d.tcp_close_session(t, (client(12), 4000), 0).unwrap();
    assert_eq!(d.conns.len(), 1);
}

#[test]
fn upper_threshold_sets_overload_and_three_quarters_clear_it() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest_with(svc, rs(1), 80, |c| c.u_threshold = 4);
    let mut ids = Vec::new();
    for i in 0..4u16 {
        let p = Packet::new(Protocol::Tcp, client(10), 1000 + i, VIP, 80);
        let info = d.request(svc, &p, T(tcp::SYN), 60, 0).unwrap();
        ids.push(
            d.conns
                .lookup_in(Protocol::Tcp, info.caddr, info.cport, VIP, 80)
                .unwrap(),
        );
        assert_eq!(
            d.dest(svc, rs(1), 80).overload,
            i == 3,
            "after {} conns",
            i + 1
        );
    }
    // Full: no destination for the fifth.
    let p = Packet::new(Protocol::Tcp, client(10), 2000, VIP, 80);
    assert_eq!(
        d.request(svc, &p, T(tcp::SYN), 60, 0),
        Err(NotForwarded::NotScheduled(Unscheduled::NoDest))
    );
    // 3 left: 3*4 < 4*3 is false, still overloaded; 2 left clears it.
    d.conns.delete(ids[0], 1, &mut d.services);
    assert!(d.dest(svc, rs(1), 80).overload);
    d.conns.delete(ids[1], 1, &mut d.services);
    assert!(!d.dest(svc, rs(1), 80).overload);
}

#[test]
fn lower_threshold_and_no_threshold() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest_with(svc, rs(1), 80, |c| {
        c.u_threshold = 3;
        c.l_threshold = 1;
    });
    let mut ids = Vec::new();
    for i in 0..3u16 {
        let p = Packet::new(Protocol::Tcp, client(10), 1000 + i, VIP, 80);
        let id = d.schedule(svc, &p, 0).unwrap();
        ids.push(id);
    }
    assert!(d.dest(svc, rs(1), 80).overload);
    d.conns.delete(ids[0], 1, &mut d.services);
    d.conns.delete(ids[1], 1, &mut d.services);
    // total 1 is not < l_threshold 1.
    assert!(d.dest(svc, rs(1), 80).overload);
    d.conns.delete(ids[2], 1, &mut d.services);
    assert!(!d.dest(svc, rs(1), 80).overload);
}

#[test]
fn templates_count_in_persistconns_but_not_in_the_threshold() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 60, None);
    d.add_dest_with(svc, rs(1), 80, |c| c.u_threshold = 2);
    let p = Packet::new(Protocol::Tcp, client(10), 1000, VIP, 80);
    d.schedule(svc, &p, 0).unwrap();
    assert_eq!(d.counts(svc, rs(1), 80), (0, 1, 1));
    assert!(!d.dest(svc, rs(1), 80).overload);
    let p = Packet::new(Protocol::Tcp, client(10), 1001, VIP, 80);
    d.schedule(svc, &p, 0).unwrap();
    assert_eq!(d.counts(svc, rs(1), 80), (0, 2, 1));
    assert!(d.dest(svc, rs(1), 80).overload);
}

#[test]
fn secure_tcp_nat_handshake_needs_the_server() {
    let mut d = Director::new();
    d.conns.sysctls.secure_tcp = 3;
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    let c = (client(10), 40000);
    let pkt = Packet::new(Protocol::Tcp, c.0, c.1, VIP, 80);
    let srv = (rs(1), 80);
    let s = |d: &Director| state_and_left(d, 0)[0].0.clone();
    d.request(svc, &pkt, T(tcp::SYN), 60, 0).unwrap();
    assert_eq!(s(&d), "SYN_RECV");
    d.reply(Protocol::Tcp, srv, c, T(tcp::SYN | tcp::ACK), 60, 0)
        .unwrap();
    assert_eq!(s(&d), "SYNACK");
    d.request(svc, &pkt, T(tcp::ACK), 60, 0).unwrap();
    assert_eq!(s(&d), "SYNACK");
    assert_eq!(state_and_left(&d, 0)[0].1, 120);
    d.reply(Protocol::Tcp, srv, c, T(tcp::ACK), 60, 0).unwrap();
    assert_eq!(s(&d), "ESTABLISHED");
    // secure_tcp 1 (automatic, not under attack) uses the normal table.
    d.conns.sysctls.secure_tcp = 1;
    let pkt2 = Packet::new(Protocol::Tcp, c.0, 40001, VIP, 80);
    d.request(svc, &pkt2, T(tcp::SYN), 60, 0).unwrap();
    d.request(svc, &pkt2, T(tcp::ACK), 60, 0).unwrap();
    let id = d
        .conns
        .lookup_in(Protocol::Tcp, c.0, 40001, VIP, 80)
        .unwrap();
    assert_eq!(d.conns.get(id).unwrap().state_name(), "ESTABLISHED");
}

#[test]
fn non_syn_packets_do_not_create_entries_unless_sloppy() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    let pkt = Packet::new(Protocol::Tcp, client(10), 40000, VIP, 80);
    assert_eq!(
        d.request(svc, &pkt, T(tcp::ACK), 40, 0),
        Err(NotForwarded::Refused)
    );
    assert_eq!(
        d.request(svc, &pkt, T(tcp::RST), 40, 0),
        Err(NotForwarded::Refused)
    );
    d.conns.sysctls.sloppy_tcp = true;
    assert_eq!(
        d.request(svc, &pkt, T(tcp::RST), 40, 0),
        Err(NotForwarded::Refused)
    );
    let info = d.request(svc, &pkt, T(tcp::ACK), 40, 0).unwrap();
    // A mid-stream ACK in NONE goes straight to ESTABLISHED.
    assert_eq!(info.state, tcp::ESTABLISHED);
}

#[test]
fn conn_reuse_mode_reschedules_a_syn_on_time_wait() {
    let mut d = Director::new();
    let svc = tcp_svc(82);
    d.add_service(svc, "rr", 0, None);
    for i in 1..=3 {
        d.add_dest(svc, rs(i), 80);
    }
    // The oracle's section 11.
    let a = d.tcp_close_session(svc, (client(10), 40000), 0).unwrap();
    let b = d.tcp_close_session(svc, (client(10), 40000), 100).unwrap();
    assert_eq!(
        (Director::rs_name(a.daddr), Director::rs_name(b.daddr)),
        ("rs3".into(), "rs2".into())
    );
    assert_eq!(d.counts(svc, rs(3), 80), (0, 0, 0));
    assert_eq!(d.counts(svc, rs(2), 80), (0, 1, 0));
    d.conns.sysctls.conn_reuse_mode = 0;
    let a = d.tcp_close_session(svc, (client(11), 40001), 200).unwrap();
    let b = d.tcp_close_session(svc, (client(11), 40001), 300).unwrap();
    assert_eq!(
        (Director::rs_name(a.daddr), Director::rs_name(b.daddr)),
        ("rs1".into(), "rs1".into())
    );
    assert_eq!(d.counts(svc, rs(1), 80), (0, 1, 0));
    assert_eq!(d.conns.len(), 2);
}

#[test]
fn conn_reuse_mode_bit_two_covers_direct_routing_fin_wait() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest_with(svc, rs(1), 80, |c| c.fwd = FwdMethod::Route);
    d.add_dest_with(svc, rs(2), 80, |c| c.fwd = FwdMethod::Route);
    let pkt = Packet::new(Protocol::Tcp, client(10), 40000, VIP, 80);
    d.request(svc, &pkt, T(tcp::SYN), 60, 0).unwrap();
    d.request(svc, &pkt, T(tcp::ACK), 60, 0).unwrap();
    d.request(svc, &pkt, T(tcp::FIN | tcp::ACK), 60, 0).unwrap();
    // Mode 1: a SYN in FIN_WAIT reuses the entry (SYN in FW → SYN_RECV).
    let info = d.request(svc, &pkt, T(tcp::SYN), 60, 1).unwrap();
    assert_eq!((info.daddr, info.state), (rs(2), tcp::SYN_RECV));
    d.request(svc, &pkt, T(tcp::ACK), 60, 1).unwrap();
    d.request(svc, &pkt, T(tcp::FIN | tcp::ACK), 60, 1).unwrap();
    d.conns.sysctls.conn_reuse_mode = 3;
    let info = d.request(svc, &pkt, T(tcp::SYN), 60, 2).unwrap();
    assert_eq!(info.daddr, rs(1));
    assert_eq!(d.conns.len(), 1);
}

#[test]
fn deleted_real_server_drops_or_reschedules() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    d.add_dest(svc, rs(2), 80);
    let c = (client(10), 40000);
    let pkt = Packet::new(Protocol::Tcp, c.0, c.1, VIP, 80);
    let first = d.request(svc, &pkt, T(tcp::SYN), 60, 0).unwrap();
    let id0 = first.dest.unwrap();
    d.request(svc, &pkt, T(tcp::ACK), 60, 0).unwrap();
    d.del_dest(svc, first.daddr, 80, SEC);
    // Off: dropped, the entry stays (and keeps counting in the trash).
    assert_eq!(
        d.request(svc, &pkt, T(tcp::ACK), 60, 2 * SEC),
        Err(NotForwarded::Dropped)
    );
    assert_eq!(d.conns.len(), 1);
    assert_eq!(d.dest_by_id(id0).activeconns, 1);
    // On: the entry expires and a non-SYN packet finds nothing to schedule.
    d.conns.sysctls.expire_nodest_conn = true;
    assert_eq!(
        d.request(svc, &pkt, T(tcp::ACK), 60, 3 * SEC),
        Err(NotForwarded::Refused)
    );
    assert!(d.conns.is_empty());
    assert_eq!(d.dest_by_id(id0).activeconns, 0);
    // A SYN is scheduled on the remaining server.
    let again = d.request(svc, &pkt, T(tcp::SYN), 60, 4 * SEC).unwrap();
    assert_ne!(again.daddr, first.daddr);
}

#[test]
fn expire_nodest_conn_reschedules_syn_for_weight_zero() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    d.add_dest(svc, rs(2), 80);
    let pkt = Packet::new(Protocol::Tcp, client(10), 40000, VIP, 80);
    let first = d.request(svc, &pkt, T(tcp::SYN), 60, 0).unwrap();
    d.request(svc, &pkt, T(tcp::ACK), 60, 0).unwrap();
    d.edit_dest(svc, first.daddr, 80, |c| c.weight = 0);
    // Off: a SYN on an ESTABLISHED entry just uses it.
    let same = d.request(svc, &pkt, T(tcp::SYN), 60, 1).unwrap();
    assert_eq!(same.daddr, first.daddr);
    d.conns.sysctls.expire_nodest_conn = true;
    let moved = d.request(svc, &pkt, T(tcp::SYN), 60, 2).unwrap();
    assert_ne!(moved.daddr, first.daddr);
    assert_eq!(d.conns.len(), 1);
}

#[test]
fn flush_dest_removes_only_unavailable_entries() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 60, None);
    let id1 = d.add_dest(svc, rs(1), 80);
    let id2 = d.add_dest(svc, rs(2), 80);
    // rs2 first (newest first), then rs1.
    d.tcp_close_session(svc, (client(10), 1000), 0).unwrap();
    d.tcp_close_session(svc, (client(11), 1000), 0).unwrap();
    assert_eq!(d.conns.len(), 4);
    // Available: nothing happens.
    assert_eq!(d.conns.flush_dest(id2, 1, &mut d.services), 0);
    d.services.del_dest(&svc, &rs(2), 80, 1).unwrap();
    assert_eq!(d.conns.flush_dest(id1, 1, &mut d.services), 0);
    // The connection, and its (ASSURED) template with it.
    assert_eq!(d.conns.flush_dest(id2, 1, &mut d.services), 2);
    assert_eq!(d.dest_by_id(id2).inactconns, 0);
    assert_eq!(d.dest_by_id(id2).persistconns, 0);
    assert_eq!(d.conns.len(), 2);
}

#[test]
fn proxy_events_drive_the_same_states() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    d.conns.sysctls.secure_tcp = 3;
    let pkt = Packet::new(Protocol::Tcp, client(10), 1, VIP, 80);
    let id = d.schedule(svc, &pkt, 0).unwrap();
    let st = |d: &mut Director, ev| {
        d.conns
            .proxy_event(id, ev, 0, &mut d.services)
            .map(|i| rvs_conn::tcp::state_name(i.state))
    };
    assert_eq!(st(&mut d, ProxyEvent::Established), Some("ESTABLISHED"));
    assert_eq!(d.counts(svc, rs(1), 80), (1, 0, 0));
    assert_eq!(st(&mut d, ProxyEvent::ServerFin), Some("FIN_WAIT"));
    assert_eq!(st(&mut d, ProxyEvent::ClientFin), Some("TIME_WAIT"));
    assert_eq!(st(&mut d, ProxyEvent::Closed), Some("TIME_WAIT"));
    assert_eq!(d.counts(svc, rs(1), 80), (0, 1, 0));
    assert_eq!(d.conns.sysctls.secure_tcp, 3);

    let pkt = Packet::new(Protocol::Tcp, client(10), 2, VIP, 80);
    let id2 = d.schedule(svc, &pkt, 0).unwrap();
    d.conns
        .proxy_event(id2, ProxyEvent::Established, 0, &mut d.services);
    d.conns
        .proxy_event(id2, ProxyEvent::ClientFin, 0, &mut d.services);
    let i = d
        .conns
        .proxy_event(id2, ProxyEvent::Closed, 0, &mut d.services)
        .unwrap();
    assert_eq!(tcp::state_name(i.state), "CLOSE");
    let pkt = Packet::new(Protocol::Tcp, client(10), 3, VIP, 80);
    let id3 = d.schedule(svc, &pkt, 0).unwrap();
    let i = d
        .conns
        .proxy_event(id3, ProxyEvent::ServerReset, 0, &mut d.services)
        .unwrap();
    assert_eq!(tcp::state_name(i.state), "CLOSE");
    // Data through process: counted as traffic.
    d.conns
        .process(id, Direction::Input, T(tcp::ACK), 1000, 1, &mut d.services);
    assert_eq!(d.services.service(&svc).unwrap().stats.total.inbytes, 1000);
}

#[test]
fn entries_without_client_port_match_any_port_once() {
    let mut d = Director::new();
    let svc = tcp_svc(21);
    d.add_service(svc, "rr", 0, None);
    let id = d.add_dest(svc, rs(1), 21);
    let mut dest = d.dest_by_id(id);
    // What the FTP helper creates for a passive data connection.
    let spec = NewConn {
        proto: Protocol::Tcp as u8,
        af: Af::Inet,
        caddr: client(10),
        cport: 0,
        vaddr: VIP,
        vport: 30000,
        daddr: rs(1),
        dport: 30000,
        flags: CONN_F_NO_CPORT,
        fwmark: 0,
        pe: None,
    };
    let data = d.conns.create(spec, Some(&mut dest), 0);
    assert_eq!(
        d.conns
            .lookup_in(Protocol::Tcp, client(10), 5555, VIP, 30000),
        Some(data)
    );
    assert_eq!(
        d.conns
            .lookup_in(Protocol::Tcp, client(10), 5555, VIP, 30001),
        None
    );
    d.conns.fill_cport(data, 5555);
    assert_eq!(d.conns.get(data).unwrap().flags() & CONN_F_NO_CPORT, 0);
    assert_eq!(
        d.conns
            .lookup_in(Protocol::Tcp, client(10), 5555, VIP, 30000),
        Some(data)
    );
    assert_eq!(
        d.conns
            .lookup_in(Protocol::Tcp, client(10), 5556, VIP, 30000),
        None
    );
    assert_ne!(d.conns.get(data).unwrap().flags() & CONN_F_INACTIVE, 0);
}

#[test]
fn stale_handles_are_refused() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    let pkt = Packet::new(Protocol::Tcp, client(10), 1, VIP, 80);
    let id = d.schedule(svc, &pkt, 0).unwrap();
    d.conns.expire(10 * SEC, &mut d.services);
    assert!(d.conns.get(id).is_none());
    let id2 = d.schedule(svc, &pkt, 20 * SEC).unwrap();
    assert_ne!(id, id2);
    assert!(d
        .conns
        .process(id, Direction::Input, T(tcp::SYN), 1, 0, &mut d.services)
        .is_none());
    assert!(d.conns.get(id2).is_some());
}

#[test]
fn memory_per_entry_stays_small() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 80);
    for i in 0..10_000u32 {
        let c = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        d.schedule(svc, &Packet::new(Protocol::Tcp, c, 1000, VIP, 80), 0)
            .unwrap();
    }
    let m = d.conns.memory();
    assert_eq!(m.entries, 10_000);
    assert!(m.entry_bytes <= 120, "{m:?}");
    // An entry, a 4-byte bucket and a 16-byte timer item each, at most
    // doubled by geometric growth.
    assert!(
        m.total_bytes <= 2 * m.entries * (m.entry_bytes + 4 + 16),
        "{m:?}"
    );
}
