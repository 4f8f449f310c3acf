//! The rvs.toml parser: any text either parses or yields errors whose
//! positions lie inside the text; a parsed configuration writes back to
//! itself and converts to ipvsadm rules; the rule reader never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match rvs_config::parse(text, "fuzz.toml") {
        Ok(c) => {
            let again = rvs_config::parse(&rvs_config::to_toml(&c), "again.toml")
                .expect("to_toml writes a valid file");
            assert_eq!(again, c);
            assert!(rvs_config::diff(&c, &c).is_empty());
            let _ = rvs_config::to_rules(&c);
        }
        Err(errs) => {
            assert!(!errs.is_empty());
            let last_line = text.matches('\n').count() + 1;
            for e in errs {
                assert!(e.line >= 1 && e.line <= last_line && e.column >= 1, "{e}");
            }
        }
    }
    let _ = rvs_config::from_rules_with(text, &rvs_ipvsadm::NameDb::default());
});
