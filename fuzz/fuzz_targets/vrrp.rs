//! The VRRP decoder: any bytes, as IPv4 or IPv6, in either VRRPv3
//! checksum form, decode or fail without panicking; what decodes encodes
//! back to an advert that decodes to itself; a state machine fed the
//! decoded adverts never panics. The raw-IPv4 splitter is fuzzed too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_vrrp::fsm::{Config, Instance};
use rvs_vrrp::packet::{split_ipv4, GROUP_V4, GROUP_V6};
use rvs_vrrp::{Advert, ChecksumMode, Version};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, pkt)) = data.split_first() else {
        return;
    };
    let v6 = flags & 1 != 0;
    let mode = if flags & 2 != 0 {
        ChecksumMode::Rfc9568
    } else {
        ChecksumMode::Keepalived
    };
    let (src, dst) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(GROUP_V6),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            IpAddr::V4(GROUP_V4),
        )
    };
    if let Ok((info, payload)) = split_ipv4(pkt) {
        let _ = Advert::decode(payload, info.src.into(), info.dst.into(), mode);
    }
    let Ok(adv) = Advert::decode(pkt, src, dst, mode) else {
        return;
    };
    let again = adv
        .encode(src, dst, mode)
        .expect("a decoded advert encodes");
    assert_eq!(Advert::decode(&again, src, dst, mode), Ok(adv.clone()));
    let own = if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2))
    } else {
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))
    };
    for version in [Version::V2, Version::V3] {
        let mut cfg = Config::new(version, adv.vrid, 100, 100, own);
        cfg.preempt = flags & 4 != 0;
        let mut i = Instance::new(cfg);
        i.start(0, false);
        for t in [1, 500, 5_000] {
            let _ = i.on_advert(t, src, &adv);
            let _ = i.on_timer(t + 10);
        }
        let _ = i.stop(10_000);
    }
});
