//! The only system calls std, tokio and socket2 do not wrap: `splice(2)`
//! and `pipe2(2)` for the zero-copy relay, `getrlimit`/`setrlimit` for
//! the file-descriptor limit, `getsockopt(TCP_INFO)` and `connect(AF_UNSPEC)`
//! to make a finished TCP socket new again; and the registration of listening sockets
//! with the runtime as an `AsyncFd` (so the worker accepts with its own
//! `accept4`).
//!
//! Why `unsafe` is sound here: every call passes either plain integers or
//! pointers to live, correctly sized locals (`rlimit`, the two-element fd
//! array); `splice` is given null offset pointers, which the kernel reads
//! as "use the file position" and which are the documented way to splice
//! sockets and pipes. The file descriptors handed to `splice` are borrowed
//! from objects that own them for the whole call. Each new descriptor from
//! `pipe2` is wrapped in an [`OwnedFd`] at once, so it is closed exactly once.
#![allow(unsafe_code)]

/// Registers a listening socket with the worker's runtime for readability.
pub(crate) fn async_listener(
    l: std::net::TcpListener,
) -> io::Result<tokio::io::unix::AsyncFd<std::net::TcpListener>> {
    // SAFETY: the `AsyncFd` takes ownership of the listener, which owns its
    // descriptor: it stays open and is the same one until the `AsyncFd`
    // (and with it the listener) is dropped.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(l, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking pipe used as the in-kernel buffer of one relay direction.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    pub(crate) fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two c_ints for the kernel to fill.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Pipe { read, write })
    }

    /// Moves up to `len` bytes from socket `from` into the pipe.
    pub(crate) fn fill(&self, from: RawFd, len: usize) -> io::Result<usize> {
        splice(from, self.write.as_raw_fd(), len)
    }

    /// Moves up to `len` bytes from the pipe into socket `to`.
    pub(crate) fn drain(&self, to: RawFd, len: usize) -> io::Result<usize> {
        splice(self.read.as_raw_fd(), to, len)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: integers only; null offsets are valid for sockets and pipes.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Whether a TCP socket's connection is over for the kernel (`TCP_CLOSE`:
/// both FINs exchanged and ours acknowledged, any TIME_WAIT held by a
/// separate timewait socket), read from the first byte of `TCP_INFO`.
pub(crate) fn tcp_closed(fd: RawFd) -> io::Result<bool> {
    const TCP_CLOSE: u8 = 7;
    let mut state: u8 = 0;
    let mut len = 1 as libc::socklen_t;
    // SAFETY: `state` is valid for the one byte `len` allows.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut state as *mut u8 as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(state == TCP_CLOSE)
}

/// Dissolves a TCP socket's association (`connect` to `AF_UNSPEC`, the
/// kernel's `tcp_disconnect`): the socket is unconnected again, with its
/// options, and can connect anew.
pub(crate) fn disconnect(fd: RawFd) -> io::Result<()> {
    let addr = libc::sockaddr {
        sa_family: libc::AF_UNSPEC as libc::sa_family_t,
        sa_data: [0; 14],
    };
    // SAFETY: `addr` is a valid AF_UNSPEC address at least as long as the
    // length passed.
    let r = unsafe {
        libc::connect(
            fd,
            &addr,
            std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn get_limit() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

fn set_limit(lim: &libc::rlimit) -> io::Result<()> {
    // SAFETY: `lim` is a valid rlimit. Raising the hard limit fails without
    // CAP_SYS_RESOURCE, which callers handle.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the soft `RLIMIT_NOFILE` (open files) to `soft`, raising the hard
/// limit too when needed and allowed (root); otherwise to the hard limit.
/// Returns the soft limit in force afterwards.
pub fn set_fd_limit(soft: u64) -> io::Result<u64> {
    let lim = get_limit()?;
    if soft > lim.rlim_max {
        let both = libc::rlimit {
            rlim_cur: soft,
            rlim_max: soft,
        };
        if set_limit(&both).is_ok() {
            return Ok(soft);
        }
    }
    let cur = soft.min(lim.rlim_max);
    set_limit(&libc::rlimit {
        rlim_cur: cur,
        rlim_max: lim.rlim_max,
    })?;
    Ok(cur)
}

/// The soft `RLIMIT_NOFILE` (open files) in force; unlimited where it
/// cannot be read.
pub(crate) fn open_files_limit() -> u64 {
    get_limit().map_or(u64::MAX, |l| l.rlim_cur)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (what a proxy wants:
/// one descriptor per socket). Returns the limit in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    let lim = get_limit()?;
    if lim.rlim_cur >= lim.rlim_max {
        return Ok(lim.rlim_cur);
    }
    set_fd_limit(lim.rlim_max)
}
