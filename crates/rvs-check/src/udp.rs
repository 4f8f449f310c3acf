//! UDP check: keepalived `UDP_CHECK` with `require_reply`. A datagram is
//! sent to the real server; a reply must come back, optionally containing
//! an expected byte string. An ICMP port unreachable fails the check at once
//! as [`Reason::Refused`] (the socket is connected, so the kernel reports
//! it as `ECONNREFUSED`).

use std::net::SocketAddr;

use crate::checker::{connect_udp, io_reason, CheckFuture, Checker};
use crate::state::{CheckResult, Reason};

/// Send `payload` to `target`, expect a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpCheck {
    /// Where to send (keepalived `connect_ip` / `connect_port`).
    pub target: SocketAddr,
    /// Where to send from (keepalived `bindto` / `bind_port`).
    pub source: Option<SocketAddr>,
    /// The datagram sent (keepalived `payload`).
    pub payload: Vec<u8>,
    /// Bytes the reply must contain, if any.
    pub expect: Option<Vec<u8>>,
}

impl UdpCheck {
    /// Sends `payload` to `target` and passes on any reply.
    pub fn new(target: SocketAddr, payload: &[u8]) -> Self {
        UdpCheck {
            target,
            source: None,
            payload: payload.to_vec(),
            expect: None,
        }
    }

    /// Judges one reply.
    pub fn judge(&self, reply: &[u8]) -> CheckResult {
        match &self.expect {
            Some(want)
                if !want.is_empty() && !reply.windows(want.len()).any(|w| w == want.as_slice()) =>
            {
                CheckResult::fail(Reason::Mismatch(format!(
                    "reply does not contain {:?}",
                    String::from_utf8_lossy(want)
                )))
            }
            _ => CheckResult::pass(),
        }
    }

    async fn exchange(&self) -> Result<Vec<u8>, Reason> {
        let sock = connect_udp(self.target, self.source)
            .await
            .map_err(|e| io_reason(&e))?;
        sock.send(&self.payload).await.map_err(|e| io_reason(&e))?;
        let mut buf = vec![0u8; 65536];
        let n = sock.recv(&mut buf).await.map_err(|e| io_reason(&e))?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl Checker for UdpCheck {
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match self.exchange().await {
                Ok(reply) => self.judge(&reply),
                Err(reason) => CheckResult::fail(reason),
            }
        })
    }

    fn describe(&self) -> String {
        format!("UDP_CHECK {}", self.target)
    }
}
