//! keepalived.conf → rvs.toml.
//!
//! The file is read as keepalived.conf(5) describes it: keywords with
//! arguments, blocks between `{` and `}` (on the keyword's line or the next
//! one, and `{ ... }` may share a line), comments from `#` or `!` to the end
//! of the line, strings quoted with `"` or `'` (with backslash escapes), and
//! `include` (and `includer`, `includem`, `includew`, `includeb`,
//! `includea`) with glob patterns resolved against the including file's
//! directory. The lexer produces tokens carrying their file and line, the
//! parser a tree of [`Node`]s, and the mapper the [`model`](super::model).
//!
//! Imported: `virtual_server` (by address, fwmark or `group`),
//! `virtual_server_group`, `global_defs`' `lvs_timeouts` and VRRP
//! defaults, and the VRRP part ([`vrrp`]: `vrrp_instance` with the
//! `vrrp_script`s it tracks). Static addresses, routes and the other
//! system-wide blocks are skipped with a note (rvs.toml does not configure
//! them). Inside the imported blocks every keyword is either carried over,
//! dropped with a warning when it cannot change what rvs does, or an error
//! naming it.

use super::model::*;
use super::split_keepalived_command;
use super::Files;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

mod vrrp;

/// Deepest include nesting (keepalived's own limit is similar).
const MAX_INCLUDE_DEPTH: usize = 16;
/// Deepest block nesting the parser follows.
const MAX_BLOCK_DEPTH: usize = 64;
/// Most virtual servers one group may expand to.
const MAX_GROUP_EXPANSION: u64 = 256;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Eol,
}

/// One keyword with its arguments and, for a block, its children.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub args: Vec<String>,
    pub at: Origin,
    pub children: Option<Vec<Node>>,
}

const INCLUDES: &[&str] = &[
    "include", "includer", "includem", "includew", "includeb", "includea",
];

/// Splits one line into words and braces. Comments start at `#` or `!`
/// outside quotes.
fn split_line(line: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' => break,
            '{' | '}' => {
                if in_word {
                    toks.push(Tok::Word(std::mem::take(&mut cur)));
                    in_word = false;
                }
                toks.push(if c == '{' { Tok::Open } else { Tok::Close });
            }
            '"' | '\'' => {
                in_word = true;
                let q = c;
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated {q} quote")),
                        Some(c) if c == q => break,
                        Some('\\') => match chars.next() {
                            None => return Err(format!("unterminated {q} quote")),
                            Some(e) => unescape(e, &mut chars, &mut cur),
                        },
                        Some(c) => cur.push(c),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    toks.push(Tok::Word(std::mem::take(&mut cur)));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        toks.push(Tok::Word(cur));
    }
    Ok(toks)
}

/// keepalived's escapes inside quotes: `\a \b \E \f \n \r \t \v \nnn \xXX
/// \cC`, and `\C` for any other C.
fn unescape(e: char, chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    match e {
        'a' => out.push('\x07'),
        'b' => out.push('\x08'),
        'E' => out.push('\x1b'),
        'f' => out.push('\x0c'),
        'n' => out.push('\n'),
        'r' => out.push('\r'),
        't' => out.push('\t'),
        'v' => out.push('\x0b'),
        'x' => {
            let mut v = 0u32;
            let mut n = 0;
            while n < 2 {
                match chars.peek().and_then(|c| c.to_digit(16)) {
                    Some(d) => {
                        v = v * 16 + d;
                        chars.next();
                        n += 1;
                    }
                    None => break,
                }
            }
            out.push(char::from_u32(v).unwrap_or('?'));
        }
        '0'..='7' => {
            let mut v = e.to_digit(8).unwrap_or(0);
            let mut n = 1;
            while n < 3 {
                match chars.peek().and_then(|c| c.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        chars.next();
                        n += 1;
                    }
                    None => break,
                }
            }
            out.push(char::from_u32(v).unwrap_or('?'));
        }
        'c' => {
            if let Some(c) = chars.next() {
                out.push(char::from_u32(c.to_ascii_uppercase() as u32 ^ 0x40).unwrap_or('?'));
            }
        }
        c => out.push(c),
    }
}

struct Lexer<'a> {
    files: &'a dyn Files,
    d: &'a mut Diags,
    toks: Vec<(Tok, Origin)>,
}

impl Lexer<'_> {
    fn file(&mut self, text: &str, name: &str, dir: Option<&Path>, depth: usize) {
        for (i, line) in text.lines().enumerate() {
            let at = Origin {
                file: name.to_string(),
                line: i + 1,
            };
            let toks = match split_line(line) {
                Ok(t) => t,
                Err(e) => {
                    let first = line.split_whitespace().next().unwrap_or("line");
                    self.d.error(&at, first, e);
                    continue;
                }
            };
            let first = match toks.first() {
                Some(Tok::Word(w)) => w.clone(),
                Some(_) => String::new(),
                None => continue,
            };
            if first.starts_with('@') {
                self.d.error(
                    &at,
                    &first,
                    "conditional configuration (@config-id) is not supported by the importer: \
                     keep this host's lines and remove the markers",
                );
                continue;
            }
            if first.starts_with('$') && first.contains('=') {
                self.d.error(
                    &at,
                    first.split('=').next().unwrap_or("$"),
                    "parameter substitution is not supported by the importer: substitute the \
                     parameters first",
                );
                continue;
            }
            if first.starts_with("~SEQ") {
                self.d.error(
                    &at,
                    "~SEQ",
                    "sequence expansion is not supported by the importer: expand it first",
                );
                continue;
            }
            if INCLUDES.contains(&first.as_str()) {
                self.include(&toks, &first, &at, dir, depth);
                continue;
            }
            for t in toks {
                self.toks.push((t, at.clone()));
            }
            self.toks.push((Tok::Eol, at));
        }
    }

    fn include(&mut self, toks: &[Tok], kw: &str, at: &Origin, dir: Option<&Path>, depth: usize) {
        let Some(Tok::Word(arg)) = toks.get(1) else {
            self.d.error(at, kw, "no file named");
            return;
        };
        if toks.len() > 2 {
            self.d.error(at, kw, "one file pattern per include");
            return;
        }
        if depth >= MAX_INCLUDE_DEPTH {
            self.d.error(
                at,
                kw,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH} (a loop?)"),
            );
            return;
        }
        let pattern = match dir {
            Some(d) if !Path::new(arg).is_absolute() => d.join(arg),
            _ => PathBuf::from(arg),
        };
        let paths = match self.files.glob(&pattern) {
            Ok(p) => p,
            Err(e) => {
                self.d.error(at, kw, e);
                return;
            }
        };
        if paths.is_empty() {
            self.d
                .warn(at, kw, format!("{} matches no file", pattern.display()));
            return;
        }
        for p in paths {
            match self.files.read(&p) {
                Ok(text) => {
                    let name = p.display().to_string();
                    self.file(&text, &name, p.parent(), depth + 1)
                }
                Err(e) => self.d.error(at, kw, e),
            }
        }
    }
}

