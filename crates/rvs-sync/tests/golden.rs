//! Golden sync messages captured from Linux 6.1 (`tests/data/sync-capture.sh`
//! run in the oracle VM; its output is `sync-capture.out`): the decoder
//! reads every datagram, the encoder reproduces each byte for byte, the
//! sender produces the same bytes when the same connections go through
//! rvs's connection table, and a backup fed the datagrams ends with the
//! entries the kernel backup listed.

use rvs_conn::{tcp, ConnId, ConnTable, Direction, Packet, Transport};
use rvs_core::table::ServiceTable;
use rvs_core::{Af, DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey, Time, SEC};
use rvs_sync::{decode, encode, Received, Receiver, Sender, SyncParams, Version};
use std::net::IpAddr;

const OUT: &str = include_str!("data/sync-capture.out");

fn datagrams() -> Vec<Vec<u8>> {
    let start = OUT.find("# datagrams\n").expect("datagrams section");
    OUT[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .map(|l| {
            let hex = l.split_whitespace().nth(1).expect("hex");
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex byte"))
                .collect()
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const VIP: &str = "198.18.0.100";

fn tcp_key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip(VIP),
        port,
    }
}

/// The services of the capture script, on either director.
fn services() -> ServiceTable {
    let mut t = ServiceTable::new(Box::new(rvs_sched::new_scheduler));
    let svc = |persist: u32| {
        let mut c = ServiceConfig::defaults(Af::Inet);
        c.scheduler = "rr".into();
        if persist > 0 {
            c.flags |= rvs_core::service::SVC_F_PERSISTENT;
            c.timeout = persist;
        }
        c
    };
    let dest = |addr: &str, port: u16| {
        let mut d = DestConfig::new(ip(addr), port);
        d.fwd = FwdMethod::Masq;
        d
    };
    t.add_service(tcp_key(80), &svc(0)).unwrap();
    for i in 1..=3 {
        t.add_dest(&tcp_key(80), &dest(&format!("198.19.{i}.2"), 80))
            .unwrap();
    }
    t.add_service(tcp_key(8080), &svc(60)).unwrap();
    for i in 1..=2 {
        t.add_dest(&tcp_key(8080), &dest(&format!("198.19.{i}.2"), 80))
            .unwrap();
    }
    let udp = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip(VIP),
        port: 53,
    };
    t.add_service(udp, &svc(0)).unwrap();
    t.add_dest(&udp, &dest("198.19.3.2", 53)).unwrap();
    let fwm = ServiceKey::Fwmark {
        mark: 5,
        af: Af::Inet,
    };
    t.add_service(fwm, &svc(30)).unwrap();
    t.add_dest(&fwm, &dest("198.19.2.2", 80)).unwrap();
    t
}

#[test]
fn every_captured_datagram_decodes_and_re_encodes_identically() {
    let d = datagrams();
    assert_eq!(d.len(), 4);
    let want = [
        (Version::V1, 4),
        (Version::V1, 7),
        (Version::V1, 1),
        (Version::V0, 6),
    ];
    for (bytes, (version, n)) in d.iter().zip(want) {
        let m = decode(bytes).unwrap();
        assert_eq!((m.version, m.records.len()), (version, n));
        assert_eq!(m.syncid, 7);
        assert_eq!(m.dropped_rest, None);
        assert_eq!(&encode(m.version, m.syncid, &m.records).unwrap(), bytes);
    }
    let m = decode(&d[1]).unwrap();
    let fwmark_template = &m.records[6];
    assert_eq!(
        (
            fwmark_template.protocol,
            fwmark_template.fwmark,
            fwmark_template.timeout
        ),
        (0, 5, 30)
    );
    assert_eq!(fwmark_template.vaddr, ip("0.0.0.5"));
    assert_eq!(fwmark_template.flags, 0x1100);
}

/// The master of the capture: services, connection table, sync sender.
struct Master {
    services: ServiceTable,
    conns: ConnTable,
    sender: Sender,
}

impl Master {
    fn schedule(
        &mut self,
        key: ServiceKey,
        proto: Protocol,
        src: (&str, u16),
        dport: u16,
        mark: u32,
        now: Time,
    ) -> ConnId {
        let pkt = Packet::new(proto, ip(src.0), src.1, ip(VIP), dport).with_mark(mark);
        let (svc, totals) = self.services.service_and_totals_mut(&key).unwrap();
        self.conns.schedule(svc, &pkt, now, totals).unwrap()
    }

    fn input(&mut self, id: ConnId, l4: Transport, now: Time) {
        self.conns
            .process(id, Direction::Input, l4, 60, now, &mut self.services)
            .unwrap();
        self.sender.conn_in(&mut self.conns, id, now);
    }

    fn output(&mut self, id: ConnId, l4: Transport, now: Time) {
        self.conns
            .process(id, Direction::Output, l4, 60, now, &mut self.services)
            .unwrap();
    }

    /// The packets of one client.py connection to an rs_server.py "close"
    /// server: handshake, the server's name, the server's FIN, then the
    /// client's FIN (with the ACK of the server's).
    fn tcp_conn(&mut self, id: ConnId, now: Time) {
        let t = Transport::Tcp;
        self.input(id, t(tcp::SYN), now);
        self.output(id, t(tcp::SYN | tcp::ACK), now);
        self.input(id, t(tcp::ACK), now);
        self.output(id, t(tcp::ACK | tcp::PSH), now);
        self.input(id, t(tcp::ACK), now);
        self.output(id, t(tcp::FIN | tcp::ACK), now);
        self.input(id, t(tcp::FIN | tcp::ACK), now);
        self.output(id, t(tcp::ACK), now);
        assert_eq!(self.conns.get(id).unwrap().state(), tcp::TIME_WAIT);
    }
}

#[test]
fn the_sender_reproduces_the_kernels_datagrams() {
    let golden = datagrams();
    let mut m = Master {
        services: services(),
        conns: ConnTable::new(),
        sender: Sender::new(7, 1472, SyncParams::default()),
    };
    let mut now = 1000;
    // Phase 1: two plain connections (rr: rs3 then rs2).
    for (src, port, rs) in [
        ("198.18.0.10", 36627, "198.19.3.2"),
        ("198.18.0.11", 51201, "198.19.2.2"),
    ] {
        let id = m.schedule(tcp_key(80), Protocol::Tcp, (src, port), 80, 0, now);
        assert_eq!(m.conns.get(id).unwrap().daddr(), ip(rs));
        m.tcp_conn(id, now);
    }
    assert_eq!(m.sender.next_datagram(now + 1999), None);
    assert_eq!(m.sender.next_datagram(now + 2000).unwrap(), golden[0]);
    // Phase 2: a persistent connection, then a fwmark one the real server refuses.
    now += 3 * SEC;
    let id = m.schedule(
        tcp_key(8080),
        Protocol::Tcp,
        ("198.18.0.12", 40115),
        8080,
        0,
        now,
    );
    m.tcp_conn(id, now);
    let fwm = ServiceKey::Fwmark {
        mark: 5,
        af: Af::Inet,
    };
    let id = m.schedule(fwm, Protocol::Tcp, ("198.18.0.13", 59721), 8081, 5, now);
    m.input(id, Transport::Tcp(tcp::SYN), now);
    m.output(id, Transport::Tcp(tcp::RST | tcp::ACK), now);
    assert_eq!(m.sender.next_datagram(now + 2000).unwrap(), golden[1]);
    // Phase 3: four UDP datagrams.
    now += 3 * SEC;
    let udp = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip(VIP),
        port: 53,
    };
    let id = m.schedule(udp, Protocol::Udp, ("198.18.0.10", 40000), 53, 0, now);
    for _ in 0..4 {
        m.input(id, Transport::Udp, now);
    }
    assert_eq!(m.sender.next_datagram(now + 2000).unwrap(), golden[2]);
    // Phase 4: sync_version 0; the 8080 client reuses its template.
    now += 3 * SEC;
    m.sender.set_params(SyncParams {
        sync_version: Version::V0,
        ..SyncParams::default()
    });
    let id = m.schedule(
        tcp_key(80),
        Protocol::Tcp,
        ("198.18.0.11", 37463),
        80,
        0,
        now,
    );
    assert_eq!(m.conns.get(id).unwrap().daddr(), ip("198.19.1.2"));
    m.tcp_conn(id, now);
    let id = m.schedule(
        tcp_key(8080),
        Protocol::Tcp,
        ("198.18.0.12", 42375),
        8080,
        0,
        now,
    );
    m.tcp_conn(id, now);
    assert_eq!(m.sender.next_datagram(now + 2000).unwrap(), golden[3]);
    assert_eq!(m.sender.next_datagram(now + 10 * SEC), None);
}

