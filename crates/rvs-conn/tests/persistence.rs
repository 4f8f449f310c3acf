//! Persistence templates: the golden `sched-persist` capture replayed end to
//! end, template lifetimes (timeout after last use, 60 s steps while they
//! control connections), template checks, fwmark / port-zero / FTP / IPv6
//! keys, chain drops and real-server-initiated connections.

mod common;

use common::*;
use rvs_conn::conn::CTPL_ASSURED;
use rvs_conn::sched::{mask_client, Unscheduled};
use rvs_conn::{tcp, Direction, Packet, Transport};
use rvs_core::service::SVC_F_ONEPACKET;
use rvs_core::{Af, DestStore, Protocol, ServiceKey, SEC};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const GOLDEN: &str = include_str!("../../rvs-sched/tests/data/sched-persist.out");

/// `ipvsadm -L -c` rows (numeric), with the `mm:ss` expiry, sorted; client
/// ports other than 0 become `*`.
fn listing(d: &Director, now: u64) -> Vec<String> {
    let mut rows: Vec<String> = d
        .conns
        .iter()
        .map(|e| {
            let secs = e.remaining_secs(now);
            let cport = if e.cport == 0 {
                "0".to_string()
            } else {
                "*".to_string()
            };
            format!(
                "{} {:02}:{:02} {} {}:{} {}:{} {}:{}",
                e.proto,
                secs / 60,
                secs % 60,
                e.state,
                e.caddr,
                cport,
                e.vaddr,
                e.vport,
                e.daddr,
                e.dport
            )
        })
        .collect();
    rows.sort();
    rows
}

fn golden_listing() -> Vec<String> {
    let mut rows: Vec<String> = section(GOLDEN, "$ ipvsadm -L -n -c", 0)
        .into_iter()
        .skip(2)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (caddr, cport) = f[3].rsplit_once(':').unwrap();
            let cport = if cport == "0" { "0" } else { "*" };
            format!(
                "{} {} {} {}:{} {} {}",
                f[0], f[1], f[2], caddr, cport, f[4], f[5]
            )
        })
        .collect();
    rows.sort();
    rows
}

/// (PersistConn, ActiveConn, InActConn) by real server from a
/// `--persistent-conn` listing in the capture.
fn golden_persist(nth: usize) -> Vec<(String, u32, u32, u32)> {
    section(GOLDEN, "$ ipvsadm -L -n --persistent-conn", nth)
        .into_iter()
        .filter(|l| l.starts_with("  -> 198"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[1].to_string(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
            )
        })
        .collect()
}

