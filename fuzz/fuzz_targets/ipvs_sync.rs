//! The IPVS sync decoder and a backup's installation: any datagram either
//! is refused or decodes; records read re-encode to a message that decodes
//! to the same records; installing them into a director's tables never
//! panics, whatever the states, protocols and options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_conn::ConnTable;
use rvs_core::table::ServiceTable;
use rvs_sync::wire::{decode, encode, Version};
use rvs_sync::Receiver;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        // HASHED is never written; v0 carries 16 flag bits.
        let recs: Vec<_> = m
            .records
            .iter()
            .cloned()
            .map(|mut r| {
                r.flags &= !0x40;
                if m.version == Version::V0 {
                    r.flags &= 0xffff;
                }
                r
            })
            .collect();
        if let Ok(bytes) = encode(m.version, m.syncid, &recs) {
            let again = decode(&bytes).expect("an encoded message decodes");
            if !recs.is_empty() || m.version == Version::V1 {
                assert_eq!(again.records, recs);
            }
        }
    }
    let mut services = ServiceTable::new(Box::new(rvs_sched::new_scheduler));
    let mut conns = ConnTable::new();
    let mut rx = Receiver::new(0, 3);
    rx.receive(data, 0, &mut services, &mut conns);
    conns.expire(u64::MAX / 2, &mut services);
});
