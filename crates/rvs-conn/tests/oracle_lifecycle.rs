//! Replays `data/conn-lifecycle.sh` (captured from Linux 6.1 as
//! `data/conn-lifecycle.out`) through one director and compares every
//! `/proc/net/ip_vs_conn` dump: --set, UDP entries, one-packet scheduling,
//! UDP templates (NONE / ASSURED), the sip engine, template invalidation,
//! expire_nodest_conn, expire_quiescent_template and conn_reuse_mode.
//!
//! Times are chosen to match the capture's pace (about one client per
//! second in the emulated VM); the `Expires` column may differ by 1 s.

mod common;

use common::*;
use rvs_conn::{tcp, Packet, Transport};
use rvs_core::service::SVC_F_ONEPACKET;
use rvs_core::{Protocol, SEC};

const CAPTURE: &str = include_str!("data/conn-lifecycle.out");
const DUMP: &str = "$ cat /proc/net/ip_vs_conn (sorted)";

fn golden_dump(nth: usize) -> Vec<String> {
    let rows: Vec<&str> = section(CAPTURE, DUMP, nth)
        .into_iter()
        .skip(1)
        .take_while(|l| {
            ["TCP ", "UDP ", "SCTP ", "IP "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    golden_proc_rows(&rows)
}

fn check(d: &Director, nth: usize, at: u64) {
    let ours = d.proc_rows(at);
    let golden = golden_dump(nth);
    assert_rows_match(&ours, &golden, 1);
}

fn ms(s: f64) -> u64 {
    (s * 1000.0).round() as u64
}

#[test]
fn replay_conn_lifecycle_capture() {
    let mut d = Director::new();
    let t = Transport::Tcp;

    // 2. --set 100 30 40; a connection the server closes at once.
    d.conns.timeouts.set(100, 30, 40).unwrap();
    let s80 = tcp_svc(80);
    d.add_service(s80, "rr", 0, None);
    d.add_dest(s80, rs(1), 80);
    let c = (client(10), 48961);
    let pkt = Packet::new(Protocol::Tcp, c.0, c.1, VIP, 80);
    let srv = (rs(1), 80);
    d.request(s80, &pkt, t(tcp::SYN), 60, ms(0.1)).unwrap();
    d.reply(Protocol::Tcp, srv, c, t(tcp::SYN | tcp::ACK), 60, ms(0.1))
        .unwrap();
    d.request(s80, &pkt, t(tcp::ACK), 52, ms(0.2)).unwrap();
    d.reply(Protocol::Tcp, srv, c, t(tcp::ACK | tcp::PSH), 56, ms(0.3))
        .unwrap();
    d.reply(Protocol::Tcp, srv, c, t(tcp::FIN | tcp::ACK), 52, ms(0.3))
        .unwrap();
    d.request(s80, &pkt, t(tcp::ACK), 52, ms(0.3)).unwrap();
    check(&d, 0, ms(0.5));
    assert_eq!(d.counts(s80, rs(1), 80), (0, 1, 0));
    d.request(s80, &pkt, t(tcp::FIN | tcp::ACK), 52, ms(0.6))
        .unwrap();
    d.reply(Protocol::Tcp, srv, c, t(tcp::ACK), 52, ms(0.6))
        .unwrap();
    check(&d, 1, ms(1.0));
    d.conns.timeouts.set(900, 120, 300).unwrap();
    d.flush(ms(1.1));

    // 3. UDP: one entry per client port, never active.
    let u53 = udp_svc(53);
    d.add_service(u53, "rr", 0, None);
    for i in 1..=3 {
        d.add_dest(u53, rs(i), 53);
    }
    for at in [1.5, 1.6] {
        let i = d
            .udp_exchange(u53, (client(10), 5000), b"ping", ms(at))
            .unwrap();
        assert_eq!(i.daddr, rs(3));
    }
    check(&d, 2, ms(2.0));
    assert_eq!(d.counts(u53, rs(3), 53), (0, 1, 0));

    // 4. One-packet: every datagram scheduled, nothing stays.
    let u54 = udp_svc(54);
    d.add_service(u54, "rr", 0, None);
    d.edit_service(u54, |c| c.flags |= SVC_F_ONEPACKET);
    for i in 1..=3 {
        d.add_dest(u54, rs(i), 54);
    }
    let got: Vec<String> = [2.05, 2.1, 2.15]
        .iter()
        .map(|&at| {
            Director::rs_name(
                d.udp_exchange(u54, (client(11), 5001), b"ping", ms(at))
                    .unwrap()
                    .daddr,
            )
        })
        .collect();
    assert_eq!(got, ["rs3", "rs2", "rs1"]);
    check(&d, 3, ms(2.2));

    // 5. Persistent one-packet: the template stays NONE.
    let u55 = udp_svc(55);
    d.add_service(u55, "rr", 30, None);
    d.edit_service(u55, |c| c.flags |= SVC_F_ONEPACKET);
    for i in 1..=3 {
        d.add_dest(u55, rs(i), 55);
    }
    for at in [2.7, 2.8, 2.9] {
        let i = d
            .udp_exchange(u55, (client(12), 5002), b"ping", ms(at))
            .unwrap();
        assert_eq!(i.daddr, rs(3));
    }
    check(&d, 4, ms(3.1));

    // 6. Persistent UDP: a reply makes the template ASSURED.
    let u56 = udp_svc(56);
    d.add_service(u56, "rr", 30, None);
    for i in 1..=3 {
        d.add_dest(u56, rs(i), 56);
    }
    for at in [3.3, 3.4] {
        let i = d
            .udp_exchange(u56, (client(13), 5003), b"ping", ms(at))
            .unwrap();
        assert_eq!(i.daddr, rs(3));
    }
    check(&d, 5, ms(3.6));
    // -L -n --persistent-conn of the capture.
    assert_eq!(d.counts(u53, rs(3), 53), (0, 1, 0));
    assert_eq!(d.counts(u55, rs(3), 55), (0, 0, 1));
    assert_eq!(d.counts(u56, rs(3), 56), (0, 1, 1));

    // 7. sip: the Call-ID (and the client) pick the template.
    let sip = udp_svc(5060);
    d.add_service(sip, "rr", 30, None);
    d.edit_service(sip, |c| c.pe_name = Some("sip".into()));
    for i in 1..=3 {
        d.add_dest(sip, rs(i), 5060);
    }
    // (client, port, message, time, real server reached)
    type Call = (u8, u16, &'static [u8], f64, Option<u8>);
    let calls: [Call; 4] = [
        (
            10,
            5070,
            b"INVITE sip:a@b SIP/2.0\r\nCall-ID: abc@host\r\n\r\n",
            4.0,
            Some(3),
        ),
        (
            11,
            5071,
            b"INVITE sip:a@b SIP/2.0\r\ni:  abc@host\r\n\r\n",
            4.5,
            Some(2),
        ),
        (
            12,
            5072,
            b"INVITE sip:a@b SIP/2.0\r\nCall-ID: other-1\r\n\r\n",
            5.2,
            Some(1),
        ),
        (
            13,
            5073,
            b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n",
            6.0,
            None,
        ),
    ];
    for (cl, port, msg, at, want) in calls {
        let r = d.udp_exchange(sip, (client(cl), port), msg, ms(at));
        assert_eq!(r.ok().map(|i| i.daddr), want.map(rs), "client .{cl}");
    }
    check(&d, 6, ms(8.0));
    d.flush(ms(8.1));

    // 8. A deleted real server invalidates its template.
    d.add_service(s80, "rr", 60, None);
    d.add_dest(s80, rs(1), 80);
    assert_eq!(
        d.tcp_close_session(s80, (client(12), 38833), ms(9.0))
            .unwrap()
            .daddr,
        rs(1)
    );
    d.add_dest(s80, rs(2), 80);
    d.del_dest(s80, rs(1), 80, ms(9.6));
    check(&d, 7, ms(9.8));
    assert_eq!(
        d.tcp_close_session(s80, (client(12), 46803), ms(10.5))
            .unwrap()
            .daddr,
        rs(2)
    );
    check(&d, 8, ms(10.7));
    assert_eq!(d.counts(s80, rs(2), 80), (0, 1, 1));

    // 9. expire_nodest_conn: deleting a real server flushes every entry
    // whose real server is gone (those of the services flushed by -C too).
    d.conns.sysctls.expire_nodest_conn = true;
    d.add_dest(s80, rs(3), 80);
    d.del_dest(s80, rs(2), 80, ms(11.2));
    check(&d, 9, ms(11.5));
    assert!(d.conns.is_empty());
    d.conns.sysctls.expire_nodest_conn = false;
    d.flush(ms(11.6));

    // 10. Weight 0 keeps the persistent client until
    // expire_quiescent_template is on.
    let s81 = tcp_svc(81);
    d.add_service(s81, "rr", 60, None);
    d.add_dest(s81, rs(1), 80);
    d.add_dest(s81, rs(2), 80);
    let c13 = client(13);
    assert_eq!(
        d.tcp_close_session(s81, (c13, 41757), ms(12.5))
            .unwrap()
            .daddr,
        rs(2)
    );
    d.edit_dest(s81, rs(2), 80, |c| c.weight = 0);
    assert_eq!(
        d.tcp_close_session(s81, (c13, 43157), ms(13.5))
            .unwrap()
            .daddr,
        rs(2)
    );
    d.conns.sysctls.expire_quiescent_template = true;
    assert_eq!(
        d.tcp_close_session(s81, (c13, 51363), ms(14.5))
            .unwrap()
            .daddr,
        rs(1)
    );
    check(&d, 10, ms(15.0));
    assert_eq!(d.counts(s81, rs(1), 80), (0, 1, 1));
    assert_eq!(d.counts(s81, rs(2), 80), (0, 2, 1));
    d.conns.sysctls.expire_quiescent_template = false;
    d.flush(ms(15.5));

    // 11. conn_reuse_mode 1 reschedules a SYN that hits TIME_WAIT; 0 reuses.
    let s82 = tcp_svc(82);
    d.add_service(s82, "rr", 0, None);
    for i in 1..=3 {
        d.add_dest(s82, rs(i), 80);
    }
    let names: Vec<String> = [(10, 40000, 16.0), (10, 40000, 16.5)]
        .iter()
        .map(|&(cl, p, at)| {
            Director::rs_name(
                d.tcp_close_session(s82, (client(cl), p), ms(at))
                    .unwrap()
                    .daddr,
            )
        })
        .collect();
    assert_eq!(names, ["rs3", "rs2"]);
    d.conns.sysctls.conn_reuse_mode = 0;
    let names: Vec<String> = [(11, 40001, 17.0), (11, 40001, 17.5)]
        .iter()
        .map(|&(cl, p, at)| {
            Director::rs_name(
                d.tcp_close_session(s82, (client(cl), p), ms(at))
                    .unwrap()
                    .daddr,
            )
        })
        .collect();
    assert_eq!(names, ["rs1", "rs1"]);
    check(&d, 11, ms(18.0));
    assert_eq!(d.counts(s82, rs(1), 80), (0, 1, 0));
    assert_eq!(d.counts(s82, rs(2), 80), (0, 1, 0));
    assert_eq!(d.counts(s82, rs(3), 80), (0, 0, 0));

    // Afterwards everything drains.
    d.conns.expire(ms(18.0) + 3600 * SEC, &mut d.services);
    assert!(d.conns.is_empty());
}
