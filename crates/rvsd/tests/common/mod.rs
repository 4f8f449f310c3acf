//! The rvsd process harness shared by the process-level tests: start a
//! daemon on a private socket and state directory, wait for it, drive it
//! with the real `rvsadm`, kill it at the end.
#![allow(dead_code)] // each test file uses a different part

use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running rvsd; killed when dropped.
pub struct Rvsd {
    pub child: Child,
    pub sock: PathBuf,
}

impl Rvsd {
    /// Starts rvsd with its socket and state under `dir` (two proxy workers)
    /// plus `extra` arguments, and waits until it accepts control clients.
    pub fn start(dir: &Path, extra: &[&str]) -> Rvsd {
        let sock = dir.join("rvsd.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_rvsd"))
            .arg("--socket")
            .arg(&sock)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(["--workers", "2"])
            .args(extra)
            .env("RVS_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_socket(&sock);
        Rvsd { child, sock }
    }

    pub fn client(&self) -> rvs_ctl::Client {
        rvs_ctl::Client::connect(&self.sock).unwrap()
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 10 s) until something accepts connections on `sock`.
pub fn wait_for_socket(sock: &Path) {
    let t0 = Instant::now();
    while UnixStream::connect(sock).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "rvsd did not come up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A loopback TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `rvsadm ARGS` against the daemon at `sock`, whatever its outcome.
pub fn rvsadm_output(sock: &Path, args: &[&str]) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_rvsd")).with_file_name("rvsadm");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --bins` first",
        bin.display()
    );
    Command::new(bin)
        .args(args)
        .env("RVS_SOCKET", sock)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `rvsadm ARGS`, which must succeed; its stdout.
pub fn rvsadm(d: &Rvsd, args: &[&str]) -> String {
    let out = rvsadm_output(&d.sock, args);
    assert!(
        out.status.success(),
        "rvsadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the tests run as root (network namespaces, BPF, nftables).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs `cmd` with `sh -c`, which must succeed; its stdout.
pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        o.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `f` on a thread inside network namespace `ns` (sockets it creates
/// stay in that namespace) and returns what it returns.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}
