//! The one system call no safe wrapper offers: `sendto(2)` on an AF_PACKET
//! socket with a `sockaddr_ll` destination (nix and socket2 build such an
//! address only from raw memory).
//!
//! Why `unsafe` is sound here: the `sockaddr_ll` is a fully initialised
//! local built field by field, its exact size is passed with it, the frame
//! pointer and length come from a live slice, and the descriptor is
//! borrowed from an owner that outlives the call.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Sends the Ethernet frame `frame` (destination MAC first, EtherType at
/// bytes 12..14) out of interface `ifindex` through AF_PACKET socket `fd`.
pub(crate) fn send_frame(fd: BorrowedFd<'_>, ifindex: u32, frame: &[u8]) -> io::Result<()> {
    if frame.len() < 14 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame shorter than its header",
        ));
    }
    let mut addr = [0u8; 8];
    addr[..6].copy_from_slice(&frame[..6]);
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        // Already in network order: the EtherType bytes as they are.
        sll_protocol: u16::from_ne_bytes([frame[12], frame[13]]),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: addr,
    };
    // SAFETY: see the module comment; all pointers are to live, sized memory.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
