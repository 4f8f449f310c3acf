//! The director's request semantics, persistence round trip, sync-daemon
//! defaults and connection listing, with the real schedulers and
//! connection table.

use rvs_conn::{Packet, ProxyEvent, Sysctls};
use rvs_core::{Af, DestConfig, Errno, FwdMethod, Protocol, ServiceConfig, ServiceKey, Time, SEC};
use rvs_ctl::{DaemonConfig, Request, Response, SyncRole, Timeouts};
use rvs_director::{Director, DirectorOptions, Interface};
use std::net::IpAddr;

fn opts(sysctls: Sysctls) -> DirectorOptions {
    DirectorOptions {
        schedulers: Box::new(|n| {
            if n == "twos" {
                None
            } else {
                rvs_sched::new_scheduler(n)
            }
        }),
        interfaces: Box::new(|n| match n {
            "sync0" => Some(Interface {
                mtu: 1500,
                up: true,
            }),
            "jumbo0" => Some(Interface {
                mtu: 9000,
                up: true,
            }),
            "down0" => Some(Interface {
                mtu: 1500,
                up: false,
            }),
            _ => None,
        }),
        local_broadcast: Box::new(|_| false),
        sysctls,
        conn_seed: 7,
    }
}

fn director() -> Director {
    Director::new(opts(Sysctls::default()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip() -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip("10.0.0.1"),
        port: 80,
    }
}

fn sched(name: &str) -> ServiceConfig {
    ServiceConfig {
        scheduler: name.into(),
        ..ServiceConfig::defaults(Af::Inet)
    }
}

fn masq(a: &str, w: i32) -> DestConfig {
    DestConfig {
        fwd: FwdMethod::Masq,
        weight: w,
        ..DestConfig::new(ip(a), 80)
    }
}

fn ok(d: &mut Director, r: Request) {
    assert_eq!(d.apply(&r, 0), Response::Ok, "{r:?}");
}

#[test]
fn errors_carry_the_kernel_errno() {
    let mut d = director();
    let add = |c| Request::AddService {
        key: vip(),
        config: c,
    };
    assert_eq!(d.apply(&add(sched("twos")), 0), Response::Err(Errno::NoEnt));
    ok(&mut d, add(sched("rr")));
    assert_eq!(
        d.apply(&add(sched("bogus")), 0),
        Response::Err(Errno::Exist)
    );
    assert_eq!(
        d.apply(
            &Request::GetService {
                key: ServiceKey::Fwmark {
                    mark: 1,
                    af: Af::Inet
                }
            },
            0
        ),
        Response::Err(Errno::Srch)
    );
    let mut bad = masq("192.168.1.1", 1);
    bad.l_threshold = 3;
    assert_eq!(
        d.apply(
            &Request::AddDest {
                service: vip(),
                dest: bad
            },
            0
        ),
        Response::Err(Errno::Range)
    );
    assert_eq!(
        d.apply(
            &Request::DelDest {
                service: vip(),
                addr: ip("192.168.1.9"),
                port: 80
            },
            0
        ),
        Response::Err(Errno::NoEnt)
    );
    assert_eq!(
        d.apply(
            &Request::StopDaemon {
                role: SyncRole::Master
            },
            0
        ),
        Response::Err(Errno::Srch)
    );
}

#[test]
fn rules_round_trip_rebuilds_the_same_listing() {
    let mut d = director();
    ok(
        &mut d,
        Request::AddService {
            key: vip(),
            config: sched("wrr"),
        },
    );
    for (a, w) in [("192.168.1.1", 1), ("192.168.1.2", 2), ("192.168.1.3", 3)] {
        ok(
            &mut d,
            Request::AddDest {
                service: vip(),
                dest: masq(a, w),
            },
        );
    }
    ok(
        &mut d,
        Request::SetTimeouts(Timeouts {
            tcp: 100,
            tcp_fin: 0,
            udp: 7,
        }),
    );
    let rules = d.rules();
    let mut e = Director::from_rules(&rules, opts(Sysctls::default())).unwrap();
    assert_eq!(e.rules(), rules);
    assert_eq!(
        e.apply(&Request::GetServices, 0),
        d.apply(&Request::GetServices, 0)
    );
    assert_eq!(
        e.timeouts(),
        Timeouts {
            tcp: 100,
            tcp_fin: 120,
            udp: 7
        }
    );
    // Kernel list order (newest first) survives the round trip.
    let Response::Service(s) = d.apply(&Request::GetService { key: vip() }, 0) else {
        panic!()
    };
    let order: Vec<String> = s.dests.iter().map(|d| d.config.addr.to_string()).collect();
    assert_eq!(order, ["192.168.1.3", "192.168.1.2", "192.168.1.1"]);
}

#[test]
fn set_timeouts_rejects_values_the_kernel_rejects_and_keeps_zeroes() {
    let mut d = director();
    assert_eq!(
        d.apply(
            &Request::SetTimeouts(Timeouts {
                tcp: 8_589_935,
                tcp_fin: 0,
                udp: 0
            }),
            0
        ),
        Response::Err(Errno::Inval)
    );
    assert_eq!(d.timeouts(), Timeouts::default());
    ok(
        &mut d,
        Request::SetTimeouts(Timeouts {
            tcp: 8_589_934,
            tcp_fin: 0,
            udp: 0,
        }),
    );
    assert_eq!(d.timeouts().tcp, 8_589_934);
}

fn daemon(role: SyncRole, ifn: &str) -> DaemonConfig {
    DaemonConfig {
        role,
        mcast_ifn: ifn.into(),
        syncid: 0,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    }
}

#[test]
fn sync_daemons_get_linux_defaults_and_errors() {
    let mut d = director();
    assert_eq!(
        d.apply(&Request::StartDaemon(daemon(SyncRole::Master, "eth0")), 0),
        Response::Err(Errno::NoDev)
    );
    assert_eq!(
        d.apply(&Request::StartDaemon(daemon(SyncRole::Master, "down0")), 0),
        Response::Err(Errno::NetUnreach)
    );
    ok(
        &mut d,
        Request::StartDaemon(daemon(SyncRole::Backup, "jumbo0")),
    );
    ok(
        &mut d,
        Request::StartDaemon(daemon(SyncRole::Master, "jumbo0")),
    );
    assert_eq!(
        d.apply(&Request::StartDaemon(daemon(SyncRole::Master, "sync0")), 0),
        Response::Err(Errno::Exist)
    );
    let Response::Daemons(ds) = d.apply(&Request::GetDaemons, 0) else {
        panic!()
    };
    assert_eq!(ds[0].role, SyncRole::Master);
    assert_eq!(
        ds[0].sync_maxlen, 1472,
        "a master sizes for 1500 whatever the MTU"
    );
    assert_eq!(ds[1].sync_maxlen, 8972, "a backup uses the interface MTU");
    assert_eq!(
        (ds[0].mcast_group, ds[0].mcast_port, ds[0].mcast_ttl),
        (Some(ip("224.0.0.81")), 8848, 1)
    );
    ok(
        &mut d,
        Request::StopDaemon {
            role: SyncRole::Backup,
        },
    );
    let mut small = daemon(SyncRole::Backup, "sync0");
    small.sync_maxlen = 1000;
    small.mcast_group = Some(ip("ff02::1:2"));
    ok(&mut d, Request::StartDaemon(small));
    let Response::Daemons(ds) = d.apply(&Request::GetDaemons, 0) else {
        panic!()
    };
    assert_eq!(
        ds[1].sync_maxlen, 1024,
        "a backup's explicit maxlen is clamped up to 1024"
    );
}

fn connect(d: &mut Director, client: &str, sport: u16, now: Time) {
    let (table, conns) = d.tables_mut();
    let (svc, totals) = table.service_and_totals_mut(&vip()).unwrap();
    let pkt = Packet::new(Protocol::Tcp, ip(client), sport, ip("10.0.0.1"), 80);
    let id = conns.schedule(svc, &pkt, now, totals).expect("scheduled");
    conns.proxy_event(id, ProxyEvent::Established, now, table);
}

#[test]
fn connections_are_listed_counted_and_expire_with_time() {
    let mut d = director();
    ok(
        &mut d,
        Request::AddService {
            key: vip(),
            config: sched("rr"),
        },
    );
    ok(
        &mut d,
        Request::AddDest {
            service: vip(),
            dest: masq("192.168.1.1", 1),
        },
    );
    ok(
        &mut d,
        Request::AddDest {
            service: vip(),
            dest: masq("192.168.1.2", 1),
        },
    );
    connect(&mut d, "198.18.0.2", 40000, 0);
    connect(&mut d, "198.18.0.2", 40001, 0);
    let Response::Conns(cs) = d.apply(&Request::GetConns, 10 * SEC) else {
        panic!()
    };
    assert_eq!(cs.len(), 2);
    assert!(
        cs.iter()
            .all(|c| c.state == "ESTABLISHED" && c.expires == 890),
        "{cs:?}"
    );
    let Response::Service(s) = d.apply(&Request::GetService { key: vip() }, 0) else {
        panic!()
    };
    assert_eq!(s.dests.iter().map(|d| d.activeconns).sum::<u32>(), 2);
    assert_eq!(s.stats.conns, 2);
    // --set tcp changes the timeout of later transitions; the old ones run out at 900 s.
    d.tick(901 * SEC);
    let Response::Conns(cs) = d.apply(&Request::GetConns, 901 * SEC) else {
        panic!()
    };
    assert!(cs.is_empty());
    let Response::Service(s) = d.apply(&Request::GetService { key: vip() }, 0) else {
        panic!()
    };
    assert_eq!(
        s.dests
            .iter()
            .map(|d| d.activeconns + d.inactconns)
            .sum::<u32>(),
        0
    );
}

#[test]
fn expire_nodest_conn_flushes_a_deleted_servers_connections() {
    for (flag, left) in [(false, 1), (true, 0)] {
        let mut d = Director::new(opts(Sysctls {
            expire_nodest_conn: flag,
            ..Default::default()
        }));
        ok(
            &mut d,
            Request::AddService {
                key: vip(),
                config: sched("rr"),
            },
        );
        ok(
            &mut d,
            Request::AddDest {
                service: vip(),
                dest: masq("192.168.1.1", 1),
            },
        );
        connect(&mut d, "198.18.0.2", 40000, 0);
        ok(
            &mut d,
            Request::DelDest {
                service: vip(),
                addr: ip("192.168.1.1"),
                port: 80,
            },
        );
        let Response::Conns(cs) = d.apply(&Request::GetConns, SEC) else {
            panic!()
        };
        assert_eq!(cs.len(), left, "expire_nodest_conn={flag}");
    }
}