fn our_persist(d: &mut Director, svc: ServiceKey) -> Vec<(String, u32, u32, u32)> {
    let mut v: Vec<_> = d
        .services
        .service(&svc)
        .unwrap()
        .dests
        .iter()
        .map(|x| {
            (
                format!("{}:{}", x.config.addr, x.config.port),
                x.persistconns,
                x.activeconns,
                x.inactconns,
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn golden_sched_persist_replays() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 60, None);
    for i in 1..=3 {
        d.add_dest(svc, rs(i), 80);
    }
    // "N src dst name" lines of the first run.
    let lines: Vec<&str> = GOLDEN
        .lines()
        .filter(|l| {
            l.split_whitespace().count() == 4
                && l.ends_with(char::is_numeric)
                && !l.starts_with('$')
        })
        .collect();
    assert_eq!(lines.len(), 20);
    let mut now = 1000;
    for (n, l) in lines[..12].iter().enumerate() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let src: IpAddr = f[1].parse().unwrap();
        let info = d
            .tcp_close_session(svc, (src, 40000 + n as u16), now)
            .unwrap();
        assert_eq!(Director::rs_name(info.daddr), f[3], "connection {}", f[0]);
        now += 20;
    }
    assert_eq!(our_persist(&mut d, svc), golden_persist(0));
    let conns: Vec<u64> = d
        .services
        .service(&svc)
        .unwrap()
        .dests
        .iter()
        .map(|x| x.stats.total.conns)
        .collect();
    // rs3, rs2, rs1 in kernel order; --stats shows 3 / 3 / 6 sorted.
    assert_eq!(conns, vec![6, 3, 3]);
    assert_eq!(d.services.service(&svc).unwrap().stats.total.conns, 12);

    // "sleep 3" and three listings later.
    let at = now + 3500;
    d.conns.expire(at, &mut d.services);
    assert_eq!(listing(&d, at), golden_listing());

    // Templates outlive their 60 s while their connections are in
    // TIME_WAIT, then go in 60 s steps.
    let later = now + 61 * SEC;
    d.conns.expire(later, &mut d.services);
    assert_eq!(d.conns.template_count(), 4);
    for t in d.conns.iter().filter(|e| e.template) {
        assert_eq!(d.conns.get(t.id).unwrap().timeout(), 60 * SEC);
        // Last used between 1.0 s and 1.22 s, fell due 60 s later, re-armed.
        assert!((121 * SEC..=121 * SEC + 220).contains(&t.expires), "{t:?}");
    }

    // -C, then the same service with -M 255.255.255.0: the real servers come
    // back from the trash with their counters; one template for all four.
    d.flush(at + 1000);
    d.add_service(svc, "rr", 60, Some(0xffff_ff00));
    for i in 1..=3 {
        d.add_dest(svc, rs(i), 80);
    }
    for (n, l) in lines[12..].iter().enumerate() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let src: IpAddr = f[1].parse().unwrap();
        let info = d
            .tcp_close_session(svc, (src, 50000 + n as u16), at + 2000 + 20 * n as u64)
            .unwrap();
        assert_eq!(
            Director::rs_name(info.daddr),
            f[3],
            "second run, connection {}",
            f[0]
        );
    }
    assert_eq!(our_persist(&mut d, svc), golden_persist(1));

    // Everything expires and every counter returns to zero.
    d.conns.expire(at + 3600 * SEC, &mut d.services);
    assert!(d.conns.is_empty());
    assert_eq!(
        our_persist(&mut d, svc)
            .iter()
            .map(|x| x.1 + x.2 + x.3)
            .sum::<u32>(),
        0
    );
}

#[test]
fn template_expires_its_timeout_after_last_use() {
    let mut d = Director::new();
    let u = udp_svc(55);
    d.add_service(u, "rr", 30, None);
    d.edit_service(u, |c| c.flags |= SVC_F_ONEPACKET);
    for i in 1..=3 {
        d.add_dest(u, rs(i), 55);
    }
    for t in [0, 10 * SEC, 20 * SEC] {
        let info = d.udp_exchange(u, (client(12), 5002), b"ping", t).unwrap();
        assert_eq!(info.daddr, rs(3));
    }
    // The oracle: one template in state NONE (replies find no entry).
    let rows: Vec<_> = d
        .conns
        .iter()
        .map(|e| (e.state, e.remaining_secs(20 * SEC)))
        .collect();
    assert_eq!(rows, vec![("NONE", 30)]);
    assert_eq!(d.counts(u, rs(3), 55), (0, 0, 1));
    assert_eq!(d.conns.expire(50 * SEC - 1, &mut d.services), 0);
    assert_eq!(d.conns.expire(50 * SEC, &mut d.services), 1);
    assert_eq!(d.counts(u, rs(3), 55), (0, 0, 0));
}

