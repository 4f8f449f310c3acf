//! Packet fixtures through BPF_PROG_TEST_RUN (Katran-style): an input
//! frame, the expected output frame and verdict, for every forwarding
//! method × address family × protocol, NAT replies, ICMP errors, first
//! packets handed to userspace, and bad packets. The program runs in a
//! network namespace of its own whose FIB and static neighbours give the
//! next hops. Expected frames are built from scratch with full checksums,
//! so they check the program's incremental updates. Needs root.

mod common;

use common::*;
use rvs_xdp::maps::{self, ConnKey, DestVal, Svc};
use rvs_xdp::{Datapath, XDP_DROP, XDP_PASS, XDP_TX};
use std::net::IpAddr;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

struct Net {
    af: u8,
    dir: IpAddr,
    client: IpAddr,
    rs_dr: IpAddr,
    rs_nat: IpAddr,
    rs_tun: IpAddr,
    vip: IpAddr,
}

fn nets() -> [Net; 2] {
    let p = |s: &str| s.parse::<IpAddr>().unwrap();
    [
        Net {
            af: 4,
            dir: p("198.18.0.1"),
            client: p("198.18.0.3"),
            rs_dr: p("198.18.0.2"),
            rs_nat: p("198.18.0.4"),
            rs_tun: p("198.18.0.5"),
            vip: p("198.18.0.10"),
        },
        Net {
            af: 6,
            dir: p("fd00::1"),
            client: p("fd00::3"),
            rs_dr: p("fd00::2"),
            rs_nat: p("fd00::4"),
            rs_tun: p("fd00::5"),
            vip: p("fd00::10"),
        },
    ]
}

fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

struct Fixture {
    _ns: Netns,
    dp: Datapath,
    ifindex: u32,
    dmac: [u8; 6],
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.dp.unpin();
    }
}

const M_DR: u16 = 80;
const M_NAT: u16 = 81;
const M_IPIP: u16 = 82;
const M_GUE: u16 = 83;
const M_GRE: u16 = 84;
const M_PUNT: u16 = 85;
const NAT_PORT: u16 = 8080;
const GUE_PORT: u16 = 6080;

fn slot(af: u8, port: u16) -> u32 {
    (if af == 4 { 0 } else { 10 }) + (port - 80) as u32
}

