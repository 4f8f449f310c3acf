//! The ldirectord.cf importer: any text yields either rvs.toml that
//! rvs-config accepts (and no errors) or at least one error, never a panic;
//! every message points into the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvsctl::import::{import_text, Format, NoFiles};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let names = rvs_ipvsadm::NameDb::default();
    let out = import_text(Format::Ldirectord, text, "fuzz.cf", None, &NoFiles, &names);
    match &out.toml {
        Some(t) => {
            assert!(out.diags.errors.is_empty());
            rvs_config::parse(t, "out.toml").expect("the importer validated its output");
        }
        None => assert!(!out.diags.errors.is_empty()),
    }
    let lines = text.lines().count();
    for d in out.diags.errors.iter().chain(&out.diags.warnings) {
        assert!(d.origin.line <= lines.max(1), "{d}");
    }
});
