//! HTTP GET check: keepalived `HTTP_GET` (one `url {}`: `path`,
//! `status_code`, `digest`, `regex` / `regex_no_match`, `virtualhost`) and
//! ldirectord `service = http` with `request` / `receive` / `virtualhost`.
//!
//! The request is a small hand-written HTTP/1.1 GET with `Connection:
//! close` over our own TCP stream (so the source address is ours to choose);
//! the response may be delimited by `Content-Length`, chunked, or the close.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

use md5::{Digest, Md5};
pub use regex_lite::Regex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::checker::{connect_tcp, io_reason, CheckFuture, Checker};
use crate::state::{CheckResult, Reason};

/// The largest response (headers and body) a check reads, by default.
pub const DEFAULT_MAX_RESPONSE: usize = 1 << 20;

/// An HTTP GET of `path` on `target`.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Where to connect (keepalived `connect_ip` / `connect_port`).
    pub target: SocketAddr,
    /// Where to connect from (keepalived `bindto`).
    pub source: Option<SocketAddr>,
    /// The request path (keepalived `url { path }`, ldirectord `request`).
    pub path: String,
    /// The `Host` header (keepalived `virtualhost`, ldirectord
    /// `virtualhost`); by default the target address, with the port when
    /// it is not 80.
    pub host: Option<String>,
    /// Accepted status codes (keepalived `status_code`); empty means
    /// 200-299, keepalived's default.
    pub status: Vec<RangeInclusive<u16>>,
    /// A substring the body must contain (ldirectord `receive`).
    pub receive: Option<String>,
    /// A regex the body must match (keepalived `regex`), or must not match
    /// when `regex_no_match` is set.
    pub regex: Option<Regex>,
    /// Inverts `regex` (keepalived `regex_no_match`).
    pub regex_no_match: bool,
    /// The MD5 hex digest the body must have (keepalived `digest`, as
    /// printed by `genhash`), lowercase.
    pub digest: Option<String>,
    /// The largest response read; a longer one fails the check.
    pub max_response: usize,
}

impl HttpCheck {
    /// A GET of `path` on `target` that passes on any 2xx status.
    pub fn new(target: SocketAddr, path: &str) -> Self {
        HttpCheck {
            target,
            source: None,
            path: path.to_string(),
            host: None,
            status: Vec::new(),
            receive: None,
            regex: None,
            regex_no_match: false,
            digest: None,
            max_response: DEFAULT_MAX_RESPONSE,
        }
    }

    /// The `Host` header value sent.
    pub fn host_header(&self) -> String {
        if let Some(h) = &self.host {
            return h.clone();
        }
        let ip = match self.target {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        if self.target.port() == 80 {
            ip
        } else {
            format!("{ip}:{}", self.target.port())
        }
    }

    /// The request bytes sent.
    pub fn request(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rvs-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path,
            self.host_header()
        )
        .into_bytes()
    }

    /// Judges a response: status first, then `receive`, the regex and the
    /// digest.
    pub fn judge(&self, status: u16, body: &[u8]) -> CheckResult {
        let status_ok = if self.status.is_empty() {
            (200..=299).contains(&status)
        } else {
            self.status.iter().any(|r| r.contains(&status))
        };
        if !status_ok {
            return CheckResult::fail(Reason::Status(status));
        }
        if let Some(want) = &self.receive {
            if !contains(body, want.as_bytes()) {
                return CheckResult::fail(Reason::Mismatch(format!("receive {want:?} not found")));
            }
        }
        if let Some(re) = &self.regex {
            let text = String::from_utf8_lossy(body);
            if re.is_match(&text) == self.regex_no_match {
                let how = if self.regex_no_match {
                    "matched"
                } else {
                    "did not match"
                };
                return CheckResult::fail(Reason::Mismatch(format!(
                    "regex {:?} {how}",
                    re.as_str()
                )));
            }
        }
        if let Some(want) = &self.digest {
            let got = md5_hex(body);
            if !got.eq_ignore_ascii_case(want) {
                return CheckResult::fail(Reason::Mismatch(format!(
                    "digest {got}, expected {want}"
                )));
            }
        }
        CheckResult::pass()
    }

    async fn fetch(&self) -> Result<(u16, Vec<u8>), Reason> {
        let stream = connect_tcp(self.target, self.source)
            .await
            .map_err(|e| io_reason(&e))?;
        self.exchange(stream).await
    }