fn setup(tag: &str) -> Option<Fixture> {
    if !is_root() {
        eprintln!("skipped: needs root (BPF, network namespaces)");
        return None;
    }
    let ns = Netns::new(&format!("rvsxdp-{tag}-{}", std::process::id()));
    ns.run("ip link add fx0 type veth peer name fx1");
    ns.run("ip link set fx0 up");
    ns.run("ip link set fx1 up");
    ns.run("ip addr add 198.18.0.1/24 dev fx0");
    ns.run("ip -6 addr add fd00::1/64 dev fx0 nodad");
    ns.run("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
    for n in [2u8, 3, 4, 5] {
        let m = mac(n)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        ns.run(&format!(
            "ip neigh replace 198.18.0.{n} lladdr {m} dev fx0 nud permanent"
        ));
        ns.run(&format!(
            "ip -6 neigh replace fd00::{n} lladdr {m} dev fx0 nud permanent"
        ));
    }
    ns.enter();
    let ifindex = ns.ifindex("fx0");
    let dmac = ns.mac("fx0");
    let pin = std::path::PathBuf::from(format!("/sys/fs/bpf/rvsxdp-{tag}-{}", std::process::id()));
    let dp = Datapath::load(&pin).expect("load");
    dp.set_config(maps::CFG_CONN_REUSE, 100).unwrap();
    dp.set_ifmac(Some(dmac)).unwrap();
    for n in nets() {
        for (port, addr, fwd, tun) in [
            (M_DR, n.rs_dr, maps::FWD_ROUTE, 0),
            (M_NAT, n.rs_nat, maps::FWD_MASQ, 0),
            (M_IPIP, n.rs_tun, maps::FWD_TUNNEL, 0),
            (M_GUE, n.rs_tun, maps::FWD_TUNNEL, 1),
            (M_GRE, n.rs_tun, maps::FWD_TUNNEL, 2),
            (M_PUNT, n.rs_dr, maps::FWD_ROUTE, 0),
        ] {
            let s = slot(n.af, port);
            dp.set_dest(
                s,
                &DestVal {
                    addr,
                    tun_src: maps::addr16(&n.dir),
                    fwd,
                    tun_type: tun,
                    flags: maps::DEST_AVAILABLE,
                    port: if fwd == maps::FWD_MASQ { NAT_PORT } else { 0 },
                    tun_port: GUE_PORT,
                    svc: s,
                    id_port: port,
                },
            )
            .unwrap();
            dp.set_ring(s, &[s]).unwrap();
            let svc = if port == M_PUNT {
                Svc {
                    id: s,
                    flags: maps::SVC_PUNT,
                    ring_off: 0,
                    ring_len: 0,
                }
            } else {
                Svc {
                    id: s,
                    flags: maps::SVC_RING,
                    ring_off: s,
                    ring_len: 1,
                }
            };
            for proto in [6u8, 17] {
                dp.set_service(&n.vip, port, proto, &svc).unwrap();
            }
        }
    }
    Some(Fixture {
        _ns: ns,
        dp,
        ifindex,
        dmac,
    })
}

impl Fixture {
    fn run(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        let r = self.dp.test_run(frame, self.ifindex, 1).expect("test run");
        (r.verdict, r.frame)
    }

    fn expect(&self, what: &str, input: &[u8], verdict: u32, output: &[u8]) {
        let (v, out) = self.run(input);
        assert_eq!(v, verdict, "{what}: verdict");
        assert_eq!(hex(&out), hex(output), "{what}: output frame");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn l4(proto: u8, sport: u16, dport: u16, flags: u8) -> L4 {
    if proto == 6 {
        L4::tcp(sport, dport, flags)
    } else {
        L4::udp(sport, dport)
    }
}

fn proto_name(p: u8) -> &'static str {
    if p == 6 {
        "TCP"
    } else {
        "UDP"
    }
}

/// The inner packet after the director decremented its TTL.
fn inner(n: &Net, ttl: u8, l: &L4, dst: &IpAddr) -> Vec<u8> {
    ip(
        &n.client,
        dst,
        l.proto,
        ttl,
        0x1234,
        &l.bytes(&n.client, dst),
    )
}

#[test]
fn every_method_family_and_protocol() {
    let Some(f) = setup("fix") else { return };
    let cmac = mac(3);
    for n in nets() {
        for proto in [6u8, 17] {
            let what = |m: &str| format!("{m} IPv{} {}", n.af, proto_name(proto));
            // Direct routing: MAC rewrite, TTL - 1.
            let l = l4(proto, 40000, M_DR, SYN);
            let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
            f.expect(
                &what("DR"),
                &input,
                XDP_TX,
                &frame(mac(2), f.dmac, &n.client, &n.vip, 63, &l),
            );
            let key = ConnKey {
                caddr: n.client,
                cport: 40000,
                vaddr: n.vip,
                vport: M_DR,
                proto,
            };
            let c = f.dp.conn(&key).expect("DR entry");
            assert_eq!(c.dest as u32, slot(n.af, M_DR));
            assert_eq!(c.flags & maps::CONN_NOOUTPUT, maps::CONN_NOOUTPUT);
            if proto == 6 {
                assert_eq!(c.state, 3, "SYN_RECV after the SYN");
                let l = l4(proto, 40000, M_DR, ACK);
                let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
                f.expect(
                    &what("DR ACK"),
                    &input,
                    XDP_TX,
                    &frame(mac(2), f.dmac, &n.client, &n.vip, 63, &l),
                );
                assert_eq!(
                    f.dp.conn(&key).unwrap().state,
                    1,
                    "ESTABLISHED (INPUT_ONLY table)"
                );
            }

            // NAT in: destination and port to the real server.
            let l = l4(proto, 40001, M_NAT, SYN);
            let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
            let mut l_rs = l.clone();
            l_rs.dport = NAT_PORT;
            f.expect(
                &what("NAT in"),
                &input,
                XDP_TX,
                &frame(mac(4), f.dmac, &n.client, &n.rs_nat, 63, &l_rs),
            );
            // NAT reply: source back to the virtual service.
            let r = l4(proto, NAT_PORT, 40001, SYN | ACK);
            let input = frame(f.dmac, mac(4), &n.rs_nat, &n.client, 64, &r);
            let mut r_v = r.clone();
            r_v.sport = M_NAT;
            f.expect(
                &what("NAT reply"),
                &input,
                XDP_TX,
                &frame(cmac, f.dmac, &n.vip, &n.client, 63, &r_v),
            );
            let key = ConnKey {
                caddr: n.client,
                cport: 40001,
                vaddr: n.vip,
                vport: M_NAT,
                proto,
            };
            if proto == 6 {
                assert_eq!(
                    f.dp.conn(&key).unwrap().state,
                    3,
                    "SYN_RECV: SYN in, SYN+ACK out"
                );
            }

            // Tunnels.
            for (m, port) in [("IPIP", M_IPIP), ("GUE", M_GUE), ("GRE", M_GRE)] {
                let l = l4(proto, 40002, port, SYN);
                let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
                let (v, out) = f.run(&input);
                assert_eq!(v, XDP_TX, "{}", what(m));
                let inner = inner(&n, 63, &l, &n.vip);
                let inner_proto = if n.af == 4 { 4 } else { 41 };
                let outer_hl = if n.af == 4 { 20 } else { 40 };
                let (outer_proto, encap) = match m {
                    "IPIP" => (inner_proto, Vec::new()),
                    "GRE" => (
                        47,
                        vec![
                            0,
                            0,
                            if n.af == 4 { 0x08 } else { 0x86 },
                            if n.af == 4 { 0x00 } else { 0xdd },
                        ],
                    ),
                    _ => {
                        let sport = u16::from_be_bytes([out[14 + outer_hl], out[15 + outer_hl]]);
                        assert!((32768..61000).contains(&sport), "GUE source port {sport}");
                        let mut u = sport.to_be_bytes().to_vec();
                        u.extend_from_slice(&GUE_PORT.to_be_bytes());
                        u.extend_from_slice(&((8 + 4 + inner.len()) as u16).to_be_bytes());
                        u.extend_from_slice(&[0, 0, 0, inner_proto, 0, 0]);
                        (17, u)
                    }
                };
                let id = if n.af == 4 {
                    u16::from_be_bytes([out[18], out[19]])
                } else {
                    0
                };
                let mut payload = encap;
                payload.extend_from_slice(&inner);
                if m == "GUE" && n.af == 6 {
                    // Over IPv6 the UDP checksum is computed (RFC 8200).
                    let c = l4_csum(17, &n.dir, &n.rs_tun, &payload);
                    payload[6..8].copy_from_slice(&c.to_be_bytes());
                }
                let expected = eth(
                    mac(5),
                    f.dmac,
                    ethertype(&n.vip),
                    &ip(&n.dir, &n.rs_tun, outer_proto, 63, id, &payload),
                );
                assert_eq!(hex(&out), hex(&expected), "{}: output frame", what(m));
            }

            // A service scheduled in userspace: the first packet is handed over.
            let l = l4(proto, 40003, M_PUNT, SYN);
            let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
            f.dp.drain_events();
            let (v, _) = f.run(&input);
            assert_eq!(v, XDP_DROP, "{}", what("punt"));
            let ev = f.dp.drain_events();
            assert!(
                ev.iter()
                    .any(|e| matches!(e, maps::Event::Punt { frame, .. } if *frame == input)),
                "{}: the frame reached userspace: {ev:?}",
                what("punt")
            );
        }
    }
    // Counters: a TCP and a UDP connection on the IPv4 DR slot, 3 packets.
    let s = f.dp.dest_stats(slot(4, M_DR)).unwrap();
    assert_eq!((s.conns, s.inpkts, s.outpkts), (2, 3, 0));
    let s = f.dp.dest_stats(slot(4, M_NAT)).unwrap();
    assert_eq!((s.conns, s.inpkts, s.outpkts), (2, 2, 2));
}

#[test]
fn icmp_errors_reach_the_right_side() {
    let Some(f) = setup("icmp") else { return };
    let cmac = mac(3);
    for n in nets() {
        // Open a NAT connection.
        let l = L4::tcp(41000, M_NAT, SYN);
        assert_eq!(
            f.run(&frame(f.dmac, cmac, &n.client, &n.vip, 64, &l)).0,
            XDP_TX
        );
        let (unreach, frag) = if n.af == 4 {
            ((3, 3), (3, 4))
        } else {
            ((1, 4), (2, 0))
        };

        // From the client, about one of our replies (VIP -> client).
        let reply = L4::tcp(M_NAT, 41000, SYN | ACK);
        let quoted = ip(
            &n.vip,
            &n.client,
            6,
            64,
            0x1234,
            &reply.bytes(&n.vip, &n.client)[..8],
        );
        let input = icmp_error(f.dmac, cmac, &n.client, &n.vip, 64, frag.0, frag.1, &quoted);
        let mut q = quoted.clone();
        patch_addr(&mut q, n.af, true, &n.rs_nat);
        patch_port(&mut q, n.af, true, NAT_PORT);
        let expected = icmp_error(mac(4), f.dmac, &n.client, &n.rs_nat, 63, frag.0, frag.1, &q);
        f.expect(
            &format!("ICMP from client IPv{}", n.af),
            &input,
            XDP_TX,
            &expected,
        );

        // From the real server, about the client's request as it got it.
        let req = L4::tcp(41000, NAT_PORT, SYN);
        let quoted = ip(
            &n.client,
            &n.rs_nat,
            6,
            63,
            0x1234,
            &req.bytes(&n.client, &n.rs_nat)[..8],
        );
        let input = icmp_error(
            f.dmac,
            mac(4),
            &n.rs_nat,
            &n.client,
            64,
            unreach.0,
            unreach.1,
            &quoted,
        );
        let mut q = quoted.clone();
        patch_addr(&mut q, n.af, false, &n.vip);
        patch_port(&mut q, n.af, false, M_NAT);
        let expected = icmp_error(
            cmac, f.dmac, &n.vip, &n.client, 63, unreach.0, unreach.1, &q,
        );
        f.expect(
            &format!("ICMP from real server IPv{}", n.af),
            &input,
            XDP_TX,
            &expected,
        );

        // About a connection nobody has: the kernel's.
        let other = ip(
            &n.vip,
            &n.client,
            6,
            64,
            0x1234,
            &L4::tcp(M_NAT, 9, ACK).bytes(&n.vip, &n.client)[..8],
        );
        let input = icmp_error(f.dmac, cmac, &n.client, &n.vip, 64, frag.0, frag.1, &other);
        f.expect("ICMP about no connection", &input, XDP_PASS, &input);
    }
}

/// veth, a bridge port or a promiscuous NIC hands XDP frames for other
/// hosts (a bridge floods those for a dead director's MAC): they pass to
/// the kernel untouched, whatever the method, and create no entry; the
/// same frames for the interface's MAC are forwarded.
#[test]
fn frames_for_other_macs_pass_untouched() {
    let Some(f) = setup("mac") else { return };
    let (cmac, other, bcast) = (mac(3), mac(9), [0xff; 6]);
    for n in nets() {
        for proto in [6u8, 17] {
            for (m, port) in [
                ("DR", M_DR),
                ("NAT", M_NAT),
                ("IPIP", M_IPIP),
                ("GUE", M_GUE),
                ("GRE", M_GRE),
                ("userspace-scheduled", M_PUNT),
            ] {
                let what = format!("{m} IPv{} {}", n.af, proto_name(proto));
                let l = l4(proto, 44000, port, SYN);
                let key = ConnKey {
                    caddr: n.client,
                    cport: 44000,
                    vaddr: n.vip,
                    vport: port,
                    proto,
                };
                f.dp.drain_events();
                for dst in [other, bcast] {
                    let input = frame(dst, cmac, &n.client, &n.vip, 64, &l);
                    f.expect(&format!("{what} for {dst:02x?}"), &input, XDP_PASS, &input);
                }
                assert!(f.dp.conn(&key).is_none(), "{what}: no entry");
                assert!(f.dp.drain_events().is_empty(), "{what}: no event");
                let ours = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
                let want = if port == M_PUNT { XDP_DROP } else { XDP_TX };
                assert_eq!(f.run(&ours).0, want, "{what} for our MAC");
            }
            // A NAT reply of the connection just made, for another MAC.
            let r = l4(proto, NAT_PORT, 44000, SYN | ACK);
            let input = frame(other, mac(4), &n.rs_nat, &n.client, 64, &r);
            f.expect(
                &format!(
                    "NAT reply IPv{} {} for another MAC",
                    n.af,
                    proto_name(proto)
                ),
                &input,
                XDP_PASS,
                &input,
            );
        }
    }
    // Only the frames for our MAC were counted.
    let s = f.dp.dest_stats(slot(4, M_NAT)).unwrap();
    assert_eq!((s.conns, s.inpkts, s.outpkts), (2, 2, 0));
}

/// A NAT reply toward a client whose neighbour the director has not
/// resolved (a backup that just took over): the program hands it,
/// rewritten, to userspace, which sends it through the kernel; the kernel
/// resolves the neighbour and the client gets the reply from the virtual
/// service. The next reply finds the neighbour and is forwarded in XDP.
#[test]
fn nat_reply_without_a_neighbour_goes_through_the_kernel() {
    let Some(f) = setup("noneigh") else { return };
    // A client behind a second link of the director, never resolved.
    let cns = Netns::new(&format!("rvsxdp-nnc-{}", std::process::id()));
    f._ns.run(&format!(
        "ip link add fx2 type veth peer name fx3 netns {}",
        cns.0
    ));
    f._ns.run("ip link set fx2 up");
    f._ns.run("ip addr add 198.18.9.1/24 dev fx2");
    f._ns.run("ip -6 addr add fd09::1/64 dev fx2 nodad");
    // The director owns the VIPs, as after a takeover.
    f._ns.run("ip addr add 198.18.0.10/32 dev lo");
    f._ns.run("ip -6 addr add fd00::10/128 dev lo nodad");
    cns.run("ip link set fx3 up");
    cns.run("ip addr add 198.18.9.7/24 dev fx3");
    cns.run("ip -6 addr add fd09::7/64 dev fx3 nodad");
    let client_mac = cns.mac("fx3");
    let mut raw = rvs_xdp::RawXmit::new();
    for n in nets() {
        let client: IpAddr = if n.af == 4 {
            "198.18.9.7".parse().unwrap()
        } else {
            "fd09::7".parse().unwrap()
        };
        // The client's socket, in its namespace.
        let netns = format!("/run/netns/{}", cns.0);
        let sock = std::thread::spawn(move || {
            let ns = std::fs::File::open(netns).unwrap();
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            std::net::UdpSocket::bind((client, 45000)).unwrap()
        })
        .join()
        .unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let l = L4::udp(45000, M_NAT);
        let input = frame(f.dmac, mac(3), &client, &n.vip, 64, &l);
        assert_eq!(f.run(&input).0, XDP_TX, "IPv{}: NAT in", n.af);

        let r = L4::udp(NAT_PORT, 45000);
        let input = frame(f.dmac, mac(4), &n.rs_nat, &client, 64, &r);
        let mut r_v = r.clone();
        r_v.sport = M_NAT;
        f.dp.drain_events();
        f.expect(
            &format!("IPv{}: NAT reply, no neighbour", n.af),
            &input,
            XDP_DROP,
            &frame(f.dmac, mac(4), &n.vip, &client, 63, &r_v),
        );
        let ev = f.dp.drain_events();
        let sent = ev
            .iter()
            .find_map(|e| match e {
                maps::Event::Xmit { frame } => Some(frame.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("IPv{}: no reply for userspace: {ev:?}", n.af));
        assert_eq!(
            hex(&sent),
            hex(&frame(f.dmac, mac(4), &n.vip, &client, 63, &r_v)),
            "IPv{}: the rewritten reply",
            n.af
        );
        raw.send(&sent).expect("sent through the kernel");
        let mut buf = [0u8; 64];
        let (len, from) = sock.recv_from(&mut buf).expect("the client got the reply");
        assert_eq!(&buf[..len], &r.payload[..]);
        assert_eq!(from, std::net::SocketAddr::new(n.vip, M_NAT));

        // Resolved now: the next reply is forwarded by the program.
        let (v, out) = f.run(&input);
        assert_eq!(v, rvs_xdp::XDP_REDIRECT, "IPv{}: resolved", n.af);
        assert_eq!(
            hex(&out),
            hex(&frame(
                client_mac,
                f._ns.mac("fx2"),
                &n.vip,
                &client,
                63,
                &r_v
            )),
            "IPv{}: forwarded reply",
            n.af
        );
        assert!(f.dp.drain_events().is_empty());
    }
}

/// The engine gives the program its interface's MAC before attaching, and
/// follows a change at its next tick: frames for the old MAC then pass,
/// frames for the new one are forwarded.
#[test]
fn the_engine_follows_the_interface_mac() {
    use rvs_core::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
    use rvs_ctl::Request;
    let Some(f) = setup("newmac") else { return };
    let opts = rvs_director::DirectorOptions {
        schedulers: Box::new(rvs_sched::new_scheduler),
        interfaces: Box::new(|_| None),
        local_broadcast: Box::new(|_| false),
        sysctls: Default::default(),
        conn_seed: 1,
    };
    let d = std::sync::Arc::new(std::sync::Mutex::new(rvs_director::Director::new(opts)));
    let n = &nets()[0];
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: n.vip,
        port: 90,
    };
    let mut cfg = ServiceConfig::defaults(rvs_core::Af::Inet);
    cfg.scheduler = "rr".into();
    let mut dc = DestConfig::new(n.rs_dr, 90);
    dc.fwd = FwdMethod::Route;
    for r in [
        Request::AddService { key, config: cfg },
        Request::AddDest {
            service: key,
            dest: dc,
        },
    ] {
        assert_eq!(d.lock().unwrap().apply(&r, 0), rvs_ctl::Response::Ok);
    }
    let mut o = rvs_xdp::XdpOptions::new("fx0");
    o.pin_dir = f.dp.pin_dir().join("engine");
    o.mode = rvs_xdp::AttachMode::Generic;
    let e = rvs_xdp::Engine::start(d, o, std::time::Instant::now()).unwrap();
    assert!(e.sync().is_empty());
    let dp = e.datapath();
    let syn = |dst: [u8; 6], port: u16| {
        frame(dst, mac(3), &n.client, &n.vip, 64, &L4::tcp(port, 90, SYN))
    };
    let other = mac(7);
    assert_eq!(
        dp.test_run(&syn(f.dmac, 46000), f.ifindex, 1)
            .unwrap()
            .verdict,
        XDP_TX
    );
    let input = syn(other, 46001);
    let r = dp.test_run(&input, f.ifindex, 1).unwrap();
    assert_eq!(
        (r.verdict, hex(&r.frame)),
        (XDP_PASS, hex(&input)),
        "another MAC"
    );

    f._ns.run("ip link set fx0 address 02:00:00:00:00:07");
    e.tick();
    let input = syn(f.dmac, 46002);
    let r = dp.test_run(&input, f.ifindex, 1).unwrap();
    assert_eq!(
        (r.verdict, hex(&r.frame)),
        (XDP_PASS, hex(&input)),
        "the old MAC"
    );
    assert_eq!(
        dp.test_run(&syn(other, 46003), f.ifindex, 1)
            .unwrap()
            .verdict,
        XDP_TX,
        "the new MAC"
    );
    dp.unpin();
}

/// Rewrites the source (or destination) address of a quoted IP header,
/// fixing its header checksum (the quoted transport checksum is left alone,
/// as the kernel leaves it).
fn patch_addr(q: &mut [u8], af: u8, src: bool, a: &IpAddr) {
    let b = ip_bytes(a);
    if af == 4 {
        let at = if src { 12 } else { 16 };
        q[at..at + 4].copy_from_slice(&b);
        q[10..12].copy_from_slice(&[0, 0]);
        let cs = fold(sum(&q[..20]));
        q[10..12].copy_from_slice(&cs.to_be_bytes());
    } else {
        let at = if src { 8 } else { 24 };
        q[at..at + 16].copy_from_slice(&b);
    }
}

fn patch_port(q: &mut [u8], af: u8, src: bool, port: u16) {
    let at = if af == 4 { 20 } else { 40 } + if src { 0 } else { 2 };
    q[at..at + 2].copy_from_slice(&port.to_be_bytes());
}

#[test]
fn bad_packets_get_a_safe_verdict() {
    let Some(f) = setup("bad") else { return };
    let cmac = mac(3);
    let n4 = &nets()[0];
    let n6 = &nets()[1];
    let syn = L4::tcp(42000, M_DR, SYN);
    let good = frame(f.dmac, cmac, &n4.client, &n4.vip, 64, &syn);
    let good6 = frame(f.dmac, cmac, &n6.client, &n6.vip, 64, &syn);

    // (The kernel hands XDP no frame shorter than an Ethernet header.)
    f.expect("Ethernet header only", &good[..14], XDP_DROP, &good[..14]);
    f.expect(
        "truncated IPv4 header",
        &good[..14 + 12],
        XDP_DROP,
        &good[..14 + 12],
    );
    f.expect(
        "truncated IPv6 header",
        &good6[..14 + 30],
        XDP_DROP,
        &good6[..14 + 30],
    );
    f.expect(
        "truncated TCP header",
        &good[..14 + 20 + 10],
        XDP_DROP,
        &good[..14 + 20 + 10],
    );

    let mut long = good.clone();
    long[16..18].copy_from_slice(&2000u16.to_be_bytes());
    f.expect("IPv4 total length beyond the frame", &long, XDP_DROP, &long);
    let mut short = good.clone();
    short[16..18].copy_from_slice(&30u16.to_be_bytes());
    f.expect(
        "IPv4 total length shorter than TCP",
        &short,
        XDP_DROP,
        &short,
    );
    let mut long6 = good6.clone();
    long6[18..20].copy_from_slice(&3000u16.to_be_bytes());
    f.expect(
        "IPv6 payload length beyond the frame",
        &long6,
        XDP_DROP,
        &long6,
    );

    let mut doff = good.clone();
    doff[14 + 20 + 12] = 4 << 4;
    f.expect("TCP data offset below 5", &doff, XDP_DROP, &doff);
    let udp = frame(f.dmac, cmac, &n4.client, &n4.vip, 64, &L4::udp(42000, M_DR));
    let mut ulen = udp.clone();
    ulen[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&500u16.to_be_bytes());
    f.expect("UDP length beyond the IP payload", &ulen, XDP_DROP, &ulen);

    // IP options: the kernel's path, unchanged.
    let seg = syn.bytes(&n4.client, &n4.vip);
    let mut opt = vec![0x46, 0];
    opt.extend_from_slice(&((24 + seg.len()) as u16).to_be_bytes());
    opt.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
    opt.extend_from_slice(&ip_bytes(&n4.client));
    opt.extend_from_slice(&ip_bytes(&n4.vip));
    opt.extend_from_slice(&[1, 1, 1, 0]);
    let cs = fold(sum(&opt));
    opt[10..12].copy_from_slice(&cs.to_be_bytes());
    opt.extend_from_slice(&seg);
    let opt = eth(f.dmac, cmac, 0x0800, &opt);
    f.expect("IPv4 options", &opt, XDP_PASS, &opt);

    let mut frag = good.clone();
    frag[14 + 6] = 0x20; // MF
    frag[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let cs = fold(sum(&frag[14..34]));
    frag[24..26].copy_from_slice(&cs.to_be_bytes());
    f.expect("IPv4 first fragment", &frag, XDP_PASS, &frag);
    let mut later = frag.clone();
    later[14 + 6..14 + 8].copy_from_slice(&0x0010u16.to_be_bytes());
    f.expect("IPv4 later fragment", &later, XDP_PASS, &later);

    // IPv6 fragment header: not TCP/UDP at the first header: passed.
    let mut fr6 = good6.clone();
    fr6[14 + 6] = 44;
    f.expect("IPv6 fragment header", &fr6, XDP_PASS, &fr6);

    let mut arp = vec![0u8; 42];
    arp[12] = 0x08;
    arp[13] = 0x06;
    f.expect("ARP", &arp, XDP_PASS, &arp);
    let other: IpAddr = "198.18.0.99".parse().unwrap();
    let not_vip = frame(f.dmac, cmac, &n4.client, &other, 64, &syn);
    f.expect(
        "TCP to an address that is not a VIP",
        &not_vip,
        XDP_PASS,
        &not_vip,
    );
    let ack = frame(
        f.dmac,
        cmac,
        &n4.client,
        &n4.vip,
        64,
        &L4::tcp(42001, M_DR, ACK),
    );
    f.expect("ACK without a connection", &ack, XDP_PASS, &ack);
    let echo = eth(
        f.dmac,
        cmac,
        0x0800,
        &ip(
            &n4.client,
            &n4.vip,
            1,
            64,
            1,
            &[8, 0, 0xf7, 0xff, 0, 0, 0, 0],
        ),
    );
    f.expect("ICMP echo to the VIP", &echo, XDP_PASS, &echo);
    let ttl1 = frame(
        f.dmac,
        cmac,
        &n4.client,
        &n4.vip,
        1,
        &L4::tcp(42002, M_DR, SYN),
    );
    f.expect(
        "TTL 1: the kernel answers time exceeded",
        &ttl1,
        XDP_PASS,
        &ttl1,
    );
    // Nothing was counted as a connection but the TTL-1 SYN's entry.
    assert_eq!(f.dp.dest_stats(slot(4, M_DR)).unwrap().conns, 1);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// ns/packet: the kernel-measured time of single runs on a fresh copy of
/// `frame` (the program rewrites frames, so `repeat` > 1 would measure
/// other paths from the second run on), mean of 20,000, median of 5.
fn ns_per_packet(f: &Fixture, frame: &[u8], _repeat: u32) -> f64 {
    median(
        (0..5)
            .map(|_| {
                let k = 20_000;
                let total: f64 = (0..k)
                    .map(|_| {
                        f.dp.test_run(frame, f.ifindex, 1)
                            .unwrap()
                            .duration
                            .as_nanos() as f64
                    })
                    .sum();
                total / k as f64
            })
            .collect(),
    )
}

/// The map's `memlock` from fdinfo divided by its capacity.
fn bytes_per_entry(m: &str, entries: u64) -> f64 {
    let out = sh(&format!("bpftool map show name {m}"));
    let memlock: f64 = out
        .split_whitespace()
        .skip_while(|w| *w != "memlock")
        .nth(1)
        .and_then(|w| w.trim_end_matches('B').parse().ok())
        .unwrap_or(f64::NAN);
    memlock / entries as f64
}

/// `bench/xdp-baseline`'s `xdp_lb` (object file built by scripts/bench-xdp,
/// path in `XDP_BASELINE_OBJ`), set up for the same frames as rvs: VIP
/// 198.18.0.10 TCP:80 and UDP:80 DR to 198.18.0.2, TCP:82 IPIP, TCP:86 a
/// new flow every run (its `F_BENCH_NEWFLOW`), XDP_TX.
struct Baseline {
    obj: std::cell::RefCell<libbpf_rs::Object>,
}

impl Baseline {
    fn load(path: &str) -> Baseline {
        use libbpf_rs::{MapCore, MapFlags};
        let obj = libbpf_rs::ObjectBuilder::default()
            .open_file(path)
            .expect("open the baseline object")
            .load()
            .expect("load the baseline object");
        let map = |n: &str| {
            let m = obj.maps().find(|m| m.name() == n).expect(n);
            libbpf_rs::MapHandle::try_from(&m).unwrap()
        };
        let mut cfg = mac(1).to_vec();
        cfg.extend_from_slice(&0u16.to_ne_bytes());
        cfg.extend_from_slice(&[198, 18, 0, 1]);
        map("cfg")
            .update(&0u32.to_ne_bytes(), &cfg, MapFlags::ANY)
            .unwrap();
        let mut real = mac(2).to_vec();
        real.extend_from_slice(&[0, 0, 198, 18, 0, 2, 0, 0, 0, 0]);
        map("reals")
            .update(&0u32.to_ne_bytes(), &real, MapFlags::ANY)
            .unwrap();
        for (port, proto, flags, num) in [
            (80u16, 6u8, 0u32, 0u32),
            (80, 17, 0, 0),
            (82, 6, 2, 1),
            (86, 6, 4, 2),
        ] {
            let mut k = vec![198, 18, 0, 10];
            k.extend_from_slice(&port.to_be_bytes());
            k.extend_from_slice(&[proto, 0]);
            let mut v = flags.to_ne_bytes().to_vec();
            v.extend_from_slice(&num.to_ne_bytes());
            map("vips").update(&k, &v, MapFlags::ANY).unwrap();
        }
        Baseline {
            obj: std::cell::RefCell::new(obj),
        }
    }

    /// Mean ns per run of `repeat` runs on `frame` (kernel-measured).
    fn run(&self, frame: &[u8], repeat: u32) -> (u32, f64) {
        let obj = self.obj.borrow_mut();
        let p = obj
            .progs_mut()
            .find(|p| p.name() == "xdp_lb")
            .expect("xdp_lb");
        let mut out = vec![0u8; frame.len() + 256];
        let o = p
            .test_run(libbpf_rs::ProgramInput {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat,
                ..Default::default()
            })
            .expect("baseline test run");
        (o.return_value, o.duration.as_nanos() as f64)
    }
}

/// ns/packet of `repeat` runs in one BPF_PROG_TEST_RUN on the same frame
/// (what the baseline's tester does), median of 5. Only for paths that
/// leave a frame they can take again: a DR hit with TTL 255 (the TTL goes
/// down by one a run) for fewer than 254 runs.
fn ns_repeat(run: impl Fn(u32) -> f64, repeat: u32) -> f64 {
    median((0..5).map(|_| run(repeat)).collect())
}

/// The benchmark numbers for BENCHMARKS.md (`scripts/bench-xdp` runs it):
/// BPF_PROG_TEST_RUN ns/packet for connection hits (DR, NAT, IPIP), a new
/// flow, and traffic that is not for a VIP; bytes per connection entry.
#[test]
#[ignore]
fn bench_test_run() {
    let Some(f) = setup("bench") else { return };
    let n = &nets()[0];
    let cmac = mac(3);
    let repeat = 1_000_000;
    let mut rows = Vec::new();
    for (name, port) in [
        ("DR", M_DR),
        ("NAT", M_NAT),
        ("IPIP", M_IPIP),
        ("GUE", M_GUE),
    ] {
        let syn = frame(
            f.dmac,
            cmac,
            &n.client,
            &n.vip,
            64,
            &L4::tcp(43000, port, SYN),
        );
        assert_eq!(f.run(&syn).0, XDP_TX);
        let ack = frame(
            f.dmac,
            cmac,
            &n.client,
            &n.vip,
            64,
            &L4::tcp(43000, port, ACK),
        );
        assert_eq!(f.run(&ack).0, XDP_TX);
        rows.push((
            format!("TCP connection hit, {name}"),
            ns_per_packet(&f, &ack, repeat),
        ));
    }
    let udp = frame(f.dmac, cmac, &n.client, &n.vip, 64, &L4::udp(43001, M_DR));
    assert_eq!(f.run(&udp).0, XDP_TX);
    rows.push((
        "UDP connection hit, DR".into(),
        ns_per_packet(&f, &udp, repeat),
    ));
    let other: IpAddr = "198.18.0.99".parse().unwrap();
    let not_vip = frame(
        f.dmac,
        cmac,
        &n.client,
        &other,
        64,
        &L4::tcp(43000, 80, ACK),
    );
    rows.push((
        "TCP not for a VIP (PASS)".into(),
        ns_per_packet(&f, &not_vip, repeat),
    ));
    let arp = {
        let mut a = vec![0u8; 60];
        a[12] = 8;
        a[13] = 6;
        a
    };
    rows.push(("not IP (PASS)".into(), ns_per_packet(&f, &arp, repeat)));
    // New flows: a SYN from a new client port each run (rr ring, entry insert).
    let mut new = Vec::new();
    for round in 0..5 {
        let mut total = 0f64;
        let k = 20_000u32;
        for i in 0..k {
            let port = 1024 + ((round * k + i) % 60000) as u16;
            let c: IpAddr = format!("198.18.{}.{}", 100 + round, 1 + i / 60000)
                .parse()
                .unwrap();
            let syn = frame(f.dmac, cmac, &c, &n.vip, 64, &L4::tcp(port, M_DR, SYN));
            total +=
                f.dp.test_run(&syn, f.ifindex, 1)
                    .unwrap()
                    .duration
                    .as_nanos() as f64;
        }
        new.push(total / k as f64);
    }
    rows.push((
        "TCP new flow, DR (rr ring + LRU insert)".into(),
        median(new),
    ));
    println!("| case | ns/packet |");
    println!("|---|---|");
    for (c, v) in &rows {
        println!("| {c} | {v:.0} |");
    }
    // Side by side with the baseline, same frames, same methods.
    if let Ok(path) = std::env::var("XDP_BASELINE_OBJ") {
        let b = Baseline::load(&path);
        let dr_ack = |ttl: u8| {
            frame(
                f.dmac,
                cmac,
                &n.client,
                &n.vip,
                ttl,
                &L4::tcp(43000, M_DR, ACK),
            )
        };
        let single = |g: &dyn Fn(&[u8]) -> f64, frame: &[u8]| {
            median(
                (0..5)
                    .map(|_| (0..20_000).map(|_| g(frame)).sum::<f64>() / 20_000.0)
                    .collect(),
            )
        };
        let rvs1 = |fr: &[u8]| f.dp.test_run(fr, f.ifindex, 1).unwrap().duration.as_nanos() as f64;
        let base1 = |fr: &[u8]| b.run(fr, 1).1;
        assert_eq!(b.run(&dr_ack(64), 1).0, XDP_TX, "baseline DR verdict");
        // Each run takes the frame the previous one left, addressed to the
        // real server's MAC: the program is told that MAC is its own, so
        // every run is a hit, MAC check included (the baseline has none).
        let mut hot = dr_ack(255);
        hot[..6].copy_from_slice(&mac(2));
        f.dp.set_ifmac(Some(mac(2))).unwrap();
        let rvs_r = ns_repeat(
            |r| {
                let res = f.dp.test_run(&hot, f.ifindex, r).unwrap();
                assert_eq!(res.verdict, XDP_TX);
                res.duration.as_nanos() as f64
            },
            200,
        );
        f.dp.set_ifmac(Some(f.dmac)).unwrap();
        let base_r = ns_repeat(|r| b.run(&hot, r).1, 200);
        let ipip = frame(
            f.dmac,
            cmac,
            &n.client,
            &n.vip,
            64,
            &L4::tcp(43000, M_IPIP, ACK),
        );
        let not_vip_b = not_vip.clone();
        let newflow_b = frame(f.dmac, cmac, &n.client, &n.vip, 64, &L4::tcp(1, 86, SYN));
        let pairs = [
            ("DR hit, repeat 200 (program only)", rvs_r, base_r),
            (
                "DR hit, single runs",
                single(&rvs1, &dr_ack(64)),
                single(&base1, &dr_ack(64)),
            ),
            (
                "IPIP hit, single runs",
                single(&rvs1, &ipip),
                single(&base1, &ipip),
            ),
            (
                "not a VIP, single runs",
                single(&rvs1, &not_vip),
                single(&base1, &not_vip_b),
            ),
            (
                "new flow, single runs (rvs: rr ring; baseline: hash ring)",
                rows.iter()
                    .find(|r| r.0.starts_with("TCP new flow"))
                    .map(|r| r.1)
                    .unwrap_or(f64::NAN),
                single(&base1, &newflow_b),
            ),
        ];
        println!();
        println!("| case (same frames, same method) | rvs ns | baseline ns | rvs / baseline |");
        println!("|---|---|---|---|");
        for (c, r, bl) in pairs {
            println!("| {c} | {r:.1} | {bl:.1} | {:.2}x |", r / bl);
        }
    }
    println!();
    println!(
        "conn-table bytes/entry: IPv4 {:.1}, IPv6 {:.1} (memlock / max_entries; NAT adds a reply entry: IPv4 {:.1})",
        bytes_per_entry("rvs_conn4", 1 << 20),
        bytes_per_entry("rvs_conn6", 1 << 18),
        bytes_per_entry("rvs_nat4", 1 << 20)
    );
}

/// Time for the engine to apply 10,000 real servers (one rr service; the
/// director already holds them): `Engine::sync` end to end, maps written
/// with batch updates.
#[test]
#[ignore]
fn bench_apply_10k_real_servers() {
    use rvs_core::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
    use rvs_ctl::Request;
    let Some(f) = setup("apply") else { return };
    let opts = rvs_director::DirectorOptions {
        schedulers: Box::new(rvs_sched::new_scheduler),
        interfaces: Box::new(|_| None),
        local_broadcast: Box::new(|_| false),
        sysctls: Default::default(),
        conn_seed: 1,
    };
    let d = std::sync::Arc::new(std::sync::Mutex::new(rvs_director::Director::new(opts)));
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "198.18.0.10".parse().unwrap(),
        port: 80,
    };
    let mut cfg = ServiceConfig::defaults(rvs_core::Af::Inet);
    cfg.scheduler = "rr".into();
    let t0 = std::time::Instant::now();
    {
        let mut dd = d.lock().unwrap();
        let r = dd.apply(&Request::AddService { key, config: cfg }, 0);
        assert_eq!(r, rvs_ctl::Response::Ok);
        for i in 0..10_000u32 {
            let mut dc = DestConfig::new(
                format!("198.19.{}.{}", i / 250, 1 + i % 250)
                    .parse()
                    .unwrap(),
                80,
            );
            dc.fwd = FwdMethod::Route;
            let r = dd.apply(
                &Request::AddDest {
                    service: key,
                    dest: dc,
                },
                0,
            );
            assert_eq!(r, rvs_ctl::Response::Ok);
        }
    }
    let table = t0.elapsed();
    let mut o = rvs_xdp::XdpOptions::new("fx0");
    o.pin_dir = f.dp.pin_dir().join("engine");
    o.mode = rvs_xdp::AttachMode::Generic;
    let e = rvs_xdp::Engine::start(d.clone(), o, std::time::Instant::now()).unwrap();
    let t1 = std::time::Instant::now();
    let problems = e.sync();
    let sync = t1.elapsed();
    assert!(problems.is_empty(), "{problems:?}");
    // The program now schedules from a 10,000-slot ring.
    let t2 = std::time::Instant::now();
    e.sync();
    let resync = t2.elapsed();
    println!(
        "10,000 real servers: director table {:.1} ms; engine sync (first) {:.1} ms; re-sync {:.1} ms",
        table.as_secs_f64() * 1e3,
        sync.as_secs_f64() * 1e3,
        resync.as_secs_f64() * 1e3
    );
    e.datapath().unpin();
    drop(e);
}

const MARK_DR: u32 = 1;
const MARK_NAT: u32 = 2;
const MARK_PUNT: u32 = 3;

/// Firewall-mark services, classified by the program from `rvs_marks`
/// (what an iptables MARK rule does for LVS): several ports, a network
/// and both protocols grouped under one service, DR and NAT, scheduled in
/// BPF or handed to userspace, IPv4 and IPv6; a marked packet's fwmark
/// service comes before an address service (ip_vs_service_find);
/// without the config flag nothing is classified.
#[test]
fn fwmark_services_classify_first_packets() {
    let Some(f) = setup("fwm") else { return };
    let cmac = mac(3);
    let mut rules = Vec::new();
    for (i, n) in nets().iter().enumerate() {
        let af = n.af;
        let base = 30 + 10 * i as u32;
        let net_prefix = if af == 4 { 24 } else { 64 };
        for (k, mark, addr, fwd) in [
            (0, MARK_DR, n.rs_dr, maps::FWD_ROUTE),
            (1, MARK_NAT, n.rs_nat, maps::FWD_MASQ),
            (2, MARK_PUNT, n.rs_dr, maps::FWD_ROUTE),
        ] {
            let s = base + k;
            f.dp.set_dest(
                s,
                &DestVal {
                    addr,
                    tun_src: maps::addr16(&n.dir),
                    fwd,
                    tun_type: 0,
                    flags: maps::DEST_AVAILABLE,
                    port: 0,
                    tun_port: 0,
                    svc: s,
                    id_port: 0,
                },
            )
            .unwrap();
            f.dp.set_ring(s, &[s]).unwrap();
            let svc = Svc {
                id: s,
                flags: if mark == MARK_PUNT {
                    maps::SVC_PUNT
                } else {
                    maps::SVC_RING
                },
                ring_off: s,
                ring_len: u32::from(mark != MARK_PUNT),
            };
            f.dp.set_fwmark_service(mark, af, &svc).unwrap();
        }
        let r = |mark, proto, net: IpAddr, prefix, lo, hi| rvs_xdp::MarkRule {
            mark,
            proto,
            net,
            prefix,
            lo,
            hi,
        };
        let full = if af == 4 { 32 } else { 128 };
        rules.extend([
            r(MARK_DR, 6, n.vip, full, 2000, 2001),
            r(MARK_DR, 6, n.vip, full, M_DR, M_DR),
            r(MARK_DR, 17, n.vip, full, 3000, 3010),
            r(MARK_NAT, 6, n.vip, net_prefix, 4000, 4000),
            r(MARK_NAT, 17, n.vip, net_prefix, 4000, 4000),
            r(MARK_PUNT, 6, n.vip, full, 5000, 5000),
        ]);
    }
    assert!(f.dp.set_marks(&rules).unwrap().is_empty());
    f.dp.set_config(maps::CFG_CONN_REUSE | maps::CFG_MARKS, 100)
        .unwrap();

    for (i, n) in nets().iter().enumerate() {
        let base = 30 + 10 * i as u16;
        let other: IpAddr = if n.af == 4 {
            "198.18.0.77".parse().unwrap()
        } else {
            "fd00::77".parse().unwrap()
        };
        for proto in [6u8, 17] {
            let what = |m: &str| format!("{m} IPv{} {}", n.af, proto_name(proto));
            // DR: the grouped ports all reach the mark's real server, and
            // port 80 (also an address service) goes to the mark's.
            let ports: &[u16] = if proto == 6 {
                &[2000, 2001, M_DR]
            } else {
                &[3000, 3005, 3010]
            };
            for (j, &port) in ports.iter().enumerate() {
                let l = l4(proto, 46000 + j as u16, port, SYN);
                let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
                f.expect(
                    &what(&format!("fwmark DR to port {port}")),
                    &input,
                    XDP_TX,
                    &frame(mac(2), f.dmac, &n.client, &n.vip, 63, &l),
                );
                let key = ConnKey {
                    caddr: n.client,
                    cport: 46000 + j as u16,
                    vaddr: n.vip,
                    vport: port,
                    proto,
                };
                let c = f.dp.conn(&key).expect("an entry keyed as usual");
                assert_eq!(c.dest, base, "{}", what("the mark's real server"));
            }
            // Ports outside the ranges: not classified, no service.
            let l = l4(proto, 46010, if proto == 6 { 2002 } else { 3011 }, SYN);
            let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
            f.expect(&what("unclassified port"), &input, XDP_PASS, &input);

            // NAT on another address of the classified network; the port
            // is kept (real server port 0), the reply gets it back.
            let l = l4(proto, 46020, 4000, SYN);
            let input = frame(f.dmac, cmac, &n.client, &other, 64, &l);
            f.expect(
                &what("fwmark NAT in"),
                &input,
                XDP_TX,
                &frame(mac(4), f.dmac, &n.client, &n.rs_nat, 63, &l),
            );
            let r = l4(proto, 4000, 46020, SYN | ACK);
            let input = frame(f.dmac, mac(4), &n.rs_nat, &n.client, 64, &r);
            f.expect(
                &what("fwmark NAT reply"),
                &input,
                XDP_TX,
                &frame(cmac, f.dmac, &other, &n.client, 63, &r),
            );
        }
        // Userspace-scheduled fwmark service: the first packet is handed over.
        let l = l4(6, 46030, 5000, SYN);
        let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
        f.dp.drain_events();
        assert_eq!(f.run(&input).0, XDP_DROP);
        assert!(f
            .dp
            .drain_events()
            .iter()
            .any(|e| matches!(e, maps::Event::Punt { frame, .. } if *frame == input)));
    }
    let s = f.dp.dest_stats(30).unwrap();
    assert_eq!((s.conns, s.inpkts), (6, 6), "IPv4 DR mark: 6 connections");

    // Without the flag the trie is not consulted: port 80 is the address
    // service's again, port 2000 nobody's.
    f.dp.set_config(maps::CFG_CONN_REUSE, 100).unwrap();
    let n = &nets()[0];
    let l = L4::tcp(46100, M_DR, SYN);
    f.run(&frame(f.dmac, cmac, &n.client, &n.vip, 64, &l));
    let key = ConnKey {
        caddr: n.client,
        cport: 46100,
        vaddr: n.vip,
        vport: M_DR,
        proto: 6,
    };
    assert_eq!(f.dp.conn(&key).unwrap().dest as u32, slot(4, M_DR));
    let l = L4::tcp(46101, 2000, SYN);
    let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
    f.expect("mark rules off", &input, XDP_PASS, &input);
}

/// A TCP segment with `len` bytes of payload.
fn big_tcp(sport: u16, dport: u16, len: usize) -> L4 {
    let mut l = L4::tcp(sport, dport, ACK);
    l.payload = vec![0x5a; len];
    l
}

/// Tunnel packets over the route's MTU: the program hands the client's
/// packet to userspace with the MTU left inside the tunnel (the route's
/// less the outer headers), and userspace's answer is "fragmentation
/// needed" / "packet too big" from the virtual address quoting it. An
/// IPv4 packet without DF goes to userspace, which has the kernel tunnel
/// it (and fragment the tunnel packet, as the kernel's IPVS does). Packets
/// that fit are tunnelled as before.
#[test]
fn tunnel_packets_over_the_mtu_get_packet_too_big() {
    let Some(f) = setup("ptb") else { return };
    f._ns.run("ip link set fx0 mtu 1300");
    let cmac = mac(3);
    for n in nets() {
        let hl = if n.af == 4 { 20 } else { 40 };
        for (m, port, over) in [
            ("IPIP", M_IPIP, hl),
            ("GUE", M_GUE, hl + 12),
            ("GRE", M_GRE, hl + 4),
        ] {
            let what = format!("{m} IPv{}", n.af);
            let syn = L4::tcp(47000, port, SYN);
            assert_eq!(
                f.run(&frame(f.dmac, cmac, &n.client, &n.vip, 64, &syn)).0,
                XDP_TX
            );
            // Fits exactly.
            let fits = big_tcp(47000, port, 1300 - over - hl - 20);
            let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &fits);
            assert_eq!(f.run(&input).0, XDP_TX, "{what}: fits");
            // One byte more.
            let big = big_tcp(47000, port, 1300 - over - hl - 20 + 1);
            let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &big);
            f.dp.drain_events();
            f.expect(&format!("{what}: too big"), &input, XDP_DROP, &input);
            let ev = f.dp.drain_events();
            let Some(maps::Event::TooBig { mtu, frame: got }) = ev.first().cloned() else {
                panic!("{what}: no event: {ev:?}");
            };
            assert_eq!(
                mtu,
                1300 - over as u32,
                "{what}: the MTU left in the tunnel"
            );
            assert_eq!(hex(&got), hex(&input), "{what}: the client's packet");
            let reply = rvs_xdp::packet::too_big(&got, mtu).unwrap();
            let ip = &input[14..];
            let want = if n.af == 4 {
                icmp_reply(&n.vip, &n.client, 3, 4, mtu, &ip[..548])
            } else {
                icmp_reply(
                    &n.vip,
                    &n.client,
                    2,
                    0,
                    mtu.max(1280),
                    &ip[..1232.min(ip.len())],
                )
            };
            assert_eq!(hex(&reply), hex(&want), "{what}: the answer");
        }
    }
    // IPv4 without DF: handed to userspace (TTL decremented) with the
    // real server's slot; userspace has the kernel tunnel and fragment it.
    let n = &nets()[0];
    let no_df = |ttl: u8, port: u16| {
        let big = big_tcp(47000, port, 1300);
        let mut input = frame(f.dmac, cmac, &n.client, &n.vip, ttl, &big);
        input[14 + 6] = 0;
        input[24] = 0;
        input[25] = 0;
        let cs = fold(sum(&input[14..34]));
        input[24..26].copy_from_slice(&cs.to_be_bytes());
        input
    };
    let frags = || -> Vec<u64> {
        let snmp = f._ns.run("cat /proc/net/snmp");
        let mut l = snmp.lines().filter(|l| l.starts_with("Ip:"));
        let (names, vals) = (l.next().unwrap(), l.next().unwrap());
        let col = |name: &str| {
            let i = names.split_whitespace().position(|x| x == name).unwrap();
            vals.split_whitespace()
                .nth(i)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        vec![col("FragOKs"), col("FragCreates")]
    };
    for (m, port, tun) in [("IPIP", M_IPIP, 0u8), ("GUE", M_GUE, 1), ("GRE", M_GRE, 2)] {
        let input = no_df(64, port);
        f.dp.drain_events();
        assert_eq!(f.run(&input).0, XDP_DROP, "{m} no DF");
        let ev = f.dp.drain_events();
        let Some(maps::Event::Frag { dest, frame: got }) = ev.first().cloned() else {
            panic!("{m} no DF: no event: {ev:?}");
        };
        assert_eq!(dest, slot(4, port), "{m} no DF: the slot");
        assert_eq!(hex(&got), hex(&no_df(63, port)), "{m} no DF: TTL - 1");
        let d = DestVal {
            addr: n.rs_tun,
            tun_src: maps::addr16(&n.dir),
            fwd: maps::FWD_TUNNEL,
            tun_type: tun,
            flags: maps::DEST_AVAILABLE,
            port: 0,
            tun_port: GUE_PORT,
            svc: 0,
            id_port: port,
        };
        let (payload, to, tos, ttl) = rvs_xdp::tunnel_payload(&got, &d).unwrap();
        let encap = [0, 4, 4][tun as usize]; // GUE: the socket writes UDP
        assert_eq!(payload.len(), encap + 1340, "{m}: payload");
        assert_eq!(&payload[encap..], &got[14..], "{m}: the packet inside");
        assert_eq!(
            (to, tos, ttl),
            ([4, GUE_PORT, 47][tun as usize], 0, 63),
            "{m}: where to, TOS, TTL"
        );
        // The kernel sends it in two fragments over the 1300-byte link.
        let before = frags();
        rvs_xdp::send_tunnel(&got, &d).unwrap();
        let after = frags();
        assert_eq!(
            (after[0] - before[0], after[1] - before[1]),
            (1, 2),
            "{m}: fragmented by the kernel"
        );
    }
}

/// ICMP errors about the director's own tunnel packets (from a router on
/// the path to the real server: "fragmentation needed" quoting our IPIP /
/// GUE / GRE packet) go to userspace, which tells the client about its
/// own packet with the MTU less the tunnel's headers (ip_vs_in_icmp's
/// IPIP case). Errors about tunnel packets of no connection are the
/// kernel's.
#[test]
fn icmp_errors_about_tunnel_packets_reach_the_client() {
    let Some(f) = setup("tunicmp") else { return };
    let cmac = mac(3);
    let router: [IpAddr; 2] = ["198.18.0.9".parse().unwrap(), "fd00::9".parse().unwrap()];
    for (n, router) in nets().iter().zip(router) {
        let hl = if n.af == 4 { 20 } else { 40 };
        for (m, port) in [("IPIP", M_IPIP), ("GRE", M_GRE), ("GUE", M_GUE)] {
            let what = format!("{m} IPv{}", n.af);
            let l = L4::tcp(48000, port, SYN);
            let input = frame(f.dmac, cmac, &n.client, &n.vip, 64, &l);
            let (v, sent) = f.run(&input);
            assert_eq!(v, XDP_TX);
            // The router quotes what we sent: outer header, encapsulation,
            // the client's packet (its first 64 bytes after the outer IP).
            let outer = &sent[14..];
            let quoted = &outer[..(hl + 64).min(outer.len())];
            let (typ, code, info) = if n.af == 4 {
                (3, 4, 1400)
            } else {
                (2, 0, 1400)
            };
            let mut icmp = icmp_error(f.dmac, mac(9), &router, &n.dir, 64, typ, code, quoted);
            // icmp_error writes 1500 as the MTU: put 1400 and fix the checksum.
            let at = 14 + hl;
            icmp[at + 4..at + 8].copy_from_slice(&(info as u32).to_be_bytes());
            icmp[at + 2..at + 4].copy_from_slice(&[0, 0]);
            let cs = if n.af == 4 {
                fold(sum(&icmp[at..]))
            } else {
                fold(
                    sum(&ip_bytes(&router))
                        + sum(&ip_bytes(&n.dir))
                        + 58
                        + (icmp.len() - at) as u32
                        + sum(&icmp[at..]),
                )
            };
            icmp[at + 2..at + 4].copy_from_slice(&cs.to_be_bytes());
            f.dp.drain_events();
            f.expect(
                &format!("{what}: ICMP about our tunnel packet"),
                &icmp,
                XDP_DROP,
                &icmp,
            );
            let ev = f.dp.drain_events();
            let Some(maps::Event::TunnelIcmp { frame: got }) = ev.first().cloned() else {
                panic!("{what}: no event: {ev:?}");
            };
            assert_eq!(hex(&got), hex(&icmp));
            let reply = rvs_xdp::packet::tunnel_icmp(&got).unwrap();
            let over = match m {
                "IPIP" => hl,
                "GRE" => hl + 4,
                _ => hl + 12,
            };
            let inner = &quoted[over..];
            let want = if n.af == 4 {
                icmp_reply(&n.vip, &n.client, 3, 4, 1400 - over as u32, inner)
            } else {
                icmp_reply(
                    &n.vip,
                    &n.client,
                    2,
                    0,
                    (1400 - over as u32).max(1280),
                    inner,
                )
            };
            assert_eq!(hex(&reply), hex(&want), "{what}: to the client");
            // The client's packet of no connection: the kernel's.
            let mut other = icmp.clone();
            let cport_at = at + 8 + over + hl;
            other[cport_at] ^= 0x40;
            f.expect(&format!("{what}: no connection"), &other, XDP_PASS, &other);
        }
    }
}

/// The ring across syncs: a sync that changes nothing leaves the ring and
/// its position as they are (nothing written), and the picks BPF makes
/// are still the scheduler's own sequence, through such syncs and an edit
/// (compared with the same scheduler run alone in userspace).
#[test]
fn ring_keeps_the_scheduler_sequence_across_syncs() {
    use rvs_core::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
    use rvs_ctl::Request;
    let Some(f) = setup("ring") else { return };
    let director = || {
        rvs_director::Director::new(rvs_director::DirectorOptions {
            schedulers: Box::new(rvs_sched::new_scheduler),
            interfaces: Box::new(|_| None),
            local_broadcast: Box::new(|_| false),
            sysctls: Default::default(),
            conn_seed: 1,
        })
    };
    let n = &nets()[0];
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: n.vip,
        port: 90,
    };
    let servers = [(n.rs_dr, 1u32), (n.rs_nat, 2), (n.rs_tun, 3)];
    let dest = |a: IpAddr, w: u32| {
        let mut dc = DestConfig::new(a, 90);
        dc.fwd = FwdMethod::Route;
        dc.weight = w as _;
        dc
    };
    let setup_dir = |d: &mut rvs_director::Director| {
        let mut cfg = ServiceConfig::defaults(rvs_core::Af::Inet);
        cfg.scheduler = "wrr".into();
        assert_eq!(
            d.apply(&Request::AddService { key, config: cfg }, 0),
            rvs_ctl::Response::Ok
        );
        for (a, w) in servers {
            let r = d.apply(
                &Request::AddDest {
                    service: key,
                    dest: dest(a, w),
                },
                0,
            );
            assert_eq!(r, rvs_ctl::Response::Ok);
        }
    };
    let shared = std::sync::Arc::new(std::sync::Mutex::new(director()));
    setup_dir(&mut shared.lock().unwrap());
    let mut reference = director();
    setup_dir(&mut reference);
    let mut o = rvs_xdp::XdpOptions::new("fx0");
    o.pin_dir = f.dp.pin_dir().join("ring-engine");
    o.mode = rvs_xdp::AttachMode::Generic;
    let e = rvs_xdp::Engine::start(shared.clone(), o, std::time::Instant::now()).unwrap();
    let mac_of = |a: &IpAddr| match a.to_string().as_str() {
        "198.18.0.2" => mac(2),
        "198.18.0.4" => mac(4),
        _ => mac(5),
    };
    let mut port = 41000u16;
    let mut got = Vec::new();
    let mut want = Vec::new();
    let mut send = |count: usize, reference: &mut rvs_director::Director| {
        for _ in 0..count {
            port += 1;
            let l = l4(6, port, 90, SYN);
            let input = frame(f.dmac, mac(3), &n.client, &n.vip, 64, &l);
            let r = e.datapath().test_run(&input, f.ifindex, 1).unwrap();
            assert_eq!(r.verdict, XDP_TX, "SYN from port {port}");
            got.push(r.frame[..6].to_vec());
            let info = rvs_core::sched::PacketInfo {
                proto: Protocol::Tcp,
                saddr: n.client,
                sport: port,
                daddr: n.vip,
                dport: 90,
                inverse: false,
            };
            let svc = reference.table_mut().service_mut(&key).unwrap();
            let i = svc.schedule(&info, 0).unwrap();
            want.push(mac_of(&svc.dests[i].config.addr).to_vec());
        }
    };
    assert!(e.sync().is_empty());
    send(4, &mut reference);
    let (svc, pos) = e.datapath().service(&n.vip, 90, 6).unwrap();
    assert_eq!((svc.flags, svc.ring_len, pos), (maps::SVC_RING, 6, 4));
    assert!(e.sync().is_empty());
    assert_eq!(
        e.datapath().service(&n.vip, 90, 6),
        Some((svc, 4)),
        "a sync without a change rewrote the ring"
    );
    send(5, &mut reference);
    assert!(e.sync().is_empty());
    send(2, &mut reference);
    // Picks are counted in the scheduler at a sync: those made since the
    // last one count after an edit the director applied meanwhile, where
    // the kernel's scheduler saw them before it. Counted here first.
    assert!(e.sync().is_empty());
    // An edit: the ring is computed again from where BPF stands.
    for d in [&mut *shared.lock().unwrap(), &mut reference] {
        let r = d.apply(
            &Request::EditDest {
                service: key,
                dest: dest(n.rs_nat, 4),
            },
            0,
        );
        assert_eq!(r, rvs_ctl::Response::Ok);
    }
    assert!(e.sync().is_empty());
    send(9, &mut reference);
    assert_eq!(hex(&got.concat()), hex(&want.concat()));
    e.datapath().unpin();
    drop(e);
}

/// The address pre-filter: an entry for a destination that has no VIP
/// bit is not looked for (the frame is the kernel's), nor is a NAT reply
/// from a source without the NAT real-server bit; with the bits, both are
/// found. Both families.
#[test]
fn the_address_filter_decides_what_is_looked_up() {
    let Some(f) = setup("filter") else { return };
    let cmac = mac(3);
    for n in nets() {
        let other: IpAddr = if n.af == 4 {
            "198.18.0.99".parse().unwrap()
        } else {
            "fd00::99".parse().unwrap()
        };
        // A DR entry toward `other` (no service there: no VIP bit).
        let key = ConnKey {
            caddr: n.client,
            cport: 42000,
            vaddr: other,
            vport: M_DR,
            proto: 6,
        };
        let val = maps::ConnVal {
            dest: slot(n.af, M_DR) as u16,
            state: 1,
            flags: maps::CONN_NOOUTPUT,
            seen: rvs_xdp::now_units(),
        };
        f.dp.put_conn(&key, &val, None).unwrap();
        let l = l4(6, 42000, M_DR, ACK);
        let input = frame(f.dmac, cmac, &n.client, &other, 64, &l);
        f.expect("no VIP bit", &input, XDP_PASS, &input);
        f.dp.filter_addr(&other, maps::ADDR_VIP).unwrap();
        f.expect(
            "VIP bit",
            &input,
            XDP_TX,
            &frame(mac(2), f.dmac, &n.client, &other, 63, &l),
        );
        // A NAT reply entry from `other` (not a NAT real server).
        let key = ConnKey {
            caddr: n.client,
            cport: 42001,
            vaddr: n.vip,
            vport: M_NAT,
            proto: 6,
        };
        let val = maps::ConnVal {
            dest: slot(n.af, M_NAT) as u16,
            state: 1,
            flags: 0,
            seen: rvs_xdp::now_units(),
        };
        f.dp.put_conn(&key, &val, Some((other, NAT_PORT))).unwrap();
        let l = l4(6, NAT_PORT, 42001, ACK);
        let input = frame(f.dmac, mac(4), &other, &n.client, 64, &l);
        f.expect("no NAT real-server bit", &input, XDP_PASS, &input);
        f.dp.filter_addr(&other, maps::ADDR_NATRS).unwrap();
        let (v, out) = f.run(&input);
        assert_eq!(v, XDP_TX, "NAT real-server bit: verdict");
        assert_ne!(out, input, "NAT real-server bit: rewritten");
    }
}

/// The route MTU toward a tunnel real server follows route changes: the
/// engine's tick makes the program read it again. A packet that fits the
/// old route is forwarded; after `ip route ... mtu` it still is (cached),
/// until a tick, after which it is over the MTU (not forwarded).
#[test]
fn the_tunnel_mtu_follows_the_route_at_each_tick() {
    use rvs_core::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
    use rvs_ctl::Request;
    let Some(f) = setup("mtu") else { return };
    let n = &nets()[0];
    let d = std::sync::Arc::new(std::sync::Mutex::new(rvs_director::Director::new(
        rvs_director::DirectorOptions {
            schedulers: Box::new(rvs_sched::new_scheduler),
            interfaces: Box::new(|_| None),
            local_broadcast: Box::new(|_| false),
            sysctls: Default::default(),
            conn_seed: 1,
        },
    )));
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: n.vip,
        port: 91,
    };
    {
        let mut dd = d.lock().unwrap();
        let mut cfg = ServiceConfig::defaults(rvs_core::Af::Inet);
        cfg.scheduler = "rr".into();
        assert_eq!(
            dd.apply(&Request::AddService { key, config: cfg }, 0),
            rvs_ctl::Response::Ok
        );
        let mut dc = DestConfig::new(n.rs_tun, 91);
        dc.fwd = FwdMethod::Tunnel;
        let r = dd.apply(
            &Request::AddDest {
                service: key,
                dest: dc,
            },
            0,
        );
        assert_eq!(r, rvs_ctl::Response::Ok);
    }
    let mut o = rvs_xdp::XdpOptions::new("fx0");
    o.pin_dir = f.dp.pin_dir().join("mtu-engine");
    o.mode = rvs_xdp::AttachMode::Generic;
    o.tick = std::time::Duration::from_secs(3600);
    let e = rvs_xdp::Engine::start(d.clone(), o, std::time::Instant::now()).unwrap();
    assert!(e.sync().is_empty());
    let run = |l: &L4| {
        let input = frame(f.dmac, mac(3), &n.client, &n.vip, 64, l);
        e.datapath().test_run(&input, f.ifindex, 1).unwrap().verdict
    };
    assert_eq!(run(&L4::tcp(47100, 91, SYN)), XDP_TX);
    // 1400 bytes of IP: 1420 in the tunnel, within 1500.
    let big = big_tcp(47100, 91, 1400 - 40);
    assert_eq!(run(&big), XDP_TX, "fits the interface's MTU");
    // Locked: the FIB helper takes the forwarding view, where a route's
    // MTU counts when locked (or with net.ipv4.ip_forward_use_pmtu=1).
    f._ns
        .run("ip route replace 198.18.0.5/32 dev fx0 mtu lock 1400");
    assert_eq!(run(&big), XDP_TX, "the next hop (and MTU) is cached");
    e.tick();
    assert_eq!(run(&big), XDP_DROP, "over the route's new MTU after a tick");
    f._ns.run("ip route del 198.18.0.5/32 dev fx0");
    e.tick();
    assert_eq!(run(&big), XDP_TX, "the route's MTU is gone again");
    e.datapath().unpin();
    drop(e);
}

/// The secure_tcp defence (`RVS_CFG_SECURE_TCP`, which the engine sets
/// while the director's table has it active): the program moves NAT and
/// DR connections through rvs-conn's secure table, where a spoofed
/// handshake never becomes established; without it, the normal table.
#[test]
fn secure_tcp_switches_the_state_table() {
    use rvs_conn::tcp::{self, TableDir};
    let Some(f) = setup("secure") else { return };
    let n = &nets()[0];
    let cmac = mac(3);
    let mut seqs = Vec::new();
    for (secure, cport) in [(false, 43000u16), (true, 43001)] {
        let mut cfg = maps::CFG_CONN_REUSE;
        if secure {
            cfg |= maps::CFG_SECURE_TCP;
        }
        f.dp.set_config(cfg, 100).unwrap();
        let key = ConnKey {
            caddr: n.client,
            cport,
            vaddr: n.vip,
            vport: M_NAT,
            proto: 6,
        };
        // NAT: client SYN, real server SYN+ACK, client ACK, real server ACK.
        let mut got = Vec::new();
        let mut want = Vec::new();
        let mut st = tcp::NONE;
        for (from_client, flags) in [(true, SYN), (false, SYN | ACK), (true, ACK), (false, ACK)] {
            let input = if from_client {
                let l = l4(6, cport, M_NAT, flags);
                frame(f.dmac, cmac, &n.client, &n.vip, 64, &l)
            } else {
                let l = l4(6, NAT_PORT, cport, flags);
                frame(f.dmac, mac(4), &n.rs_nat, &n.client, 64, &l)
            };
            assert_eq!(f.run(&input).0, XDP_TX);
            got.push(f.dp.conn(&key).unwrap().state);
            let dir = if from_client {
                TableDir::Input
            } else {
                TableDir::Output
            };
            st = tcp::next_state(secure, dir, flags, st);
            want.push(st);
        }
        assert_eq!(got, want, "NAT, secure_tcp {secure}");
        // DR: SYN, then the client's ACK.
        let key = ConnKey { vport: M_DR, ..key };
        let mut st = tcp::NONE;
        for flags in [SYN, ACK] {
            let l = l4(6, cport, M_DR, flags);
            assert_eq!(
                f.run(&frame(f.dmac, cmac, &n.client, &n.vip, 64, &l)).0,
                XDP_TX
            );
            st = tcp::next_state(secure, TableDir::InputOnly, flags, st);
            assert_eq!(
                f.dp.conn(&key).unwrap().state,
                st,
                "DR, secure_tcp {secure}"
            );
            got.push(st);
        }
        seqs.push(got);
    }
    assert_ne!(seqs[0], seqs[1], "the two tables differ on these packets");
    assert_eq!(
        seqs[1][..4],
        [tcp::SYN_RECV, tcp::SYNACK, tcp::SYNACK, tcp::ESTABLISHED]
    );
}

/// The entries' clock: what the program writes in `seen` (jiffies) is
/// what userspace's `now_units` says, now and 100 ms later.
#[test]
fn the_entries_clock_is_userspaces() {
    let Some(f) = setup("clock") else { return };
    let n = &nets()[0];
    let seen = |cport: u16| {
        let l = l4(6, cport, M_DR, SYN);
        assert_eq!(
            f.run(&frame(f.dmac, mac(3), &n.client, &n.vip, 64, &l)).0,
            XDP_TX
        );
        let key = ConnKey {
            caddr: n.client,
            cport,
            vaddr: n.vip,
            vport: M_DR,
            proto: 6,
        };
        f.dp.conn(&key).unwrap().seen
    };
    let close = |a: u32, b: u32| (a.wrapping_sub(b) as i32).abs() <= 2;
    let (a, u) = (seen(44000), rvs_xdp::now_units());
    assert!(close(a, u), "program {a}, userspace {u}");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (b, u) = (seen(44001), rvs_xdp::now_units());
    assert!(close(b, u), "100 ms later: program {b}, userspace {u}");
    assert!(b.wrapping_sub(a) > 0, "the clock moved");
}

/// Maps pinned by a loader from before the jiffies clock (no
/// `CFG_JIFFIES` in the pinned config) hold `seen` in another unit: the
/// next load makes their entries active now, once; later loads leave
/// `seen` alone.
#[test]
fn entries_pinned_with_the_old_clock_count_as_active_at_load() {
    let Some(f) = setup("oldclock") else { return };
    let n = &nets()[0];
    let key = ConnKey {
        caddr: n.client,
        cport: 45000,
        vaddr: n.vip,
        vport: M_DR,
        proto: 6,
    };
    let old = maps::ConnVal {
        dest: slot(4, M_DR) as u16,
        state: 1,
        flags: maps::CONN_NOOUTPUT,
        seen: 5,
    };
    f.dp.put_conn(&key, &old, None).unwrap();
    let pin = f.dp.pin_dir().to_path_buf();
    // The config an older rvsd wrote: flags 0, budget 100.
    sh(&format!(
        "bpftool map update pinned {}/rvs_config key hex 00 00 00 00 value hex 00 00 00 00 64 00 00 00",
        pin.display()
    ));
    let again = Datapath::load(&pin).unwrap();
    let seen = again.conn(&key).unwrap().seen;
    let now = rvs_xdp::now_units();
    assert!(
        (now.wrapping_sub(seen) as i32).abs() <= 2,
        "seen {seen}, now {now}"
    );
    f.dp.put_conn(&key, &old, None).unwrap();
    let third = Datapath::load(&pin).unwrap();
    assert_eq!(third.conn(&key).unwrap().seen, 5, "rewritten once only");
}
