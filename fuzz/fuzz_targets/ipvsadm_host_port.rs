//! `host[:port]` parsing and the glibc address conversions behind it.
//! First byte: protocol selector; the rest: the argument text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_ipvsadm::addr::{inet_aton, inet_ntop6, inet_pton4, inet_pton6, parse_netmask, string_to_number};
use rvs_ipvsadm::{parse_host_port, NameDb};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let s = String::from_utf8_lossy(rest);
    let names = NameDb::from_text("127.0.0.1 localhost\n", "http 80/tcp\namqp 5672/sctp\n");
    let proto = [0u16, 6, 17, 132][sel as usize % 4];
    if let Some(hp) = parse_host_port(&s, proto, &names) {
        // A port can only come from text after a ':'.
        assert!(hp.port.is_none() || s.contains(':'));
    }
    let _ = parse_netmask(&s, &names);
    let _ = inet_aton(&s);
    let _ = string_to_number(&s, 0, 65535);
    if let Some(a) = inet_pton6(&s) {
        // inet_ntop's text parses back to the same address.
        assert_eq!(inet_pton6(&inet_ntop6(&a)), Some(a));
    }
    if let Some(a) = inet_pton4(&s) {
        assert_eq!(inet_pton4(&a.to_string()), Some(a));
        assert_eq!(inet_aton(&s), Some(a));
    }
});
