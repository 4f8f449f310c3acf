//! Persistence engines (`net/netfilter/ipvs/ip_vs_pe_sip.c`). The only one
//! Linux has is "sip": for UDP services it keys the persistence template by
//! the SIP Call-ID (plus the masked client address, virtual address and
//! port), so every message of a call reaches the same real server. A
//! packet without a usable Call-ID is dropped. The Call-ID is found the way
//! netfilter's SIP helper finds it (`ct_sip_get_header` with `callid_len`).

/// Longest persistence-engine data kept (`IP_VS_PEDATA_MAXLEN`).
pub const PEDATA_MAXLEN: usize = 255;

/// The name of the SIP persistence engine.
pub const SIP: &str = "sip";

/// Persistence-engine data of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeData {
    pub name: &'static str,
    pub data: Box<[u8]>,
}

/// The engine named `name`, if rvs knows it.
pub fn engine(name: &str) -> Option<&'static str> {
    (name == SIP).then_some(SIP)
}

/// The engine's data for a packet: for "sip", the Call-ID in the UDP
/// payload. `None` means the kernel's `fill_param` failed (drop the packet).
pub fn fill(engine: &str, udp: bool, payload: &[u8]) -> Option<Box<[u8]>> {
    if engine != SIP || !udp {
        return None;
    }
    sip_call_id(payload).map(Box::from)
}

/// The Call-ID of a SIP message (`get_callid`): the first `Call-ID:` (or
/// compact `i:`) header value, at most 255 bytes, followed by CR or LF.
pub fn sip_call_id(msg: &[u8]) -> Option<&[u8]> {
    let mut from = 0;
    let (off, len) = loop {
        match get_header(msg, from) {
            Header::Found(off, len) => break (off, len),
            Header::NotFound => return None,
            // An empty value: look again from there (the kernel adds the
            // value's offset to where it started searching).
            Header::Empty(off) => from += off,
        }
    };
    if len > PEDATA_MAXLEN || off + len >= msg.len() {
        return None;
    }
    match msg[off + len] {
        b'\r' | b'\n' => Some(&msg[off..off + len]),
        _ => None,
    }
}

enum Header {
    Found(usize, usize),
    Empty(usize),
    NotFound,
}

const NAME: &[u8] = b"Call-Id";
const CNAME: &[u8] = b"i";

/// `ct_sip_get_header` for the Call-ID header, searching lines that start
/// after `from`.
fn get_header(msg: &[u8], from: usize) -> Header {
    let limit = msg.len();
    let mut p = from;
    while p < limit {
        // Find the beginning of a line.
        if msg[p] != b'\r' && msg[p] != b'\n' {
            p += 1;
            continue;
        }
        p += 1;
        if p >= limit {
            break;
        }
        if msg[p - 1] == b'\r' && msg[p] == b'\n' {
            p += 1;
            if p >= limit {
                break;
            }
        }
        // Continuation lines are not headers.
        if msg[p] == b' ' || msg[p] == b'\t' {
            continue;
        }
        let rest = &msg[p..];
        if rest.len() >= NAME.len() && rest[..NAME.len()].eq_ignore_ascii_case(NAME) {
            p += NAME.len();
        } else if rest.len() > CNAME.len()
            && rest[..CNAME.len()].eq_ignore_ascii_case(CNAME)
            && !rest[CNAME.len()].is_ascii_alphabetic()
        {
            p += CNAME.len();
        } else {
            continue;
        }
        // The colon, with optional whitespace (and continuations) around it.
        let Some(q) = skip_whitespace(msg, p) else {
            break;
        };
        if msg[q] != b':' || q + 1 >= limit {
            break;
        }
        let Some(v) = skip_whitespace(msg, q + 1) else {
            break;
        };
        let len = callid_len(&msg[v..]);
        if len == 0 {
            return Header::Empty(v);
        }
        return Header::Found(v, len);
    }
    Header::NotFound
}

/// Skips blanks and folded line breaks; `None` at the end of the message
/// or at a line break that does not continue the header.
fn skip_whitespace(msg: &[u8], mut p: usize) -> Option<usize> {
    while p < msg.len() {
        match msg[p] {
            b' ' | b'\t' => p += 1,
            b'\r' | b'\n' => return follow_continuation(msg, p),
            _ => return Some(p),
        }
    }
    None
}

