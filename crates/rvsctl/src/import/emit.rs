//! Writing an [`Imported`] configuration as rvs.toml text. Every block is
//! preceded by a comment naming the directive and the line it came from,
//! and the writer records which output lines each block covers, so that a
//! problem `rvs_config::parse` finds in the output can be reported at the
//! input directive that produced it.
//!
//! The engine is `proxy` when every real server (and every fallback server
//! with an explicit method) is masqueraded, otherwise `xdp`, the only
//! engine that can route or tunnel.

use super::model::*;
use std::fmt::Write;

/// The output lines `first..=last` (1-based) came from `origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub first: usize,
    pub last: usize,
    pub origin: Origin,
    pub directive: String,
}

/// The text and the spans of its blocks, innermost last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub toml: String,
    pub spans: Vec<Span>,
}

impl Output {
    /// The innermost block covering output line `line`.
    pub fn origin_of(&self, line: usize) -> Option<&Span> {
        self.spans
            .iter()
            .filter(|s| s.first <= line && line <= s.last)
            .min_by_key(|s| s.last - s.first)
    }
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote_list(v: &[String]) -> String {
    let q: Vec<String> = v.iter().map(|s| quote(s)).collect();
    format!("[{}]", q.join(", "))
}

/// Seconds as the shortest TOML number: `5`, `0.5`, `2.71828`.
pub fn seconds(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn endpoint(addr: &std::net::IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (std::net::IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// Whether every real server, and every fallback that names its method, is
/// masqueraded: the proxy engine can carry the configuration.
pub fn all_masq(c: &Imported) -> bool {
    c.services.iter().all(|s| {
        s.reals.iter().all(|r| r.method == Method::Masq)
            && s.fallback
                .as_ref()
                .is_none_or(|f| f.method.as_ref().is_none_or(|m| *m == Method::Masq))
    })
}

struct Writer {
    out: String,
    spans: Vec<Span>,
}

impl Writer {
    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// The 1-based number of the next line to be written.
    fn next_line(&self) -> usize {
        self.out.matches('\n').count() + 1
    }

    fn span(&mut self, first: usize, origin: &Origin, directive: &str) {
        let last = self.next_line() - 1;
        self.spans.push(Span {
            first,
            last,
            origin: origin.clone(),
            directive: directive.to_string(),
        });
    }
}

/// The configuration as rvs.toml.
pub fn to_toml(c: &Imported) -> Output {
    let mut w = Writer {
        out: String::new(),
        spans: Vec::new(),
    };
    w.line(&format!(
        "# Imported from {} ({}) by `rvsctl import {}`.",
        c.source, c.format, c.format
    ));
    w.line("# Each block names the directive it came from; docs/import.md explains the mapping.");
    w.line("");
    let engine = if all_masq(c) { "proxy" } else { "xdp" };
    w.line(&format!("engine = {}", quote(engine)));
    if c.services.iter().any(|s| s.scheduler == "twos") {
        w.line("enable_schedulers = [\"twos\"]");
    }
    let t = c.timeouts;
    if t != Timeouts::default() {
        w.line("");
        w.line("[timeouts]");
        for (k, v) in [("tcp", t.tcp), ("tcpfin", t.tcpfin), ("udp", t.udp)] {
            if let Some(v) = v {
                w.line(&format!("{k} = {v}"));
            }
        }
    }
    for s in &c.services {
        service(&mut w, s);
    }
    for v in &c.vrrp {
        vrrp(&mut w, v);
    }
    Output {
        toml: w.out,
        spans: w.spans,
    }
}

fn service(w: &mut Writer, s: &Service) {
    w.line("");
    let first = w.next_line();
    w.line(&format!("# {} ({})", s.title, s.origin));
    w.line("[[service]]");
    match &s.key {
        Key::Addr { proto, addr, port } => {
            w.line(&format!(
                "{proto} = {}",
                quote(&endpoint(addr, Some(*port)))
            ));
        }
        Key::Fwmark { mark, ipv6 } => {
            w.line(&format!("fwmark = {mark}"));
            if *ipv6 {
                w.line("ipv6 = true");
            }
        }
    }
    w.line(&format!("scheduler = {}", quote(&s.scheduler)));
    if !s.sched_flags.is_empty() {
        w.line(&format!("sched_flags = {}", quote_list(&s.sched_flags)));
    }
    if let Some(p) = s.persistent {
        w.line(&format!("persistent = {p}"));
    }
    match &s.netmask {
        Some(Netmask::V4(m)) => w.line(&format!("netmask = {}", quote(&m.to_string()))),
        Some(Netmask::Prefix(p)) => w.line(&format!("netmask = {p}")),
        None => {}
    }
    if let Some(pe) = &s.pe {
        w.line(&format!("pe = {}", quote(pe)));
    }
    if s.one_packet {
        w.line("one_packet = true");
    }
    if let Some(remove) = s.remove_on_failure {
        let v = if remove { "remove" } else { "quiesce" };
        w.line(&format!("on_failure = {}", quote(v)));
    }
    if let Some(q) = s.quorum {
        w.line(&format!("quorum = {q}"));
    }
    if let Some(h) = s.hysteresis {
        w.line(&format!("quorum_hysteresis = {h}"));
    }
    if !s.quorum_up.is_empty() {
        w.line(&format!("quorum_up = {}", quote_list(&s.quorum_up)));
    }
    if !s.quorum_down.is_empty() {
        w.line(&format!("quorum_down = {}", quote_list(&s.quorum_down)));
    }
    if s.initial_down {
        w.line("initial = \"down\"");
    }
    let head_last = w.next_line() - 1;
    w.spans.push(Span {
        first,
        last: head_last,
        origin: s.origin.clone(),
        directive: s.title.split_whitespace().next().unwrap_or("").to_string(),
    });
    for c in &s.checks {
        check(w, c, "service.check");
    }
    if let Some(f) = &s.fallback {
        w.line("");
        let first = w.next_line();
        w.line(&format!("# fallback ({})", f.origin));
        w.line("[service.fallback]");
        w.line(&format!("address = {}", quote(&endpoint(&f.addr, f.port))));
        if let Some(m) = &f.method {
            method(w, m);
        }
        w.line(&format!("weight = {}", f.weight));
        w.span(first, &f.origin, "fallback");
    }
    for r in &s.reals {
        w.line("");
        let first = w.next_line();
        w.line(&format!("# real server ({})", r.origin));
        w.line("[[service.real_server]]");
        w.line(&format!("address = {}", quote(&endpoint(&r.addr, r.port))));
        method(w, &r.method);
        w.line(&format!("weight = {}", r.weight));
        if r.u_threshold != 0 {
            w.line(&format!("u_threshold = {}", r.u_threshold));
        }
        if r.l_threshold != 0 {
            w.line(&format!("l_threshold = {}", r.l_threshold));
        }
        w.span(first, &r.origin, "real_server");
        for c in &r.checks {
            check(w, c, "service.real_server.check");
        }
    }
    // The service's whole extent, for errors about the service as a whole
    // (duplicates, engine limits) reported past its first lines.
    let last = w.next_line() - 1;
    if last > head_last {
        w.spans.push(Span {
            first,
            last,
            origin: s.origin.clone(),
            directive: s.title.split_whitespace().next().unwrap_or("").to_string(),
        });
    }
}

impl Writer {
    /// One `key = value` line, traced to the directive that set it.
    fn key<T>(&mut self, key: &str, value: &str, at: &At<T>) {
        let first = self.next_line();
        self.line(&format!("{key} = {value}"));
        self.span(first, &at.origin, &at.directive);
    }
}

/// A `[[vrrp]]` table with its trackers. Each key line is its own span, so
/// that what rvs.toml refuses in it is reported at the keepalived directive
/// that set it.
fn vrrp(w: &mut Writer, v: &Vrrp) {
    w.line("");
    let first = w.next_line();
    w.line(&format!("# vrrp_instance {} ({})", v.name, v.origin));
    w.line("[[vrrp]]");
    w.line(&format!("name = {}", quote(&v.name)));
    w.key("interface", &quote(&v.interface.value), &v.interface);
    w.key(
        "virtual_router_id",
        &v.virtual_router_id.value.to_string(),
        &v.virtual_router_id,
    );
    w.key("priority", &v.priority.value.to_string(), &v.priority);
    w.key("version", &v.version.value.to_string(), &v.version);
    w.key(
        "advert_interval",
        &seconds(v.advert_interval.value),
        &v.advert_interval,
    );
    let vips: Vec<String> = v
        .vips
        .value
        .iter()
        .map(|(a, p)| format!("{a}/{p}"))
        .collect();
    w.key("vips", &quote_list(&vips), &v.vips);
    if let Some(a) = &v.unicast_src {
        w.key("unicast_src", &quote(&a.value.to_string()), a);
    }
    if let Some(p) = &v.unicast_peers {
        let list: Vec<String> = p.value.iter().map(|a| a.to_string()).collect();
        w.key("unicast_peers", &quote_list(&list), p);
    }
    if let Some(p) = &v.auth_pass {
        w.key("auth_pass", &quote(&p.value), p);
    }
    if let Some(c) = &v.preempt_comment {
        w.line(&format!("# {c}"));
    }
    w.key("preempt", &v.preempt.value.to_string(), &v.preempt);
    if let Some(d) = &v.preempt_delay {
        w.key("preempt_delay", &seconds(d.value), d);
    }
    if let Some(c) = &v.checksum {
        w.key("checksum", &quote(c.value), c);
    }
    if let Some(n) = &v.down_timer_adverts {
        w.key("down_timer_adverts", &n.value.to_string(), n);
    }
    w.key(
        "garp_repeat",
        &v.garp_repeat.value.to_string(),
        &v.garp_repeat,
    );
    w.key("garp_delay", &seconds(v.garp_delay.value), &v.garp_delay);
    w.key(
        "garp_refresh",
        &seconds(v.garp_refresh.value),
        &v.garp_refresh,
    );
    for (key, argv) in &v.notify {
        w.key(key, &quote_list(&argv.value), argv);
    }
    w.span(first, &v.origin, "vrrp_instance");
    for t in &v.track_interfaces {
        w.line("");
        let first = w.next_line();
        w.line(&format!("# track_interface {} ({})", t.name, t.origin));
        w.line("[[vrrp.track_interface]]");
        w.line(&format!("name = {}", quote(&t.name)));
        w.line(&format!("weight = {}", t.weight));
        w.span(first, &t.origin, "track_interface");
    }
    for t in &v.track_scripts {
        w.line("");
        let first = w.next_line();
        w.line(&format!(
            "# track_script {} ({}), vrrp_script {} ({})",
            t.name, t.origin, t.name, t.script_origin
        ));
        w.line("[[vrrp.track_script]]");
        w.line(&format!("name = {}", quote(&t.name)));
        // What the vrrp_script block says is traced to it.
        let script = At::new((), &t.script_origin, "vrrp_script");
        w.key("command", &quote_list(&t.command), &script);
        w.key("interval", &seconds(t.interval), &script);
        w.key("timeout", &seconds(t.timeout), &script);
        w.key("rise", &t.rise.to_string(), &script);
        w.key("fall", &t.fall.to_string(), &script);
        w.line(&format!("weight = {}", t.weight));
        w.span(first, &t.origin, "track_script");
    }
    // The instance's whole extent, for errors about it as a whole (a
    // duplicate name or router id) reported past its first lines.
    let last = w.next_line() - 1;
    w.spans.push(Span {
        first,
        last,
        origin: v.origin.clone(),
        directive: "vrrp_instance".into(),
    });
}

fn method(w: &mut Writer, m: &Method) {
    w.line(&format!("method = {}", quote(m.name())));
    if let Method::Tunnel(t) = m {
        if t.kind != "ipip" {
            w.line(&format!("tunnel_type = {}", quote(t.kind)));
        }
        if let Some(p) = t.port {
            w.line(&format!("tunnel_port = {p}"));
        }
        if let Some(c) = t.checksum {
            w.line(&format!("tunnel_checksum = {}", quote(c)));
        }
    }
}

fn check(w: &mut Writer, c: &Check, table: &str) {
    w.line("");
    let first = w.next_line();
    w.line(&format!("# {} ({})", c.directive, c.origin));
    w.line(&format!("[[{table}]]"));
    let ty = match &c.kind {
        CheckKind::Tcp => "tcp",
        CheckKind::Http(h) if h.https => "https",
        CheckKind::Http(_) => "http",
        CheckKind::Udp { .. } => "udp",
        CheckKind::Dns { .. } => "dns",
        CheckKind::Command { .. } => "command",
    };
    w.line(&format!("type = {}", quote(ty)));
    w.line(&format!("interval = {}", seconds(c.interval)));
    w.line(&format!("timeout = {}", seconds(c.timeout)));
    w.line(&format!("fall = {}", c.fall));
    w.line(&format!("rise = {}", c.rise));
    if let Some(down) = c.initial_down {
        w.line(&format!(
            "initial = {}",
            quote(if down { "down" } else { "up" })
        ));
    }
    if let Some(a) = c.address {
        w.line(&format!("address = {}", quote(&a.to_string())));
    }
    if let Some(p) = c.port {
        w.line(&format!("port = {p}"));
    }
    match &c.kind {
        CheckKind::Tcp => {}
        CheckKind::Http(h) => {
            if let Some(p) = &h.path {
                w.line(&format!("path = {}", quote(p)));
            }
            if let Some(x) = &h.host {
                w.line(&format!("host = {}", quote(x)));
            }
            if let Some(st) = &h.status {
                let items: Vec<String> = st
                    .iter()
                    .map(|&(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            quote(&format!("{a}-{b}"))
                        }
                    })
                    .collect();
                w.line(&format!("status = [{}]", items.join(", ")));
            }
            if let Some(x) = &h.expect {
                w.line(&format!("expect = {}", quote(x)));
            }
            if let Some(x) = &h.regex {
                w.line(&format!("regex = {}", quote(x)));
            }
            if h.regex_no_match {
                w.line("regex_no_match = true");
            }
            if let Some(x) = &h.digest {
                w.line(&format!("digest = {}", quote(x)));
            }
            if let Some(x) = &h.sni {
                w.line(&format!("sni = {}", quote(x)));
            }
        }
        CheckKind::Udp {
            payload_hex,
            expect_hex,
        } => {
            if let Some(x) = payload_hex {
                w.line(&format!("payload_hex = {}", quote(x)));
            }
            if let Some(x) = expect_hex {
                w.line(&format!("expect_hex = {}", quote(x)));
            }
        }
        CheckKind::Dns { name, query_type } => {
            if let Some(x) = name {
                w.line(&format!("name = {}", quote(x)));
            }
            if let Some(x) = query_type {
                w.line(&format!("query_type = {}", quote(x)));
            }
        }
        CheckKind::Command {
            argv,
            dynamic_weight,
        } => {
            w.line(&format!("command = {}", quote_list(argv)));
            if *dynamic_weight {
                w.line("dynamic_weight = true");
            }
        }
    }
    w.span(first, &c.origin, &c.directive);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_shortest() {
        assert_eq!(seconds(5.0), "5");
        assert_eq!(seconds(0.5), "0.5");
        assert_eq!(seconds(2.25), "2.25");
    }

    #[test]
    fn quoting_escapes_what_toml_needs() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(quote("\u{1}"), "\"\\u0001\"");
    }
}
