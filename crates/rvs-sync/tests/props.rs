//! Property tests: any valid record list survives encode → decode, and no
//! input makes the decoder or the receiver panic.

use proptest::prelude::*;
use rvs_conn::ConnTable;
use rvs_core::table::ServiceTable;
use rvs_sync::wire::{Seq, SeqOptions, PE_DATA_MAXLEN, PE_NAME_MAXLEN};
use rvs_sync::{decode, encode, ConnRecord, Receiver, Version};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn seq() -> impl Strategy<Value = SeqOptions> {
    let s = (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| Seq {
        init_seq: a,
        delta: b,
        previous_delta: c,
    });
    (s.clone(), s).prop_map(|(i, o)| SeqOptions {
        in_seq: i,
        out_seq: o,
    })
}

fn addrs(v6: bool) -> BoxedStrategy<(IpAddr, IpAddr, IpAddr)> {
    if v6 {
        let a = any::<u128>().prop_map(|x| IpAddr::V6(Ipv6Addr::from(x)));
        (a.clone(), a.clone(), a).boxed()
    } else {
        let a = any::<u32>().prop_map(|x| IpAddr::V4(Ipv4Addr::from(x)));
        (a.clone(), a.clone(), a).boxed()
    }
}

fn record_v1() -> impl Strategy<Value = ConnRecord> {
    (
        any::<bool>().prop_flat_map(addrs),
        (any::<u8>(), any::<u32>(), any::<u16>()),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
        ),
        proptest::option::of(seq()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=PE_DATA_MAXLEN)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=PE_NAME_MAXLEN)),
    )
        .prop_map(
            |(
                (c, v, d),
                (protocol, flags, state),
                (cport, vport, dport, fwmark, timeout),
                seq,
                pe_data,
                pe_name,
            )| {
                ConnRecord {
                    protocol,
                    flags: flags & !0x40,
                    state,
                    cport,
                    vport,
                    dport,
                    fwmark,
                    timeout,
                    caddr: c,
                    vaddr: v,
                    daddr: d,
                    seq,
                    pe_data,
                    pe_name,
                }
            },
        )
}

fn record_v0() -> impl Strategy<Value = ConnRecord> {
    (
        addrs(false),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        seq(),
    )
        .prop_map(
            |((c, v, d), protocol, flags, state, (cport, vport, dport), s)| {
                let flags = (flags & !0x40) as u32;
                ConnRecord {
                    protocol,
                    flags,
                    state,
                    cport,
                    vport,
                    dport,
                    fwmark: 0,
                    timeout: 0,
                    caddr: c,
                    vaddr: v,
                    daddr: d,
                    seq: (flags & 0x600 != 0).then_some(s),
                    pe_data: None,
                    pe_name: None,
                }
            },
        )
}

proptest! {
    #[test]
    fn v1_round_trip(recs in proptest::collection::vec(record_v1(), 0..20), syncid in any::<u8>()) {
        let bytes = encode(Version::V1, syncid, &recs).unwrap();
        let m = decode(&bytes).unwrap();
        prop_assert_eq!(m.version, Version::V1);
        prop_assert_eq!(m.syncid, syncid);
        prop_assert_eq!(m.dropped_rest, None);
        prop_assert_eq!(m.records, recs);
    }

    #[test]
    fn v0_round_trip(recs in proptest::collection::vec(record_v0(), 1..20), syncid in any::<u8>()) {
        let bytes = encode(Version::V0, syncid, &recs).unwrap();
        let m = decode(&bytes).unwrap();
        prop_assert_eq!(m.version, Version::V0);
        prop_assert_eq!(m.syncid, syncid);
        prop_assert_eq!(m.records, recs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..600), fix_size in any::<bool>()) {
        if fix_size && bytes.len() >= 4 {
            let n = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&n.to_be_bytes());
        }
        let _ = decode(&bytes);
        let mut services = ServiceTable::new(Box::new(rvs_sched::new_scheduler));
        let mut conns = ConnTable::new();
        Receiver::new(0, 3).receive(&bytes, 0, &mut services, &mut conns);
    }

    #[test]
    fn any_single_byte_change_decodes_without_panic(recs in proptest::collection::vec(record_v1(), 1..5), at in any::<usize>(), v in any::<u8>()) {
        let mut bytes = encode(Version::V1, 1, &recs).unwrap();
        let i = at % bytes.len();
        bytes[i] = v;
        let mut services = ServiceTable::new(Box::new(rvs_sched::new_scheduler));
        let mut conns = ConnTable::new();
        Receiver::new(0, 3).receive(&bytes, 0, &mut services, &mut conns);
    }
}
