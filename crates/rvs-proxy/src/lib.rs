//! The proxy engine: rvs's default data path, a userspace L4 proxy that
//! needs no kernel module and no privilege. It serves every TCP and UDP
//! virtual service of a [`rvs_director::Director`] the way LVS serves them
//! with masquerading (`-m`): it listens on the virtual address and port,
//! and relays each accepted connection (or UDP flow) to a real server
//! chosen by the director's own connection table and scheduler
//! ([`rvs_conn::ConnTable::schedule`]), so persistence templates,
//! thresholds and OVERLOAD, weight 0 (drain), one-packet scheduling and
//! real-server port mapping behave as in the kernel. The socket's life is
//! reported to the same table ([`rvs_conn::ProxyEvent`]), so `ipvsadm -L -n`
//! shows live ActiveConn/InActConn, `-L -c` the connections with their
//! states and expiry, and the table's timeouts (`--set`) bound idle and
//! half-closed connections.
//!
//! Threads: [`Engine::start`] runs N workers, each a tokio `current_thread`
//! runtime with its own SO_REUSEPORT socket per service and, where the
//! kernel allows it, an io_uring that relays established TCP connections
//! (the `uring` module; the `relay` module is the epoll relay); the director's
//! lock is taken only to schedule a connection, to report a state change
//! (established, FIN, reset, close) and once per flush interval to report
//! traffic counts. Statistics: for the proxy, one **packet** is one
//! successful read from a socket (TCP: a receive of up to 32 KiB through
//! io_uring, a `read` or `splice` of up to 64 KiB with epoll; UDP: one
//! datagram), plus one incoming packet of 0 bytes for the
//! connection request itself (the kernel's SYN); **bytes** are payload
//! bytes, without IP and TCP/UDP headers (and without the PROXY protocol
//! header). Counts reach `--stats` within one flush interval (1 s).
//!
//! The client's address reaches real servers through a PROXY protocol
//! header (v1 or v2) or transparent mode ([`ProxyOptions`]). Forwarding
//! methods below the socket layer (`-g`, `-i`) and SCTP are refused
//! ([`Engine::admit`]): they are the xdp engine's. The only `unsafe` code
//! is in the `sys` module (`splice`, `pipe2`, `setrlimit`, and registering
//! a listener as an `AsyncFd`) and the `uring` module (the io_uring relay:
//! submissions that refer to buffers the module owns).

mod config;
mod engine;
pub mod proxy_protocol;
mod relay;
mod sock;
mod sys;
mod tcp;
mod track;
mod udp;
mod uring;
mod worker;

pub use config::{ClientAddressing, EngineConfig, ProxyOptions, ProxyProtocol, RelayMethod};
pub use engine::{Engine, SyncProblem};
pub use sock::privileged;
pub use sys::{raise_fd_limit, set_fd_limit};

/// The director as the daemon shares it with the engine.
pub type SharedDirector = std::sync::Arc<std::sync::Mutex<rvs_director::Director>>;

/// A service as ipvsadm names it in messages: `TCP 10.0.0.1:80`,
/// `UDP [2001:db8::1]:53`, `FWM 7`.
pub fn service_name(key: &rvs_core::ServiceKey) -> String {
    match key {
        rvs_core::ServiceKey::Addr { proto, addr, port } => {
            format!(
                "{} {}",
                proto.label(),
                std::net::SocketAddr::new(*addr, *port)
            )
        }
        rvs_core::ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}
