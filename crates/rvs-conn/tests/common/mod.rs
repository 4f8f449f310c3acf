//! A small director for the tests: the real service table of `rvs-core`
//! (with its trash of deleted real servers) plus a connection table, and
//! the packet flow of `ip_vs_in` / `ip_vs_out` composed from the public API.
#![allow(dead_code)]

use rvs_conn::sched::{is_new_conn, may_schedule};
use rvs_conn::{
    tcp, ConnId, ConnInfo, ConnTable, Direction, InVerdict, Packet, Transport, Unscheduled,
};
use rvs_core::service::SVC_F_PERSISTENT;
use rvs_core::table::ServiceTable;
use rvs_core::{Dest, DestConfig, DestId, FwdMethod, Protocol, ServiceConfig, ServiceKey, Time};
use std::net::{IpAddr, Ipv4Addr};

pub const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100));

pub fn rs(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 19, i, 2))
}

pub fn client(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
}

pub fn tcp_svc(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: VIP,
        port,
    }
}

pub fn udp_svc(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: VIP,
        port,
    }
}

/// Why a request packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotForwarded {
    Dropped,
    NoService,
    NotScheduled(Unscheduled),
    /// The protocol refused to create an entry (e.g. TCP without SYN).
    Refused,
}

pub struct Director {
    pub services: ServiceTable,
    pub conns: ConnTable,
}

impl Default for Director {
    fn default() -> Self {
        Director::new()
    }
}

impl Director {
    pub fn new() -> Director {
        Director {
            services: ServiceTable::new(Box::new(rvs_sched::new_scheduler)),
            conns: ConnTable::new(),
        }
    }

    /// `-A` with scheduler `sched`, persistence `timeout` (0 = none) and
    /// netmask / prefix length.
    pub fn add_service(
        &mut self,
        key: ServiceKey,
        sched: &str,
        timeout: u32,
        netmask: Option<u32>,
    ) {
        let mut cfg = ServiceConfig::defaults(key.af());
        cfg.scheduler = sched.to_string();
        if timeout > 0 {
            cfg.flags |= SVC_F_PERSISTENT;
            cfg.timeout = timeout;
        }
        if let Some(m) = netmask {
            cfg.netmask = m;
        }
        self.services.add_service(key, &cfg).unwrap();
    }

    pub fn edit_service(&mut self, key: ServiceKey, f: impl FnOnce(&mut ServiceConfig)) {
        let mut cfg = self.services.service(&key).unwrap().config.clone();
        f(&mut cfg);
        self.services.edit_service(&key, &cfg).unwrap();
    }

    /// `-a` a NAT real server.
    pub fn add_dest(&mut self, key: ServiceKey, addr: IpAddr, port: u16) -> DestId {
        self.add_dest_with(key, addr, port, |_| {})
    }

