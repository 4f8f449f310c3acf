//! Connection-table costs: insert, request/reply lookup, per-packet
//! processing and expiry, at a table of `N` entries. Memory per entry is
//! printed once at start (`cargo bench -p rvs-conn`).

use rvs_conn::{ConnTable, Direction, NewConn, Transport};
use rvs_core::{Af, Dest, DestConfig, DestId, DestStore, FwdMethod, Protocol, SEC};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

const N: u32 = 100_000;

struct Store(Dest);

impl DestStore for Store {
    fn dest_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        (id == self.0.id).then_some(&mut self.0)
    }
    fn count_conn(&mut self, _: DestId) {}
    fn count_in(&mut self, _: DestId, bytes: u64) {
        self.0.stats.count_in(bytes);
    }
    fn count_out(&mut self, _: DestId, bytes: u64) {
        self.0.stats.count_out(bytes);
    }
}

fn store() -> Store {
    let mut cfg = DestConfig::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)), 80);
    cfg.fwd = FwdMethod::Masq;
    Store(Dest::new(DestId(1), cfg))
}

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn client(i: u32) -> (IpAddr, u16) {
    (
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 4))),
        1024 + (i & 0xf) as u16,
    )
}

fn spec(i: u32) -> NewConn {
    let (caddr, cport) = client(i);
    NewConn {
        proto: Protocol::Tcp as u8,
        af: Af::Inet,
        caddr,
        cport,
        vaddr: VIP,
        vport: 80,
        daddr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
        dport: 80,
        flags: 0,
        fwmark: 0,
        pe: None,
    }
}

fn filled(n: u32) -> (ConnTable, Store) {
    let mut t = ConnTable::new();
    let mut s = store();
    for i in 0..n {
        let id = t.create(spec(i), Some(&mut s.0), 0);
        t.process(
            id,
            Direction::Input,
            Transport::Tcp(rvs_conn::tcp::SYN),
            60,
            0,
            &mut s,
        );
    }
    (t, s)
}

fn main() {
    let (t, _) = filled(N);
    let m = t.memory();
    eprintln!(
        "memory: {} entries, size_of::<Conn>() = {} B, total {} B = {:.1} B/entry \
         ({} slots, {} buckets, {} timer items)",
        m.entries,
        m.entry_bytes,
        m.total_bytes,
        m.total_bytes as f64 / m.entries as f64,
        m.slots,
        m.buckets,
        m.timer_items
    );
    divan::main();
}

/// Creating one entry (bind to the real server, hash, arm the timer).
#[divan::bench(sample_count = 20)]
fn insert(bencher: divan::Bencher) {
    bencher
        .counter(divan::counter::ItemsCount::new(N as usize))
        .with_inputs(|| (ConnTable::new(), store()))
        .bench_local_values(|(mut t, mut s)| {
            for i in 0..N {
                black_box(t.create(spec(i), Some(&mut s.0), 0));
            }
            (t, s)
        });
}

/// Request-side lookup of an existing entry in a table of N.
#[divan::bench]
fn lookup_in_hit(bencher: divan::Bencher) {
    let (t, _) = filled(N);
    let mut i = 0u32;
    bencher.bench_local(|| {
        i = (i.wrapping_mul(2654435761).wrapping_add(1)) % N;
        let (c, p) = client(i);
        black_box(t.lookup_in(Protocol::Tcp, c, p, VIP, 80))
    });
}

/// Request-side lookup of a tuple that has no entry.
#[divan::bench]
fn lookup_in_miss(bencher: divan::Bencher) {
    let (t, _) = filled(N);
    let mut i = 0u32;
    bencher.bench_local(|| {
        i = i.wrapping_add(1);
        let (c, p) = client(N + (i % N));
        black_box(t.lookup_in(Protocol::Tcp, c, p, VIP, 80))
    });
}

/// Reply-side lookup of an existing NAT entry.
#[divan::bench]
fn lookup_out_hit(bencher: divan::Bencher) {
    let (t, _) = filled(N);
    let rs = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1));
    let mut i = 0u32;
    bencher.bench_local(|| {
        i = (i.wrapping_mul(2654435761).wrapping_add(1)) % N;
        let (c, p) = client(i);
        black_box(t.lookup_out(Protocol::Tcp, rs, 80, c, p))
    });
}

/// One ESTABLISHED data packet: stats, state machine, timer re-arm.
#[divan::bench]
fn process_packet(bencher: divan::Bencher) {
    let (mut t, mut s) = filled(N);
    let ids: Vec<_> = t.iter().map(|e| e.id).collect();
    let mut i = 0usize;
    let mut now = 0;
    bencher.bench_local(|| {
        i = (i + 7919) % ids.len();
        now += 1;
        black_box(t.process(
            ids[i],
            Direction::Input,
            Transport::Tcp(rvs_conn::tcp::ACK),
            1500,
            now,
            &mut s,
        ))
    });
}

/// Expiring N idle entries (unhash, unbind, free), per entry.
#[divan::bench(sample_count = 20)]
fn expire_all(bencher: divan::Bencher) {
    bencher
        .counter(divan::counter::ItemsCount::new(N as usize))
        .with_inputs(|| filled(N))
        .bench_local_values(|(mut t, mut s)| {
            black_box(t.expire(3600 * SEC, &mut s));
            (t, s)
        });
}
