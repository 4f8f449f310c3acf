//! Conversion between a configuration and ipvsadm's rule format (what
//! `ipvsadm -S` writes and `ipvsadm -R` reads).
//!
//! Reading goes through rvsadm's own command-line parser, line by line, so
//! every rule is understood exactly as `ipvsadm -R` would understand it
//! (names through the hosts and services files, the `-g` port forcing, the
//! tunnel option table). Writing reproduces `ipvsadm -S -n` for the table
//! rvsd builds from the configuration: the daemon adds services and real
//! servers in declaration order, the kernel keeps them in hash-bucket and
//! newest-first order, and ipvsadm sorts that with its own comparators, so
//! the same steps are replayed here and rvsadm's printer does the rest.

use crate::health::ServiceHealth;
use crate::model::*;
use rvs_core::service::SVC_F_PERSISTENT;
use rvs_core::table::service_bucket;
use rvs_core::{Counters, FwdMethod, Rates, ServiceKey};
use rvs_ctl::{DestEntry, Info, ServiceEntry};
use rvs_ipvsadm::options::{fmt, Cmd};
use rvs_ipvsadm::parse::{parse_args_with, Exit};
use rvs_ipvsadm::print::list::list_all;
use rvs_ipvsadm::NameDb;
use std::collections::HashMap;

/// Reads an `ipvsadm -S` (or `-S -n`) rule file, resolving names through
/// `/etc/hosts` and `/etc/services` (or `RVS_HOSTS_FILE` /
/// `RVS_SERVICES_FILE`).
pub fn from_rules(text: &str) -> Result<Config, String> {
    from_rules_with(text, NameDb::system())
}

/// Rule-file lines as `-R` splits them, numbered from 1. Blank lines and
/// lines starting with `#` (which `ipvsadm-restore` drops) give no words.
fn rule_lines(text: &str) -> Vec<(usize, Vec<String>)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let words = if line.trim_start().starts_with('#') {
                Vec::new()
            } else {
                let mut pos = 0;
                rvs_ipvsadm::split_restore_line(line.as_bytes(), &mut pos).unwrap_or_default()
            };
            (i + 1, words)
        })
        .collect()
}

/// Two things `ipvsadm -S` writes that its own `-R` refuses, read back as
/// what they stand for: fwmarks above 2^31 - 1 saved as negative numbers
/// (`-f -1`), and a trailing `-b` with nothing after it, which is how it
/// saves an sh or mh service whose only scheduler flag is flag-3 (it
/// names sh's and mh's own two flags and never flag-3).
fn unquirk(words: &mut Vec<String>) {
    for i in 1..words.len() {
        if matches!(words[i - 1].as_str(), "-f" | "--fwmark-service") {
            if let Ok(n) = words[i].parse::<i32>() {
                if n < 0 {
                    words[i] = (n as u32).to_string();
                }
            }
        }
    }
    if words.last().is_some_and(|w| w == "-b") {
        words.push("flag-3".to_string());
    }
}

