//! Installing entries from a sync master (`ip_vs_proc_conn`) on a backup.

mod common;

use common::*;
use rvs_conn::conn::*;
use rvs_conn::{tcp, ConnId, Installed, SyncRefused, SyncedConn};
use rvs_core::{Af, DestId, FwdMethod, Protocol, SEC};
use std::net::IpAddr;

fn rec(cport: u16, daddr: IpAddr, state: u8, flags: u32, timeout: u32) -> SyncedConn {
    SyncedConn {
        proto: 6,
        af: Af::Inet,
        caddr: client(10),
        cport,
        vaddr: VIP,
        vport: 80,
        daddr,
        dport: 80,
        flags,
        state: state as u16,
        timeout_secs: timeout,
        fwmark: 0,
        pe: None,
    }
}

fn install(d: &mut Director, s: SyncedConn, dest: Option<DestId>, now: u64) -> Installed {
    d.conns
        .install_synced(s, dest, 3, now, &mut d.services)
        .unwrap()
}

fn id(i: Installed) -> ConnId {
    match i {
        Installed::Created(id) | Installed::Updated(id) => id,
        Installed::Ignored => panic!("ignored"),
    }
}

#[test]
fn new_entry_keeps_the_masters_activity_and_takes_the_local_forwarding_method() {
    let mut d = Director::new();
    d.add_service(tcp_svc(80), "rr", 0, None);
    let rs1 = d.add_dest_with(tcp_svc(80), rs(1), 80, |c| c.fwd = FwdMethod::Route);
    // The master sent a NAT entry, active, ESTABLISHED, 900 s.
    let i = install(
        &mut d,
        rec(
            1000,
            rs(1),
            tcp::ESTABLISHED,
            CONN_F_MASQ | CONN_F_HASHED,
            900,
        ),
        Some(rs1),
        0,
    );
    let c = d.conns.get(id(i)).unwrap().clone();
    assert!(matches!(i, Installed::Created(_)));
    assert_eq!(c.flags() & CONN_F_SYNC, CONN_F_SYNC);
    assert_eq!(c.fwd(), FwdMethod::Route);
    assert_eq!(c.flags() & CONN_F_NOOUTPUT, CONN_F_NOOUTPUT);
    assert_eq!(c.flags() & CONN_F_INACTIVE, 0);
    assert_eq!(c.state_name(), "ESTABLISHED");
    assert_eq!(c.in_pkts(), 3);
    assert_eq!(c.timeout(), 900 * SEC);
    assert_eq!(c.expires(), 900 * SEC);
    assert_eq!(d.counts(tcp_svc(80), rs(1), 80), (1, 0, 0));
    // Looked up like any entry: a backup that takes over forwards it.
    assert_eq!(
        d.conns.lookup_in(Protocol::Tcp, client(10), 1000, VIP, 80),
        Some(id(i))
    );
}

#[test]
fn update_moves_between_counters_and_keeps_other_flags() {
    let mut d = Director::new();
    d.add_service(tcp_svc(80), "rr", 0, None);
    let rs1 = d.add_dest(tcp_svc(80), rs(1), 80);
    let a = id(install(
        &mut d,
        rec(1000, rs(1), tcp::ESTABLISHED, 0, 900),
        Some(rs1),
        0,
    ));
    assert_eq!(d.counts(tcp_svc(80), rs(1), 80), (1, 0, 0));
    // FIN_WAIT, inactive, timeout 120: same entry, now inactive.
    let b = install(
        &mut d,
        rec(
            1000,
            rs(1),
            tcp::FIN_WAIT,
            CONN_F_INACTIVE | CONN_F_DROUTE,
            120,
        ),
        Some(rs1),
        10 * SEC,
    );
    assert_eq!(b, Installed::Updated(a));
    let c = d.conns.get(a).unwrap();
    assert_eq!(c.state_name(), "FIN_WAIT");
    assert_eq!(c.fwd(), FwdMethod::Masq, "forwarding bits are not updated");
    assert_eq!(c.expires(), 130 * SEC);
    assert_eq!(d.counts(tcp_svc(80), rs(1), 80), (0, 1, 0));
    assert_eq!(d.conns.len(), 1);
}

#[test]
fn zero_timeout_uses_the_local_table_and_templates_three_minutes() {
    let mut d = Director::new();
    d.conns.timeouts.set(0, 33, 0).unwrap();
    let a = id(install(&mut d, rec(1, rs(1), tcp::FIN_WAIT, 0, 0), None, 0));
    assert_eq!(d.conns.get(a).unwrap().timeout(), 33 * SEC);
    let mut t = rec(0, rs(1), CTPL_NONE, CONN_F_TEMPLATE, 0);
    t.caddr = client(0);
    let b = id(install(&mut d, t, None, 0));
    assert_eq!(d.conns.get(b).unwrap().timeout(), 180 * SEC);
    assert!(d.conns.get(b).unwrap().is_template());
    assert_eq!(d.conns.template_count(), 1);
}

