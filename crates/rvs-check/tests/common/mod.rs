//! Real servers on 127.0.0.1 for the checker tests, and a real-time driver
//! of the check state machine.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_check::{run_check, Checker, Event, ServerChecks};
use rvs_core::Time;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// Requests (head only) seen by an HTTP server.
pub type Seen = Arc<Mutex<Vec<(SocketAddr, String)>>>;

/// An HTTP/1.1 server: `/ok` 200 "I am alive" (Content-Length), `/chunked`
/// 200 chunked "I am alive", `/close` 200 close-delimited, `/fail` 503,
/// `/silent` never answers, anything else 404.
pub async fn http_server(addr: SocketAddr, seen: Seen) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind(addr).await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        loop {
            let Ok((mut s, peer)) = l.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push((peer, head));
                let resp: &[u8] = match path.as_str() {
                    "/ok" => b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nI am alive",
                    "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nI am \r\n5\r\nalive\r\n0\r\n\r\n",
                    "/close" => b"HTTP/1.0 200 OK\r\n\r\nI am alive",
                    "/fail" => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown",
                    "/silent" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                };
                let _ = s.write_all(resp).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, h)
}

/// A UDP server answering every datagram with `pong:` + the datagram.
pub async fn udp_echo(addr: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let s = UdpSocket::bind(addr).await.unwrap();
    let addr = s.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                return;
            };
            let mut reply = b"pong:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&reply, peer).await;
        }
    });
    (addr, h)
}

/// A DNS server: answers `up.test` with one record, everything else with
/// NXDOMAIN; before each real answer it sends a decoy with the wrong id.
pub async fn dns_server(addr: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let s = UdpSocket::bind(addr).await.unwrap();
    let addr = s.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                return;
            };
            let q = &buf[..n];
            if n < 17 {
                continue;
            }
            let qname_end = 12 + q[12..].iter().position(|&b| b == 0).unwrap() + 1;
            let question = &q[12..qname_end + 4];
            let known = &q[12..qname_end] == b"\x02up\x04test\x00";
            let mut decoy = q[..12].to_vec();
            decoy[0] ^= 0xff;
            decoy[2] |= 0x80;
            decoy[6..8].copy_from_slice(&[0, 1]);
            let _ = s.send_to(&decoy, peer).await;
            let mut r = q[..4].to_vec();
            r[2] = 0x81;
            r[3] = if known { 0x80 } else { 0x83 };
            r.extend_from_slice(&[0, 1, 0, u8::from(known), 0, 0, 0, 0]);
            r.extend_from_slice(question);
            if known {
                // Name pointer to offset 12, type A, class IN, TTL 60, 127.0.0.1.
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            }
            let _ = s.send_to(&r, peer).await;
        }
    });
    (addr, h)
}

/// A port on 127.0.0.1 that nothing listens on (TCP and UDP).
pub fn closed_port() -> SocketAddr {
    let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = t.local_addr().unwrap();
    drop(t);
    addr
}

/// Drives `s` in real time with `checkers` until `until` ms after `t0`,
/// returning the events with the time (ms after `t0`) they happened.
pub async fn drive(
    s: &mut ServerChecks,
    checkers: &[Box<dyn Checker>],
    t0: Instant,
    until: Time,
) -> Vec<(Time, Event)> {
    let ms = |t0: Instant| t0.elapsed().as_millis() as Time;
    let mut out = Vec::new();
    loop {
        let wake = s.next_wakeup().unwrap();
        if wake > until {
            return out;
        }
        tokio::time::sleep_until((t0 + Duration::from_millis(wake)).into()).await;
        let now = ms(t0);
        out.extend(s.expire(now).into_iter().map(|e| (now, e)));
        for (i, token, deadline) in s.start_due(now) {
            let r = run_check(
                &*checkers[i],
                Duration::from_millis(deadline.saturating_sub(now).max(1)),
            )
            .await;
            let done = ms(t0);
            out.extend(s.finish(i, token, done, r).into_iter().map(|e| (done, e)));
        }
    }
}
