//! What an imported file says, in rvs.toml's terms but still carrying where
//! each part came from (file and line), so that the TOML written from it
//! can be traced back: every block of the output names its source, and a
//! validation error in the output is reported at the directive that
//! produced it.

use std::net::IpAddr;

/// A place in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// An importer's message about one directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub origin: Origin,
    /// The directive as the input spells it (`SMTP_CHECK`, `emailalert`).
    pub directive: String,
    pub message: String,
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.directive, self.message)
    }
}

/// Errors (the import fails), warnings (something was dropped or changed
/// on purpose; the output is still written) and notes (whole blocks that
/// belong to another part of rvs and were skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diags {
    pub errors: Vec<Diag>,
    pub warnings: Vec<Diag>,
    pub notes: Vec<Diag>,
}

impl Diags {
    /// Orders each list by file (in order of first mention) and line.
    pub fn sort(&mut self) {
        let mut files: Vec<String> = Vec::new();
        for d in self.errors.iter().chain(&self.warnings).chain(&self.notes) {
            if !files.contains(&d.origin.file) {
                files.push(d.origin.file.clone());
            }
        }
        let rank = |d: &Diag| {
            let f = files.iter().position(|f| *f == d.origin.file).unwrap_or(0);
            (f, d.origin.line)
        };
        self.errors.sort_by_key(rank);
        self.warnings.sort_by_key(rank);
        self.notes.sort_by_key(rank);
    }

    pub fn error(&mut self, at: &Origin, directive: &str, message: impl Into<String>) {
        self.errors.push(Diag {
            origin: at.clone(),
            directive: directive.to_string(),
            message: message.into(),
        });
    }

    pub fn warn(&mut self, at: &Origin, directive: &str, message: impl Into<String>) {
        self.warnings.push(Diag {
            origin: at.clone(),
            directive: directive.to_string(),
            message: message.into(),
        });
    }

    pub fn note(&mut self, at: &Origin, directive: &str, message: impl Into<String>) {
        self.notes.push(Diag {
            origin: at.clone(),
            directive: directive.to_string(),
            message: message.into(),
        });
    }
}

/// A tunnel's encapsulation (keepalived `lvs_method TUN type ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// `ipip`, `gue` or `gre`.
    pub kind: &'static str,
    /// The GUE port.
    pub port: Option<u16>,
    /// `nocsum`, `csum` or `remcsum` when given.
    pub checksum: Option<&'static str>,
}

/// How traffic reaches a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Masq,
    Route,
    Tunnel(Tunnel),
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Masq => "masq",
            Method::Route => "route",
            Method::Tunnel(_) => "tunnel",
        }
    }
}

/// A virtual service's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `proto` is `tcp`, `udp` or `sctp`.
    Addr {
        proto: &'static str,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        ipv6: bool,
    },
}

impl Key {
    pub fn port(&self) -> u16 {
        match self {
            Key::Addr { port, .. } => *port,
            Key::Fwmark { .. } => 0,
        }
    }
}

/// What an HTTP or HTTPS check asks and expects (keys of the same names).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Http {
    pub https: bool,
    pub path: Option<String>,
    pub host: Option<String>,
    /// Inclusive ranges; a single code is `(c, c)`.
    pub status: Option<Vec<(u16, u16)>>,
    pub expect: Option<String>,
    pub regex: Option<String>,
    pub regex_no_match: bool,
    pub digest: Option<String>,
    pub sni: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    Http(Http),
    Udp {
        payload_hex: Option<String>,
        expect_hex: Option<String>,
    },
    Dns {
        name: Option<String>,
        query_type: Option<String>,
    },
    Command {
        argv: Vec<String>,
        dynamic_weight: bool,
    },
}

/// One `[[service.check]]` or `[[service.real_server.check]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub origin: Origin,
    /// The directive that made it (`HTTP_GET`, `checktype`).
    pub directive: String,
    pub kind: CheckKind,
    /// Seconds.
    pub interval: f64,
    /// Seconds, ≤ `interval`.
    pub timeout: f64,
    pub fall: u32,
    pub rise: u32,
    /// `Some(true)`: starts down, when it differs from the service's.
    pub initial_down: Option<bool>,
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
}

