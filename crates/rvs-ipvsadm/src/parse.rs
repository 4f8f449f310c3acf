//! The command line: a popt-compatible option scanner ([`Popt`]) and
//! ipvsadm's `parse_options` plus the local half of `process_options`,
//! ending in a validated [`Command`] or the [`Exit`] ipvsadm would take.
//!
//! Everything here is pure: given argv and the name databases, the result
//! is determined. Nothing talks to the daemon.

use crate::addr::{
    atoi, inet_pton4, inet_pton6, parse_fwmark, parse_host_port, parse_netmask, string_to_number,
    IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
};
use crate::legality::{check_command, check_tunnel};
use crate::options::{find_long, find_short, fmt, ArgKind, Cmd, Opt, OptSet, OptSpec, OptVal};
use crate::resolve::NameDb;
use rvs_core::dest::{DestConfig, FwdMethod, TunType};
use rvs_core::service::{
    ServiceConfig, ServiceKey, DEFAULT_PERSISTENT_TIMEOUT, MAX_PERSISTENT_TIMEOUT, SVC_F_ONEPACKET,
    SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
};
use rvs_core::{Af, Protocol};
use rvs_ctl::{DaemonConfig, SyncRole, Timeouts};
use std::net::IpAddr;

/// `AF_INET` / `AF_INET6` as ipvsadm stores them (0 = not set yet).
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// `IP_VS_CONN_F_*` forwarding values.
pub const CONN_F_MASQ: u32 = 0;
pub const CONN_F_TUNNEL: u32 = 2;
pub const CONN_F_DROUTE: u32 = 3;

/// How a command line ends when it does not produce a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// ipvsadm's `fail()`: `msg` and a newline on stderr, then exit `code`.
    Fail { code: i32, msg: String },
    /// A popt error after the command (`-t: missing argument`): the message
    /// and a newline on stderr, result -1 (exit 255; `-R` carries on).
    Popt { msg: String },
    /// "Try `PROG -h' or 'PROG --help' for more information." on stderr, exit 255.
    TryHelp,
    /// The usage text on stdout, exit 0.
    Usage,
    /// The version line on stdout, exit 0.
    Version,
    /// ipvsadm dereferences a NULL token here (`-b ,`) and dies of SIGSEGV;
    /// rvsadm exits 139 without output, as a shell would report it.
    Crash,
}

fn fail(msg: impl Into<String>) -> Exit {
    Exit::Fail {
        code: 2,
        msg: msg.into(),
    }
}

/// The virtual-service part of a command line (`ipvs_service_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcArgs {
    /// 0 until a service option sets it.
    pub af: u16,
    pub protocol: u16,
    pub addr: Option<IpAddr>,
    pub port: u16,
    pub fwmark: u32,
    /// At most 15 bytes; empty means "not given".
    pub sched_name: String,
    pub flags: u32,
    pub timeout: u32,
    /// IPv4: mask in host byte order; IPv6: prefix length.
    pub netmask: u32,
    pub pe_name: String,
}

/// The real-server part of a command line (`ipvs_dest_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestArgs {
    pub af: u16,
    pub addr: Option<IpAddr>,
    pub port: u16,
    pub conn_flags: u32,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub tun_type: u16,
    pub tun_port: u16,
    pub tun_flags: u16,
}

/// The sync-daemon part of a command line (`ipvs_daemon_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonArgs {
    pub role: SyncRole,
    pub mcast_ifn: String,
    pub syncid: u32,
    pub sync_maxlen: u16,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: u16,
    pub mcast_ttl: u8,
}

/// A validated command line (`struct ipvs_command_entry` plus the option
/// and format bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub cmd: Cmd,
    pub options: OptSet,
    /// `fmt::*` bits.
    pub format: u32,
    pub svc: SvcArgs,
    pub dest: DestArgs,
    pub timeouts: Timeouts,
    pub daemon: DaemonArgs,
}