    pub fn add_dest_with(
        &mut self,
        key: ServiceKey,
        addr: IpAddr,
        port: u16,
        f: impl FnOnce(&mut DestConfig),
    ) -> DestId {
        let mut cfg = DestConfig::new(addr, port);
        cfg.fwd = FwdMethod::Masq;
        f(&mut cfg);
        match self.services.add_dest(&key, &cfg).unwrap() {
            rvs_core::table::DestChange::Added(id) => id,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn edit_dest(
        &mut self,
        key: ServiceKey,
        addr: IpAddr,
        port: u16,
        f: impl FnOnce(&mut DestConfig),
    ) {
        let svc = self.services.service(&key).unwrap();
        let i = svc.dest_index(&addr, port).unwrap();
        let mut cfg = svc.dests[i].config.clone();
        f(&mut cfg);
        self.services.edit_dest(&key, &cfg).unwrap();
    }

    /// `-d`; with `expire_nodest_conn` the table is flushed as the kernel's
    /// delayed work does.
    pub fn del_dest(&mut self, key: ServiceKey, addr: IpAddr, port: u16, now: Time) {
        self.services.del_dest(&key, &addr, port, now).unwrap();
        if self.conns.sysctls.expire_nodest_conn {
            self.conns.expire_nodest_conn_flush(now, &mut self.services);
        }
    }

    /// `-C`.
    pub fn flush(&mut self, now: Time) {
        self.services.flush(now);
        if self.conns.sysctls.expire_nodest_conn {
            self.conns.expire_nodest_conn_flush(now, &mut self.services);
        }
    }

    pub fn dest(&mut self, key: ServiceKey, addr: IpAddr, port: u16) -> &Dest {
        let svc = self.services.service(&key).unwrap();
        let i = svc.dest_index(&addr, port).unwrap();
        &svc.dests[i]
    }

    pub fn dest_by_id(&mut self, id: DestId) -> Dest {
        use rvs_core::DestStore;
        self.services.dest_mut(id).unwrap().clone()
    }

    /// (activeconns, inactconns, persistconns) of a real server.
    pub fn counts(&mut self, key: ServiceKey, addr: IpAddr, port: u16) -> (u32, u32, u32) {
        let d = self.dest(key, addr, port);
        (d.activeconns, d.inactconns, d.persistconns)
    }

    /// Schedules through the service table's service and totals.
    pub fn schedule(
        &mut self,
        key: ServiceKey,
        pkt: &Packet<'_>,
        now: Time,
    ) -> Result<ConnId, Unscheduled> {
        let mut totals = std::mem::take(&mut self.services.totals);
        let svc = self.services.service_mut(&key).expect("service");
        let r = self.conns.schedule(svc, pkt, now, &mut totals);
        self.services.totals = totals;
        r
    }

    /// A client → VIP packet through `ip_vs_in`: lookup, reuse / nodest
    /// checks, scheduling on `key`, state machine.
    pub fn request(
        &mut self,
        key: ServiceKey,
        pkt: &Packet<'_>,
        l4: Transport,
        bytes: u64,
        now: Time,
    ) -> Result<ConnInfo, NotForwarded> {
        self.conns.expire(now, &mut self.services);
        let r = self.request_inner(key, pkt, l4, bytes, now);
        // Entries told to expire now (port reuse, deleted real server) are
        // gone before the next packet, as the kernel's timer fires at once.
        self.conns.expire(now, &mut self.services);
        r
    }

    fn request_inner(
        &mut self,
        key: ServiceKey,
        pkt: &Packet<'_>,
        l4: Transport,
        bytes: u64,
        now: Time,
    ) -> Result<ConnInfo, NotForwarded> {
        let mut id = self
            .conns
            .lookup_in(pkt.proto, pkt.saddr, pkt.sport, pkt.daddr, pkt.dport);
        if let Some(i) = id {
            match self
                .conns
                .check_in(i, is_new_conn(l4), now, &mut self.services)
            {
                InVerdict::Hit(i) => id = Some(i),
                InVerdict::Miss => {
                    // The kernel's timer for the old entry fires right away.
                    id = None;
                }
                InVerdict::Drop => return Err(NotForwarded::Dropped),
            }
        }
        let id = match id {
            Some(i) => i,
            None => {
                if !may_schedule(l4, &self.conns.sysctls) {
                    return Err(NotForwarded::Refused);
                }
                if self.services.service(&key).is_none() {
                    return Err(NotForwarded::NoService);
                }
                self.schedule(key, pkt, now)
                    .map_err(NotForwarded::NotScheduled)?
            }
        };
        Ok(self
            .conns
            .process(id, Direction::Input, l4, bytes, now, &mut self.services)
            .expect("live entry"))
    }

    /// A real server → client packet through `ip_vs_out`.
    pub fn reply(
        &mut self,
        proto: Protocol,
        from: (IpAddr, u16),
        to: (IpAddr, u16),
        l4: Transport,
        bytes: u64,
        now: Time,
    ) -> Option<ConnInfo> {
        self.conns.expire(now, &mut self.services);
        let id = self.conns.lookup_out(proto, from.0, from.1, to.0, to.1)?;
        self.conns
            .process(id, Direction::Output, l4, bytes, now, &mut self.services)
    }

    /// A short NAT TCP connection as the oracle's client and "close"-mode
    /// server make it: handshake, the server's one-line answer and FIN,
    /// then the client's FIN. Returns the real server it reached.
    pub fn tcp_close_session(
        &mut self,
        key: ServiceKey,
        c: (IpAddr, u16),
        now: Time,
    ) -> Result<ConnInfo, NotForwarded> {
        let (vaddr, vport) = match key {
            ServiceKey::Addr { addr, port, .. } => (addr, port),
            ServiceKey::Fwmark { .. } => panic!("address services only"),
        };
        let pkt = Packet::new(Protocol::Tcp, c.0, c.1, vaddr, vport);
        let first = self.request(key, &pkt, Transport::Tcp(tcp::SYN), 60, now)?;
        let srv = (first.daddr, first.dport);
        let t = |f| Transport::Tcp(f);
        self.reply(Protocol::Tcp, srv, c, t(tcp::SYN | tcp::ACK), 60, now + 1);
        self.request(key, &pkt, t(tcp::ACK), 52, now + 2)?;
        self.reply(Protocol::Tcp, srv, c, t(tcp::ACK | tcp::PSH), 56, now + 3);
        self.reply(Protocol::Tcp, srv, c, t(tcp::FIN | tcp::ACK), 52, now + 3);
        self.request(key, &pkt, t(tcp::ACK), 52, now + 4)?;
        self.request(key, &pkt, t(tcp::FIN | tcp::ACK), 52, now + 5)?;
        self.reply(Protocol::Tcp, srv, c, t(tcp::ACK), 52, now + 6);
        Ok(first)
    }

    /// One UDP request and, if forwarded, the server's answer.
    pub fn udp_exchange(
        &mut self,
        key: ServiceKey,
        c: (IpAddr, u16),
        payload: &[u8],
        now: Time,
    ) -> Result<ConnInfo, NotForwarded> {
        let (vaddr, vport) = match key {
            ServiceKey::Addr { addr, port, .. } => (addr, port),
            ServiceKey::Fwmark { .. } => panic!("address services only"),
        };
        let pkt = Packet::new(Protocol::Udp, c.0, c.1, vaddr, vport).with_payload(payload);
        let info = self.request(key, &pkt, Transport::Udp, 28 + payload.len() as u64, now)?;
        self.reply(
            Protocol::Udp,
            (info.daddr, info.dport),
            c,
            Transport::Udp,
            32,
            now + 1,
        );
        Ok(info)
    }

    /// Which real server (1..=3) an address is.
    pub fn rs_name(addr: IpAddr) -> String {
        match addr {
            IpAddr::V4(a) => format!("rs{}", a.octets()[2]),
            IpAddr::V6(a) => a.to_string(),
        }
    }

    /// `/proc/net/ip_vs_conn` rows as the kernel prints them (IPv4 only),
    /// sorted, with non-zero client ports replaced by `*` (they are random
    /// in the oracle's captures).
    pub fn proc_rows(&self, now: Time) -> Vec<String> {
        let hex = |a: IpAddr| match a {
            IpAddr::V4(v) => format!("{:08X}", u32::from(v)),
            IpAddr::V6(v) => v.to_string(),
        };
        let mut rows: Vec<String> = self
            .conns
            .iter()
            .map(|e| {
                let cport = if e.cport == 0 {
                    "0000".to_string()
                } else {
                    "*".to_string()
                };
                let mut s = format!(
                    "{} {} {} {} {:04X} {} {:04X} {:<11} {:>7}",
                    e.proto,
                    hex(e.caddr),
                    cport,
                    hex(e.vaddr),
                    e.vport,
                    hex(e.daddr),
                    e.dport,
                    e.state,
                    e.remaining_secs(now)
                );
                if let (Some(n), Some(d)) = (e.pe_name, e.pe_data) {
                    s.push_str(&format!(" {} {}", n, String::from_utf8_lossy(d)));
                }
                s
            })
            .collect();
        rows.sort();
        rows
    }
}

/// Rows of a `/proc/net/ip_vs_conn` dump in an oracle capture, in the same
/// normalised form as [`Director::proc_rows`].
pub fn golden_proc_rows(lines: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let cport = if f[2] == "0000" { "0000" } else { "*" };
            let mut s = format!(
                "{} {} {} {} {} {} {} {:<11} {:>7}",
                f[0], f[1], cport, f[3], f[4], f[5], f[6], f[7], f[8]
            );
            if f.len() > 9 {
                s.push_str(&format!(" {}", f[9..].join(" ")));
            }
            s
        })
        .collect();
    rows.sort();
    rows
}

