//! Replays the oracle's golden ipvsadm cases against `rvsd` + `rvsadm`.
//!
//! Every `NAME.cmds` with a `NAME.out` under `tests/golden/cases/` and
//! `../shared/oracle/cases/` is run the way the oracle ran it (see
//! `tests/golden/README.md`), with `rvsadm` installed as `ipvsadm`, and each
//! command's stdout, stderr and exit code must match byte for byte.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_rvsd"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// One command's result block: everything after the `$ command` line.
type Blocks = Vec<(String, String)>;

fn parse_blocks(out: &str) -> Blocks {
    let mut blocks: Blocks = Vec::new();
    for line in out.split_inclusive('\n') {
        if let Some(cmd) = line.strip_prefix("$ ") {
            blocks.push((cmd.trim_end_matches('\n').to_string(), String::new()));
        } else if let Some(last) = blocks.last_mut() {
            last.1.push_str(line);
        }
    }
    blocks
}

/// The oracle's cmds-mode loop, with kernel-only lines marked `[skipped]`.
const DRIVER: &str = r#"
n=0
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  printf '$ %s\n' "$line"
  case "$line" in
    *ipvsadm*) ;;
    'cat /proc'*|lsmod*|dmesg*|modprobe*|sysctl*) echo '[skipped]'; continue ;;
  esac
  run=$line
  # This kernel has no dummy links; a veth pair behaves the same for these cases.
  case "$run" in *"type dummy"*) n=$((n+1)); run=${run//type dummy/type veth peer name rvsgp$n} ;; esac
  timeout 60 bash -c "$run" > "$OUTDIR/.o" 2> "$OUTDIR/.e" < /dev/null
  rc=$?
  cat "$OUTDIR/.o"
  if [ -s "$OUTDIR/.o" ] && [ "$(tail -c1 "$OUTDIR/.o" | od -An -c | tr -d ' ')" != '\n' ]; then
    printf '\n[no newline at end of stdout]\n'
  fi
  if [ -s "$OUTDIR/.e" ]; then
    echo '[stderr]'
    cat "$OUTDIR/.e"
    if [ "$(tail -c1 "$OUTDIR/.e" | od -An -c | tr -d ' ')" != '\n' ]; then
      printf '\n[no newline at end of stderr]\n'
    fi
  fi
  echo "[exit=$rc]"
done < "$1"
"#;

struct Netns(Option<String>);

impl Netns {
    fn create(name: &str, hosts: &Path) -> Netns {
        if !is_root() || Command::new("ip").arg("-V").output().is_err() {
            return Netns(None);
        }
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Netns(None);
        }
        let etc = PathBuf::from("/etc/netns").join(name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::copy(hosts, etc.join("hosts")).unwrap();
        let _ = Command::new("ip")
            .args(["netns", "exec", name, "ip", "link", "set", "lo", "up"])
            .status();
        Netns(Some(name.to_string()))
    }

    fn command(&self, program: &Path) -> Command {
        match &self.0 {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(ns) = &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(ns));
        }
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one case; returns the mismatching blocks as readable diffs.
fn run_case(cmds: &Path, expected: &str, ignored: &HashSet<(String, String)>) -> Vec<String> {
    let name = cmds.file_stem().unwrap().to_string_lossy().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let rvsadm = bin_dir().join("rvsadm");
    assert!(
        rvsadm.exists(),
        "{} missing: run `cargo build --bins` first",
        rvsadm.display()
    );
    std::os::unix::fs::symlink(&rvsadm, bin.join("ipvsadm")).unwrap();
    let scripts = repo_root().join("crates/rvs-ipvsadm/scripts");
    for s in ["ipvsadm-save", "ipvsadm-restore"] {
        if scripts.join(s).exists() {
            std::os::unix::fs::symlink(scripts.join(s), bin.join(s)).unwrap();
        }
    }
    let ns = Netns::create(
        &format!("rvsg-{}-{}", std::process::id(), name),
        &repo_root().join("tests/golden/vm-hosts"),
    );
    let sock = tmp.path().join("rvsd.sock");
    let daemon = Daemon(
        ns.command(Path::new(env!("CARGO_BIN_EXE_rvsd")))
            .arg("--socket")
            .arg(&sock)
            .arg("--state-dir")
            .arg(tmp.path().join("state"))
            .env("RVS_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("start rvsd"),
    );
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "rvsd did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let driver = tmp.path().join("driver.sh");
    std::fs::write(&driver, DRIVER).unwrap();
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        bin.display()
    );
    let out = ns
        .command(Path::new("/bin/bash"))
        .arg(&driver)
        .arg(cmds)
        .current_dir(&work)
        .env_clear()
        .env("PATH", path)
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .env("HOME", tmp.path())
        .env("RVS_SOCKET", &sock)
        .env("OUTDIR", tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("run driver");
    drop(daemon);
    let got = String::from_utf8_lossy(&out.stdout).to_string();
    let (want, got) = (parse_blocks(expected), parse_blocks(&got));
    let mut diffs = Vec::new();
    if want.len() != got.len() {
        diffs.push(format!(
            "{name}: {} commands expected, {} run",
            want.len(),
            got.len()
        ));
    }
    for ((wc, wb), (gc, gb)) in want.iter().zip(got.iter()) {
        if wc != gc {
            diffs.push(format!("{name}: command mismatch: `{wc}` vs `{gc}`"));
            break;
        }
        if gb == "[skipped]\n" || ignored.contains(&(name.clone(), wc.clone())) {
            continue;
        }
        if wb != gb {
            diffs.push(format!(
                "{name}: $ {wc}\n~~~ expected\n{wb}~~~ got\n{gb}~~~"
            ));
        }
    }
    diffs
}

fn load_ignored() -> HashSet<(String, String)> {
    let text =
        std::fs::read_to_string(repo_root().join("tests/golden/ignore.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

fn cases() -> BTreeMap<String, (PathBuf, PathBuf)> {
    let mut found = BTreeMap::new();
    for dir in [
        repo_root().join("../shared/oracle/cases"),
        repo_root().join("tests/golden/cases"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "cmds") {
                let out = p.with_extension("out");
                if out.exists() {
                    let key = format!(
                        "{}/{}",
                        dir.file_name().unwrap().to_string_lossy(),
                        p.file_stem().unwrap().to_string_lossy()
                    );
                    found.insert(key, (p, out));
                }
            }
        }
    }
    found
}

#[test]
fn golden_ipvsadm_cases_match_the_real_ipvsadm() {
    let ignored = load_ignored();
    let only = std::env::var("GOLDEN_ONLY").ok();
    let cases = cases();
    assert!(
        cases.len() >= 7,
        "expected the oracle's starter cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut run = 0;
    for (key, (cmds, out)) in &cases {
        if only.as_deref().is_some_and(|o| !key.contains(o)) {
            continue;
        }
        run += 1;
        let expected = std::fs::read_to_string(out).unwrap();
        let diffs = run_case(cmds, &expected, &ignored);
        if !diffs.is_empty() {
            failures.push(format!(
                "== {key}: {} mismatching blocks\n{}",
                diffs.len(),
                diffs.join("\n")
            ));
        }
    }
    assert!(run > 0, "no case selected");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
