//! DNS check: keepalived `DNS_CHECK` (`type`, `name`) and ldirectord
//! `service = dns` (`request` is the name). A query built by hand (RFC 1035
//! §4.1) is sent over UDP; the check passes when a response with the same
//! id, the QR bit, RCODE 0 (NOERROR) and, unless disabled, at least one
//! answer record comes back. Datagrams with another id are ignored, as a
//! resolver would, so a spoofed or stale reply cannot pass the check.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::checker::{connect_udp, io_reason, CheckFuture, Checker};
use crate::state::{CheckResult, Reason};

/// Record types by name, as keepalived's `type` accepts them.
pub fn qtype_by_name(name: &str) -> Option<u16> {
    Some(match name.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        _ => return None,
    })
}

/// Query `name` for `qtype` (class IN) at `target`.
#[derive(Debug)]
pub struct DnsCheck {
    /// The server (keepalived `connect_ip` / `connect_port`, port 53).
    pub target: SocketAddr,
    /// Where to send from (keepalived `bindto`).
    pub source: Option<SocketAddr>,
    /// The name queried (keepalived `name`, default `.`).
    pub name: String,
    /// The record type (keepalived `type`, default SOA = 6).
    pub qtype: u16,
    /// Require ANCOUNT > 0 (keepalived only requires NOERROR).
    pub require_answer: bool,
    next_id: AtomicU16,
}

impl DnsCheck {
    /// Queries `name` for `qtype` at `target` and requires an answer.
    pub fn new(target: SocketAddr, name: &str, qtype: u16) -> Self {
        // Seed the id from the target and name so that servers do not all
        // see the same ids; it then increments per run.
        let seed = crate::state::identity_key(format!("{target}{name}").as_bytes()) as u16;
        DnsCheck {
            target,
            source: None,
            name: name.to_string(),
            qtype,
            require_answer: true,
            next_id: AtomicU16::new(seed),
        }
    }

    /// Judges a response to query `id`: `None` if it is not a response to
    /// that query (and must be ignored).
    pub fn judge(&self, id: u16, resp: &[u8]) -> Option<CheckResult> {
        if resp.len() < 12 || u16::from_be_bytes([resp[0], resp[1]]) != id || resp[2] & 0x80 == 0 {
            return None;
        }
        let rcode = resp[3] & 0x0f;
        if rcode != 0 {
            return Some(CheckResult::fail(Reason::Mismatch(format!(
                "DNS rcode {rcode}"
            ))));
        }
        let ancount = u16::from_be_bytes([resp[6], resp[7]]);
        if self.require_answer && ancount == 0 {
            return Some(CheckResult::fail(Reason::Mismatch(
                "DNS answer count 0".into(),
            )));
        }
        Some(CheckResult::pass())
    }

    async fn exchange(&self) -> Result<CheckResult, Reason> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let query = build_query(id, &self.name, self.qtype)?;
        let sock = connect_udp(self.target, self.source)
            .await
            .map_err(|e| io_reason(&e))?;
        sock.send(&query).await.map_err(|e| io_reason(&e))?;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = sock.recv(&mut buf).await.map_err(|e| io_reason(&e))?;
            if let Some(r) = self.judge(id, &buf[..n]) {
                return Ok(r);
            }
        }
    }
}

impl Checker for DnsCheck {
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move { self.exchange().await.unwrap_or_else(CheckResult::fail) })
    }

    fn describe(&self) -> String {
        format!(
            "DNS_CHECK {} {} type {}",
            self.target, self.name, self.qtype
        )
    }
}

/// A standard query (RD set) for `name`, type `qtype`, class IN.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, Reason> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1 AN=0 NS=0 AR=0
    q.extend_from_slice(&encode_name(name)?);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(q)
}

/// A domain name in wire format; `.` or `` is the root.
pub fn encode_name(name: &str) -> Result<Vec<u8>, Reason> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        if label.len() > 63 {
            return Err(Reason::Error(format!("DNS label too long: {label}")));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() > 255 {
        return Err(Reason::Error("DNS name too long".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_wire_query() {
        let q = build_query(0xbeef, "www.example.com.", 1).unwrap();
        let mut want = vec![0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x03www\x07example\x03com\x00");
        want.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(q, want);
        assert_eq!(encode_name(".").unwrap(), vec![0]);
        assert!(encode_name(&"a".repeat(64)).is_err());
        assert_eq!(qtype_by_name("soa"), Some(6));
        assert_eq!(qtype_by_name("bogus"), None);
    }

    #[test]
    fn judges_responses() {
        let c = DnsCheck::new("127.0.0.1:53".parse().unwrap(), ".", 6);
        let mut r = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        assert_eq!(c.judge(0x1234, &r), Some(CheckResult::pass()));
        assert_eq!(c.judge(0x1235, &r), None, "other id ignored");
        r[2] = 0x01;
        assert_eq!(c.judge(0x1234, &r), None, "a query, not a response");
        r[2] = 0x81;
        r[3] = 0x83; // NXDOMAIN
        assert!(matches!(
            c.judge(0x1234, &r),
            Some(CheckResult {
                ok: false,
                reason: Reason::Mismatch(_),
                ..
            })
        ));
        r[3] = 0x80;
        r[7] = 0;
        assert!(!c.judge(0x1234, &r).unwrap().ok);
        assert_eq!(c.judge(0x1234, &r[..11]), None);
    }
}