/// The sorry server (`[service.fallback]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub origin: Origin,
    pub addr: IpAddr,
    pub port: Option<u16>,
    /// `None`: the engine's default method.
    pub method: Option<Method>,
    pub weight: u32,
}

/// A `[[service.real_server]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Real {
    pub origin: Origin,
    pub addr: IpAddr,
    pub port: Option<u16>,
    pub method: Method,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub checks: Vec<Check>,
}

/// A `[[service]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub origin: Origin,
    /// How the input declared it, for the comment above it.
    pub title: String,
    pub key: Key,
    pub scheduler: String,
    pub sched_flags: Vec<String>,
    pub persistent: Option<u32>,
    /// Dotted IPv4 mask or IPv6 prefix length, as the file takes it.
    pub netmask: Option<Netmask>,
    pub pe: Option<String>,
    pub one_packet: bool,
    /// `Some(true)` remove, `Some(false)` quiesce.
    pub remove_on_failure: Option<bool>,
    pub quorum: Option<u32>,
    pub hysteresis: Option<u32>,
    pub quorum_up: Vec<String>,
    pub quorum_down: Vec<String>,
    pub initial_down: bool,
    pub fallback: Option<Fallback>,
    pub checks: Vec<Check>,
    pub reals: Vec<Real>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netmask {
    V4(std::net::Ipv4Addr),
    Prefix(u8),
}

/// The `[timeouts]` table (keepalived `lvs_timeouts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// A value with the directive that set it: the output line it becomes is
/// traced back to that directive.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub origin: Origin,
    /// The directive as the input spells it (`advert_int`).
    pub directive: String,
}

impl<T> At<T> {
    pub fn new(value: T, origin: &Origin, directive: &str) -> At<T> {
        At {
            value,
            origin: origin.clone(),
            directive: directive.to_string(),
        }
    }
}

/// A `[[vrrp.track_interface]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpTrackInterface {
    pub origin: Origin,
    pub name: String,
    pub weight: i32,
}

/// A `[[vrrp.track_script]]`: keepalived's `vrrp_script` as one instance
/// tracks it.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpTrackScript {
    /// The `track_script` entry.
    pub origin: Origin,
    /// The `vrrp_script` block.
    pub script_origin: Origin,
    pub name: String,
    pub command: Vec<String>,
    /// Seconds.
    pub interval: f64,
    /// Seconds, ≤ `interval`.
    pub timeout: f64,
    pub rise: u32,
    pub fall: u32,
    pub weight: i32,
}

/// A `[[vrrp]]` instance (keepalived's `vrrp_instance`). Every key the
/// output writes carries the directive it came from; keys keepalived left
/// at their defaults point at the instance itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Vrrp {
    pub origin: Origin,
    pub name: String,
    pub interface: At<String>,
    pub virtual_router_id: At<u32>,
    pub priority: At<u32>,
    pub version: At<u8>,
    /// Seconds.
    pub advert_interval: At<f64>,
    /// Address and prefix length.
    pub vips: At<Vec<(IpAddr, u8)>>,
    pub unicast_src: Option<At<IpAddr>>,
    pub unicast_peers: Option<At<Vec<IpAddr>>>,
    pub auth_pass: Option<At<String>>,
    pub preempt: At<bool>,
    /// A comment written above `preempt` (why it is what it is).
    pub preempt_comment: Option<String>,
    /// Seconds.
    pub preempt_delay: Option<At<f64>>,
    /// `rfc9568` (keepalived's `v3_checksum_as_v2`).
    pub checksum: Option<At<&'static str>>,
    pub down_timer_adverts: Option<At<u32>>,
    pub garp_repeat: At<u32>,
    /// Seconds.
    pub garp_delay: At<f64>,
    /// Seconds, 0 = off.
    pub garp_refresh: At<f64>,
    /// `(rvs key, argv)`: `notify_master` ... `notify`, in that order.
    pub notify: Vec<(&'static str, At<Vec<String>>)>,
    pub track_interfaces: Vec<VrrpTrackInterface>,
    pub track_scripts: Vec<VrrpTrackScript>,
}

/// A whole imported configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Imported {
    /// What the output's header says it came from (`keepalived.conf`).
    pub source: String,
    pub format: &'static str,
    pub timeouts: Timeouts,
    pub services: Vec<Service>,
    pub vrrp: Vec<Vrrp>,
}