#[test]
fn controlling_template_lives_in_sixty_second_steps() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 10, None);
    d.add_dest(svc, rs(1), 80);
    let c = (client(10), 1000);
    let pkt = Packet::new(Protocol::Tcp, c.0, c.1, VIP, 80);
    d.request(svc, &pkt, Transport::Tcp(tcp::SYN), 60, 0)
        .unwrap();
    d.request(svc, &pkt, Transport::Tcp(tcp::ACK), 60, 0)
        .unwrap();
    let tpl = d.conns.iter().find(|e| e.template).unwrap().id;
    assert_eq!(d.conns.get(tpl).unwrap().state_name(), "ASSURED");
    assert_eq!(d.conns.get(tpl).unwrap().remaining_secs(0), 10);
    d.conns.expire(10 * SEC, &mut d.services);
    let t = d.conns.get(tpl).unwrap();
    assert_eq!((t.timeout(), t.expires()), (60 * SEC, 70 * SEC));
    // Still in use at 100 s: a new connection re-arms it for 60, not 10.
    d.conns.expire(100 * SEC, &mut d.services);
    assert_eq!(d.conns.get(tpl).unwrap().expires(), 130 * SEC);
    let pkt2 = Packet::new(Protocol::Tcp, c.0, 1001, VIP, 80);
    d.request(svc, &pkt2, Transport::Tcp(tcp::SYN), 60, 100 * SEC)
        .unwrap();
    assert_eq!(d.conns.get(tpl).unwrap().expires(), 160 * SEC);
    // Close both: RST → CLOSE (10 s). A client RST leaves SYN_RECV as it
    // is, so the second one is reset by the server.
    d.request(svc, &pkt, Transport::Tcp(tcp::RST), 40, 101 * SEC)
        .unwrap();
    let i = d
        .request(svc, &pkt2, Transport::Tcp(tcp::RST), 40, 101 * SEC)
        .unwrap();
    assert_eq!(i.state, tcp::SYN_RECV);
    d.reply(
        Protocol::Tcp,
        (rs(1), 80),
        (c.0, 1001),
        Transport::Tcp(tcp::RST),
        40,
        101 * SEC,
    )
    .unwrap();
    d.conns.expire(111 * SEC, &mut d.services);
    assert_eq!(d.conns.conn_count(), 0);
    assert_eq!(d.conns.get(tpl).unwrap().n_control(), 0);
    d.conns.expire(160 * SEC - 1, &mut d.services);
    assert!(d.conns.get(tpl).is_some());
    d.conns.expire(160 * SEC, &mut d.services);
    assert!(d.conns.is_empty());
    assert_eq!(d.counts(svc, rs(1), 80), (0, 0, 0));
}

#[test]
fn deleted_real_server_invalidates_its_template() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 60, None);
    d.add_dest(svc, rs(1), 80);
    let c = (client(12), 1000);
    assert_eq!(d.tcp_close_session(svc, c, 0).unwrap().daddr, rs(1));
    d.add_dest(svc, rs(2), 80);
    d.del_dest(svc, rs(1), 80, 10);
    let info = d.tcp_close_session(svc, (client(12), 1001), 20).unwrap();
    assert_eq!(info.daddr, rs(2));
    // The oracle: the old template is left with ports 65535, still ASSURED,
    // its timer not restarted.
    let rows: Vec<_> = d
        .conns
        .iter()
        .filter(|e| e.template)
        .map(|e| (e.vport, e.dport, e.state, e.daddr, e.remaining_secs(20)))
        .collect();
    assert!(
        rows.contains(&(0xffff, 0xffff, "ASSURED", rs(1), 59)),
        "{rows:?}"
    );
    assert!(rows.contains(&(80, 80, "ASSURED", rs(2), 60)), "{rows:?}");
    assert_eq!(d.counts(svc, rs(2), 80), (0, 1, 1));
}

#[test]
fn quiesced_real_server_keeps_clients_unless_expire_quiescent_template() {
    let mut d = Director::new();
    let svc = tcp_svc(81);
    d.add_service(svc, "rr", 60, None);
    d.add_dest(svc, rs(1), 80);
    d.add_dest(svc, rs(2), 80);
    let c = client(13);
    assert_eq!(d.tcp_close_session(svc, (c, 1), 0).unwrap().daddr, rs(2));
    d.edit_dest(svc, rs(2), 80, |x| x.weight = 0);
    assert_eq!(d.tcp_close_session(svc, (c, 2), 10).unwrap().daddr, rs(2));
    d.conns.sysctls.expire_quiescent_template = true;
    assert_eq!(d.tcp_close_session(svc, (c, 3), 20).unwrap().daddr, rs(1));
    // The oracle's --persistent-conn: rs1 1/0/1, rs2 (weight 0) 1/0/2.
    assert_eq!(d.counts(svc, rs(1), 80), (0, 1, 1));
    assert_eq!(d.counts(svc, rs(2), 80), (0, 2, 1));
}

