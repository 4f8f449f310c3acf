//! rvs.toml, the configuration file of `rvsd --config`.
//!
//! This crate owns the file's schema and everything done with it without a
//! daemon: [`parse`] reads and validates a file, reporting every problem
//! with its line and column ([`ConfigError`]), with the checks ipvsadm and
//! the kernel apply to `-A`/`-a` plus what the chosen engine cannot carry;
//! [`Config`] turns it into the model's requests and values (services and
//! real servers in declaration order, timeouts, sysctls, proxy options);
//! [`diff`] and [`engine_changes`] compute what a reload (SIGHUP) must do
//! while keeping everything that did not change; [`to_toml`] writes a
//! configuration back; [`from_rules`] and [`to_rules`] convert from and to
//! the `ipvsadm -S` rule format; the `[[vrrp]]` failover instances are
//! read into [`VrrpInstance`]s for `rvs-vrrp`. The schema is documented in
//! `docs/config.md`.

mod addr;
mod diff;
mod error;
mod health;
mod model;
mod parse;
mod rules;
mod vrrp;
mod write;

pub use addr::{format_endpoint, format_service_name, parse_endpoint, parse_service_name};
pub use diff::{diff, engine_changes, EngineChange};
pub use error::{line_col, ConfigError};
pub use health::*;
pub use model::*;
pub use parse::{
    describe, dns_name_ok, parse, parse_match, MAX_CONNECT_TIMEOUT, MAX_MARK_RANGES, MAX_TIMEOUT,
    MAX_WEIGHT, MAX_WORKERS, PLACEHOLDERS, QUERY_TYPES,
};
pub use rules::{from_rules, from_rules_with, to_rules};
pub use vrrp::*;
pub use write::to_toml;

/// Reads and parses a file; I/O errors are reported at line 1, column 1.
pub fn load(path: &std::path::Path) -> Result<Config, Vec<ConfigError>> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &shown),
        Err(e) => Err(vec![ConfigError {
            path: shown,
            line: 1,
            column: 1,
            message: format!("cannot read the file: {e}"),
        }]),
    }
}