/// [`from_rules`] with explicit name databases. The rules are checked as
/// `ipvsadm -R` and the kernel would check them; the first problem ends
/// the conversion with `line N: message`. The result uses the xdp engine
/// when a real server needs it (direct routing or tunnelling), otherwise
/// the proxy engine; `--set` lines set the timeouts.
pub fn from_rules_with(text: &str, names: &NameDb) -> Result<Config, String> {
    let mut cfg = Config::default();
    let mut index: HashMap<ServiceKey, usize> = HashMap::new();
    for (n, words) in rule_lines(text) {
        if words.is_empty() {
            continue;
        }
        let fail = |msg: &str| format!("line {n}: {msg}");
        let mut argv = vec!["ipvsadm".to_string()];
        argv.extend(words);
        unquirk(&mut argv);
        let c = match parse_args_with(&argv, names, false) {
            Ok(c) => c,
            Err(Exit::Fail { msg, .. } | Exit::Popt { msg }) => return Err(fail(&msg)),
            Err(Exit::Crash) => return Err(fail("ipvsadm would crash on this line")),
            Err(_) => return Err(fail("not a rule (expected -A, -a or --set)")),
        };
        match c.cmd {
            Cmd::Add => {
                let Some(key) = c.svc.key() else {
                    return Err(fail("-A without a service"));
                };
                if index.contains_key(&key) {
                    return Err(fail(&format!(
                        "Service already exists ({})",
                        crate::parse::describe(&key)
                    )));
                }
                let mut config = c.svc.config();
                if !rvs_sched::NAMES.contains(&config.scheduler.as_str()) {
                    return Err(fail(&format!(
                        "unknown scheduler `{}` (Scheduler or persistence engine not found)",
                        config.scheduler
                    )));
                }
                if !LINUX_SCHEDULERS.contains(&config.scheduler.as_str())
                    && !cfg.enable_schedulers.contains(&config.scheduler)
                {
                    cfg.enable_schedulers.push(config.scheduler.clone());
                }
                if let Some(pe) = &config.pe_name {
                    if !rvs_core::service::PERSISTENCE_ENGINES.contains(&pe.as_str()) {
                        return Err(fail(&format!(
                            "unknown persistence engine `{pe}` (Scheduler or persistence engine not found)"
                        )));
                    }
                }
                if config.flags & SVC_F_PERSISTENT == 0 {
                    // -M without -p has no effect and is never saved.
                    config.timeout = 0;
                    config.netmask = default_netmask(key.af());
                }
                index.insert(key, cfg.services.len());
                cfg.services.push(Service {
                    key,
                    config,
                    proxy_protocol: ProxyProtocol::None,
                    transparent: false,
                    tproxy_port: None,
                    real_servers: Vec::new(),
                    health: ServiceHealth::default(),
                });
            }
            Cmd::AddDest => {
                let (Some(key), Some(dest)) = (c.svc.key(), c.dest.config()) else {
                    return Err(fail("-a without a service or real server"));
                };
                let Some(&i) = index.get(&key) else {
                    return Err(fail(&format!(
                        "Service not defined ({} has no -A line before)",
                        crate::parse::describe(&key)
                    )));
                };
                if dest.weight < 0 || dest.l_threshold > dest.u_threshold {
                    return Err(fail("Numerical result out of range"));
                }
                if !rvs_core::table::is_valid_dest_addr(&dest.addr) {
                    return Err(fail(&format!("{} is not a unicast address", dest.addr)));
                }
                let svc = &mut cfg.services[i];
                if svc.real_server(&dest.addr, dest.port).is_some() {
                    return Err(fail("Destination already exists"));
                }
                if dest.fwd != FwdMethod::Masq {
                    cfg.engine = Engine::Xdp;
                }
                svc.real_servers.push(RealServer::new(dest));
            }
            Cmd::SetTimeout => {
                // 0 leaves a value as it is.
                let t = c.timeouts;
                for (slot, v) in [
                    (&mut cfg.timeouts.tcp, t.tcp),
                    (&mut cfg.timeouts.tcp_fin, t.tcp_fin),
                    (&mut cfg.timeouts.udp, t.udp),
                ] {
                    if v != 0 {
                        *slot = v;
                    }
                }
            }
            other => {
                return Err(fail(&format!(
                    "only -A, -a and --set lines can be converted, not {}",
                    other.name()
                )))
            }
        }
    }
    // What ipvsadm accepts but a configuration file does not.
    if let Err(errs) = crate::parse(&crate::to_toml(&cfg), "converted") {
        let msgs: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        return Err(format!(
            "the rules are valid but not expressible in rvs.toml: {}",
            msgs.join("; ")
        ));
    }
    Ok(cfg)
}

/// The lines `ipvsadm -S -n` prints once rvsd has loaded `c`. Only what
/// the rule format carries is there: no timeouts, no thresholds (ipvsadm
/// never saves them), nothing that is not in the table.
pub fn to_rules(c: &Config) -> String {
    // The kernel's dump order: address services then fwmark services, by
    // hash bucket, newest first in a bucket; real servers newest first.
    let mut order: Vec<(usize, &Service)> = c.services.iter().enumerate().collect();
    order.sort_by_key(|(i, s)| {
        (
            s.key.is_fwmark(),
            service_bucket(&s.key),
            std::cmp::Reverse(*i),
        )
    });
    let entries: Vec<ServiceEntry> = order
        .into_iter()
        .map(|(_, s)| ServiceEntry {
            key: s.key,
            config: s.config.clone(),
            stats: Counters::default(),
            rates: Rates::default(),
            dests: s
                .real_servers
                .iter()
                .rev()
                .map(|r| DestEntry {
                    config: r.dest.clone(),
                    activeconns: 0,
                    inactconns: 0,
                    persistconns: 0,
                    stats: Counters::default(),
                    rates: Rates::default(),
                })
                .collect(),
        })
        .collect();
    let info = Info {
        version: rvs_core::IPVS_VERSION,
        conn_tab_size: rvs_core::CONN_TAB_SIZE,
    };
    let out = list_all(
        &info,
        &entries,
        fmt::RULE | fmt::NUMERIC,
        &NameDb::default(),
    );
    String::from_utf8_lossy(&out).into_owned()
}