#[test]
fn fwmark_templates_use_protocol_ip_and_the_mark() {
    let mut d = Director::new();
    let svc = ServiceKey::Fwmark {
        mark: 7,
        af: Af::Inet,
    };
    d.add_service(svc, "rr", 60, None);
    d.add_dest(svc, rs(1), 0);
    d.add_dest(svc, rs(2), 0);
    let c = client(10);
    let p80 = Packet::new(Protocol::Tcp, c, 1000, VIP, 80).with_mark(7);
    let p443 = Packet::new(Protocol::Udp, c, 1001, VIP, 443).with_mark(7);
    let a = d.schedule(svc, &p80, 0).unwrap();
    let b = d.schedule(svc, &p443, 0).unwrap();
    let (a, b) = (
        d.conns.get(a).unwrap().clone(),
        d.conns.get(b).unwrap().clone(),
    );
    assert_eq!(a.daddr(), b.daddr());
    // Persistent fwmark services keep the packet's port.
    assert_eq!((a.dport(), b.dport()), (80, 443));
    let t: Vec<_> = d.conns.iter().filter(|e| e.template).collect();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].proto, t[0].vaddr, t[0].vport, t[0].dport),
        ("IP", IpAddr::V4(Ipv4Addr::new(0, 0, 0, 7)), 0, 0)
    );
    assert_eq!(t[0].state, "NONE");
    assert_eq!(a.fwmark(), 7);
}

#[test]
fn non_persistent_fwmark_uses_the_dest_port() {
    let mut d = Director::new();
    let svc = ServiceKey::Fwmark {
        mark: 7,
        af: Af::Inet,
    };
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 8080);
    let id = d
        .schedule(
            svc,
            &Packet::new(Protocol::Tcp, client(10), 1000, VIP, 80).with_mark(7),
            0,
        )
        .unwrap();
    assert_eq!(d.conns.get(id).unwrap().dport(), 8080);
}

#[test]
fn port_zero_needs_persistence() {
    let mut d = Director::new();
    let svc = tcp_svc(0);
    d.add_service(svc, "rr", 0, None);
    d.add_dest(svc, rs(1), 0);
    let pkt = Packet::new(Protocol::Tcp, client(10), 1000, VIP, 22);
    assert_eq!(d.schedule(svc, &pkt, 0), Err(Unscheduled::PortMismatch));
    d.edit_service(svc, |c| {
        c.flags |= rvs_core::service::SVC_F_PERSISTENT;
        c.timeout = 60;
    });
    let a = d.schedule(svc, &pkt, 0).unwrap();
    let b = d
        .schedule(
            svc,
            &Packet::new(Protocol::Tcp, client(10), 1001, VIP, 443),
            0,
        )
        .unwrap();
    assert_eq!(
        (
            d.conns.get(a).unwrap().dport(),
            d.conns.get(b).unwrap().dport()
        ),
        (22, 443)
    );
    let t: Vec<_> = d
        .conns
        .iter()
        .filter(|e| e.template)
        .map(|e| (e.proto, e.vport, e.dport))
        .collect();
    assert_eq!(t, vec![("TCP", 0, 0)]);
}

