//! The `-R` reader (`config_stream_read`): it must always make progress,
//! never split inside a word shorter than 4096 bytes, and never return a
//! separator inside a word.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_ipvsadm::split_restore_line;

fuzz_target!(|data: &[u8]| {
    let mut pos = 0;
    loop {
        let before = pos;
        let Some(words) = split_restore_line(data, &mut pos) else { break };
        assert!(pos > before && pos <= data.len());
        for w in &words {
            assert!(w != "ipvsadm");
            assert!(!w.contains([' ', '\t', '\r', '\n', '\0']));
        }
    }
});
