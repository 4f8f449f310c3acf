//! The `rvsadm` binary as users meet it: invoked through a link named
//! `ipvsadm`, with the wrapper scripts beside it, and no daemon running.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// A directory with `ipvsadm` (a link to rvsadm) and the two scripts,
/// made once per test process.
fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("rvsadm-bin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rvsadm"), d.join("ipvsadm")).unwrap();
        for s in ["ipvsadm-save", "ipvsadm-restore"] {
            let src = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts")
                .join(s);
            std::fs::copy(src, d.join(s)).unwrap();
        }
        d
    })
    .clone()
}

/// Runs a shell command line with the link directory first on PATH.
fn sh(line: &str) -> Output {
    let dir = bin_dir();
    Command::new("bash")
        .arg("-c")
        .arg(line)
        .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
        .env("RVS_SOCKET", dir.join("no-such.sock"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_and_version_need_no_daemon() {
    let o = sh("ipvsadm --help");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), rvs_ipvsadm::usage::usage("ipvsadm"));
    assert!(o.stderr.is_empty());
    let o = sh("ipvsadm -v");
    assert_eq!(
        text(&o.stdout),
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
    );
}

#[test]
fn try_help_names_argv0_as_invoked() {
    let o = sh("ipvsadm -Q");
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        text(&o.stderr),
        "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"
    );
    let o = sh("cd \"$(dirname \"$(command -v ipvsadm)\")\" && ./ipvsadm -Q");
    assert_eq!(
        text(&o.stderr),
        "Try `./ipvsadm -h' or './ipvsadm --help' for more information.\n"
    );
}

#[test]
fn local_errors_need_no_daemon() {
    let o = sh("ipvsadm -A -t 10.0.0.1:99999");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "illegal virtual server address[:port] specified\n"
    );
    let o = sh("ipvsadm -A -t 10.0.0.1:80 --bogus");
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(text(&o.stderr), "--bogus: unknown option\n");
}

#[test]
fn no_daemon_is_exit_2_naming_the_socket() {
    let o = sh("ipvsadm -L -n");
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = text(&o.stderr);
    assert!(
        err.contains("no-such.sock") && err.contains("rvsd"),
        "{err}"
    );
}

#[test]
fn empty_sched_flags_die_of_sigsegv_like_ipvsadm() {
    let dir = bin_dir();
    let o = Command::new(dir.join("ipvsadm"))
        .args(["-A", "-t", "10.0.0.1:80", "-b", ","])
        .env("RVS_SOCKET", dir.join("no-such.sock"))
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(11));
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
}

#[test]
fn save_script_help() {
    let o = sh("ipvsadm-save -x");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "ipvsadm-save: Script to save the IPVS table to stdout.\n   \
         With the -n option, prints out the table in numeric format.\n"
    );
    // Non-dash words are ignored; without a daemon -S fails like any listing.
    let o = sh("ipvsadm-save foo");
    assert_eq!(o.status.code(), Some(2));
}
