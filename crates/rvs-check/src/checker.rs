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
    let stream = sock.connect(target).await?;
    // A real server on a local port nobody listens on can "answer" a
    // connect when the kernel happens to pick that very port as the
    // ephemeral source: TCP simultaneous open connects the socket to
    // itself. Nothing is listening, so that is a refusal.
    if stream.local_addr()? == stream.peer_addr()? {
        return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
    }
    Ok(stream)
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
    // Connected to itself (see `connect_tcp`): its own datagram would come
    // back as the "reply".
    if sock.local_addr()? == target {
        return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
    }
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn a_socket_connected_to_itself_is_a_refusal() {
        let p = free_port();
        let me = SocketAddr::from(([127, 0, 0, 1], p));
        // Source and target the same: TCP simultaneous open would connect.
        let e = connect_tcp(me, Some(me)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let e = connect_udp(me, Some(me)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        // A real listener still connects.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert!(connect_tcp(l.local_addr().unwrap(), None).await.is_ok());
    }
}