/// Compares row sets, allowing the `Expires` column to differ by `slack`
/// seconds (the oracle's timing is not ours to the second).
pub fn assert_rows_match(ours: &[String], golden: &[String], slack: i64) {
    let split = |r: &String| -> (String, i64, String) {
        let f: Vec<&str> = r.split_whitespace().collect();
        let head = f[..8].join(" ");
        let secs: i64 = f[8].parse().unwrap();
        let tail = f[9..].join(" ");
        (head, secs, tail)
    };
    let mut a: Vec<_> = ours.iter().map(split).collect();
    let mut b: Vec<_> = golden.iter().map(split).collect();
    a.sort();
    b.sort();
    let show = |v: &Vec<(String, i64, String)>| {
        v.iter()
            .map(|(h, s, t)| format!("{h} {s} {t}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        a.len(),
        b.len(),
        "row count differs\nours:\n{}\ngolden:\n{}",
        show(&a),
        show(&b)
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(
            x.0 == y.0 && x.2 == y.2 && (x.1 - y.1).abs() <= slack,
            "rows differ\nours:\n{}\ngolden:\n{}",
            show(&a),
            show(&b)
        );
    }
}

/// The lines of a capture between the line `start` and the next line that
/// starts with `$` or `#`.
pub fn section<'a>(capture: &'a str, start: &str, nth: usize) -> Vec<&'a str> {
    let lines: Vec<&str> = capture.lines().collect();
    let mut seen = 0;
    for (i, l) in lines.iter().enumerate() {
        if *l == start {
            if seen == nth {
                return lines[i + 1..]
                    .iter()
                    .take_while(|l| {
                        !l.starts_with('$') && !l.starts_with('#') && !l.starts_with('[')
                    })
                    .copied()
                    .collect();
            }
            seen += 1;
        }
    }
    panic!("no section {start:?} #{nth}");
}
