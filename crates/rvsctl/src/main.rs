//! `rvsctl`, rvs's own command line for what ipvsadm cannot express.
//!
//! Today: validating an `rvs.toml` (`config check`), converting between an
//! `ipvsadm -S` rule file and `rvs.toml` (`config from-rules`, `config
//! to-rules`), and `demo-servers`, tiny real servers for the demo and for
//! trying rvs out (each answers TCP with an HTTP response naming itself, and
//! UDP datagrams with its name). `import ldirectord|keepalived FILE`
//! converts another balancer's configuration to rvs.toml (`rvsctl::import`).
//! `status [--json]` shows rvsd's health checks, `reload` makes rvsd
//! re-read its configuration file, `drain` and `weight` change one real
//! server's weight by name, over the control socket.

mod demo;
mod status;
mod weight;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "rvsctl",
    version,
    about = "rvs's own command line",
    term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Converts another balancer's configuration to rvs.toml on stdout.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Shows rvsd's state (engine, reloads, failover) and every checked real
    /// server: up or down, since when, each check's last result; and each
    /// service's quorum and fallback.
    Status {
        /// Machine-readable output (the control protocol's HealthReport).
        #[arg(long)]
        json: bool,
        /// rvsd's control socket (default: $RVS_SOCKET or /run/rvs/rvsd.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Shows the failover (VRRP) instances: state, priority, master, VIPs.
    Failover {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// rvsd's control socket (default: $RVS_SOCKET or /run/rvs/rvsd.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Makes rvsd re-read its configuration file, as SIGHUP does; prints
    /// every error and changes nothing if the file has any.
    Reload {
        /// rvsd's control socket (default: $RVS_SOCKET or /run/rvs/rvsd.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Drains a real server: weight 0, its connections continue, no new ones.
    Drain {
        /// tcp:ADDR:PORT, udp:ADDR:PORT, sctp:ADDR:PORT, fwmark:MARK or fwmark6:MARK.
        service: String,
        /// ADDR[:PORT] (the service's port when left out).
        real_server: String,
        /// rvsd's control socket (default: $RVS_SOCKET or /run/rvs/rvsd.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Sets a real server's weight (0..=2147483647), keeping its other attributes.
    Weight {
        /// tcp:ADDR:PORT, udp:ADDR:PORT, sctp:ADDR:PORT, fwmark:MARK or fwmark6:MARK.
        service: String,
        /// ADDR[:PORT] (the service's port when left out).
        real_server: String,
        #[arg(value_parser = clap::value_parser!(i32).range(0..))]
        weight: i32,
        /// rvsd's control socket (default: $RVS_SOCKET or /run/rvs/rvsd.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Runs demo real servers on the given addresses until interrupted.
    DemoServers {
        /// Addresses to serve on (TCP and UDP), e.g. 127.0.0.1:9001.
        #[arg(required = true)]
        addrs: Vec<std::net::SocketAddr>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Validates an rvs.toml; prints every error as FILE:LINE:COL: MESSAGE.
    Check { file: PathBuf },
    /// Converts an `ipvsadm -S` rule file (or `-` for stdin) to rvs.toml on stdout.
    FromRules { file: PathBuf },
    /// Converts an rvs.toml to the rule lines `ipvsadm -S -n` would print.
    ToRules { file: PathBuf },
}

#[derive(Subcommand, Debug)]
enum ImportCmd {
    /// An ldirectord.cf: its virtual blocks, checks, quiescent and fallback.
    Ldirectord { file: PathBuf },
    /// A keepalived.conf (with its includes): virtual_server blocks and checkers.
    Keepalived { file: PathBuf },
}

/// Prints the importer's notes and warnings, then its errors or the file.
fn import(format: rvsctl::import::Format, file: &std::path::Path) -> Result<(), String> {
    let out = rvsctl::import::import_file(format, file);
    for n in &out.diags.notes {
        eprintln!("{}: note: {}: {}", n.origin, n.directive, n.message);
    }
    for w in &out.diags.warnings {
        eprintln!("{}: warning: {}: {}", w.origin, w.directive, w.message);
    }
    match out.toml {
        Some(t) if out.diags.errors.is_empty() => {
            print!("{t}");
            Ok(())
        }
        _ => {
            let errs: Vec<String> = out
                .diags
                .errors
                .iter()
                .map(|e| format!("{}: error: {}: {}", e.origin, e.directive, e.message))
                .collect();
            Err(format!(
                "{}\n{}: {} error(s); nothing written",
                errs.join("\n"),
                file.display(),
                errs.len()
            ))
        }
    }
}

fn read(file: &std::path::Path) -> Result<String, String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
    }
}

fn load(file: &std::path::Path) -> Result<rvs_config::Config, String> {
    rvs_config::load(file).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Config(ConfigCmd::Check { file }) => {
            let c = load(&file)?;
            println!("{}: ok ({} services)", file.display(), c.services.len());
            Ok(())
        }
        Cmd::Config(ConfigCmd::FromRules { file }) => {
            let c = rvs_config::from_rules(&read(&file)?)?;
            print!("{}", rvs_config::to_toml(&c));
            Ok(())
        }
        Cmd::Config(ConfigCmd::ToRules { file }) => {
            print!("{}", rvs_config::to_rules(&load(&file)?));
            Ok(())
        }
        Cmd::Import(ImportCmd::Ldirectord { file }) => {
            import(rvsctl::import::Format::Ldirectord, &file)
        }
        Cmd::Import(ImportCmd::Keepalived { file }) => {
            import(rvsctl::import::Format::Keepalived, &file)
        }
        Cmd::Status { json, socket } => {
            status::status(&socket.unwrap_or_else(rvs_ctl::socket_path), json)
        }
        Cmd::Failover { json, socket } => {
            status::failover(&socket.unwrap_or_else(rvs_ctl::socket_path), json)
        }
        Cmd::Reload { socket } => status::reload(&socket.unwrap_or_else(rvs_ctl::socket_path)),
        Cmd::Drain {
            service,
            real_server,
            socket,
        } => weight::run(
            &socket.unwrap_or_else(rvs_ctl::socket_path),
            &service,
            &real_server,
            0,
        ),
        Cmd::Weight {
            service,
            real_server,
            weight,
            socket,
        } => weight::run(
            &socket.unwrap_or_else(rvs_ctl::socket_path),
            &service,
            &real_server,
            weight,
        ),
        Cmd::DemoServers { addrs } => demo::serve(&addrs),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