fn follow_continuation(msg: &[u8], mut p: usize) -> Option<usize> {
    p += 1;
    if p >= msg.len() {
        return None;
    }
    if msg[p - 1] == b'\r' && msg[p] == b'\n' {
        p += 1;
        if p >= msg.len() {
            return None;
        }
    }
    if msg[p] != b' ' && msg[p] != b'\t' {
        return None;
    }
    while p < msg.len() && (msg[p] == b' ' || msg[p] == b'\t') {
        p += 1;
    }
    (p < msg.len()).then_some(p)
}

/// RFC 3261 "word" characters.
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'"'
                | b'%'
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b':'
                | b'<'
                | b'>'
                | b'?'
                | b'['
                | b'\\'
                | b']'
                | b'_'
                | b'`'
                | b'{'
                | b'}'
                | b'~'
                | b'-'
                | b'.'
                | b'/'
                | b'\''
        )
}

fn word_len(s: &[u8]) -> usize {
    s.iter().take_while(|&&c| is_word(c)).count()
}

/// `callid_len`: a word, optionally `@` and another word.
fn callid_len(s: &[u8]) -> usize {
    let len = word_len(s);
    if len == 0 || len == s.len() || s[len] != b'@' {
        return len;
    }
    let domain = word_len(&s[len + 1..]);
    if domain == 0 {
        return 0;
    }
    len + 1 + domain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_compact_headers() {
        let m = b"INVITE sip:a@b SIP/2.0\r\nCall-ID: abc@host\r\n\r\n";
        assert_eq!(sip_call_id(m), Some(&b"abc@host"[..]));
        let m = b"INVITE sip:a@b SIP/2.0\r\ni:  abc@host\r\n\r\n";
        assert_eq!(sip_call_id(m), Some(&b"abc@host"[..]));
        let m = b"INVITE sip:a@b SIP/2.0\r\ncall-id:other-1\n";
        assert_eq!(sip_call_id(m), Some(&b"other-1"[..]));
    }

    #[test]
    fn missing_or_malformed_call_ids() {
        // No header (the oracle's fourth client was dropped).
        assert_eq!(
            sip_call_id(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n"),
            None
        );
        // The request line is not a header line.
        assert_eq!(sip_call_id(b"Call-ID: x\r\n"), None);
        // Must be followed by a line end.
        assert_eq!(sip_call_id(b"X\r\nCall-ID: abc"), None);
        assert_eq!(sip_call_id(b"X\r\nCall-ID: abc def\r\n"), None);
        // A compact name must not run into letters.
        assert_eq!(sip_call_id(b"X\r\nid: abc\r\n"), None);
        // "@" needs a domain.
        assert_eq!(sip_call_id(b"X\r\nCall-ID: abc@\r\n"), None);
        // Too long.
        let mut m = b"X\r\nCall-ID: ".to_vec();
        m.extend(std::iter::repeat_n(b'a', 256));
        m.extend(b"\r\n");
        assert_eq!(sip_call_id(&m), None);
        let mut m = b"X\r\nCall-ID: ".to_vec();
        m.extend(std::iter::repeat_n(b'a', 255));
        m.extend(b"\r\n");
        assert_eq!(sip_call_id(&m).map(|c| c.len()), Some(255));
    }

    #[test]
    fn folded_header_and_empty_value() {
        let m = b"X\r\nCall-ID:\r\n  folded@host\r\n";
        assert_eq!(sip_call_id(m), Some(&b"folded@host"[..]));
        // An empty value is skipped and a later header is used.
        let m = b"X\r\nCall-ID: ;\r\nCall-ID: two\r\n";
        assert_eq!(sip_call_id(m), Some(&b"two"[..]));
    }

    #[test]
    fn fill_needs_sip_over_udp() {
        let m = b"X\r\nCall-ID: a\r\n";
        assert_eq!(fill("sip", true, m).as_deref(), Some(&b"a"[..]));
        assert_eq!(fill("sip", false, m), None);
        assert_eq!(fill("other", true, m), None);
        assert_eq!(engine("sip"), Some("sip"));
        assert_eq!(engine("ftp"), None);
    }
}