/// Builds the block tree from the tokens.
fn parse_nodes(toks: &[(Tok, Origin)], pos: &mut usize, depth: usize, d: &mut Diags) -> Vec<Node> {
    let mut out = Vec::new();
    loop {
        while matches!(toks.get(*pos), Some((Tok::Eol, _))) {
            *pos += 1;
        }
        let Some((tok, at)) = toks.get(*pos) else {
            if depth > 0 {
                let at = toks.last().map(|t| t.1.clone()).unwrap_or(Origin {
                    file: String::new(),
                    line: 0,
                });
                d.error(&at, "}", "the file ends inside a block (missing `}`)");
            }
            return out;
        };
        match tok {
            Tok::Close => {
                *pos += 1;
                if depth == 0 {
                    d.error(at, "}", "`}` without a block to close");
                    continue;
                }
                return out;
            }
            Tok::Open => {
                d.error(at, "{", "`{` without a keyword");
                *pos += 1;
                if depth < MAX_BLOCK_DEPTH {
                    parse_nodes(toks, pos, depth + 1, d);
                }
            }
            Tok::Eol => unreachable!("skipped above"),
            Tok::Word(name) => {
                let at = at.clone();
                let name = name.clone();
                *pos += 1;
                let mut args = Vec::new();
                while let Some((Tok::Word(w), _)) = toks.get(*pos) {
                    args.push(w.clone());
                    *pos += 1;
                }
                let mut look = *pos;
                while matches!(toks.get(look), Some((Tok::Eol, _))) {
                    look += 1;
                }
                let children = if matches!(toks.get(look), Some((Tok::Open, _))) {
                    *pos = look + 1;
                    if depth >= MAX_BLOCK_DEPTH {
                        d.error(&at, &name, "blocks nested too deeply");
                        *pos = toks.len();
                        return out;
                    }
                    Some(parse_nodes(toks, pos, depth + 1, d))
                } else {
                    None
                };
                out.push(Node {
                    name,
                    args,
                    at,
                    children,
                });
            }
        }
    }
}

/// Reads keepalived.conf text (reported as `name`) into its block tree;
/// includes are resolved against `dir` through `files`.
pub fn parse(
    text: &str,
    name: &str,
    dir: Option<&Path>,
    files: &dyn Files,
    d: &mut Diags,
) -> Vec<Node> {
    let mut lx = Lexer {
        files,
        d,
        toks: Vec::new(),
    };
    lx.file(text, name, dir, 0);
    let toks = lx.toks;
    let mut pos = 0;
    parse_nodes(&toks, &mut pos, 0, d)
}

/// Top-level blocks that configure the system rather than the balancer.
const OTHER_BLOCKS: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "static_track_group",
    "linkbeat_interfaces",
    "interface_up_down_delays",
    "garp_group",
    "bfd_instance",
];

/// Top-level keywords of the daemon itself.
const DAEMON_KEYWORDS: &[&str] = &[
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "linkbeat_use_polling",
    "child_wait_time",
];

/// Reads a keepalived.conf (and what it includes).
pub fn import(
    text: &str,
    name: &str,
    dir: Option<&Path>,
    files: &dyn Files,
    d: &mut Diags,
) -> Imported {
    let nodes = parse(text, name, dir, files, d);
    let mut m = Mapper {
        d,
        groups: HashMap::new(),
    };
    let mut out = Imported {
        source: name.to_string(),
        format: "keepalived",
        ..Default::default()
    };
    // Groups, global defaults and scripts first: keepalived resolves them
    // wherever they are in the file.
    let mut defaults = vrrp::Defaults::default();
    let mut scripts = vrrp::Scripts::new();
    for n in &nodes {
        match n.name.as_str() {
            "virtual_server_group" => m.group(n),
            "global_defs" => m.global_defs(n, &mut out.timeouts, &mut defaults),
            "vrrp_script" => m.vrrp_script(n, &mut scripts),
            _ => {}
        }
    }
    m.vrrp_global_checks(&defaults, nodes.iter().any(|n| n.name == "vrrp_instance"));
    let mut ssl = None;
    for n in &nodes {
        match n.name.as_str() {
            "virtual_server_group" | "global_defs" | "vrrp_script" => {}
            "virtual_server" => out.services.extend(m.virtual_server(n)),
            "vrrp_instance" => out.vrrp.extend(m.vrrp_instance(n, &mut scripts, &defaults)),
            "vrrp_sync_group" => m.d.error(
                &n.at,
                &n.name,
                "rvs has no sync groups: each [[vrrp]] instance fails over on its own, so the \
                 group's instances could end up on different directors; merge instances that \
                 share an interface into one, or remove the group if they may move separately",
            ),
            "track_file" | "vrrp_track_file" | "track_process" | "vrrp_track_process" => m.d.warn(
                &n.at,
                &n.name,
                "not imported: rvs has no file or process tracking (an instance that tracks \
                     it is an error)",
            ),
            "SSL" => ssl = Some(n.clone()),
            other if OTHER_BLOCKS.contains(&other) => {
                let what = n.args.first().map_or(String::new(), |a| format!(" {a}"));
                m.d.note(
                    &n.at,
                    &n.name,
                    format!(
                        "{other}{what} skipped: static addresses, routes, BFD and GARP groups are \
                         configured outside rvs.toml"
                    ),
                );
            }
            other if DAEMON_KEYWORDS.contains(&other) => m.d.warn(
                &n.at,
                other,
                "not imported: a setting of the keepalived daemon itself",
            ),
            _ => m.d.error(&n.at, &n.name, "unknown top-level keyword"),
        }
    }
    m.vrrp_unused_scripts(&scripts);
    if let Some(s) = ssl {
        let https = out.services.iter().any(|s| {
            s.reals
                .iter()
                .flat_map(|r| &r.checks)
                .any(|c| matches!(&c.kind, CheckKind::Http(h) if h.https))
        });
        if https {
            m.d.error(
                &s.at,
                "SSL",
                "client certificates and CA files for SSL_GET have no rvs equivalent (rvs's \
                 https check verifies against the system roots with verify = true, or not at all)",
            );
        } else {
            m.d.warn(&s.at, "SSL", "not imported: no SSL_GET uses it");
        }
    }
    out
}

/// One `virtual_server_group` entry, expanded.
#[derive(Debug, Clone)]
enum GroupMember {
    Addr(IpAddr, u16),
    Fwmark(u32, Option<bool>),
}

/// Checker timing and state settings, inherited virtual server → real
/// server → checker.
#[derive(Debug, Clone, Default)]
struct Timing {
    delay_loop: Option<f64>,
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<(f64, Origin)>,
    alpha: Option<bool>,
}

impl Timing {
    fn over(&self, base: &Timing) -> Timing {
        Timing {
            delay_loop: self.delay_loop.or(base.delay_loop),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            retry: self.retry.or(base.retry),
            delay_before_retry: self
                .delay_before_retry
                .clone()
                .or(base.delay_before_retry.clone()),
            alpha: self.alpha.or(base.alpha),
        }
    }
}

/// What a virtual server passes down to its real servers.
struct VsCtx {
    key: Key,
    method: Method,
    timing: Timing,
    inhibit: bool,
    virtualhost: Option<String>,
}

