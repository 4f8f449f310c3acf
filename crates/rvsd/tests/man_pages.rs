//! The man pages in `packaging/man/` are made from the binaries' own
//! `--help`, so they say what the programs do: this test renders them again
//! and fails when a committed page differs (an option was added, a help
//! text changed). `RVS_BLESS=1` rewrites the pages instead:
//!
//!     cargo build --workspace --bins
//!     RVS_BLESS=1 cargo test -p rvsd --test man_pages
//!
//! `rvsd` and `rvsctl` use clap, whose help has one layout (an about line,
//! `Usage:`, then `Commands:` / `Arguments:` / `Options:` sections); it is
//! turned into roff sections and `.TP` items. `rvsadm` prints ipvsadm's
//! usage text, kept verbatim. The prose around them (description, files,
//! signals) is written here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_rvsd")).with_file_name(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// `NAME ARGS`' standard output (help goes there for every tool here).
fn help(name: &str, args: &[&str]) -> String {
    let bin = bin(name);
    let out = Command::new(&bin)
        .args(args)
        .env_remove("RVS_SOCKET")
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    assert!(out.status.success(), "{name} {args:?} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .replace(bin.to_str().unwrap(), name)
}

/// Text for roff: backslashes and hyphens escaped, no line starting with
/// a control character.
fn esc(s: &str) -> String {
    let t = s.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// An item's term: option names bold, `<VALUES>` italic.
fn term(t: &str) -> String {
    t.split_whitespace()
        .map(|w| {
            if w.starts_with('<') || w.starts_with('[') {
                format!("\\fI{}\\fR", esc(w))
            } else {
                format!("\\fB{}\\fR", esc(w))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A section's items: a term and its description lines.
type Items = Vec<(String, Vec<String>)>;

/// A clap help text, parsed.
struct ClapHelp {
    about: Vec<String>,
    usage: String,
    /// (section title, items (term, description lines)).
    sections: Vec<(String, Items)>,
}

fn parse_clap(text: &str) -> ClapHelp {
    let mut h = ClapHelp {
        about: Vec::new(),
        usage: String::new(),
        sections: Vec::new(),
    };
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if let Some(u) = line.strip_prefix("Usage: ") {
            h.usage = u.to_string();
        } else if h.usage.is_empty() {
            if !t.is_empty() {
                h.about.push(t.to_string());
            }
        } else if indent == 0 && t.ends_with(':') {
            h.sections
                .push((t.trim_end_matches(':').to_string(), Vec::new()));
        } else if t.is_empty() {
        } else if let Some((_, items)) = h.sections.last_mut() {
            if indent <= 6 {
                // `  -h, --help  Print help` or a long-help term alone.
                let (term, desc) = match t.find("  ") {
                    Some(i) => (t[..i].to_string(), t[i..].trim().to_string()),
                    None => (t.to_string(), String::new()),
                };
                items.push((term, [desc].into_iter().filter(|d| !d.is_empty()).collect()));
            } else if let Some((_, desc)) = items.last_mut() {
                desc.push(t.to_string());
            }
        }
    }
    h
}

/// The items of a section as `.TP` paragraphs (help and the `help`
/// subcommand left out: every page says so once).
fn items(out: &mut String, items: &[(String, Vec<String>)]) {
    for (t, desc) in items {
        if t == "-h, --help" || t == "help" || t == "-V, --version" {
            continue;
        }
        out.push_str(&format!(".TP\n{}\n", term(t)));
        let lines: Vec<String> = desc.iter().map(|d| esc(d)).collect();
        out.push_str(&lines.join("\n.br\n"));
        out.push('\n');
    }
}

fn header(name: &str, about: &str) -> String {
    format!(
        ".\\\" Made from `{name} --help` by crates/rvsd/tests/man_pages.rs; do not edit.\n\
         .TH {} 8 \"\" \"rvs\" \"System Administration\"\n.SH NAME\n{name} \\- {}\n",
        name.to_uppercase(),
        esc(about)
    )
}

fn prose(out: &mut String, text: &str) {
    for para in text.trim().split("\n\n").map(str::trim) {
        if let Some(title) = para.strip_prefix("# ") {
            out.push_str(&format!(".SH {}\n", title.trim()));
            continue;
        }
        if let Some(rest) = para.strip_prefix("- ") {
            // `- TERM: text` → .TP
            let (t, d) = rest.split_once(": ").unwrap_or((rest, ""));
            out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", esc(t), esc(d)));
            continue;
        }
        out.push_str(&format!(".PP\n{}\n", esc(&para.replace('\n', " "))));
    }
}

const RVSD_DESCRIPTION: &str = "
rvsd owns the director table of rvs, the Rust Virtual Server: virtual services, their real servers and schedulers, and the connection table. It restores the table from the state directory at start (or builds it from --config), serves the control protocol on a Unix socket (mode 0600) for rvsadm and rvsctl, and carries the traffic with its engine: the proxy engine is a userspace TCP/UDP load balancer that needs no privileges.

Every change is saved to STATE_DIR/rules.json before it is acknowledged; a change that cannot be saved is rolled back. With --http it also serves the JSON API, Prometheus /metrics and the live status page at /.";

const RVSD_TAIL: &str = "
# SIGNALS

- SIGHUP: re-reads --config and applies the difference: unchanged services and real servers keep their connections and counters. A file with errors changes nothing.

- SIGINT, SIGTERM: removes the control socket and exits.

# ENVIRONMENT

- RVS_SOCKET: the control socket, as --socket.

- RVS_LOG: the log level or filter (error, warn, info, debug, trace; default info). Logs go to standard error.

# FILES

- /run/rvs/rvsd.sock: the control socket.

- /var/lib/rvs/rules.json: the saved table.

- /etc/rvs/rvs.toml: the configuration file of the systemd unit (packaging/rvsd.service).

# SEE ALSO

rvsadm(8), rvsctl(8), ipvsadm(8); docs/config.md, docs/api.md and docs/status-page.md in the rvs sources.";

const RVSCTL_DESCRIPTION: &str = "
rvsctl is the rvs command for what ipvsadm has no words for: checking and converting configuration files, importing ldirectord and keepalived configurations, the health-check status and reloads of a running rvsd, and demo real servers.";

const RVSCTL_TAIL: &str = "
# ENVIRONMENT

- RVS_SOCKET: rvsd's control socket (default /run/rvs/rvsd.sock).

# SEE ALSO

rvsd(8), rvsadm(8); docs/config.md in the rvs sources.";

const RVSADM_PAGE: &str = "
# DESCRIPTION

rvsadm is ipvsadm for rvs: it accepts every command and option of ipvsadm 1.31 and prints what ipvsadm prints, byte for byte, with the same error messages and exit codes, but it manages the table of rvsd over its control socket instead of the kernel's IPVS. Installed or linked under the name ipvsadm it behaves the same; ipvsadm-save and ipvsadm-restore wrappers come with it.

Its commands and options are those of ipvsadm(8), whose page describes them in full. The few places rvs knowingly differs are listed in docs/ipvsadm-compat.md in the rvs sources. The usage text rvsadm -h prints follows.";

const RVSADM_TAIL: &str = "
# ENVIRONMENT

- RVS_SOCKET: rvsd's control socket (default /run/rvs/rvsd.sock).

# EXIT STATUS

0 on success; otherwise 2 or 255, as ipvsadm 1.31 exits in the same case, with its message. When rvsd cannot be reached rvsadm says so as ipvsadm does when IPVS is missing (\"Can't initialize ipvs\") and exits 2.

# SEE ALSO

ipvsadm(8), rvsd(8), rvsctl(8).";

fn rvsd_page() -> String {
    let h = parse_clap(&help("rvsd", &["--help"]));
    let mut out = header("rvsd", &h.about.join(" "));
    out.push_str(&format!(".SH SYNOPSIS\n{}\n", term(&h.usage)));
    prose(&mut out, &format!("# DESCRIPTION\n\n{RVSD_DESCRIPTION}"));
    for (title, its) in &h.sections {
        out.push_str(&format!(".SH {}\n", title.to_uppercase()));
        items(&mut out, its);
    }
    prose(&mut out, RVSD_TAIL);
    out
}

/// rvsctl and every subcommand under it, depth first.
fn rvsctl_commands(out: &mut String, path: &mut Vec<String>) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let h = parse_clap(&help("rvsctl", &args));
    if !path.is_empty() {
        out.push_str(&format!(".SS {}\n", term(&h.usage)));
        out.push_str(&format!("{}\n", esc(&h.about.join(" "))));
    }
    for (title, its) in &h.sections {
        if title == "Commands" {
            continue;
        }
        if its
            .iter()
            .all(|(t, _)| t == "-h, --help" || t == "-V, --version")
        {
            continue;
        }
        out.push_str(&format!(".PP\n{title}:\n.RS\n"));
        items(out, its);
        out.push_str(".RE\n");
    }
    let subs: Vec<String> = h
        .sections
        .iter()
        .filter(|(t, _)| t == "Commands")
        .flat_map(|(_, its)| its.iter().map(|(t, _)| t.clone()))
        .filter(|t| t != "help")
        .collect();
    for s in subs {
        path.push(s);
        rvsctl_commands(out, path);
        path.pop();
    }
}

fn rvsctl_page() -> String {
    let h = parse_clap(&help("rvsctl", &["--help"]));
    let mut out = header("rvsctl", &h.about.join(" "));
    out.push_str(&format!(".SH SYNOPSIS\n{}\n", term(&h.usage)));
    prose(&mut out, &format!("# DESCRIPTION\n\n{RVSCTL_DESCRIPTION}"));
    out.push_str(".PP\nEvery command takes \\fB\\-h\\fR, \\fB\\-\\-help\\fR.\n.SH COMMANDS\n");
    rvsctl_commands(&mut out, &mut Vec::new());
    prose(&mut out, RVSCTL_TAIL);
    out
}

fn rvsadm_page() -> String {
    let usage = help("rvsadm", &["-h"]);
    let mut out = header(
        "rvsadm",
        "ipvsadm for rvs: administer the rvs virtual server table",
    );
    out.push_str(
        ".SH SYNOPSIS\n\\fBrvsadm\\fR \\fIcommand\\fR [\\fIoptions\\fR]\n.br\n\
         (the commands and options of \\fBipvsadm\\fR(8) 1.31)\n",
    );
    prose(&mut out, RVSADM_PAGE);
    out.push_str(".PP\n.nf\n");
    for l in usage.lines() {
        out.push_str(&esc(l));
        out.push('\n');
    }
    out.push_str(".fi\n");
    prose(&mut out, RVSADM_TAIL);
    out
}

#[test]
fn man_pages_match_the_help_of_the_binaries() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/man");
    let bless = std::env::var_os("RVS_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, page) in [
        ("rvsd.8", rvsd_page()),
        ("rvsctl.8", rvsctl_page()),
        ("rvsadm.8", rvsadm_page()),
    ] {
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &page).unwrap();
            continue;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(page.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "packaging/man/{stale:?} do not match the binaries' --help: \
         RVS_BLESS=1 cargo test -p rvsd --test man_pages (after cargo build --workspace --bins)"
    );
}

#[test]
fn the_clap_help_parser_reads_both_layouts() {
    let h = parse_clap(
        "About it\n\nUsage: x [OPTIONS] <FILE>\n\nArguments:\n  <FILE>  The file\n\n\
         Options:\n      --socket <SOCKET>\n          Control socket path\n          \n\
         \x20         [default: /run/x]\n\n  -h, --help  Print help\n",
    );
    assert_eq!(h.about, ["About it"]);
    assert_eq!(h.usage, "x [OPTIONS] <FILE>");
    assert_eq!(h.sections.len(), 2);
    assert_eq!(
        h.sections[0].1,
        [("<FILE>".into(), vec!["The file".into()])]
    );
    assert_eq!(
        h.sections[1].1[0],
        (
            "--socket <SOCKET>".to_string(),
            vec![
                "Control socket path".to_string(),
                "[default: /run/x]".to_string()
            ]
        )
    );
    assert_eq!(
        term("--socket <SOCKET>"),
        "\\fB\\-\\-socket\\fR \\fI<SOCKET>\\fR"
    );
    assert_eq!(esc(".hidden \\x"), "\\&.hidden \\ex");
}
