//! The control protocol between `rvsd` and its clients.
//!
//! `rvsd` owns the director table; `rvsadm` (and later `rvsctl`) change and
//! read it through a Unix stream socket. Each message is one line of JSON:
//! the client sends a [`Request`], the daemon answers with one [`Response`].
//! The operations are those of the kernel's IPVS netlink family
//! (NEW_SERVICE, SET_DEST, GET_INFO, ...), and failures carry the errno the
//! kernel would return ([`rvs_core::Errno`]), so a client can print exactly
//! what ipvsadm prints. [`Client`] is the blocking client both CLIs use.

mod client;
mod types;

pub use client::{socket_path, Client, ClientError, DEFAULT_SOCKET};
pub use types::*;