/// Rows (without the expire column) of the kernel backup's `ipvsadm -L -n
/// -c` number `nth` (0: after phase 3, 1: after phase 4) in the capture.
fn kernel_rows(nth: usize) -> Vec<String> {
    let marker = "$ ip netns exec bk ipvsadm -L -n -c\n";
    let start = OUT.match_indices(marker).nth(nth).expect("listing").0;
    let mut rows: Vec<String> = OUT[start..]
        .lines()
        .skip(3)
        .take_while(|l| !l.starts_with('['))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {} {} {}", f[0], f[2], f[3], f[4], f[5])
        })
        .collect();
    rows.sort();
    rows
}

fn rvs_rows(conns: &ConnTable) -> Vec<String> {
    let a = |ip: IpAddr, port: u16| format!("{ip}:{port}");
    let mut rows: Vec<String> = conns
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {} {}",
                c.proto,
                c.state,
                a(c.caddr, c.cport),
                a(c.vaddr, c.vport),
                a(c.daddr, c.dport)
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_backup_fed_the_datagrams_lists_what_the_kernel_backup_listed() {
    let golden = datagrams();
    let mut services = services();
    let mut conns = ConnTable::new();
    let mut rx = Receiver::new(7, 3);
    let now = 5000;
    for d in &golden[..3] {
        rx.receive(d, now, &mut services, &mut conns);
    }
    assert_eq!(rvs_rows(&conns), kernel_rows(0));
    // Counters as the kernel backup's `-L -n` showed them (templates are
    // counted as persistent connections, which ipvsadm does not show).
    let count = |s: &ServiceTable, key: ServiceKey, rs: &str, port: u16| {
        let svc = s.service(&key).unwrap();
        let d = &svc.dests[svc.dest_index(&ip(rs), port).unwrap()];
        (d.activeconns, d.inactconns)
    };
    assert_eq!(count(&services, tcp_key(80), "198.19.2.2", 80), (0, 1));
    assert_eq!(count(&services, tcp_key(80), "198.19.3.2", 80), (0, 1));
    assert_eq!(count(&services, tcp_key(80), "198.19.1.2", 80), (0, 0));
    assert_eq!(count(&services, tcp_key(8080), "198.19.2.2", 80), (0, 1));
    let udp = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip(VIP),
        port: 53,
    };
    assert_eq!(count(&services, udp, "198.19.3.2", 53), (0, 1));
    // Timeouts: TIME_WAIT 120 s, UDP 300 s, templates 60 s and 30 s (fwmark).
    let mut secs: Vec<(String, u64)> = conns
        .iter()
        .map(|c| (format!("{}:{}", c.caddr, c.cport), c.remaining_secs(now)))
        .collect();
    secs.sort();
    assert_eq!(
        secs,
        [
            ("198.18.0.10:36627".to_string(), 120),
            ("198.18.0.10:40000".to_string(), 300),
            ("198.18.0.11:51201".to_string(), 120),
            ("198.18.0.12:0".to_string(), 60),
            ("198.18.0.12:40115".to_string(), 120),
            ("198.18.0.13:0".to_string(), 30),
        ]
    );
    // The version 0 message: no timeouts, so the backup's own (the
    // template: 3 minutes, as the kernel's "02:59").
    rx.receive(&golden[3], now, &mut services, &mut conns);
    assert_eq!(rvs_rows(&conns), kernel_rows(1));
    let tpl = conns
        .lookup_template(6, ip("198.18.0.12"), ip(VIP), 8080, None)
        .unwrap();
    assert_eq!(conns.get(tpl).unwrap().remaining_secs(now), 180);
    assert_eq!(rx.stats.refused, 0);
}

#[test]
fn receive_into_names_every_entry_it_installed() {
    let golden = datagrams();
    let mut services = services();
    let mut conns = ConnTable::new();
    let mut rx = Receiver::new(7, 3);
    let mut ids = Vec::new();
    let mut installed = 0;
    for d in &golden[..3] {
        if let Received::Records(t) = rx.receive_into(d, 5000, &mut services, &mut conns, &mut ids)
        {
            installed += (t.created + t.updated) as usize;
        }
    }
    // One id per record installed (a connection sent in two states is
    // named twice), and every entry of the table among them.
    assert_eq!(ids.len(), installed);
    let key = |id: &ConnId| format!("{id:?}");
    let mut listed: Vec<ConnId> = conns.iter().map(|e| e.id).collect();
    listed.sort_by_key(key);
    ids.sort_by_key(key);
    ids.dedup();
    assert_eq!(ids, listed);
    assert_eq!(ids.len(), 6);
}
