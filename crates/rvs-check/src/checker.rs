//! The contract every checker implements, and what they share: running a
//! check under its timeout, opening a TCP connection from an optional source
//! address, and turning I/O errors into [`Reason`]s.
//!
//! keepalived's generic checker options map here: `connect_ip` /
//! `connect_port` are each checker's target address, `bindto` / `bind_port`
//! its optional source address, `connect_timeout` the timeout passed to
//! [`run_check`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::state::{CheckResult, Reason};

/// A boxed, sendable future, so that checkers can live behind `dyn Checker`.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// One kind of health check against one real server. A run is one call of
/// [`Checker::check`]; the driver bounds it with [`run_check`] (dropping the
/// future cancels the run: sockets close, child processes are killed).
pub trait Checker: Send + Sync {
    /// Runs the check once.
    fn check(&self) -> CheckFuture<'_>;

    /// A short description for logs, e.g. `HTTP_GET 10.0.0.1:80/health`.
    fn describe(&self) -> String;
}

/// Runs one check bounded by `timeout`; a run that takes longer fails with
/// [`Reason::Timeout`].
pub async fn run_check(checker: &dyn Checker, timeout: Duration) -> CheckResult {
    match tokio::time::timeout(timeout, checker.check()).await {
        Ok(r) => r,
        Err(_) => CheckResult::fail(Reason::Timeout),
    }
}

/// The reason an I/O error stands for: refused connections (and ICMP port
/// unreachable on connected UDP sockets) are [`Reason::Refused`], time-outs
/// [`Reason::Timeout`], anything else [`Reason::Error`].
pub fn io_reason(e: &io::Error) -> Reason {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Reason::Refused,
        io::ErrorKind::TimedOut => Reason::Timeout,
        _ => Reason::Error(e.to_string()),
    }
}

/// Connects to `target`, from `source` when given (keepalived `bindto` /
/// `bind_port`).
pub async fn connect_tcp(target: SocketAddr, source: Option<SocketAddr>) -> io::Result<TcpStream> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source {
        if src.port() != 0 {
            sock.set_reuseaddr(true)?;
        }
        sock.bind(src)?;
    }
    sock.connect(target).await
}

/// A UDP socket connected to `target`, bound to `source` when given, so that
/// an ICMP port unreachable comes back as `ECONNREFUSED`.
pub async fn connect_udp(target: SocketAddr, source: Option<SocketAddr>) -> io::Result<UdpSocket> {
    let local = match source {
        Some(s) => s,
        None if target.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
        None => SocketAddr::from(([0u16; 8], 0)),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(target).await?;
    Ok(sock)
}
