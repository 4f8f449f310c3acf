//! `rvsadm`: a drop-in `ipvsadm` 1.31 that drives the rvsd table.
//!
//! This crate owns the ipvsadm command line and everything ipvsadm prints:
//! the popt-compatible parser and option table ([`options`], [`parse`]),
//! the commands×options legality matrix ([`legality`]), `host[:port]` and
//! number parsing with glibc's quirks ([`addr`]), name lookups through the
//! hosts and services files ([`resolve`]), listings, `-S` and `-L -c`
//! ([`print`]), `-R` ([`restore`]), the usage texts ([`usage`]) and the
//! errno → message table ([`errors`]). Whatever ipvsadm checks itself is
//! checked here; whatever the kernel decides (duplicates, unknown
//! schedulers, defaults) is rvsd's job, reached through [`rvs_ctl`]. The
//! goal is byte-identical stdout, stderr and exit codes.

pub mod addr;
pub mod errors;
pub mod legality;
pub mod options;
pub mod parse;
pub mod print;
pub mod resolve;
pub mod restore;
pub mod run;
pub mod usage;

pub use addr::{parse_host_port, HostPort};
pub use parse::{parse_args, parse_args_with, Command, Exit};
pub use resolve::NameDb;
pub use restore::split_restore_line;
pub use run::{Backend, Runner, Stop};

use std::io::{IsTerminal, Write};

/// stdout as glibc buffers it: line-buffered on a terminal, otherwise
/// written in whole 4096-byte blocks and the rest at exit. This keeps the
/// interleaving with (unbuffered) stderr the same as ipvsadm's when both
/// go to one pipe.
pub struct CStdout<W: Write> {
    inner: W,
    buf: Vec<u8>,
    line_buffered: bool,
}

/// glibc's `BUFSIZ`-sized stdio block for pipes and files.
const STDIO_BLOCK: usize = 4096;

impl<W: Write> CStdout<W> {
    pub fn new(inner: W, line_buffered: bool) -> CStdout<W> {
        CStdout {
            inner,
            buf: Vec::with_capacity(STDIO_BLOCK),
            line_buffered,
        }
    }
}

impl<W: Write> Write for CStdout<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.line_buffered {
            if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                self.inner.write_all(&self.buf[..=i])?;
                self.buf.drain(..=i);
            }
        } else if self.buf.len() >= STDIO_BLOCK {
            let whole = self.buf.len() / STDIO_BLOCK * STDIO_BLOCK;
            self.inner.write_all(&self.buf[..whole])?;
            self.buf.drain(..whole);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.inner.flush()
    }
}

/// The whole program: runs `argv` against the daemon at
/// [`rvs_ctl::socket_path`] with the real standard streams and returns the
/// exit code. The name it was invoked under does not matter (`rvsadm` and
/// an `ipvsadm` link behave the same); `argv[0]` only appears in messages.
pub fn main_with_args(argv: Vec<String>) -> i32 {
    default_sigpipe();
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = CStdout::new(stdout.lock(), tty);
    let mut err = std::io::stderr();
    let mut stdin = std::io::stdin();
    let socket = rvs_ctl::socket_path();
    let prog = argv
        .first()
        .cloned()
        .unwrap_or_else(|| "ipvsadm".to_string());
    let code = {
        let mut r = Runner::new(
            prog,
            &mut out,
            &mut err,
            &mut stdin,
            NameDb::system(),
            socket.clone(),
            run::unix_connector(socket),
        );
        r.posix = std::env::var_os("POSIXLY_CORRECT").is_some()
            || std::env::var_os("POSIX_ME_HARDER").is_some();
        let code = r.run(&argv);
        if r.crashed {
            // Whatever stdout still buffers dies with the process, as in C.
            die_of_sigsegv();
        }
        code
    };
    let _ = out.flush();
    code
}

/// Restores the default SIGPIPE action (Rust ignores it), so that
/// `ipvsadm -L | head -1` ends the writer quietly, as it ends ipvsadm.
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: signal(2) with SIG_DFL takes no pointers and is called
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Ends the process with SIGSEGV, as ipvsadm does when `-b` has no flag
/// names (`-b ,`): it passes strtok's NULL to strcmp.
#[allow(unsafe_code)]
fn die_of_sigsegv() -> ! {
    // SAFETY: signal(2) with SIG_DFL and raise(3) take no pointers; the
    // default disposition replaces Rust's stack-overflow handler, so the
    // raised signal terminates the process.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
    std::process::exit(139)
}