#[test]
fn ftp_template_covers_control_and_data() {
    let mut d = Director::new();
    let svc = tcp_svc(21);
    d.add_service(svc, "rr", 60, None);
    d.add_dest(svc, rs(1), 21);
    d.add_dest(svc, rs(2), 21);
    let c = client(10);
    let ctl = d
        .schedule(svc, &Packet::new(Protocol::Tcp, c, 1000, VIP, 21), 0)
        .unwrap();
    // A passive data connection found the FTP service through its port.
    let data = d
        .schedule(svc, &Packet::new(Protocol::Tcp, c, 1001, VIP, 30000), 0)
        .unwrap();
    let (ctl, data) = (
        d.conns.get(ctl).unwrap().clone(),
        d.conns.get(data).unwrap().clone(),
    );
    assert_eq!(ctl.daddr(), data.daddr());
    assert_eq!((ctl.dport(), data.dport()), (21, 30000));
    let t: Vec<_> = d
        .conns
        .iter()
        .filter(|e| e.template)
        .map(|e| (e.vport, e.dport))
        .collect();
    assert_eq!(t, vec![(0, 0)]);
    // Active FTP data from a real server's port 20 is never scheduled.
    let p = Packet::new(Protocol::Tcp, rs(1), 20, c, 5000);
    assert_eq!(d.schedule(svc, &p, 0), Err(Unscheduled::FtpData));
}

#[test]
fn ipv6_templates_use_the_prefix_length() {
    let mut d = Director::new();
    let vip6: IpAddr = "2001:db8:ffff::100".parse().unwrap();
    let svc = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: vip6,
        port: 80,
    };
    d.add_service(svc, "rr", 60, Some(64));
    d.add_dest(svc, "2001:db8:1::2".parse().unwrap(), 80);
    d.add_dest(svc, "2001:db8:2::2".parse().unwrap(), 80);
    let dest_of = |d: &mut Director, c: &str, p| {
        let id = d
            .schedule(
                svc,
                &Packet::new(Protocol::Tcp, c.parse().unwrap(), p, vip6, 80),
                0,
            )
            .unwrap();
        d.conns.get(id).unwrap().daddr()
    };
    let a = dest_of(&mut d, "2001:db8::1", 1);
    let b = dest_of(&mut d, "2001:db8::ffff:2", 2);
    let c = dest_of(&mut d, "2001:db8:0:1::1", 3);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let nets: Vec<_> = d
        .conns
        .iter()
        .filter(|e| e.template)
        .map(|e| e.caddr)
        .collect();
    assert!(nets.contains(&"2001:db8::".parse::<IpAddr>().unwrap()));
    assert!(nets.contains(&"2001:db8:0:1::".parse::<IpAddr>().unwrap()));
    assert_eq!(
        mask_client("2001:db8::1".parse().unwrap(), 128),
        "2001:db8::1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        mask_client(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    );
}

#[test]
fn chain_drop_takes_unassured_templates_only() {
    let mut d = Director::new();
    let svc = tcp_svc(80);
    d.add_service(svc, "rr", 60, None);
    let id = d.add_dest(svc, rs(1), 80);
    // Client 10: SYN only (template NONE); client 11: established (ASSURED).
    let a = d
        .schedule(svc, &Packet::new(Protocol::Tcp, client(10), 1, VIP, 80), 0)
        .unwrap();
    d.conns.process(
        a,
        Direction::Input,
        Transport::Tcp(tcp::SYN),
        60,
        0,
        &mut d.services,
    );
    let p = Packet::new(Protocol::Tcp, client(11), 1, VIP, 80);
    d.request(svc, &p, Transport::Tcp(tcp::SYN), 60, 0).unwrap();
    d.request(svc, &p, Transport::Tcp(tcp::ACK), 60, 0).unwrap();
    let b = d
        .conns
        .lookup_in(Protocol::Tcp, client(11), 1, VIP, 80)
        .unwrap();
    d.conns.delete(a, 1, &mut d.services);
    d.conns.delete(b, 1, &mut d.services);
    d.conns.expire(1, &mut d.services);
    let t: Vec<_> = d.conns.iter().map(|e| (e.caddr, e.state)).collect();
    assert_eq!(t, vec![(client(11), "ASSURED")]);
    assert_eq!(d.services.dest_mut(id).unwrap().persistconns, 1);
    // A plain expiry never drops the chain.
    let c = d
        .schedule(svc, &Packet::new(Protocol::Tcp, client(12), 1, VIP, 80), 2)
        .unwrap();
    d.conns.process(
        c,
        Direction::Input,
        Transport::Tcp(tcp::SYN),
        60,
        2,
        &mut d.services,
    );
    d.conns.expire(2 + 60 * SEC, &mut d.services);
    assert!(d.conns.iter().any(|e| e.template && e.caddr == client(12)));
    assert!(d.conns.get(c).is_none());
    assert_eq!(CTPL_ASSURED, 1);
}