    /// Sends the request over `stream` (plain TCP, or TLS for
    /// [`crate::https::HttpsCheck`]) and reads the response.
    pub(crate) async fn exchange<S>(&self, mut stream: S) -> Result<(u16, Vec<u8>), Reason>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        stream
            .write_all(&self.request())
            .await
            .map_err(|e| io_reason(&e))?;
        stream.flush().await.map_err(|e| io_reason(&e))?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 8192];
        loop {
            let n = match stream.read(&mut chunk).await {
                Ok(n) => n,
                // A TLS peer that closes without close_notify: treat as EOF.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(io_reason(&e)),
            };
            buf.extend_from_slice(&chunk[..n]);
            let eof = n == 0;
            if let Some(done) = parse_response(&buf, eof)? {
                return Ok(done);
            }
            if eof {
                return Err(Reason::Error(
                    "connection closed before the response ended".into(),
                ));
            }
            if buf.len() > self.max_response {
                return Err(Reason::Error(format!(
                    "response longer than {} bytes",
                    self.max_response
                )));
            }
        }
    }
}

impl Checker for HttpCheck {
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match self.fetch().await {
                Ok((status, body)) => self.judge(status, &body),
                Err(reason) => CheckResult::fail(reason),
            }
        })
    }

    fn describe(&self) -> String {
        format!("HTTP_GET {}{}", self.target, self.path)
    }
}

/// The lowercase hex MD5 of `body`, as keepalived's `genhash` prints it.
pub fn md5_hex(body: &[u8]) -> String {
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bad(what: &str) -> Reason {
    Reason::Error(format!("malformed HTTP response: {what}"))
}

/// Parses an HTTP/1.x response read so far. `Ok(None)` means more bytes are
/// needed; `eof` says the peer closed, which ends a body that has neither
/// `Content-Length` nor chunked encoding.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<(u16, Vec<u8>)>, Reason> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("non-UTF-8 header"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad("status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status code"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| bad("Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .to_ascii_lowercase()
                .split(',')
                .any(|t| t.trim() == "chunked");
        }
    }
    let body = &buf[end + 4..];
    if chunked {
        return Ok(dechunk(body)?.map(|b| (status, b)));
    }
    match length {
        Some(n) if body.len() >= n => Ok(Some((status, body[..n].to_vec()))),
        Some(_) => Ok(None),
        None if eof => Ok(Some((status, body.to_vec()))),
        None => Ok(None),
    }
}

/// Decodes a chunked body; `Ok(None)` if it is not complete yet.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, Reason> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(data, b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&data[..eol]).map_err(|_| bad("chunk size"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("chunk size"))?;
        data = &data[eol + 2..];
        if size == 0 {
            // Trailers, then an empty line.
            return Ok(
                if data.starts_with(b"\r\n") || find(data, b"\r\n\r\n").is_some() {
                    Some(out)
                } else {
                    None
                },
            );
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        if &data[size..size + 2] != b"\r\n" {
            return Err(bad("chunk terminator"));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_chunked_and_close_delimited_bodies() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        assert_eq!(parse_response(r, false), Ok(Some((200, b"hello".to_vec()))));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", false),
            Ok(None)
        );
        let c = b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(c, false), Ok(Some((503, b"abcde".to_vec()))));
        assert_eq!(parse_response(&c[..c.len() - 2], false), Ok(None));
        let e = b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nbody";
        assert_eq!(parse_response(e, false), Ok(None));
        assert_eq!(parse_response(e, true), Ok(Some((404, b"body".to_vec()))));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", true).is_err());
    }

    #[test]
    fn judges_status_receive_regex_and_digest() {
        let mut c = HttpCheck::new("127.0.0.1:8080".parse().unwrap(), "/");
        assert_eq!(c.host_header(), "127.0.0.1:8080");
        assert!(c.judge(204, b"").ok);
        assert_eq!(c.judge(301, b"").reason, Reason::Status(301));
        c.status = vec![200..=200, 301..=302];
        assert!(c.judge(301, b"").ok);
        assert_eq!(c.judge(204, b"").reason, Reason::Status(204));
        c.receive = Some("alive".into());
        assert!(c.judge(200, b"I am alive").ok);
        assert!(matches!(
            c.judge(200, b"I am dead").reason,
            Reason::Mismatch(_)
        ));
        c.regex = Some(Regex::new("^I am [a-z]+$").unwrap());
        assert!(c.judge(200, b"I am alive").ok);
        c.regex_no_match = true;
        assert!(!c.judge(200, b"I am alive").ok);
        c.regex = None;
        // md5("I am alive")
        c.digest = Some(md5_hex(b"I am alive"));
        assert!(c.judge(200, b"I am alive").ok);
        assert!(!c.judge(200, b"I am alive!").ok);
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn request_names_the_host() {
        let mut c = HttpCheck::new("[::1]:80".parse().unwrap(), "/health?x=1");
        assert_eq!(
            String::from_utf8(c.request()).unwrap(),
            "GET /health?x=1 HTTP/1.1\r\nHost: [::1]\r\nUser-Agent: rvs-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        c.host = Some("www.example.com".into());
        assert!(String::from_utf8(c.request())
            .unwrap()
            .contains("\r\nHost: www.example.com\r\n"));
    }
}
