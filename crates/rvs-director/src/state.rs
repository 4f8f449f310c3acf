//! The persisted rules and the state directory that holds them.
//!
//! Rules are what `ipvsadm -S` would save, plus what it cannot express
//! (thresholds, timeouts, sync daemons): enough to rebuild the table after a
//! restart or a crash. They are written to a temporary file, flushed to disk
//! and renamed over `rules.json`, so a reader sees the old rules or the new
//! ones, never a mix.

use rvs_core::{DestConfig, ServiceConfig, ServiceKey};
use rvs_ctl::{DaemonConfig, Timeouts};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Format version of `rules.json`.
pub const RULES_VERSION: u32 = 1;

/// One service and its real servers, oldest first (the order they must be
/// re-added in to rebuild the kernel's newest-first list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRules {
    pub key: ServiceKey,
    pub config: ServiceConfig,
    pub dests: Vec<DestConfig>,
}

/// The whole persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub version: u32,
    pub services: Vec<ServiceRules>,
    pub timeouts: Timeouts,
    pub daemons: Vec<DaemonConfig>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            version: RULES_VERSION,
            services: Vec::new(),
            timeouts: Timeouts::default(),
            daemons: Vec::new(),
        }
    }
}

/// The daemon's state directory (`--state-dir`).
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating if needed) the directory.
    pub fn open(dir: &Path) -> io::Result<StateDir> {
        fs::create_dir_all(dir)?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn rules_path(&self) -> PathBuf {
        self.dir.join("rules.json")
    }

    /// The saved rules, `None` if there are none yet. A file that cannot be
    /// read or parsed is an error: the daemon must not start over an empty
    /// table and then overwrite the operator's rules.
    pub fn load(&self) -> Result<Option<Rules>, String> {
        let path = self.rules_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let rules: Rules = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: invalid rules file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if rules.version != RULES_VERSION {
            return Err(format!(
                "{}: unsupported rules version {} (expected {RULES_VERSION})",
                path.display(),
                rules.version
            ));
        }
        Ok(Some(rules))
    }

    /// Atomically replaces the saved rules.
    pub fn save(&self, rules: &Rules) -> io::Result<()> {
        let path = self.rules_path();
        let tmp = self.dir.join("rules.json.tmp");
        let mut text = serde_json::to_vec_pretty(rules).map_err(io::Error::other)?;
        text.push(b'\n');
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        // Make the rename itself durable.
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_garbage_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::open(d.path()).unwrap();
        assert_eq!(s.load().unwrap(), None);
        let mut r = Rules::default();
        r.timeouts.tcp = 10;
        s.save(&r).unwrap();
        assert_eq!(s.load().unwrap(), Some(r));
        fs::write(s.rules_path(), "{ not json").unwrap();
        let e = s.load().unwrap_err();
        assert!(e.contains("rules.json:1:3"), "{e}");
    }
}
