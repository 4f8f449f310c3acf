//! `rvsctl import ldirectord|keepalived FILE`: another balancer's
//! configuration → rvs.toml.
//!
//! Each format has its own reader ([`ldirectord`], [`keepalived`]) that
//! turns the file into the [`model`] (rvs.toml's terms, with the file and
//! line each part came from) and reports, as [`Diag`]s, every directive it
//! cannot carry over (errors), every one it drops on purpose because rvs
//! does not need it (warnings) and every block rvs.toml does not configure
//! (notes: keepalived's static addresses and routes). [`emit`] writes the model as
//! rvs.toml, and [`import_text`] validates the result with
//! `rvs_config::parse`, reporting anything the file format refuses at the
//! input directive that produced it. Nothing here touches the network or
//! the running system: file access goes through [`Files`] and name lookups
//! through [`NameDb`], so the readers are pure functions of their inputs.

pub mod emit;
mod glob;
pub mod keepalived;
pub mod ldirectord;
pub mod model;

pub use model::{Diag, Diags, Origin};
use rvs_ipvsadm::NameDb;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The formats `rvsctl import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ldirectord,
    Keepalived,
}

/// Where a reader gets included files from.
pub trait Files {
    fn read(&self, path: &Path) -> Result<String, String>;
    /// The paths a glob pattern (`*`, `?`, `[...]`, `{a,b}`) matches, sorted.
    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String>;
}

/// The file system.
pub struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    }

    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String> {
        glob::expand(pattern)
    }
}

/// No files at all: every include fails (for fuzzing and for text that
/// must stand alone).
pub struct NoFiles;

impl Files for NoFiles {
    fn read(&self, path: &Path) -> Result<String, String> {
        Err(format!("cannot read {}: no file access", path.display()))
    }

    fn glob(&self, _: &Path) -> Result<Vec<PathBuf>, String> {
        Ok(Vec::new())
    }
}

/// What an import produced: the rvs.toml text when there was no error, and
/// every message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub toml: Option<String>,
    pub diags: Diags,
}

/// Imports a file from disk (host and service names from the system's
/// files, or `RVS_HOSTS_FILE` / `RVS_SERVICES_FILE`).
pub fn import_file(format: Format, path: &Path) -> Outcome {
    let shown = path.display().to_string();
    match Disk.read(path) {
        Ok(text) => import_text(
            format,
            &text,
            &shown,
            path.parent(),
            &Disk,
            NameDb::system(),
        ),
        Err(e) => {
            let mut diags = Diags::default();
            diags.error(
                &Origin {
                    file: shown,
                    line: 0,
                },
                "file",
                e,
            );
            Outcome { toml: None, diags }
        }
    }
}

/// Imports `text` (reported as `name`); keepalived's includes are
/// resolved against `dir` through `files`.
pub fn import_text(
    format: Format,
    text: &str,
    name: &str,
    dir: Option<&Path>,
    files: &dyn Files,
    names: &NameDb,
) -> Outcome {
    let mut diags = Diags::default();
    let imported = match format {
        Format::Ldirectord => ldirectord::import(text, name, names, &mut diags),
        Format::Keepalived => keepalived::import(text, name, dir, files, &mut diags),
    };
    diags.sort();
    if !diags.errors.is_empty() {
        return Outcome { toml: None, diags };
    }
    if imported.services.is_empty() && imported.vrrp.is_empty() {
        diags.warn(
            &Origin {
                file: name.to_string(),
                line: 0,
            },
            "file",
            "no virtual service found",
        );
    }
    let out = emit::to_toml(&imported);
    if let Err(errs) = rvs_config::parse(&out.toml, "rvs.toml") {
        for e in errs {
            match out.origin_of(e.line) {
                Some(span) => diags.error(
                    &span.origin,
                    &span.directive,
                    format!("rvs.toml refuses it: {}", e.message),
                ),
                None => diags.error(
                    &Origin {
                        file: name.to_string(),
                        line: 0,
                    },
                    "rvs.toml",
                    format!(
                        "the generated file is invalid at its line {}: {}",
                        e.line, e.message
                    ),
                ),
            }
        }
        diags.sort();
        return Outcome { toml: None, diags };
    }
    Outcome {
        toml: Some(out.toml),
        diags,
    }
}

/// Whether a `receive` string uses regular-expression syntax (otherwise it
/// is imported as a plain substring, `expect`).
pub fn is_regex(s: &str) -> bool {
    s.contains([
        '.', '^', '$', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\',
    ])
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`).
pub fn reverse_name(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::new();
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa"
        }
    }
}

/// Characters that make `system()` run a command through `/bin/sh`.
const SHELL_CHARS: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '{', '}',
    '~', '\n',
];

/// A command line as Perl's `system(STRING)` runs it when it has no shell
/// metacharacters: split at whitespace. With metacharacters it would go
/// through the shell, which rvs never uses, so that is an error.
pub fn split_plain_command(s: &str) -> Result<Vec<String>, String> {
    if let Some(c) = s.chars().find(|c| SHELL_CHARS.contains(c)) {
        return Err(format!(
            "{s:?} needs a shell (it contains {c:?}); rvs runs commands without one: put it in a script"
        ));
    }
    let argv: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    if argv.is_empty() {
        return Err("no command given".into());
    }
    Ok(argv)
}

/// The first character of a command that only a shell would interpret
/// (rvs runs commands without one).
pub fn shell_char(argv: &[String]) -> Option<char> {
    argv.iter()
        .flat_map(|a| a.chars())
        .find(|c| SHELL_CHARS.contains(c))
}

/// A keepalived script line: unquoted whitespace separates arguments, and
/// single quotes keep spaces inside one.
pub fn split_keepalived_command(s: &str) -> Result<Vec<String>, String> {
    let mut argv = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    argv.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err(format!("unterminated single quote in {s:?}"));
    }
    if in_word {
        argv.push(cur);
    }
    if argv.is_empty() {
        return Err("no command given".into());
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name(&"192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name(&"2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }

    #[test]
    fn commands_split_without_a_shell() {
        assert_eq!(
            split_plain_command("/usr/local/bin/sorry  on").unwrap(),
            ["/usr/local/bin/sorry", "on"]
        );
        assert!(split_plain_command("a | b").is_err());
        assert!(split_plain_command("  ").is_err());
        assert_eq!(
            split_keepalived_command("/bin/check 'a b' c").unwrap(),
            ["/bin/check", "a b", "c"]
        );
        assert!(split_keepalived_command("/bin/check 'a").is_err());
    }

    #[test]
    fn receive_strings_that_are_regexes() {
        assert!(!is_regex("OKAY"));
        assert!(!is_regex("It works"));
        assert!(is_regex("^OK$"));
        assert!(is_regex("status: (up|ready)"));
    }
}
