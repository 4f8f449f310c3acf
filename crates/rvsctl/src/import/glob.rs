//! Expanding keepalived's include patterns as glob(3) with GLOB_BRACE does:
//! `{a,b}` alternatives first, then `*`, `?` and `[...]` in each path
//! component (a leading `.` is only matched by a pattern that starts with
//! one). Results are sorted, and a pattern without wildcards names itself
//! whether or not the file exists (the reader then reports it).

use std::path::{Path, PathBuf};

/// Alternatives limit: a pattern with more expansions is refused.
const MAX_EXPANSIONS: usize = 1024;

pub fn expand(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.to_string_lossy();
    let mut out = Vec::new();
    for p in braces(&text)? {
        if !p.contains(['*', '?', '[']) {
            out.push(PathBuf::from(p));
            continue;
        }
        let mut found = Vec::new();
        let (root, rest) = match p.strip_prefix('/') {
            Some(r) => (PathBuf::from("/"), r.to_string()),
            None => (PathBuf::new(), p.clone()),
        };
        walk(&root, &rest.split('/').collect::<Vec<_>>(), &mut found);
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn walk(base: &Path, parts: &[&str], out: &mut Vec<PathBuf>) {
    let Some((first, rest)) = parts.split_first() else {
        out.push(base.to_path_buf());
        return;
    };
    if first.is_empty() || *first == "." {
        walk(base, rest, out);
        return;
    }
    if !first.contains(['*', '?', '[']) {
        let next = base.join(first);
        if rest.is_empty() {
            if next.exists() {
                out.push(next);
            }
        } else if next.is_dir() {
            walk(&next, rest, out);
        }
        return;
    }
    let dir = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| matches(first.as_bytes(), n.as_bytes()))
        .filter(|n| !n.starts_with('.') || first.starts_with('.'))
        .collect();
    names.sort();
    for n in names {
        let next = base.join(&n);
        if rest.is_empty() {
            out.push(next);
        } else if next.is_dir() {
            walk(&next, rest, out);
        }
    }
}

/// fnmatch(3) without flags, on one path component.
pub fn matches(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| matches(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && matches(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(c) = s.first() else { return false };
            let mut i = 1;
            let negate = matches!(p.get(1), Some(b'!') | Some(b'^'));
            if negate {
                i += 1;
            }
            let mut hit = false;
            let mut first = true;
            while i < p.len() && (first || p[i] != b']') {
                first = false;
                if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                    hit |= p[i] <= *c && *c <= p[i + 2];
                    i += 3;
                } else {
                    hit |= p[i] == *c;
                    i += 1;
                }
            }
            if i >= p.len() {
                // No closing bracket: a literal '['.
                return *c == b'[' && matches(&p[1..], &s[1..]);
            }
            hit != negate && matches(&p[i + 1..], &s[1..])
        }
        Some(&b) => s.first() == Some(&b) && matches(&p[1..], &s[1..]),
    }
}

/// csh brace expansion: `a{b,c{d,e}}f` → `abf acdf acef`.
pub fn braces(s: &str) -> Result<Vec<String>, String> {
    let b = s.as_bytes();
    let Some(open) = b.iter().position(|&c| c == b'{') else {
        return Ok(vec![s.to_string()]);
    };
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return Ok(vec![s.to_string()]);
    };
    let (pre, post) = (&s[..open], &s[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt = &s[w[0] + 1..w[1]];
        for tail in braces(&format!("{alt}{post}"))? {
            out.push(format!("{pre}{tail}"));
            if out.len() > MAX_EXPANSIONS {
                return Err(format!("{s:?} expands to more than {MAX_EXPANSIONS} names"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brace_expansion() {
        assert_eq!(braces("a{b,c{d,e}}f").unwrap(), ["abf", "acdf", "acef"]);
        assert_eq!(braces("{,x}y").unwrap(), ["y", "xy"]);
        assert_eq!(braces("plain").unwrap(), ["plain"]);
    }

    #[test]
    fn fnmatch() {
        assert!(matches(b"*.conf", b"web.conf"));
        assert!(!matches(b"*.conf", b"web.conf.bak"));
        assert!(matches(b"vs[0-9].conf", b"vs3.conf"));
        assert!(!matches(b"vs[!0-9].conf", b"vs3.conf"));
        assert!(matches(b"?", b"a"));
    }

    #[test]
    fn expands_in_a_directory() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.conf", "a.conf", ".hidden.conf", "c.txt"] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        let got = expand(&d.path().join("*.conf")).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.conf", "b.conf"]);
    }
}