fn to_protocol(p: u16) -> Protocol {
    match p {
        IPPROTO_UDP => Protocol::Udp,
        IPPROTO_SCTP => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

impl SvcArgs {
    /// The service the command names, if any.
    pub fn key(&self) -> Option<ServiceKey> {
        if self.fwmark != 0 {
            let af = if self.af == AF_INET6 {
                Af::Inet6
            } else {
                Af::Inet
            };
            return Some(ServiceKey::Fwmark {
                mark: self.fwmark,
                af,
            });
        }
        self.addr.map(|addr| ServiceKey::Addr {
            proto: to_protocol(self.protocol),
            addr,
            port: self.port,
        })
    }

    /// libipvs sends no service (meaning "all") when fwmark, address and
    /// port are all zero; that is what `-Z` with no service, or with
    /// `0.0.0.0:0`, does.
    pub fn is_unspecified(&self) -> bool {
        let addr_zero = match self.addr {
            None => true,
            Some(IpAddr::V4(a)) => a.is_unspecified(),
            Some(IpAddr::V6(a)) => a.is_unspecified(),
        };
        self.fwmark == 0 && addr_zero && self.port == 0
    }

    /// The attributes `-A`/`-E` send.
    pub fn config(&self) -> ServiceConfig {
        ServiceConfig {
            scheduler: self.sched_name.clone(),
            flags: self.flags,
            timeout: self.timeout,
            netmask: self.netmask,
            pe_name: if self.pe_name.is_empty() {
                None
            } else {
                Some(self.pe_name.clone())
            },
        }
    }
}

impl DestArgs {
    /// The attributes `-a`/`-e` send (`None` when no `-r` was given).
    pub fn config(&self) -> Option<DestConfig> {
        let addr = self.addr?;
        Some(DestConfig {
            addr,
            port: self.port,
            fwd: match self.conn_flags & 7 {
                0 => FwdMethod::Masq,
                1 => FwdMethod::Local,
                2 => FwdMethod::Tunnel,
                4 => FwdMethod::Bypass,
                _ => FwdMethod::Route,
            },
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            tun_type: match self.tun_type {
                1 => TunType::Gue,
                2 => TunType::Gre,
                _ => TunType::Ipip,
            },
            tun_port: self.tun_port,
            tun_flags: self.tun_flags,
        })
    }
}

impl DaemonArgs {
    pub fn config(&self) -> DaemonConfig {
        DaemonConfig {
            role: self.role,
            mcast_ifn: self.mcast_ifn.clone(),
            syncid: self.syncid,
            sync_maxlen: self.sync_maxlen,
            mcast_group: self.mcast_group,
            mcast_port: self.mcast_port,
            mcast_ttl: self.mcast_ttl,
        }
    }
}

/// Popt error codes that can happen with ipvsadm's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoptError {
    NoArg,
    BadOpt,
    UnwantedArg,
}

impl PoptError {
    /// `poptStrerror`.
    pub fn text(self) -> &'static str {
        match self {
            PoptError::NoArg => "missing argument",
            PoptError::BadOpt => "unknown option",
            PoptError::UnwantedArg => "option does not take an argument",
        }
    }
}

/// A popt 1.19 context over one argv (no aliases, no exec, no callbacks):
/// `poptGetNextOpt`, `poptGetArg` and `poptBadOption`.
pub struct Popt<'a> {
    argv: &'a [String],
    next: usize,
    /// Remaining bundled short options: (word index, byte offset).
    next_char: Option<(usize, usize)>,
    rest_leftover: bool,
    posix: bool,
    leftovers: Vec<&'a str>,
    next_leftover: usize,
}

impl<'a> Popt<'a> {
    /// `poptGetContext`; `posix` is `POSIXLY_CORRECT`/`POSIX_ME_HARDER`
    /// (options stop at the first non-option word).
    pub fn new(argv: &'a [String], posix: bool) -> Popt<'a> {
        Popt {
            argv,
            next: 1,
            next_char: None,
            rest_leftover: false,
            posix,
            leftovers: Vec::new(),
            next_leftover: 0,
        }
    }

    /// `poptGetNextOpt`: the next option and its argument, `Ok(None)` at the end.
    pub fn next_opt(&mut self) -> Result<Option<(&'static OptSpec, Option<String>)>, PoptError> {
        loop {
            if self.next_char.is_none() && self.next >= self.argv.len() {
                return Ok(None);
            }
            let mut opt: Option<&'static OptSpec> = None;
            let mut long_arg: Option<&'a str> = None;
            if self.next_char.is_none() {
                let this = self.next;
                let word: &'a str = &self.argv[this];
                self.next += 1;
                if self.rest_leftover || !word.starts_with('-') || word == "-" {
                    if self.posix {
                        self.rest_leftover = true;
                    }
                    self.leftovers.push(word);
                    continue;
                }
                if word == "--" {
                    self.rest_leftover = true;
                    continue;
                }
                if let Some(body) = word.strip_prefix("--") {
                    let (name, arg) = match body.find('=') {
                        Some(i) => (&body[..i], Some(&body[i + 1..])),
                        None => (body, None),
                    };
                    opt = Some(find_long(name).ok_or(PoptError::BadOpt)?);
                    long_arg = arg;
                } else {
                    // No ipvsadm option is POPT_ARGFLAG_ONEDASH, so a single
                    // dash always starts a bundle of short options.
                    self.next_char = Some((this, 1));
                }
            }
            if let Some((w, off)) = self.next_char.take() {
                let bytes = self.argv[w].as_bytes();
                opt = Some(find_short(bytes[off]).ok_or(PoptError::BadOpt)?);
                if off + 1 < bytes.len() {
                    self.next_char = Some((w, off + 1));
                }
            }
            let opt = opt.expect("an option was found above");
            if opt.arg == ArgKind::None {
                let eq_follows = self
                    .next_char
                    .is_some_and(|(w, off)| self.argv[w].as_bytes()[off] == b'=');
                if long_arg.is_some() || eq_follows {
                    return Err(PoptError::UnwantedArg);
                }
                return Ok(Some((opt, None)));
            }
            let arg = if let Some(a) = long_arg {
                Some(a.to_string())
            } else if let Some((w, off)) = self.next_char.take() {
                let word = &self.argv[w];
                let skip = usize::from(word.as_bytes()[off] == b'=');
                Some(word[off + skip..].to_string())
            } else if self.next >= self.argv.len() {
                if opt.arg == ArgKind::Required {
                    return Err(PoptError::NoArg);
                }
                None
            } else if opt.arg == ArgKind::Optional && self.argv[self.next].starts_with('-') {
                None
            } else {
                self.next += 1;
                Some(self.argv[self.next - 1].clone())
            };
            return Ok(Some((opt, arg)));
        }
    }

    /// `poptBadOption(con, POPT_BADOPTION_NOALIAS)`: the last word consumed.
    pub fn bad_option(&self) -> &'a str {
        &self.argv[self.next.saturating_sub(1)]
    }

