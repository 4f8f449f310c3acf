//! The ipvsadm command line: popt scanning, option handlers, legality.
//! Input: argv words separated by NUL bytes. Must never panic, and a
//! command line it accepts must satisfy the legality table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_ipvsadm::legality::check_command;
use rvs_ipvsadm::{parse_args_with, NameDb};
use std::sync::OnceLock;

fn names() -> &'static NameDb {
    static DB: OnceLock<NameDb> = OnceLock::new();
    DB.get_or_init(|| {
        NameDb::from_text(
            "127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.1.1 oracle\n",
            "http 80/tcp www\nhttp-alt 8080/tcp\ndomain 53/udp\namqp 5672/sctp\n",
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<String> = std::iter::once("ipvsadm")
        .chain(text.split('\0'))
        .map(String::from)
        .collect();
    for posix in [false, true] {
        if let Ok(cmd) = parse_args_with(&argv, names(), posix) {
            assert!(check_command(cmd.cmd, cmd.options).is_ok());
            let _ = cmd.svc.key();
            let _ = cmd.dest.config();
        }
    }
});
