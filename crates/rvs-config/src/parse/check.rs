//! The health-check part of rvs.toml: a service's `on_failure`, quorum,
//! `initial`, `[service.fallback]` and `[[service.check]]`, and a real
//! server's `[[service.real_server.check]]` (see `docs/config.md`, "Health
//! checks"). Same rules as the rest of the file: every problem is reported
//! at its line and column, unknown keys are errors, and so are keys that do
//! not belong to the check's `type`.

use super::{article, Reader, SvcCtx, Table, Val};
use crate::health::*;
use crate::model::RealServer;
use std::collections::HashMap;
use std::net::IpAddr;
use toml::de::DeValue;

/// Keys every check takes.
const COMMON: &[&str] = &[
    "type", "interval", "timeout", "fall", "rise", "initial", "address", "port",
];
const HTTP: &[&str] = &[
    "path",
    "host",
    "status",
    "expect",
    "regex",
    "regex_no_match",
    "digest",
];
const HTTPS: &[&str] = &["sni", "verify"];
const UDP: &[&str] = &["payload", "payload_hex", "expect", "expect_hex"];
const DNS: &[&str] = &["name", "query_type"];
const COMMAND: &[&str] = &["command", "dynamic_weight"];

/// DNS query types a check may ask for.
pub const QUERY_TYPES: &[&str] = &["A", "AAAA", "NS", "CNAME", "SOA", "MX", "TXT", "PTR", "SRV"];

/// Placeholders replaced in a command's arguments.
pub const PLACEHOLDERS: &[&str] = &["{vip}", "{vport}", "{rip}", "{rport}"];

const KINDS: &[&str] = &["tcp", "http", "https", "udp", "dns", "command"];