    /// `poptGetArg`: the next leftover (positional) word.
    pub fn get_arg(&mut self) -> Option<&'a str> {
        let a = self.leftovers.get(self.next_leftover).copied();
        if a.is_some() {
            self.next_leftover += 1;
        }
        a
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn set_option(options: &mut OptSet, o: Opt) -> Result<(), Exit> {
    if options.has(o) {
        return Err(fail(format!("multiple '{}' options specified", o.name())));
    }
    options.insert(o);
    Ok(())
}

fn parse_timeout(arg: Option<&str>, min: i64, max: i64) -> Result<u32, Exit> {
    match arg {
        None => Ok(DEFAULT_PERSISTENT_TIMEOUT),
        Some(a) => string_to_number(a, min, max)
            .map(|v| v as u32)
            .ok_or_else(|| fail(format!("invalid timeout value `{a}' specified"))),
    }
}

fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, Exit> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut tokens = arg.split(',').filter(|t| !t.is_empty()).peekable();
    if tokens.peek().is_none() {
        return Err(Exit::Crash);
    }
    let mut flags = 0;
    for flag in tokens {
        let (bit, only) = match flag {
            "flag-1" => (SVC_F_SCHED1, None),
            "flag-2" => (SVC_F_SCHED2, None),
            "flag-3" => (SVC_F_SCHED3, None),
            "sh-fallback" => (SVC_F_SCHED1, Some("sh")),
            "sh-port" => (SVC_F_SCHED2, Some("sh")),
            "mh-fallback" => (SVC_F_SCHED1, Some("mh")),
            "mh-port" => (SVC_F_SCHED2, Some("mh")),
            _ => return Err(fail(format!("invalid scheduler flag `{flag}'"))),
        };
        flags |= bit;
        if only.is_some_and(|s| s != sched) {
            return Err(fail(format!("incompatible scheduler flag `{flag}'")));
        }
    }
    Ok(flags)
}

fn number(arg: &str, min: i64, max: i64, msg: &str) -> Result<i64, Exit> {
    string_to_number(arg, min, max).ok_or_else(|| fail(msg))
}

impl Command {
    fn new(cmd: Cmd) -> Command {
        Command {
            cmd,
            options: OptSet::default(),
            format: 0,
            svc: SvcArgs {
                af: 0,
                protocol: 0,
                addr: None,
                port: 0,
                fwmark: 0,
                sched_name: String::new(),
                flags: 0,
                timeout: 0,
                netmask: 0xffff_ffff,
                pe_name: String::new(),
            },
            dest: DestArgs {
                af: 0,
                addr: None,
                port: 0,
                conn_flags: CONN_F_DROUTE,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tun_type: 0,
                tun_port: 0,
                tun_flags: 0,
            },
            timeouts: Timeouts {
                tcp: 0,
                tcp_fin: 0,
                udp: 0,
            },
            daemon: DaemonArgs {
                role: SyncRole::Master,
                mcast_ifn: String::new(),
                syncid: 0,
                sync_maxlen: 0,
                mcast_group: None,
                mcast_port: 0,
                mcast_ttl: 0,
            },
        }
    }
}