#[test]
fn another_real_server_replaces_when_active_and_is_ignored_when_inactive() {
    let mut d = Director::new();
    d.add_service(tcp_svc(80), "rr", 0, None);
    let rs1 = d.add_dest(tcp_svc(80), rs(1), 80);
    let rs2 = d.add_dest(tcp_svc(80), rs(2), 80);
    let a = id(install(
        &mut d,
        rec(7, rs(1), tcp::ESTABLISHED, 0, 900),
        Some(rs1),
        0,
    ));
    // A late inactive notice about rs2: ignored.
    let r = install(
        &mut d,
        rec(7, rs(2), tcp::CLOSE, CONN_F_INACTIVE, 10),
        Some(rs2),
        SEC,
    );
    assert_eq!(r, Installed::Ignored);
    assert_eq!(d.conns.get(a).unwrap().daddr(), rs(1));
    // Active for rs2: the old entry expires now, a new one is found first.
    let b = id(install(
        &mut d,
        rec(7, rs(2), tcp::ESTABLISHED, 0, 900),
        Some(rs2),
        2 * SEC,
    ));
    assert_ne!(a, b);
    assert_eq!(
        d.conns.lookup_in(Protocol::Tcp, client(10), 7, VIP, 80),
        Some(b)
    );
    d.conns.expire(2 * SEC, &mut d.services);
    assert!(d.conns.get(a).is_none());
    assert_eq!(d.counts(tcp_svc(80), rs(1), 80), (0, 0, 0));
    assert_eq!(d.counts(tcp_svc(80), rs(2), 80), (1, 0, 0));
}

#[test]
fn unbound_entry_is_bound_by_a_later_record() {
    let mut d = Director::new();
    let a = id(install(
        &mut d,
        rec(9, rs(1), tcp::ESTABLISHED, CONN_F_DROUTE, 900),
        None,
        0,
    ));
    assert_eq!(d.conns.get(a).unwrap().dest(), None);
    assert_eq!(d.conns.get(a).unwrap().fwd(), FwdMethod::Route);
    d.add_service(tcp_svc(80), "rr", 0, None);
    let rs1 = d.add_dest(tcp_svc(80), rs(1), 80);
    install(
        &mut d,
        rec(9, rs(1), tcp::ESTABLISHED, CONN_F_DROUTE, 900),
        Some(rs1),
        SEC,
    );
    let c = d.conns.get(a).unwrap();
    assert_eq!(c.dest(), Some(rs1));
    // Binding a synced entry gives it the local real server's method.
    assert_eq!(c.fwd(), FwdMethod::Masq);
    assert_eq!(c.flags() & CONN_F_NOOUTPUT, 0);
    assert_eq!(d.counts(tcp_svc(80), rs(1), 80), (1, 0, 0));
}

#[test]
fn bad_records_are_refused() {
    let mut d = Director::new();
    let mut s = rec(1, rs(1), 0, 0, 0);
    s.state = tcp::STATES as u16;
    assert_eq!(
        d.conns.install_synced(s, None, 3, 0, &mut d.services),
        Err(SyncRefused::State(6, 11))
    );
    let mut s = rec(1, rs(1), 0, 0, 0);
    s.proto = 47;
    assert_eq!(
        d.conns.install_synced(s, None, 3, 0, &mut d.services),
        Err(SyncRefused::Protocol(47))
    );
    let mut s = rec(1, rs(1), 0, 0, 0);
    s.daddr = "2001:db8::1".parse().unwrap();
    assert_eq!(
        d.conns.install_synced(s, None, 3, 0, &mut d.services),
        Err(SyncRefused::Family)
    );
    assert!(d.conns.is_empty());
}

#[test]
fn sync_mark_starts_at_creation_and_is_kept() {
    let mut d = Director::new();
    let a = id(install(
        &mut d,
        rec(1, rs(1), tcp::ESTABLISHED, 0, 900),
        None,
        4003,
    ));
    let m = d.conns.sync_mark(a).unwrap();
    assert_eq!(m.endtime, 4000);
    assert_eq!(m.old_state, tcp::ESTABLISHED);
    d.conns.set_sync_mark(
        a,
        rvs_conn::SyncMark {
            old_state: 4,
            endtime: 77,
        },
    );
    assert_eq!(d.conns.sync_mark(a).unwrap().endtime, 77);
    assert_eq!(d.conns.bump_in_pkts(a), Some(4));
}