struct Mapper<'a> {
    d: &'a mut Diags,
    groups: HashMap<String, (Origin, Vec<GroupMember>)>,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

impl Mapper<'_> {
    fn args(&mut self, n: &Node, min: usize, max: usize) -> bool {
        if n.args.len() < min || n.args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            self.d.error(
                &n.at,
                &n.name,
                format!("takes {want} argument(s), not {}", n.args.len()),
            );
            return false;
        }
        if n.children.is_some() {
            self.d.error(&n.at, &n.name, "takes no block");
            return false;
        }
        true
    }

    fn one<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        self.args(n, 1, 1).then(|| n.args[0].as_str())
    }

    fn int(&mut self, n: &Node, min: i64, max: i64) -> Option<u32> {
        let v = self.one(n)?;
        match v.parse::<i64>() {
            Ok(x) if (min..=max).contains(&x) => Some(x as u32),
            _ => {
                self.d.error(
                    &n.at,
                    &n.name,
                    format!("{v:?} is not a number in {min}..={max}"),
                );
                None
            }
        }
    }

    fn timer(&mut self, n: &Node) -> Option<f64> {
        let v = self.one(n)?;
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Some(x),
            _ => {
                self.d
                    .error(&n.at, &n.name, format!("{v:?} is not a time in seconds"));
                None
            }
        }
    }

    /// A `<BOOL>` that may be left out (meaning true).
    fn flag(&mut self, n: &Node) -> Option<bool> {
        if !self.args(n, 0, 1) {
            return None;
        }
        match n.args.first() {
            None => Some(true),
            Some(v) => match parse_bool(v) {
                Some(b) => Some(b),
                None => {
                    self.d.error(
                        &n.at,
                        &n.name,
                        format!("{v:?} is not on/off/true/false/yes/no"),
                    );
                    None
                }
            },
        }
    }

    fn block<'n>(&mut self, n: &'n Node) -> Option<&'n [Node]> {
        match &n.children {
            Some(c) => Some(c),
            None => {
                self.d.error(&n.at, &n.name, "needs a { ... } block");
                None
            }
        }
    }

    /// The timing keywords every level takes; false when `n` is not one.
    fn timing(&mut self, n: &Node, t: &mut Timing) -> bool {
        match n.name.as_str() {
            "delay_loop" => {
                if let Some(x) = self.timer(n) {
                    if x <= 0.0 {
                        self.d.error(&n.at, &n.name, "must be above 0");
                    } else {
                        t.delay_loop = Some(x);
                    }
                }
            }
            "connect_timeout" => {
                if let Some(x) = self.timer(n) {
                    if x <= 0.0 {
                        self.d.error(&n.at, &n.name, "must be above 0");
                    } else {
                        t.connect_timeout = Some(x);
                    }
                }
            }
            "retry" | "nb_get_retry" => t.retry = self.int(n, 0, 999),
            "delay_before_retry" => {
                if let Some(x) = self.timer(n) {
                    t.delay_before_retry = Some((x, n.at.clone()));
                }
            }
            "warmup" => {
                if self.timer(n).is_some() {
                    self.d.warn(
                        &n.at,
                        &n.name,
                        "not imported: rvs spreads the first checks with its own random delay",
                    );
                }
            }
            "alpha" => t.alpha = self.flag(n),
            _ => return false,
        }
        true
    }

    fn method(&mut self, n: &Node) -> Option<Method> {
        if !self.args(n, 1, 6) {
            return None;
        }
        let kind = n.args[0].to_ascii_uppercase();
        match (kind.as_str(), n.args.len()) {
            ("NAT", 1) => Some(Method::Masq),
            ("DR", 1) => Some(Method::Route),
            ("TUN", _) => {
                let mut t = Tunnel {
                    kind: "ipip",
                    port: None,
                    checksum: None,
                };
                let mut rest = n.args[1..].iter();
                while let Some(a) = rest.next() {
                    match a.as_str() {
                        "type" => match rest.next().map(String::as_str) {
                            Some("ipip") => t.kind = "ipip",
                            Some("gre") => t.kind = "gre",
                            Some("gue") => {
                                t.kind = "gue";
                                if rest.next().map(String::as_str) != Some("port") {
                                    self.d.error(&n.at, &n.name, "type gue needs `port N`");
                                    return None;
                                }
                                match rest.next().and_then(|p| p.parse::<u16>().ok()) {
                                    Some(p) if p > 0 => t.port = Some(p),
                                    _ => {
                                        self.d.error(
                                            &n.at,
                                            &n.name,
                                            "type gue needs a port 1..65535",
                                        );
                                        return None;
                                    }
                                }
                            }
                            other => {
                                self.d.error(
                                    &n.at,
                                    &n.name,
                                    format!("unknown tunnel type {other:?}"),
                                );
                                return None;
                            }
                        },
                        "nocsum" => t.checksum = Some("nocsum"),
                        "csum" => t.checksum = Some("csum"),
                        "remcsum" => t.checksum = Some("remcsum"),
                        other => {
                            self.d
                                .error(&n.at, &n.name, format!("unexpected {other:?}"));
                            return None;
                        }
                    }
                }
                Some(Method::Tunnel(t))
            }
            _ => {
                self.d
                    .error(&n.at, &n.name, "must be NAT, DR or TUN [type ...]");
                None
            }
        }
    }

    fn addr(&mut self, n: &Node, s: &str) -> Option<IpAddr> {
        match s.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.d
                    .error(&n.at, &n.name, format!("{s:?} is not an IP address"));
                None
            }
        }
    }

    fn port(&mut self, n: &Node, s: &str) -> Option<u16> {
        match s.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => {
                self.d.error(&n.at, &n.name, format!("{s:?} is not a port"));
                None
            }
        }
    }

    /// `quorum_up`/`quorum_down`: a script line, then an optional user.
    fn script(&mut self, n: &Node) -> Option<Vec<String>> {
        if !self.args(n, 1, 3) {
            return None;
        }
        if n.args.len() > 1 {
            self.d.error(
                &n.at,
                &n.name,
                "running the script as another user has no rvs equivalent (rvsd runs commands as itself)",
            );
            return None;
        }
        match split_keepalived_command(&n.args[0]) {
            Ok(v) => Some(v),
            Err(e) => {
                self.d.error(&n.at, &n.name, e);
                None
            }
        }
    }

    fn global_defs(&mut self, n: &Node, t: &mut Timeouts, g: &mut vrrp::Defaults) {
        let Some(children) = self.block(n) else {
            return;
        };
        let mut others = Vec::new();
        for c in children {
            match c.name.as_str() {
                "lvs_timeouts" => {
                    let mut it = c.args.iter();
                    while let Some(k) = it.next() {
                        let v = it.next().and_then(|v| v.parse::<u32>().ok());
                        let slot = match k.as_str() {
                            "tcp" => &mut t.tcp,
                            "tcpfin" => &mut t.tcpfin,
                            "udp" => &mut t.udp,
                            _ => {
                                self.d
                                    .error(&c.at, &c.name, format!("unknown timeout {k:?}"));
                                break;
                            }
                        };
                        match v {
                            Some(v) if (1..=2_678_400).contains(&v) => *slot = Some(v),
                            _ => {
                                self.d.error(
                                    &c.at,
                                    &c.name,
                                    format!("{k} needs seconds 1..=2678400"),
                                );
                                break;
                            }
                        }
                    }
                }
                "lvs_sync_daemon" => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: connection synchronisation is configured outside rvs.toml",
                ),
                _ if self.vrrp_global(c, g) => {}
                _ => others.push(c.name.as_str()),
            }
        }
        if !others.is_empty() {
            self.d.note(
                &n.at,
                "global_defs",
                format!(
                    "skipped (only lvs_timeouts and the VRRP defaults are imported): {}",
                    others.join(", ")
                ),
            );
        }
    }

    fn group(&mut self, n: &Node) {
        let Some(name) = n.args.first().cloned() else {
            self.d.error(&n.at, &n.name, "needs a name");
            return;
        };
        let Some(children) = self.block(n) else {
            return;
        };
        let mut members = Vec::new();
        let mut total: u64 = 0;
        for c in children {
            if c.name == "fwmark" {
                if !self.args(c, 1, 2) {
                    continue;
                }
                let Ok(mark) = c.args[0].parse::<u32>() else {
                    self.d.error(&c.at, "fwmark", "not a mark number");
                    continue;
                };
                let fam = match c.args.get(1).map(String::as_str) {
                    None => None,
                    Some("inet") => Some(false),
                    Some("inet6") => Some(true),
                    Some(o) => {
                        self.d
                            .error(&c.at, "fwmark", format!("unknown family {o:?}"));
                        continue;
                    }
                };
                members.push(GroupMember::Fwmark(mark, fam));
                total += 1;
                continue;
            }
            if c.children.is_some() || c.args.len() > 1 {
                self.d
                    .error(&c.at, &c.name, "expected `ADDRESS [PORT]` or `fwmark N`");
                continue;
            }
            let port = match c.args.first() {
                Some(p) => match p.parse::<u16>() {
                    Ok(p) => p,
                    Err(_) => {
                        self.d.error(&c.at, &c.name, format!("{p:?} is not a port"));
                        continue;
                    }
                },
                None => 0,
            };
            match expand_range(&c.name) {
                Ok(addrs) => {
                    total += addrs.len() as u64;
                    if total > MAX_GROUP_EXPANSION {
                        self.d.error(
                            &c.at,
                            &c.name,
                            format!(
                                "the group expands to more than {MAX_GROUP_EXPANSION} virtual \
                                 services; rvs has no address-range services, so list fewer"
                            ),
                        );
                        break;
                    }
                    members.extend(addrs.into_iter().map(|a| GroupMember::Addr(a, port)));
                }
                Err(e) => self.d.error(&c.at, &c.name, e),
            }
        }
        if self
            .groups
            .insert(name.clone(), (n.at.clone(), members))
            .is_some()
        {
            self.d
                .error(&n.at, &n.name, format!("group {name:?} is declared twice"));
        }
    }

    fn virtual_server(&mut self, n: &Node) -> Vec<Service> {
        let errors_before = self.d.errors.len();
        let Some(children) = self.block(n) else {
            return Vec::new();
        };
        let title = format!("virtual_server {}", n.args.join(" "));
        // Keys that shape the identity come first.
        let mut protocol = "tcp";
        let mut family6 = None;
        for c in children {
            match c.name.as_str() {
                "protocol" => {
                    if let Some(p) = self.one(c) {
                        protocol = match p.to_ascii_uppercase().as_str() {
                            "TCP" => "tcp",
                            "UDP" => "udp",
                            "SCTP" => "sctp",
                            _ => {
                                self.d.error(&c.at, &c.name, "must be TCP, UDP or SCTP");
                                "tcp"
                            }
                        }
                    }
                }
                "ip_family" => match self.one(c) {
                    Some("inet") => family6 = Some(false),
                    Some("inet6") => family6 = Some(true),
                    Some(o) => self
                        .d
                        .error(&c.at, &c.name, format!("unknown family {o:?}")),
                    None => {}
                },
                _ => {}
            }
        }
        let keys: Vec<(Key, String)> = match n.args.first().map(String::as_str) {
            Some("fwmark") => {
                if n.args.len() != 2 {
                    self.d
                        .error(&n.at, &n.name, "expected `virtual_server fwmark N`");
                    return Vec::new();
                }
                match n.args[1].parse::<u32>() {
                    Ok(mark) if mark > 0 => vec![(
                        Key::Fwmark {
                            mark,
                            ipv6: family6.unwrap_or(false),
                        },
                        title.clone(),
                    )],
                    _ => {
                        self.d
                            .error(&n.at, &n.name, "the mark must be 1..=4294967295");
                        return Vec::new();
                    }
                }
            }
            Some("group") => {
                let Some(name) = n.args.get(1) else {
                    self.d
                        .error(&n.at, &n.name, "expected `virtual_server group NAME`");
                    return Vec::new();
                };
                let Some((_, members)) = self.groups.get(name).cloned() else {
                    self.d
                        .error(&n.at, &n.name, format!("no virtual_server_group {name:?}"));
                    return Vec::new();
                };
                members
                    .iter()
                    .map(|m| match m {
                        GroupMember::Addr(a, p) => (
                            Key::Addr {
                                proto: protocol,
                                addr: *a,
                                port: *p,
                            },
                            format!("{title}: {a} {p}"),
                        ),
                        GroupMember::Fwmark(mark, fam) => (
                            Key::Fwmark {
                                mark: *mark,
                                ipv6: fam.or(family6).unwrap_or(false),
                            },
                            format!("{title}: fwmark {mark}"),
                        ),
                    })
                    .collect()
            }
            Some(a) => {
                if n.args.len() > 2 {
                    self.d
                        .error(&n.at, &n.name, "expected `virtual_server ADDRESS [PORT]`");
                    return Vec::new();
                }
                let Some(addr) = self.addr(n, a) else {
                    return Vec::new();
                };
                let port = match n.args.get(1) {
                    Some(p) => match self.port(n, p) {
                        Some(p) => p,
                        None => return Vec::new(),
                    },
                    None => 0,
                };
                vec![(
                    Key::Addr {
                        proto: protocol,
                        addr,
                        port,
                    },
                    title.clone(),
                )]
            }
            None => {
                self.d.error(
                    &n.at,
                    &n.name,
                    "needs an address, `fwmark N` or `group NAME`",
                );
                return Vec::new();
            }
        };
        let mut s = Service {
            origin: n.at.clone(),
            title: title.clone(),
            key: Key::Fwmark {
                mark: 0,
                ipv6: false,
            },
            scheduler: "wlc".into(),
            sched_flags: Vec::new(),
            persistent: None,
            netmask: None,
            pe: None,
            one_packet: false,
            remove_on_failure: None,
            quorum: None,
            hysteresis: None,
            quorum_up: Vec::new(),
            quorum_down: Vec::new(),
            initial_down: false,
            fallback: None,
            checks: Vec::new(),
            reals: Vec::new(),
        };
        let mut timing = Timing::default();
        let mut method = Method::Masq;
        let mut inhibit = false;
        let mut virtualhost = None;
        let mut sorry: Option<(&Node, IpAddr, Option<u16>)> = None;
        let mut sorry_method = None;
        let mut reals = Vec::new();
        let mut granularity = None;
        for c in children {
            if self.timing(c, &mut timing) {
                continue;
            }
            match c.name.as_str() {
                "protocol" | "ip_family" => {}
                "lvs_sched" | "lb_algo" => {
                    if let Some(v) = self.one(c) {
                        s.scheduler = v.to_string();
                    }
                }
                "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
                | "mh-fallback" => {
                    if self.args(c, 0, 0) {
                        s.sched_flags.push(c.name.clone());
                    }
                }
                "ops" => {
                    if self.args(c, 0, 0) {
                        s.one_packet = true;
                    }
                }
                "lvs_method" | "lb_kind" => {
                    if let Some(m) = self.method(c) {
                        method = m;
                    }
                }
                "persistence_engine" => s.pe = self.one(c).map(str::to_string),
                "persistence_timeout" => {
                    if self.args(c, 0, 1) {
                        s.persistent = match c.args.first() {
                            None => Some(360),
                            Some(_) => self.int(c, 1, 2_678_400),
                        };
                    }
                }
                "persistence_granularity" => granularity = Some(c),
                "ha_suspend" => self.d.error(
                    &c.at,
                    &c.name,
                    "suspending checks while the address is not local has no rvs equivalent",
                ),
                "smtp_alert" => {
                    if self.flag(c) == Some(true) {
                        self.d
                            .error(&c.at, &c.name, "e-mail alerts have no rvs equivalent");
                    }
                }
                "virtualhost" => virtualhost = self.one(c).map(str::to_string),
                "snmp_name" => self
                    .d
                    .warn(&c.at, &c.name, "not imported: rvs has no SNMP agent"),
                "omega" => self.d.error(
                    &c.at,
                    &c.name,
                    "running the down notifiers at shutdown has no rvs equivalent",
                ),
                "quorum" => s.quorum = self.int(c, 0, i32::MAX as i64),
                "hysteresis" => s.hysteresis = self.int(c, 0, i32::MAX as i64),
                "quorum_up" => s.quorum_up = self.script(c).unwrap_or_default(),
                "quorum_down" => s.quorum_down = self.script(c).unwrap_or_default(),
                "sorry_server" => {
                    if self.args(c, 1, 2) {
                        let a = self.addr(c, &c.args[0]);
                        let p = match c.args.get(1) {
                            Some(p) => self.port(c, p),
                            None => Some(0),
                        };
                        if let (Some(a), Some(p)) = (a, p) {
                            sorry = Some((c, a, (p != 0).then_some(p)));
                        }
                    }
                }
                "sorry_server_inhibit" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs always removes the fallback server when quorum returns",
                ),
                "sorry_server_lvs_method" => sorry_method = self.method(c),
                "inhibit_on_failure" => {
                    if let Some(b) = self.flag(c) {
                        inhibit = b;
                    }
                }
                "real_server" => reals.push(c),
                "SMTP_CHECK" | "HTTP_GET" | "SSL_GET" | "TCP_CHECK" | "MISC_CHECK"
                | "DNS_CHECK" | "UDP_CHECK" | "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                    self.d.error(
                        &c.at,
                        &c.name,
                        "a checker belongs inside a real_server block",
                    )
                }
                _ => self
                    .d
                    .error(&c.at, &c.name, "unknown virtual_server keyword"),
            }
        }
        if let Some(g) = granularity {
            if let Some(v) = self.one(g) {
                if let Ok(m) = v.parse::<Ipv4Addr>() {
                    s.netmask = Some(Netmask::V4(m));
                } else if let Ok(p) = v.trim_start_matches('/').parse::<u8>() {
                    s.netmask = Some(Netmask::Prefix(p));
                } else {
                    self.d
                        .error(&g.at, &g.name, format!("{v:?} is not a netmask"));
                }
            }
        }
        s.initial_down = timing.alpha.unwrap_or(false);
        s.remove_on_failure = Some(!inhibit);
        if let Some((c, addr, port)) = sorry {
            s.fallback = Some(Fallback {
                origin: c.at.clone(),
                addr,
                port,
                method: Some(sorry_method.unwrap_or_else(|| method.clone())),
                weight: 1,
            });
        }
        let mut out = Vec::new();
        for (key, title) in keys {
            let ctx = VsCtx {
                key: key.clone(),
                method: method.clone(),
                timing: timing.clone(),
                inhibit,
                virtualhost: virtualhost.clone(),
            };
            let mut svc = s.clone();
            svc.key = key;
            svc.title = title;
            // Messages about real servers are reported once, for the first
            // member of a group.
            let before = (self.d.errors.len(), self.d.warnings.len());
            for r in &reals {
                if let Some(real) = self.real_server(r, &ctx) {
                    svc.reals.push(real);
                }
            }
            if !out.is_empty() {
                self.d.errors.truncate(before.0);
                self.d.warnings.truncate(before.1);
            }
            if let Some(fb) = &mut svc.fallback {
                fb.port = fb.port.or((ctx.key.port() != 0).then_some(ctx.key.port()));
            }
            out.push(svc);
        }
        if self.d.errors.len() > errors_before {
            return Vec::new();
        }
        out
    }

    fn real_server(&mut self, n: &Node, vs: &VsCtx) -> Option<Real> {
        if n.args.is_empty() || n.args.len() > 2 {
            self.d.error(
                &n.at,
                &n.name,
                "expected `real_server ADDRESS [PORT] { ... }`",
            );
            return None;
        }
        let addr = self.addr(n, &n.args[0])?;
        let port = match n.args.get(1) {
            Some(p) => Some(self.port(n, p)?),
            None => None,
        };
        let mut r = Real {
            origin: n.at.clone(),
            addr,
            port,
            method: vs.method.clone(),
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            checks: Vec::new(),
        };
        let mut timing = Timing::default();
        let mut virtualhost = vs.virtualhost.clone();
        let mut checkers = Vec::new();
        for c in n.children.as_deref().unwrap_or(&[]) {
            if self.timing(c, &mut timing) {
                continue;
            }
            match c.name.as_str() {
                "weight" => {
                    if let Some(w) = self.int(c, 0, i32::MAX as i64) {
                        r.weight = w;
                    }
                }
                "lvs_method" | "lb_kind" => {
                    if let Some(m) = self.method(c) {
                        r.method = m;
                    }
                }
                "uthreshold" => r.u_threshold = self.int(c, 0, i32::MAX as i64).unwrap_or(0),
                "lthreshold" => r.l_threshold = self.int(c, 0, i32::MAX as i64).unwrap_or(0),
                "notify_up" | "notify_down" => self.d.error(
                    &c.at,
                    &c.name,
                    "per-real-server notify scripts have no rvs equivalent (quorum_up/quorum_down \
                     are per service)",
                ),
                "smtp_alert" => {
                    if self.flag(c) == Some(true) {
                        self.d
                            .error(&c.at, &c.name, "e-mail alerts have no rvs equivalent");
                    }
                }
                "virtualhost" => virtualhost = self.one(c).map(str::to_string),
                "snmp_name" => self
                    .d
                    .warn(&c.at, &c.name, "not imported: rvs has no SNMP agent"),
                "inhibit_on_failure" => {
                    if let Some(b) = self.flag(c) {
                        if b != vs.inhibit {
                            self.d.error(
                                &c.at,
                                &c.name,
                                "rvs sets on_failure for a whole service: set inhibit_on_failure \
                                 on the virtual_server (and the same for all its real servers)",
                            );
                        }
                    }
                }
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "DNS_CHECK" | "UDP_CHECK" | "MISC_CHECK" => {
                    checkers.push(c)
                }
                "SMTP_CHECK" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs has no SMTP checker (use a MISC_CHECK script, or TCP_CHECK)",
                ),
                "PING_CHECK" => self
                    .d
                    .error(&c.at, &c.name, "rvs has no ICMP (ping) checker"),
                "BFD_CHECK" => self.d.error(&c.at, &c.name, "rvs has no BFD"),
                "FILE_CHECK" => self.d.error(
                    &c.at,
                    &c.name,
                    "rvs has no file-tracking checker (use a MISC_CHECK-style command check)",
                ),
                _ => self.d.error(&c.at, &c.name, "unknown real_server keyword"),
            }
        }
        // Direct routing and tunnelling cannot change the port.
        if let (Some(p), Key::Addr { port: vport, .. }) = (r.port, &vs.key) {
            if r.method != Method::Masq && p != *vport {
                if *vport != 0 {
                    self.d.warn(
                        &n.at,
                        &n.name,
                        format!(
                            "port {p} replaced by the virtual server's {vport}: {} cannot change ports (ipvsadm does the same)",
                            if r.method == Method::Route { "DR" } else { "TUN" }
                        ),
                    );
                }
                r.port = (*vport != 0).then_some(*vport);
            }
        }
        let t = timing.over(&vs.timing);
        for c in checkers {
            r.checks
                .extend(self.checker(c, &t, vs, virtualhost.as_deref()));
        }
        Some(r)
    }

    fn checker(&mut self, n: &Node, rs: &Timing, vs: &VsCtx, host: Option<&str>) -> Vec<Check> {
        let Some(children) = self.block(n) else {
            return Vec::new();
        };
        let mut t = Timing::default();
        let mut address = None;
        let mut port = None;
        let mut urls = Vec::new();
        let mut host = host.map(str::to_string);
        let mut sni = None;
        let mut dns = (None, None);
        let mut udp = (None, None, false);
        let mut misc = (None, None::<f64>, false);
        let misc_kind = n.name == "MISC_CHECK";
        for c in children {
            if self.timing(c, &mut t) {
                if misc_kind && c.name == "connect_timeout" {
                    self.d
                        .warn(&c.at, &c.name, "not imported: MISC_CHECK uses misc_timeout");
                }
                continue;
            }
            match (n.name.as_str(), c.name.as_str()) {
                (_, "connect_ip") if !misc_kind => {
                    address = self.one(c).and_then(|a| {
                        let a = a.to_string();
                        self.addr(c, &a)
                    })
                }
                (_, "connect_port") if !misc_kind => {
                    port = self.one(c).and_then(|p| {
                        let p = p.to_string();
                        self.port(c, &p)
                    })
                }
                (_, "bindto" | "bind_if" | "bind_port" | "fwmark") if !misc_kind => self.d.error(
                    &c.at,
                    &c.name,
                    "choosing the checks' source address, interface, port or mark has no rvs \
                     equivalent",
                ),
                (_, "log_all_failures") => {
                    self.d
                        .warn(&c.at, &c.name, "not imported: rvsd logs every transition")
                }
                ("HTTP_GET" | "SSL_GET", "url") => urls.push(c),
                ("HTTP_GET" | "SSL_GET", "virtualhost") => host = self.one(c).map(str::to_string),
                ("HTTP_GET" | "SSL_GET", "http_protocol") => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: rvs chooses the HTTP version of its checks",
                ),
                ("HTTP_GET" | "SSL_GET", "fast_recovery") => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: rvs checks each URL as its own check, every interval",
                ),
                ("HTTP_GET" | "SSL_GET", "tls_compliant") => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: rvs always closes TLS cleanly",
                ),
                ("SSL_GET", "enable_sni") => {
                    self.flag(c);
                }
                ("SSL_GET", "sni_name") => sni = self.one(c).map(str::to_string),
                ("DNS_CHECK", "type") => {
                    if let Some(v) = self.one(c) {
                        let v = v.to_ascii_uppercase();
                        if rvs_config::QUERY_TYPES.contains(&v.as_str()) {
                            dns.0 = Some(v);
                        } else {
                            self.d
                                .error(&c.at, &c.name, format!("rvs cannot ask for {v} records"));
                        }
                    }
                }
                ("DNS_CHECK", "name") => dns.1 = self.one(c).map(str::to_string),
                ("UDP_CHECK", "payload") => udp.0 = self.hex(c, false),
                ("UDP_CHECK", "require_reply") => {
                    udp.2 = true;
                    if !c.args.is_empty() {
                        udp.1 = self.hex(c, true);
                    }
                }
                ("UDP_CHECK", "min_reply_length" | "max_reply_length") => {
                    self.d
                        .error(&c.at, &c.name, "reply length limits have no rvs equivalent")
                }
                ("MISC_CHECK", "misc_path") => {
                    if self.args(c, 1, 1) {
                        match split_keepalived_command(&c.args[0]) {
                            Ok(argv) => misc.0 = Some(argv),
                            Err(e) => self.d.error(&c.at, &c.name, e),
                        }
                    }
                }
                ("MISC_CHECK", "misc_timeout") => {
                    if let Some(x) = self.timer(c) {
                        misc.1 = Some(x);
                    }
                }
                ("MISC_CHECK", "misc_dynamic") => {
                    if self.args(c, 0, 0) {
                        misc.2 = true;
                    }
                }
                ("MISC_CHECK", "user") => self.d.error(
                    &c.at,
                    &c.name,
                    "running the check as another user has no rvs equivalent",
                ),
                _ => self
                    .d
                    .error(&c.at, &c.name, format!("unknown {} keyword", n.name)),
            }
        }
        let t = t.over(rs);
        let default_retry = match n.name.as_str() {
            "DNS_CHECK" => 3,
            "MISC_CHECK" => 0,
            _ => 1,
        };
        let retry = t.retry.unwrap_or(default_retry);
        let mut interval = t.delay_loop.unwrap_or(60.0);
        let mut timeout = if misc_kind {
            misc.1.unwrap_or(interval)
        } else {
            t.connect_timeout.unwrap_or(5.0)
        };
        if interval > 86_400.0 {
            self.d.error(
                &n.at,
                &n.name,
                "delay_loop above a day (86400 s) is not allowed in rvs",
            );
            interval = 86_400.0;
        }
        if timeout > interval {
            self.d.warn(
                &n.at,
                &n.name,
                format!(
                    "{} {timeout} s exceeds delay_loop {interval} s; rvs needs timeout <= \
                     interval: imported as timeout = {interval}",
                    if misc_kind {
                        "misc_timeout"
                    } else {
                        "connect_timeout"
                    }
                ),
            );
            timeout = interval;
        }
        if timeout <= 0.0 {
            self.d.error(&n.at, &n.name, "the timeout must be above 0");
            timeout = interval;
        }
        if retry > 0 {
            if let Some((dbr, at)) = &t.delay_before_retry {
                if *dbr != interval {
                    self.d.warn(
                        at,
                        "delay_before_retry",
                        format!(
                            "not imported: rvs retries a failed check at the check interval \
                             ({interval} s), so a server is marked down after about {} s \
                             instead of {} s",
                            seconds_text(interval * f64::from(retry + 1)),
                            seconds_text(interval + dbr * f64::from(retry)),
                        ),
                    );
                }
            }
        }
        let alpha = t.alpha.unwrap_or(false);
        let vs_alpha = vs.timing.alpha.unwrap_or(false);
        let base = Check {
            origin: n.at.clone(),
            directive: n.name.clone(),
            kind: CheckKind::Tcp,
            interval,
            timeout,
            fall: retry + 1,
            rise: 1,
            initial_down: (alpha != vs_alpha).then_some(alpha),
            address,
            port,
        };
        match n.name.as_str() {
            "TCP_CHECK" => vec![base],
            "HTTP_GET" | "SSL_GET" => {
                if urls.is_empty() {
                    self.d.error(&n.at, &n.name, "has no url block");
                    return Vec::new();
                }
                let mut out = Vec::new();
                for u in urls {
                    if let Some(mut h) = self.url(u, host.as_deref()) {
                        h.https = n.name == "SSL_GET";
                        if h.https {
                            h.sni = sni.clone();
                        }
                        let mut c = base.clone();
                        c.kind = CheckKind::Http(h);
                        c.origin = u.at.clone();
                        c.directive = format!("{} url", n.name);
                        out.push(c);
                    }
                }
                out
            }
            "DNS_CHECK" => {
                let mut c = base;
                c.kind = CheckKind::Dns {
                    name: dns.1,
                    query_type: dns.0,
                };
                vec![c]
            }
            "UDP_CHECK" => {
                if !udp.2 {
                    self.d.error(
                        &n.at,
                        &n.name,
                        "without require_reply (up = no ICMP error) it has no rvs equivalent: \
                         rvs's udp check needs an answer; add require_reply if the server answers",
                    );
                    return Vec::new();
                }
                if udp.0.is_none() {
                    self.d.warn(
                        &n.at,
                        &n.name,
                        "no payload: keepalived sends random bytes, rvs sends an empty datagram",
                    );
                }
                let mut c = base;
                c.kind = CheckKind::Udp {
                    payload_hex: udp.0,
                    expect_hex: udp.1,
                };
                vec![c]
            }
            "MISC_CHECK" => {
                let Some(argv) = misc.0 else {
                    self.d.error(&n.at, &n.name, "has no misc_path");
                    return Vec::new();
                };
                if argv
                    .iter()
                    .any(|a| rvs_config::PLACEHOLDERS.iter().any(|p| a.contains(p)))
                {
                    self.d.error(
                        &n.at,
                        "misc_path",
                        "an argument contains {vip}, {vport}, {rip} or {rport}, which rvs replaces",
                    );
                    return Vec::new();
                }
                let mut c = base;
                c.kind = CheckKind::Command {
                    argv,
                    dynamic_weight: misc.2,
                };
                vec![c]
            }
            _ => Vec::new(),
        }
    }

    /// keepalived's free-format hex (`Ab12f 3 456`: each group in pairs, a
    /// lone last digit padded) as plain hex; `X` nibbles are wildcards,
    /// which rvs does not have.
    fn hex(&mut self, n: &Node, reply: bool) -> Option<String> {
        let mut out = String::new();
        for g in &n.args {
            if reply && g.contains(['x', 'X']) {
                self.d.error(
                    &n.at,
                    &n.name,
                    "don't-care nibbles (X) have no rvs equivalent",
                );
                return None;
            }
            if g.is_empty() || !g.chars().all(|c| c.is_ascii_hexdigit()) {
                self.d.error(&n.at, &n.name, format!("{g:?} is not hex"));
                return None;
            }
            let b = g.as_bytes();
            for pair in b.chunks(2) {
                if pair.len() == 2 {
                    out.push(pair[0] as char);
                    out.push(pair[1] as char);
                } else {
                    out.push('0');
                    out.push(pair[0] as char);
                }
            }
        }
        if out.is_empty() {
            self.d.error(&n.at, &n.name, "no bytes given");
            return None;
        }
        Some(out.to_ascii_lowercase())
    }

    fn url(&mut self, u: &Node, host: Option<&str>) -> Option<Http> {
        let children = self.block(u)?;
        let mut h = Http {
            host: host.map(str::to_string),
            ..Default::default()
        };
        let mut options = String::new();
        for c in children {
            match c.name.as_str() {
                "path" => {
                    if let Some(p) = self.one(c) {
                        if p.starts_with('/') {
                            h.path = Some(p.to_string());
                        } else {
                            self.d
                                .error(&c.at, &c.name, "rvs needs a path that starts with /");
                        }
                    }
                }
                "digest" => {
                    if let Some(v) = self.one(c) {
                        if v.len() == 32 && v.chars().all(|c| c.is_ascii_hexdigit()) {
                            h.digest = Some(v.to_ascii_lowercase());
                        } else {
                            self.d
                                .error(&c.at, &c.name, "an MD5 digest is 32 hex digits");
                        }
                    }
                }
                "status_code" => {
                    if !self.args(c, 1, 64) {
                        continue;
                    }
                    let mut st = Vec::new();
                    for a in &c.args {
                        let r = match a.split_once('-') {
                            Some((x, y)) => x.parse::<u16>().ok().zip(y.parse::<u16>().ok()),
                            None => a.parse::<u16>().ok().map(|x| (x, x)),
                        };
                        match r {
                            Some((x, y)) if (100..=999).contains(&x) && x <= y && y <= 999 => {
                                st.push((x, y))
                            }
                            _ => {
                                self.d.error(
                                    &c.at,
                                    &c.name,
                                    format!("{a:?} is not a status code or range"),
                                );
                            }
                        }
                    }
                    h.status = Some(st);
                }
                "virtualhost" => h.host = self.one(c).map(str::to_string),
                "regex" => h.regex = self.one(c).map(str::to_string),
                "regex_no_match" => {
                    if self.args(c, 0, 0) {
                        h.regex_no_match = true;
                    }
                }
                "regex_options" => {
                    for o in &c.args {
                        let f = match o.as_str() {
                            "caseless" => 'i',
                            "multiline" => 'm',
                            "dotall" => 's',
                            "extended" => 'x',
                            "ungreedy" => 'U',
                            "utf" | "ucp" | "no_start_optimize" | "no_auto_possess" => continue,
                            other => {
                                self.d.error(
                                    &c.at,
                                    &c.name,
                                    format!("the PCRE2 option {other} has no rvs equivalent"),
                                );
                                continue;
                            }
                        };
                        options.push(f);
                    }
                }
                "regex_stack" => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: rvs's regex engine needs no stack",
                ),
                "regex_min_offset" | "regex_max_offset" => self.d.error(
                    &c.at,
                    &c.name,
                    "matching from an offset has no rvs equivalent",
                ),
                "tls_compliant" => self.d.warn(
                    &c.at,
                    &c.name,
                    "not imported: rvs always closes TLS cleanly",
                ),
                _ => self.d.error(&c.at, &c.name, "unknown url keyword"),
            }
        }
        if let Some(r) = &mut h.regex {
            if !options.is_empty() {
                *r = format!("(?{options}){r}");
            }
            if let Err(e) = regex_lite::Regex::new(r) {
                self.d.error(
                    &u.at,
                    "regex",
                    format!("does not compile in rvs (Rust regex syntax): {e}"),
                );
                return None;
            }
        } else if h.regex_no_match {
            self.d
                .warn(&u.at, "regex_no_match", "not imported: there is no regex");
            h.regex_no_match = false;
        }
        Some(h)
    }
}

