//! TCP connect check: keepalived `TCP_CHECK`, ldirectord `checktype =
//! connect`. Up when the three-way handshake completes in time.

use std::net::SocketAddr;

use crate::checker::{connect_tcp, io_reason, CheckFuture, Checker};
use crate::state::CheckResult;

/// A TCP connect to `target`, optionally from `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpCheck {
    /// Where to connect (keepalived `connect_ip` / `connect_port`).
    pub target: SocketAddr,
    /// Where to connect from (keepalived `bindto` / `bind_port`).
    pub source: Option<SocketAddr>,
}

impl TcpCheck {
    /// A connect check to `target` from any local address.
    pub fn new(target: SocketAddr) -> Self {
        TcpCheck {
            target,
            source: None,
        }
    }
}

impl Checker for TcpCheck {
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match connect_tcp(self.target, self.source).await {
                Ok(_) => CheckResult::pass(),
                Err(e) => CheckResult::fail(io_reason(&e)),
            }
        })
    }

    fn describe(&self) -> String {
        format!("TCP_CHECK {}", self.target)
    }
}