impl Reader<'_> {
    /// The service-level health keys; `real_servers` are the service's
    /// (for the fallback's duplicate check).
    pub(super) fn service_health(
        &mut self,
        t: &Table<'_, '_>,
        svc: &SvcCtx,
        real_servers: &[RealServer],
    ) -> Option<ServiceHealth> {
        let mut h = ServiceHealth::default();
        let mut ok = true;
        if let Some(v) = t.get("on_failure") {
            match self.choice(
                v,
                "on_failure",
                &[
                    ("quiesce", OnFailure::Quiesce),
                    ("remove", OnFailure::Remove),
                ],
            ) {
                Some(f) => h.on_failure = f,
                None => ok = false,
            }
        }
        if let Some(v) = t.get("initial") {
            match self.initial(v) {
                Some(i) => h.initial = i,
                None => ok = false,
            }
        }
        for (key, slot) in [
            ("quorum", &mut h.quorum),
            ("quorum_hysteresis", &mut h.quorum_hysteresis),
        ] {
            if let Some(v) = t.get(key) {
                match self.integer(v, key, 0, i32::MAX as i64, "") {
                    Some(n) => *slot = n as u32,
                    None => ok = false,
                }
            }
        }
        for (key, slot) in [
            ("quorum_up", &mut h.quorum_up),
            ("quorum_down", &mut h.quorum_down),
        ] {
            if let Some(v) = t.get(key) {
                match self.argv(v, key) {
                    Some(a) => *slot = a,
                    None => ok = false,
                }
            }
        }
        if let Some(v) = t.get("fallback") {
            match self.fallback(v, svc, real_servers) {
                Some(f) => h.fallback = Some(f),
                None => ok = false,
            }
        }
        if let Some(v) = t.get("check") {
            match self.checks(v, "[[service.check]]") {
                Some(c) => h.checks = c,
                None => ok = false,
            }
        }
        ok.then_some(h)
    }

    fn fallback(
        &mut self,
        v: &Val<'_>,
        svc: &SvcCtx,
        real_servers: &[RealServer],
    ) -> Option<RealServer> {
        let t = self.table(v, "fallback", "[service.fallback]")?;
        if let Some((k, _)) = t.map.iter().find(|(k, _)| k.get_ref() == "check") {
            self.errs.at(
                &k.span(),
                "a fallback server is not checked (it is only in the table while quorum is lost)",
            );
            return None;
        }
        let has_weight = t.get("weight").is_some();
        let mut seen = HashMap::new();
        let mut f = self.real_server(t, svc, &mut seen)?;
        if !has_weight {
            f.dest.weight = 1;
        }
        if real_servers
            .iter()
            .any(|r| r.dest.addr == f.dest.addr && r.dest.port == f.dest.port)
        {
            self.errs.at(
                &v.span(),
                format!(
                    "the fallback server {} is also a real server of {}",
                    crate::addr::format_endpoint(&f.dest.addr, f.dest.port),
                    super::describe(&svc.key)
                ),
            );
            return None;
        }
        Some(f)
    }

    /// `check = [...]` (an array of check tables).
    pub(super) fn checks(&mut self, v: &Val<'_>, name: &'static str) -> Option<Vec<Check>> {
        let mut out = Vec::new();
        let mut ok = true;
        for item in self.array_of_tables(v, "check", name) {
            match self.check(item) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        if let DeValue::Array(items) = v.get_ref() {
            if items
                .iter()
                .any(|i| !matches!(i.get_ref(), DeValue::Table(_)))
            {
                ok = false;
            }
        } else {
            ok = false;
        }
        ok.then_some(out)
    }

    fn check(&mut self, t: Table<'_, '_>) -> Option<Check> {
        let Some(tv) = t.get("type") else {
            self.errs.at(
                &t.span,
                format!(
                    "a check needs a type ({})",
                    KINDS
                        .iter()
                        .map(|k| format!("\"{k}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return None;
        };
        let kind_name = self.choice(
            tv,
            "type",
            &[
                ("tcp", "tcp"),
                ("http", "http"),
                ("https", "https"),
                ("udp", "udp"),
                ("dns", "dns"),
                ("command", "command"),
            ],
        )?;
        let own: Vec<&str> = match kind_name {
            "http" => HTTP.to_vec(),
            "https" => HTTP.iter().chain(HTTPS).copied().collect(),
            "udp" => UDP.to_vec(),
            "dns" => DNS.to_vec(),
            "command" => COMMAND.to_vec(),
            _ => Vec::new(),
        };
        let mut ok = true;
        for (k, _) in t.map.iter() {
            let name = k.get_ref().as_ref();
            if COMMON.contains(&name) || own.contains(&name) {
                continue;
            }
            ok = false;
            let belongs: Vec<&str> = [
                ("http", HTTP),
                ("https", HTTPS),
                ("udp", UDP),
                ("dns", DNS),
                ("command", COMMAND),
            ]
            .iter()
            .filter(|(_, keys)| keys.contains(&name))
            .map(|(n, _)| *n)
            .collect();
            let msg = if !belongs.is_empty() {
                format!(
                    "`{name}` does not apply to a {kind_name} check (it is for type {})",
                    belongs.join(" or ")
                )
            } else {
                let known: Vec<&str> = COMMON.iter().chain(own.iter()).copied().collect();
                match super::suggest(name, &known) {
                    Some(s) => {
                        format!("unknown key `{name}` in a {kind_name} check; did you mean `{s}`?")
                    }
                    None => format!(
                        "unknown key `{name}` in a {kind_name} check (known keys: {})",
                        known.join(", ")
                    ),
                }
            };
            self.errs.at(&k.span(), msg);
        }

        let mut c = Check::new(CheckKind::Tcp);
        if let Some(v) = t.get("interval") {
            match self.seconds(v, "interval", MAX_INTERVAL_S) {
                Some(ms) => c.interval_ms = ms,
                None => ok = false,
            }
        }
        match t.get("timeout") {
            Some(v) => match self.seconds(v, "timeout", MAX_INTERVAL_S) {
                Some(ms) if ms > c.interval_ms => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        format!(
                            "timeout ({}) must not be longer than the interval ({})",
                            show_seconds(ms),
                            show_seconds(c.interval_ms)
                        ),
                    );
                }
                Some(ms) => c.timeout_ms = ms,
                None => ok = false,
            },
            None => c.timeout_ms = DEFAULT_TIMEOUT_MS.min(c.interval_ms),
        }
        for (key, slot) in [("fall", &mut c.fall), ("rise", &mut c.rise)] {
            if let Some(v) = t.get(key) {
                match self.integer(v, key, 1, MAX_COUNT, "") {
                    Some(n) => *slot = n as u32,
                    None => ok = false,
                }
            }
        }
        if let Some(v) = t.get("initial") {
            match self.initial(v) {
                Some(i) => c.initial = Some(i),
                None => ok = false,
            }
        }
        if let Some(v) = t.get("address") {
            match self.string(v, "address").map(|s| (s, s.parse::<IpAddr>())) {
                Some((_, Ok(a))) => c.address = Some(a),
                Some((s, Err(_))) => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        format!("address `{s}` is not an IP address (a check's address has no port; use port)"),
                    );
                }
                None => ok = false,
            }
        }
        if let Some(v) = t.get("port") {
            match self.integer(v, "port", 1, 65535, "") {
                Some(p) => c.port = Some(p as u16),
                None => ok = false,
            }
        }

        let kind = match kind_name {
            "tcp" => Some(CheckKind::Tcp),
            "http" => self.http_probe(&t).map(CheckKind::Http),
            "https" => self.https(&t),
            "udp" => self.udp(&t),
            "dns" => self.dns(&t),
            _ => self.command(&t),
        };
        match kind {
            Some(k) => c.kind = k,
            None => ok = false,
        }
        ok.then_some(c)
    }

    fn initial(&mut self, v: &Val<'_>) -> Option<InitialState> {
        self.choice(
            v,
            "initial",
            &[("up", InitialState::Up), ("down", InitialState::Down)],
        )
    }

    /// Seconds as an integer or a float, > 0 and ≤ `max`, in ms (at least 1).
    fn seconds(&mut self, v: &Val<'_>, key: &str, max: f64) -> Option<u64> {
        let secs = match v.get_ref() {
            DeValue::Integer(_) => self.integer(v, key, 0, max as i64, " seconds")? as f64,
            DeValue::Float(f) => {
                let text: String = f.as_str().chars().filter(|c| *c != '_').collect();
                match text.parse::<f64>() {
                    Ok(x) if x.is_finite() => x,
                    _ => {
                        self.errs
                            .at(&v.span(), format!("{key} must be a number of seconds"));
                        return None;
                    }
                }
            }
            other => {
                self.errs.at(
                    &v.span(),
                    format!("{key} must be a number of seconds, not {}", article(other)),
                );
                return None;
            }
        };
        let ms = (secs * 1000.0).round();
        if !(secs > 0.0 && ms >= 1.0 && secs <= max) {
            self.errs.at(
                &v.span(),
                format!("{key} must be more than 0 and at most {max} seconds (at least 0.001)"),
            );
            return None;
        }
        Some(ms as u64)
    }

    /// A non-empty array of strings (argv, no shell).
    fn argv(&mut self, v: &Val<'_>, key: &str) -> Option<Vec<String>> {
        let bad = |this: &mut Self| {
            this.errs.at(
                &v.span(),
                format!(
                    "{key} must be a non-empty array of strings, the program and its arguments \
                     (no shell), e.g. [\"/usr/local/bin/check\", \"--quiet\"]"
                ),
            );
            None
        };
        let DeValue::Array(items) = v.get_ref() else {
            return bad(self);
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(s.to_string()),
                _ => return bad(self),
            }
        }
        if out.is_empty() || out[0].is_empty() {
            return bad(self);
        }
        Some(out)
    }

    fn opt_string(&mut self, t: &Table<'_, '_>, key: &str) -> Result<Option<String>, ()> {
        match t.get(key) {
            None => Ok(None),
            Some(v) => self.string(v, key).map(|s| Some(s.to_string())).ok_or(()),
        }
    }

    fn http_probe(&mut self, t: &Table<'_, '_>) -> Option<HttpProbe> {
        let mut p = HttpProbe::default();
        let mut ok = true;
        if let Some(v) = t.get("path") {
            match self.string(v, "path") {
                Some(s)
                    if s.starts_with('/')
                        && !s.contains(|c: char| c.is_whitespace() || c.is_control()) =>
                {
                    p.path = s.to_string()
                }
                Some(s) => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        format!("path `{s}` must start with `/` and contain no blanks"),
                    );
                }
                None => ok = false,
            }
        }
        match self.opt_string(t, "host") {
            Ok(Some(h))
                if h.is_empty() || h.contains(|c: char| c.is_whitespace() || c.is_control()) =>
            {
                ok = false;
                self.errs.at(
                    &t.get("host").map_or(t.span.clone(), |v| v.span()),
                    "host must be a non-empty name with no blanks",
                );
            }
            Ok(h) => p.host = h,
            Err(()) => ok = false,
        }
        if let Some(v) = t.get("status") {
            match self.status(v) {
                Some(s) => p.status = s,
                None => ok = false,
            }
        }
        match self.opt_string(t, "expect") {
            Ok(e) => p.expect = e,
            Err(()) => ok = false,
        }
        match self.opt_string(t, "regex") {
            Ok(Some(r)) => match regex_lite::Regex::new(&r) {
                Ok(_) => p.regex = Some(r),
                Err(e) => {
                    ok = false;
                    let span = t.get("regex").map_or(t.span.clone(), |v| v.span());
                    let msg = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    self.errs.at(&span, format!("regex is not valid: {msg}"));
                }
            },
            Ok(None) => {}
            Err(()) => ok = false,
        }
        if let Some(v) = t.get("regex_no_match") {
            match self.boolean(v, "regex_no_match") {
                Some(true) if p.regex.is_none() && t.get("regex").is_none() => {
                    ok = false;
                    self.errs.at(&v.span(), "regex_no_match needs a regex");
                }
                Some(b) => p.regex_no_match = b,
                None => ok = false,
            }
        }
        match self.opt_string(t, "digest") {
            Ok(Some(d)) if d.len() == 32 && d.chars().all(|c| c.is_ascii_hexdigit()) => {
                p.digest = Some(d.to_ascii_lowercase())
            }
            Ok(Some(_)) => {
                ok = false;
                self.errs.at(
                    &t.get("digest").map_or(t.span.clone(), |v| v.span()),
                    "digest must be an MD5 digest: 32 hexadecimal digits",
                );
            }
            Ok(None) => {}
            Err(()) => ok = false,
        }
        ok.then_some(p)
    }

    /// `status = [200, "300-399"]`.
    fn status(&mut self, v: &Val<'_>) -> Option<Vec<(u16, u16)>> {
        let msg = "status must be a non-empty array of codes (200) or ranges (\"200-299\"), each 100..=599";
        let DeValue::Array(items) = v.get_ref() else {
            self.errs.at(&v.span(), msg);
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            let range = match item.get_ref() {
                DeValue::Integer(i) => i.as_str().parse::<u16>().ok().map(|c| (c, c)),
                DeValue::String(s) => match s.split_once('-') {
                    Some((a, b)) => a
                        .trim()
                        .parse::<u16>()
                        .ok()
                        .zip(b.trim().parse::<u16>().ok()),
                    None => s.trim().parse::<u16>().ok().map(|c| (c, c)),
                },
                _ => None,
            };
            match range {
                Some((a, b)) if (100..=599).contains(&a) && (100..=599).contains(&b) && a <= b => {
                    out.push((a, b))
                }
                _ => {
                    self.errs.at(&item.span(), msg);
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.errs.at(&v.span(), msg);
            return None;
        }
        Some(out)
    }

    fn https(&mut self, t: &Table<'_, '_>) -> Option<CheckKind> {
        let http = self.http_probe(t);
        let sni = match self.opt_string(t, "sni") {
            Ok(Some(s))
                if s.is_empty()
                    || s.parse::<IpAddr>().is_ok()
                    || s.contains(char::is_whitespace) =>
            {
                self.errs.at(
                    &t.get("sni").map_or(t.span.clone(), |v| v.span()),
                    "sni must be a DNS name (an IP address is never sent as SNI)",
                );
                return None;
            }
            Ok(s) => s,
            Err(()) => return None,
        };
        let verify = match t.get("verify") {
            Some(v) => self.boolean(v, "verify")?,
            None => false,
        };
        Some(CheckKind::Https {
            http: http?,
            sni,
            verify,
        })
    }

    /// Text or hex bytes from `key` / `key_hex`.
    fn bytes(&mut self, t: &Table<'_, '_>, key: &str) -> Result<Option<Vec<u8>>, ()> {
        let hex_key = format!("{key}_hex");
        match (t.get(key), t.get(&hex_key)) {
            (Some(_), Some(_)) => {
                self.errs.at(
                    &t.key_span(&hex_key),
                    format!("give {key} or {hex_key}, not both"),
                );
                Err(())
            }
            (Some(v), None) => self
                .string(v, key)
                .map(|s| Some(s.as_bytes().to_vec()))
                .ok_or(()),
            (None, Some(v)) => {
                let s = self.string(v, &hex_key).ok_or(())?;
                let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                if !s.len().is_multiple_of(2) || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                    self.errs.at(
                        &v.span(),
                        format!("{hex_key} must be pairs of hexadecimal digits"),
                    );
                    return Err(());
                }
                Ok(Some(
                    (0..s.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
                        .collect(),
                ))
            }
            (None, None) => Ok(None),
        }
    }

    fn udp(&mut self, t: &Table<'_, '_>) -> Option<CheckKind> {
        let payload = self.bytes(t, "payload");
        let expect = self.bytes(t, "expect");
        Some(CheckKind::Udp {
            payload: payload.ok()?.unwrap_or_default(),
            expect: expect.ok()?,
        })
    }

    fn dns(&mut self, t: &Table<'_, '_>) -> Option<CheckKind> {
        let mut ok = true;
        let name = match self.opt_string(t, "name") {
            Ok(Some(n)) if dns_name_ok(&n) => n,
            Ok(Some(n)) => {
                ok = false;
                self.errs.at(
                    &t.get("name").map_or(t.span.clone(), |v| v.span()),
                    format!("name `{n}` is not a DNS name (labels of 1..=63 bytes, 253 in all)"),
                );
                String::new()
            }
            Ok(None) => ".".to_string(),
            Err(()) => {
                ok = false;
                String::new()
            }
        };
        let query_type = match t.get("query_type") {
            None => "SOA".to_string(),
            Some(v) => match self.string(v, "query_type") {
                Some(q) if QUERY_TYPES.contains(&q.to_ascii_uppercase().as_str()) => {
                    q.to_ascii_uppercase()
                }
                Some(q) => {
                    ok = false;
                    self.errs.at(
                        &v.span(),
                        format!("query_type `{q}` is not one of {}", QUERY_TYPES.join(", ")),
                    );
                    String::new()
                }
                None => {
                    ok = false;
                    String::new()
                }
            },
        };
        ok.then_some(CheckKind::Dns { name, query_type })
    }

    fn command(&mut self, t: &Table<'_, '_>) -> Option<CheckKind> {
        let Some(v) = t.get("command") else {
            self.errs.at(
                &t.span,
                "a command check needs command = [\"/path/to/program\", \"arg\", ...]",
            );
            return None;
        };
        let argv = self.argv(v, "command")?;
        let dynamic_weight = match t.get("dynamic_weight") {
            Some(v) => self.boolean(v, "dynamic_weight")?,
            None => false,
        };
        Some(CheckKind::Command {
            argv,
            dynamic_weight,
        })
    }
}

/// Whether `n` can be encoded as a DNS name (`.` is the root).
pub fn dns_name_ok(n: &str) -> bool {
    if n == "." {
        return true;
    }
    let n = n.strip_suffix('.').unwrap_or(n);
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && n.is_ascii()
}

/// `2`, `0.5`, for messages.
fn show_seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{} s", ms as f64 / 1000.0)
    }
}