/// Parses and validates one command line with the system name databases;
/// `POSIXLY_CORRECT`/`POSIX_ME_HARDER` switch popt to POSIX mode.
pub fn parse_args(argv: &[String]) -> Result<Command, Exit> {
    let posix = std::env::var_os("POSIXLY_CORRECT").is_some()
        || std::env::var_os("POSIX_ME_HARDER").is_some();
    parse_args_with(argv, NameDb::system(), posix)
}

fn role(arg: &str) -> Option<SyncRole> {
    match arg {
        "master" => Some(SyncRole::Master),
        "backup" => Some(SyncRole::Backup),
        _ => None,
    }
}

/// Parses and validates one command line (`argv[0]` is the program name).
/// Everything ipvsadm checks before talking to the kernel is checked here,
/// in ipvsadm's order.
pub fn parse_args_with(argv: &[String], names: &NameDb, posix: bool) -> Result<Command, Exit> {
    let mut p = Popt::new(argv, posix);
    let Ok(Some((first, first_arg))) = p.next_opt() else {
        return Err(Exit::TryHelp);
    };
    let mut ce = match first.val {
        OptVal::AddService => Command::new(Cmd::Add),
        OptVal::EditService => Command::new(Cmd::Edit),
        OptVal::DeleteService => Command::new(Cmd::Del),
        OptVal::AddServer => Command::new(Cmd::AddDest),
        OptVal::EditServer => Command::new(Cmd::EditDest),
        OptVal::DeleteServer => Command::new(Cmd::DelDest),
        OptVal::Clear => Command::new(Cmd::Flush),
        OptVal::List => Command::new(Cmd::List),
        OptVal::Zero => Command::new(Cmd::Zero),
        OptVal::Set => Command::new(Cmd::SetTimeout),
        OptVal::Restore => Command::new(Cmd::Restore),
        OptVal::Save => Command::new(Cmd::Save),
        OptVal::StartDaemon | OptVal::StopDaemon => {
            let start = first.val == OptVal::StartDaemon;
            let mut ce = Command::new(if start {
                Cmd::StartDaemon
            } else {
                Cmd::StopDaemon
            });
            ce.daemon.role = role(first_arg.as_deref().unwrap_or("")).ok_or_else(|| {
                fail(if start {
                    "illegal start-daemon parameter specified"
                } else {
                    "illegal start_daemon specified"
                })
            })?;
            ce
        }
        OptVal::Help => return Err(Exit::Usage),
        OptVal::Version => return Err(Exit::Version),
        _ => return Err(Exit::TryHelp),
    };
    let mut sched_flags_arg = String::new();
    loop {
        let (spec, arg) = match p.next_opt() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => {
                return Err(Exit::Popt {
                    msg: format!("{}: {}", p.bad_option(), e.text()),
                })
            }
        };
        let a = arg.as_deref().unwrap_or("");
        let opts = &mut ce.options;
        match spec.val {
            OptVal::TcpService | OptVal::UdpService | OptVal::SctpService => {
                set_option(opts, Opt::Service)?;
                ce.svc.protocol = match spec.val {
                    OptVal::TcpService => IPPROTO_TCP,
                    OptVal::UdpService => IPPROTO_UDP,
                    _ => IPPROTO_SCTP,
                };
                let hp = parse_host_port(a, ce.svc.protocol, names)
                    .ok_or_else(|| fail("illegal virtual server address[:port] specified"))?;
                ce.svc.addr = Some(hp.addr);
                if hp.addr.is_ipv6() {
                    ce.svc.af = AF_INET6;
                    ce.svc.netmask = 128;
                } else {
                    ce.svc.af = AF_INET;
                }
                if let Some(port) = hp.port {
                    ce.svc.port = port;
                }
            }
            OptVal::FwmarkService => {
                set_option(opts, Opt::Service)?;
                ce.svc.af = AF_INET;
                ce.svc.protocol = IPPROTO_TCP;
                ce.svc.fwmark = parse_fwmark(a)
                    .ok_or_else(|| fail(format!("invalid fwmark value `{a}' specified")))?;
            }
            OptVal::Scheduler => {
                set_option(opts, Opt::Scheduler)?;
                ce.svc.sched_name = truncate(a, 15);
            }
            OptVal::Persistent => {
                set_option(opts, Opt::Persistent)?;
                ce.svc.flags |= SVC_F_PERSISTENT;
                ce.svc.timeout = parse_timeout(arg.as_deref(), 1, MAX_PERSISTENT_TIMEOUT as i64)?;
            }
            OptVal::Netmask => {
                set_option(opts, Opt::Netmask)?;
                if ce.svc.af != AF_INET6 {
                    ce.svc.netmask = parse_netmask(a, names)
                        .ok_or_else(|| fail("illegal virtual server persistent mask specified"))?;
                } else {
                    ce.svc.netmask = atoi(a) as u32;
                    if ce.svc.netmask < 1 || ce.svc.netmask > 128 {
                        return Err(fail("illegal ipv6 netmask specified"));
                    }
                }
            }
            OptVal::RealServer => {
                set_option(opts, Opt::Server)?;
                let hp = parse_host_port(a, ce.svc.protocol, names)
                    .ok_or_else(|| fail("illegal real server address[:port] specified"))?;
                ce.dest.af = if hp.addr.is_ipv6() { AF_INET6 } else { AF_INET };
                ce.dest.addr = Some(hp.addr);
                ce.dest.port = hp.port.unwrap_or(ce.svc.port);
            }
            OptVal::Ipip | OptVal::Gatewaying | OptVal::Masquerading => {
                set_option(opts, Opt::Forward)?;
                ce.dest.conn_flags = match spec.val {
                    OptVal::Ipip => CONN_F_TUNNEL,
                    OptVal::Gatewaying => CONN_F_DROUTE,
                    _ => CONN_F_MASQ,
                };
            }
            OptVal::Weight => {
                set_option(opts, Opt::Weight)?;
                ce.dest.weight = number(a, 0, i32::MAX as i64, "illegal weight specified")? as i32;
            }
            OptVal::UThreshold => {
                set_option(opts, Opt::UThreshold)?;
                ce.dest.u_threshold =
                    number(a, 0, i32::MAX as i64, "illegal u_threshold specified")? as u32;
            }
            OptVal::LThreshold => {
                set_option(opts, Opt::LThreshold)?;
                ce.dest.l_threshold =
                    number(a, 0, i32::MAX as i64, "illegal l_threshold specified")? as u32;
            }
            OptVal::Connection => set_option(opts, Opt::Connection)?,
            OptVal::Numeric => {
                set_option(opts, Opt::Numeric)?;
                ce.format |= fmt::NUMERIC;
            }
            OptVal::McastInterface => {
                set_option(opts, Opt::Mcast)?;
                ce.daemon.mcast_ifn = truncate(a, 15);
            }
            OptVal::SyncId => {
                set_option(opts, Opt::SyncId)?;
                ce.daemon.syncid = number(a, 0, 255, "illegal syncid specified")? as u32;
            }
            OptVal::Timeout => set_option(opts, Opt::Timeout)?,
            OptVal::Daemon => set_option(opts, Opt::Daemon)?,
            OptVal::Stats
            | OptVal::Rate
            | OptVal::Thresholds
            | OptVal::PersistentConn
            | OptVal::NoSort
            | OptVal::Exact
            | OptVal::TunInfo => {
                let (o, f) = match spec.val {
                    OptVal::Stats => (Opt::Stats, fmt::STATS),
                    OptVal::Rate => (Opt::Rate, fmt::RATE),
                    OptVal::Thresholds => (Opt::Thresholds, fmt::THRESHOLDS),
                    OptVal::PersistentConn => (Opt::PersistentConn, fmt::PERSISTENTCONN),
                    OptVal::NoSort => (Opt::NoSort, fmt::NOSORT),
                    OptVal::Exact => (Opt::Exact, fmt::EXACT),
                    _ => (Opt::TunInfo, fmt::TUN_INFO),
                };
                set_option(opts, o)?;
                ce.format |= f;
            }
            OptVal::Sort => {}
            OptVal::Ipv6 => {
                if ce.svc.fwmark == 0 {
                    return Err(fail("-6 used before -f\n"));
                }
                ce.svc.af = AF_INET6;
                ce.svc.netmask = 128;
            }
            OptVal::Ops => {
                set_option(opts, Opt::Ops)?;
                ce.svc.flags |= SVC_F_ONEPACKET;
            }
            OptVal::Pe => {
                set_option(opts, Opt::Pe)?;
                ce.svc.pe_name = truncate(a, 16);
            }
            OptVal::SchedFlags => {
                set_option(opts, Opt::SchedFlags)?;
                sched_flags_arg = truncate(a, 127);
            }
            OptVal::McastGroup => {
                set_option(opts, Opt::McastGroup)?;
                if a.contains(':') {
                    match inet_pton6(a) {
                        Some(g) if g.octets()[0] == 0xff => {
                            ce.daemon.mcast_group = Some(IpAddr::V6(g))
                        }
                        _ => return Err(fail(format!("invalid IPv6 mcast-group `{a}'"))),
                    }
                } else {
                    match inet_pton4(a) {
                        Some(g) if u32::from(g) & 0xf000_0000 == 0xe000_0000 => {
                            ce.daemon.mcast_group = Some(IpAddr::V4(g))
                        }
                        _ => return Err(fail(format!("invalid IPv4 mcast-group `{a}'"))),
                    }
                }
            }
            OptVal::McastPort => {
                set_option(opts, Opt::McastPort)?;
                ce.daemon.mcast_port = number(a, 1, 65535, "illegal mcast-port specified")? as u16;
            }
            OptVal::McastTtl => {
                set_option(opts, Opt::McastTtl)?;
                ce.daemon.mcast_ttl = number(a, 1, 255, "illegal mcast-ttl specified")? as u8;
            }
            OptVal::SyncMaxlen => {
                set_option(opts, Opt::SyncMaxlen)?;
                ce.daemon.sync_maxlen =
                    number(a, 1, 65535 - 20 - 8, "illegal sync-maxlen specified")? as u16;
            }
            OptVal::TunType => {
                set_option(opts, Opt::TunType)?;
                ce.dest.tun_type = match a {
                    "ipip" => 0,
                    "gue" => 1,
                    "gre" => 2,
                    _ => return Err(fail("illegal tunnel type specified")),
                };
            }
            OptVal::TunPort => {
                set_option(opts, Opt::TunPort)?;
                ce.dest.tun_port = number(a, 1, 65535, "illegal tunnel port specified")? as u16;
            }
            OptVal::TunNocsum => set_option(opts, Opt::TunNocsum)?,
            OptVal::TunCsum => {
                set_option(opts, Opt::TunCsum)?;
                ce.dest.tun_flags |= 1;
            }
            OptVal::TunRemcsum => {
                set_option(opts, Opt::TunRemcsum)?;
                ce.dest.tun_flags |= 2;
            }
            // A second command, -h or -v after the command.
            _ => return Err(fail(format!("invalid option `{}'", p.bad_option()))),
        }
    }

    if ce.cmd == Cmd::SetTimeout {
        let (Some(t), Some(f), Some(u)) = (p.get_arg(), p.get_arg(), p.get_arg()) else {
            return Err(fail("--set option requires 3 timeout values"));
        };
        let max = MAX_PERSISTENT_TIMEOUT as i64;
        ce.timeouts = Timeouts {
            tcp: parse_timeout(Some(t), 0, max)?,
            tcp_fin: parse_timeout(Some(f), 0, max)?,
            udp: parse_timeout(Some(u), 0, max)?,
        };
    }
    if let Some(extra) = p.get_arg() {
        return Err(fail(format!("unexpected argument {extra}")));
    }
    if !sched_flags_arg.is_empty() {
        ce.svc.flags &= !(SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3);
        ce.svc.flags |= parse_sched_flags(&ce.svc.sched_name, &sched_flags_arg)?;
    }

    check_command(ce.cmd, ce.options).map_err(fail)?;

    if matches!(ce.cmd, Cmd::Add | Cmd::Edit) {
        if ce.svc.fwmark == 0 && ce.svc.port == 0 && ce.svc.flags & SVC_F_PERSISTENT == 0 {
            return Err(fail("Zero port specified for non-persistent service"));
        }
        if ce.svc.flags & SVC_F_ONEPACKET != 0
            && ce.svc.fwmark == 0
            && ce.svc.protocol != IPPROTO_UDP
        {
            return Err(fail(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
        if ce.svc.sched_name.is_empty() {
            ce.svc.sched_name = "wlc".to_string();
        }
    }
    if ce.cmd == Cmd::StartDaemon && ce.daemon.mcast_ifn.is_empty() {
        ce.daemon.mcast_ifn = "eth0".to_string();
    }
    if matches!(ce.cmd, Cmd::AddDest | Cmd::EditDest) {
        let fwd = ce.dest.conn_flags & 7;
        if ce.svc.fwmark == 0 && (fwd == CONN_F_TUNNEL || fwd == CONN_F_DROUTE) {
            ce.dest.port = ce.svc.port;
        }
        if ce.dest.af != ce.svc.af && fwd != CONN_F_TUNNEL {
            return Err(fail(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tun_opts = [
            Opt::TunType,
            Opt::TunPort,
            Opt::TunNocsum,
            Opt::TunCsum,
            Opt::TunRemcsum,
        ];
        if tun_opts.iter().any(|&o| ce.options.has(o)) && fwd != CONN_F_TUNNEL {
            return Err(fail("Tunnel options conflict with forward method"));
        }
        check_tunnel(ce.dest.tun_type, ce.options).map_err(fail)?;
    }
    if ce.cmd == Cmd::List {
        let o = ce.options;
        let plain = o.has(Opt::Connection) || o.has(Opt::Timeout) || o.has(Opt::Daemon);
        let counters = o.has(Opt::Stats) || o.has(Opt::Rate) || o.has(Opt::Thresholds);
        if (plain && counters)
            || ((o.has(Opt::Timeout) || o.has(Opt::Daemon)) && o.has(Opt::PersistentConn))
        {
            return Err(fail("options conflicts in the list command"));
        }
    }
    Ok(ce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn argv(s: &[&str]) -> Vec<String> {
        std::iter::once("ipvsadm")
            .chain(s.iter().copied())
            .map(String::from)
            .collect()
    }

    fn db() -> NameDb {
        NameDb::from_text("127.0.0.1 localhost\n", "http 80/tcp\nhttp-alt 8080/tcp\n")
    }

    fn parse(s: &[&str]) -> Result<Command, Exit> {
        parse_args_with(&argv(s), &db(), false)
    }

    fn err(s: &[&str]) -> String {
        match parse(s) {
            Err(Exit::Fail { msg, .. }) | Err(Exit::Popt { msg }) => msg,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    /// The options popt returns, with their arguments.
    fn scan(s: &[&str]) -> Vec<(OptVal, Option<String>)> {
        let a = argv(s);
        let mut p = Popt::new(&a, false);
        let mut v = Vec::new();
        while let Some((o, arg)) = p.next_opt().unwrap() {
            v.push((o.val, arg));
        }
        v
    }

    #[test]
    fn popt_bundles_attaches_and_takes_optional_args() {
        use OptVal::*;
        assert_eq!(scan(&["-Ln"]), vec![(List, None), (Numeric, None)]);
        assert_eq!(scan(&["-p45"]), vec![(Persistent, Some("45".into()))]);
        assert_eq!(scan(&["-p=45"]), vec![(Persistent, Some("45".into()))]);
        assert_eq!(scan(&["-p", "45"]), vec![(Persistent, Some("45".into()))]);
        assert_eq!(
            scan(&["-p", "-n"]),
            vec![(Persistent, None), (Numeric, None)]
        );
        assert_eq!(scan(&["-p", ""]), vec![(Persistent, Some("".into()))]);
        assert_eq!(scan(&["-s", "-n"]), vec![(Scheduler, Some("-n".into()))]);
        assert_eq!(scan(&["-t="]), vec![(TcpService, Some("".into()))]);
        assert_eq!(
            scan(&["--scheduler=rr"]),
            vec![(Scheduler, Some("rr".into()))]
        );
        assert_eq!(scan(&["-pM"]), vec![(Persistent, Some("M".into()))]);
        assert_eq!(scan(&["--", "-L"]), vec![]);
    }

    #[test]
    fn popt_errors_name_the_word_as_typed() {
        let a = argv(&["-L", "-nq"]);
        let mut p = Popt::new(&a, false);
        assert_eq!(p.next_opt().unwrap().unwrap().0.val, OptVal::List);
        assert_eq!(p.next_opt().unwrap().unwrap().0.val, OptVal::Numeric);
        assert_eq!(p.next_opt().unwrap_err(), PoptError::BadOpt);
        assert_eq!(p.bad_option(), "-nq");
        assert_eq!(err(&["-A", "-t"]), "-t: missing argument");
        assert_eq!(
            err(&["-L", "-n=5"]),
            "-n=5: option does not take an argument"
        );
        assert_eq!(
            err(&["-L", "--numeric=1"]),
            "--numeric=1: option does not take an argument"
        );
        assert_eq!(err(&["-LA"]), "invalid option `-LA'");
        assert_eq!(
            err(&["-L", "--start-daemon", "master"]),
            "invalid option `master'"
        );
        assert_eq!(
            err(&["-A", "-t", "1.2.3.4:80", "-I", "5"]),
            "-I: unknown option"
        );
    }

    #[test]
    fn first_option_must_be_a_command() {
        for a in [
            &["-n"][..],
            &["-n", "-L"],
            &[""],
            &["-"],
            &["--"],
            &["--foo"],
            &["-Q"],
            &["--timeout"],
            &["--list=x"],
        ] {
            assert_eq!(parse(a), Err(Exit::TryHelp), "{a:?}");
        }
        assert_eq!(parse(&["-h", "-L"]), Err(Exit::Usage));
        assert_eq!(parse(&["-v", "-x"]), Err(Exit::Version));
        assert_eq!(parse(&["-L", "-h"]), Err(fail("invalid option `-h'")));
        assert!(parse(&["foo", "-L"]).is_err_and(|e| e == fail("unexpected argument foo")));
    }

    #[test]
    fn dest_ports_follow_the_forwarding_method() {
        let c = parse(&["-a", "-t", "10.0.0.1:80", "-r", "192.168.1.2:8080", "-g"]).unwrap();
        assert_eq!(c.dest.config().unwrap().port, 80);
        let c = parse(&[
            "-a",
            "-t",
            "10.0.0.1:80",
            "-r",
            "192.168.1.2:http-alt",
            "-m",
        ])
        .unwrap();
        assert_eq!(c.dest.config().unwrap().port, 8080);
        let c = parse(&["-a", "-t", "10.0.0.1:80", "-r", "192.168.1.2", "-m"]).unwrap();
        assert_eq!(c.dest.port, 80);
        // -r before -t: the service port is not known yet.
        let c = parse(&["-a", "-r", "192.168.1.2", "-t", "10.0.0.1:80", "-m"]).unwrap();
        assert_eq!(c.dest.port, 0);
        let c = parse(&["-a", "-f", "5", "-r", "192.168.1.2:8080", "-g"]).unwrap();
        assert_eq!(c.dest.port, 8080);
        assert_eq!(
            err(&["-a", "-f", "4", "-6", "-r", "192.168.1.2:1", "-m"]),
            "Different address family is allowed only for tunneling servers"
        );
    }

    #[test]
    fn service_attributes() {
        let c = parse(&[
            "-A",
            "-t",
            "[2001:db8::1]:80",
            "-p",
            "-M",
            "64",
            "-s",
            "abcdefghijklmnopq",
        ])
        .unwrap();
        let cfg = c.svc.config();
        assert_eq!(
            (cfg.netmask, cfg.timeout, cfg.scheduler.as_str()),
            (64, 360, "abcdefghijklmno")
        );
        let c = parse(&["-A", "-t", "10.0.0.1:80", "-p", "30", "-M", "255.255.255.0"]).unwrap();
        assert_eq!(c.svc.config().netmask, 0xffff_ff00);
        // -M before -6 is read as IPv4 and then reset by -6.
        let c = parse(&["-A", "-f", "1", "-M", "255.0.0.0", "-6", "-p"]).unwrap();
        assert_eq!(c.svc.config().netmask, 128);
        assert_eq!(
            c.svc.key(),
            Some(ServiceKey::Fwmark {
                mark: 1,
                af: Af::Inet6
            })
        );
        let c = parse(&[
            "-A",
            "-u",
            "10.0.0.1:53",
            "-s",
            "sh",
            "-b",
            "sh-port,sh-fallback",
            "-o",
        ])
        .unwrap();
        assert_eq!(
            c.svc.config().flags,
            SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_ONEPACKET
        );
        assert_eq!(
            parse(&["-A", "-t", "10.0.0.1:80", "-b", ","]),
            Err(Exit::Crash)
        );
        let c = parse(&["-A", "-t", "10.0.0.1:80", "-s", ""]).unwrap();
        assert_eq!(c.svc.config().scheduler, "wlc");
        assert_eq!(c.svc.config().pe_name, None);
    }

    #[test]
    fn zero_and_set_and_daemons() {
        assert!(parse(&["-Z"]).unwrap().svc.is_unspecified());
        assert!(parse(&["-Z", "-t", "0.0.0.0:0"])
            .unwrap()
            .svc
            .is_unspecified());
        assert!(!parse(&["-Z", "-t", "0.0.0.0:1"])
            .unwrap()
            .svc
            .is_unspecified());
        let c = parse(&["--set", " 1", "+2", "003"]).unwrap();
        assert_eq!(
            (c.timeouts.tcp, c.timeouts.tcp_fin, c.timeouts.udp),
            (1, 2, 3)
        );
        assert_eq!(
            err(&["--set", "1", "2"]),
            "--set option requires 3 timeout values"
        );
        let c = parse(&[
            "--start-daemon",
            "backup",
            "--mcast-group",
            "239.1.2.3",
            "--syncid",
            "7",
        ])
        .unwrap();
        let d = c.daemon.config();
        assert_eq!(d.role, SyncRole::Backup);
        assert_eq!(d.mcast_ifn, "eth0");
        assert_eq!(d.mcast_group, Some(IpAddr::V4(Ipv4Addr::new(239, 1, 2, 3))));
        assert_eq!(d.syncid, 7);
        assert_eq!(
            err(&["--start-daemon", "master", "--mcast-group", "1.2.3.4"]),
            "invalid IPv4 mcast-group `1.2.3.4'"
        );
    }

    #[test]
    fn legality_comes_after_flags_and_leftovers() {
        assert_eq!(
            err(&["-L", "-b", "bogus"]),
            "invalid scheduler flag `bogus'"
        );
        assert_eq!(
            err(&["-C", "-b", "flag-1"]),
            "Illegal 'sched-flags' option with the 'flush' command"
        );
        assert_eq!(err(&["-C", "-b", "bogus", "x"]), "unexpected argument x");
        assert_eq!(
            err(&["-L", "-c", "--stats"]),
            "options conflicts in the list command"
        );
        assert_eq!(err(&["-A", "-t", "10.0.0.1", "-6"]), "-6 used before -f\n");
    }
}