fn seconds_text(x: f64) -> String {
    super::emit::seconds(x)
}

/// A `virtual_server_group` address entry: one address, `a.b.c.d-e`,
/// `a.b.c.d-e.f.g.h`, a CIDR block, or their IPv6 forms (a range's last
/// part is hex).
fn expand_range(s: &str) -> Result<Vec<IpAddr>, String> {
    let count_ok = |n: u128| {
        if n > u128::from(MAX_GROUP_EXPANSION) {
            Err(format!(
                "{s} is {n} addresses; rvs has no address-range services and the importer \
                 expands at most {MAX_GROUP_EXPANSION}"
            ))
        } else {
            Ok(())
        }
    };
    if let Some((a, bits)) = s.split_once('/') {
        let bits: u32 = bits
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR block"))?;
        return match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if bits <= 32 => {
                let n = 1u128 << (32 - bits);
                count_ok(n)?;
                let base = u32::from(a) & (u32::MAX.checked_shl(32 - bits).unwrap_or(0));
                Ok((0..n as u32)
                    .map(|i| IpAddr::V4(Ipv4Addr::from(base + i)))
                    .collect())
            }
            Ok(IpAddr::V6(a)) if bits <= 128 => {
                let n = 1u128.checked_shl(128 - bits).unwrap_or(u128::MAX);
                count_ok(n)?;
                let base = u128::from(a) & u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                Ok((0..n)
                    .map(|i| IpAddr::V6(Ipv6Addr::from(base + i)))
                    .collect())
            }
            _ => Err(format!("{s:?} is not a CIDR block")),
        };
    }
    if let Some((a, b)) = s.split_once('-') {
        return match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => {
                let last = match b.parse::<Ipv4Addr>() {
                    Ok(b) => u32::from(b),
                    Err(_) => {
                        let o: u8 = b.parse().map_err(|_| format!("{s:?} is not a range"))?;
                        (u32::from(a) & !0xff) | u32::from(o)
                    }
                };
                let first = u32::from(a);
                if last < first {
                    return Err(format!("{s:?}: the range ends before it starts"));
                }
                count_ok(u128::from(last - first) + 1)?;
                Ok((first..=last)
                    .map(|x| IpAddr::V4(Ipv4Addr::from(x)))
                    .collect())
            }
            Ok(IpAddr::V6(a)) => {
                let last = match b.parse::<Ipv6Addr>() {
                    Ok(b) => u128::from(b),
                    Err(_) => {
                        let o = u16::from_str_radix(b, 16)
                            .map_err(|_| format!("{s:?} is not a range"))?;
                        (u128::from(a) & !0xffff) | u128::from(o)
                    }
                };
                let first = u128::from(a);
                if last < first {
                    return Err(format!("{s:?}: the range ends before it starts"));
                }
                count_ok(last - first + 1)?;
                Ok((first..=last)
                    .map(|x| IpAddr::V6(Ipv6Addr::from(x)))
                    .collect())
            }
            Err(_) => Err(format!("{s:?} is not an address or range")),
        };
    }
    s.parse::<IpAddr>()
        .map(|a| vec![a])
        .map_err(|_| format!("{s:?} is not an address, range or CIDR block"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_line(line)
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Tok::Word(w) => w,
                Tok::Open => "{".into(),
                Tok::Close => "}".into(),
                Tok::Eol => "\n".into(),
            })
            .collect()
    }

    #[test]
    fn lexing_follows_the_manual() {
        assert_eq!(
            words("url { path /x } # c"),
            ["url", "{", "path", "/x", "}"]
        );
        assert_eq!(words("weight 3 ! comment"), ["weight", "3"]);
        assert_eq!(words("abcd\" efg h jkl \"mnop"), ["abcd efg h jkl mnop"]);
        assert_eq!(
            words("abcd \"efg h jkl\" mnop"),
            ["abcd", "efg h jkl", "mnop"]
        );
        assert_eq!(words("regex \"a#b!c\""), ["regex", "a#b!c"]);
        assert_eq!(words("x \"\\x41\\t\\101\""), ["x", "A\tA"]);
        assert!(split_line("x \"open").is_err());
    }

    #[test]
    fn blocks_open_on_the_next_line_too() {
        let mut d = Diags::default();
        let n = parse(
            "virtual_server 10.0.0.1 80\n{\n  real_server 10.0.0.2 80 { TCP_CHECK { connect_timeout 2 } }\n}\n",
            "k.conf",
            None,
            &super::super::NoFiles,
            &mut d,
        );
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(n.len(), 1);
        let rs = &n[0].children.as_ref().unwrap()[0];
        assert_eq!(rs.name, "real_server");
        let ck = &rs.children.as_ref().unwrap()[0];
        assert_eq!(ck.name, "TCP_CHECK");
        assert_eq!(ck.children.as_ref().unwrap()[0].args, ["2"]);
    }

    #[test]
    fn unbalanced_braces_are_reported() {
        let mut d = Diags::default();
        parse(
            "a {\n b 1\n",
            "k.conf",
            None,
            &super::super::NoFiles,
            &mut d,
        );
        assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
        let mut d = Diags::default();
        parse("}\n", "k.conf", None, &super::super::NoFiles, &mut d);
        assert_eq!(d.errors[0].origin.line, 1);
    }

    #[test]
    fn group_ranges() {
        assert_eq!(expand_range("192.0.2.1-3").unwrap().len(), 3);
        assert_eq!(expand_range("192.0.2.250-192.0.3.1").unwrap().len(), 8);
        assert_eq!(expand_range("192.0.2.8/29").unwrap().len(), 8);
        assert_eq!(expand_range("2001:db8::a-c").unwrap().len(), 3);
        assert!(expand_range("10.0.0.0/8").is_err());
        assert!(expand_range("192.0.2.5-1").is_err());
    }
}