#[test]
fn sip_templates_key_on_call_id_and_client() {
    let mut d = Director::new();
    let u = udp_svc(5060);
    d.add_service(u, "rr", 30, None);
    d.edit_service(u, |c| c.pe_name = Some("sip".into()));
    for i in 1..=3 {
        d.add_dest(u, rs(i), 5060);
    }
    let msg = |id: &str| format!("INVITE sip:a@b SIP/2.0\r\nCall-ID: {id}\r\n\r\n").into_bytes();
    let a = d
        .udp_exchange(u, (client(10), 5070), &msg("abc@host"), 0)
        .unwrap();
    let a2 = d
        .udp_exchange(u, (client(10), 5080), &msg("abc@host"), 1)
        .unwrap();
    let b = d
        .udp_exchange(u, (client(11), 5071), &msg("abc@host"), 2)
        .unwrap();
    assert_eq!(a.daddr, a2.daddr);
    assert_ne!(a.daddr, b.daddr);
    assert_eq!(
        d.udp_exchange(
            u,
            (client(13), 5073),
            b"INVITE x SIP/2.0\r\nVia: x\r\n\r\n",
            3
        ),
        Err(NotForwarded::NotScheduled(Unscheduled::NoPeData))
    );
    let pe: Vec<_> = d
        .conns
        .iter()
        .filter(|e| e.template)
        .map(|e| (e.caddr, e.pe_name.unwrap(), e.pe_data.unwrap().to_vec()))
        .collect();
    assert_eq!(pe.len(), 2);
    assert!(pe.iter().all(|(_, n, v)| *n == "sip" && v == b"abc@host"));
}

#[test]
fn real_server_initiated_sip_creates_template_and_entry() {
    let mut d = Director::new();
    let u = udp_svc(5060);
    d.add_service(u, "rr", 30, None);
    d.edit_service(u, |c| c.pe_name = Some("sip".into()));
    d.add_dest(u, rs(1), 5060);
    d.add_dest(u, rs(2), 5060);
    let reinvite = b"INVITE sip:c@d SIP/2.0\r\nCall-ID: from-rs\r\n\r\n";
    let pkt = Packet::new(Protocol::Udp, rs(1), 5060, client(10), 6000).with_payload(reinvite);
    let mut totals = std::mem::take(&mut d.services.totals);
    let svc = d.services.service_mut(&u).unwrap();
    let i = svc.dest_index(&rs(1), 5060).unwrap();
    let id = d.conns.new_conn_out(svc, i, &pkt, 0, &mut totals).unwrap();
    d.services.totals = totals;
    let c = d.conns.get(id).unwrap();
    assert_eq!(
        (c.caddr(), c.cport(), c.vaddr(), c.vport(), c.daddr()),
        (client(10), 6000, VIP, 5060, rs(1))
    );
    // The client's answer finds the entry; a new message of the same call
    // from another port of that client reaches rs1 through the template.
    let back = d
        .conns
        .lookup_in(Protocol::Udp, client(10), 6000, VIP, 5060);
    assert_eq!(back, Some(id));
    let other = d.udp_exchange(u, (client(10), 6001), reinvite, 1).unwrap();
    assert_eq!(other.daddr, rs(1));
    assert_eq!(d.counts(u, rs(1), 5060), (0, 2, 1));
}
