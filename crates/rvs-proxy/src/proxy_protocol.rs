//! The PROXY protocol header (HAProxy's `doc/proxy-protocol.txt`, versions 1
//! and 2) that tells a real server the client's address when the proxy, not
//! the client, opened the connection.
//!
//! Only the sending side lives here: the engine writes the header as the
//! very first bytes of the connection to the real server (TCP), or in front
//! of every datagram (UDP, version 2 only: version 1 has no UDP form, and a
//! datagram service cannot know which datagram a receiver sees first).

use crate::config::ProxyProtocol;
use std::net::SocketAddr;

/// The twelve bytes that open every version-2 header.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Transport of the proxied connection, as the header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stream,
    Datagram,
}

/// The version-1 text line: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`.
/// `src` is the client, `dst` the virtual service it reached. Addresses of
/// different families (impossible for a proxied connection) give
/// `PROXY UNKNOWN\r\n`, as the specification says.
pub fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let line = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => format!(
            "PROXY TCP4 {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        ),
        (SocketAddr::V6(s), SocketAddr::V6(d)) => format!(
            "PROXY TCP6 {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        ),
        _ => "PROXY UNKNOWN\r\n".to_string(),
    };
    line.into_bytes()
}

/// The version-2 binary header with the PROXY command and no TLVs.
pub fn v2(src: SocketAddr, dst: SocketAddr, transport: Transport) -> Vec<u8> {
    let mut h = Vec::with_capacity(16 + 36);
    h.extend_from_slice(&V2_SIGNATURE);
    h.push(0x21); // version 2, command PROXY
    let proto = match transport {
        Transport::Stream => 0x1,
        Transport::Datagram => 0x2,
    };
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            h.push(0x10 | proto);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.ip().octets());
            h.extend_from_slice(&d.ip().octets());
            h.extend_from_slice(&s.port().to_be_bytes());
            h.extend_from_slice(&d.port().to_be_bytes());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            h.push(0x20 | proto);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&s.ip().octets());
            h.extend_from_slice(&d.ip().octets());
            h.extend_from_slice(&s.port().to_be_bytes());
            h.extend_from_slice(&d.port().to_be_bytes());
        }
        _ => {
            // AF_UNSPEC: the receiver must use the connection's own addresses.
            h.push(0x00);
            h.extend_from_slice(&0u16.to_be_bytes());
        }
    }
    h
}

/// The header `version` asks for, or `None` (no header; also version 1 on
/// a datagram service, which that version cannot describe).
pub fn header(
    version: ProxyProtocol,
    src: SocketAddr,
    dst: SocketAddr,
    transport: Transport,
) -> Option<Vec<u8>> {
    match (version, transport) {
        (ProxyProtocol::None, _) | (ProxyProtocol::V1, Transport::Datagram) => None,
        (ProxyProtocol::V1, Transport::Stream) => Some(v1(src, dst)),
        (ProxyProtocol::V2, t) => Some(v2(src, dst, t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_matches_the_specification_examples() {
        // doc/proxy-protocol.txt, section 2.1.
        assert_eq!(
            v1(sa("192.168.0.1:56324"), sa("192.168.0.11:443")),
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
        );
        assert_eq!(
            v1(sa("[2001:db8::1]:1000"), sa("[2001:db8::2]:80")),
            b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 80\r\n"
        );
        assert_eq!(
            v1(sa("1.2.3.4:1"), sa("[::1]:2")),
            b"PROXY UNKNOWN\r\n".to_vec()
        );
        // The longest possible line is 107 bytes.
        let worst = v1(
            sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        );
        assert_eq!(worst.len(), 104);
        assert!(worst.len() <= 107);
    }

    #[test]
    fn v2_ipv4_stream_layout() {
        let h = v2(sa("10.0.0.1:4660"), sa("10.0.0.2:80"), Transport::Stream);
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0x00, 0x0C]);
        want.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        want.extend_from_slice(&[0x12, 0x34, 0x00, 0x50]);
        assert_eq!(h, want);
        assert_eq!(h.len(), 28);
    }

    #[test]
    fn v2_ipv6_datagram_layout() {
        let h = v2(
            sa("[2001:db8::1]:53"),
            sa("[2001:db8::2]:5353"),
            Transport::Datagram,
        );
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x22, 0x00, 36]);
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[16..18], &[0x20, 0x01]);
        assert_eq!(&h[48..50], &53u16.to_be_bytes());
        assert_eq!(&h[50..52], &5353u16.to_be_bytes());
    }

    #[test]
    fn v1_is_not_sent_on_datagrams() {
        let (a, b) = (sa("1.1.1.1:1"), sa("2.2.2.2:2"));
        assert_eq!(header(ProxyProtocol::V1, a, b, Transport::Datagram), None);
        assert_eq!(header(ProxyProtocol::None, a, b, Transport::Stream), None);
        assert!(header(ProxyProtocol::V2, a, b, Transport::Datagram).is_some());
    }
}
