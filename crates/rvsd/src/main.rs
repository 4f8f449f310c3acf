//! `rvsd`, the rvs daemon.
//!
//! It owns the director table (services, real servers, timeouts, sync
//! settings), restores it from `--state-dir` at start, and serves the
//! control protocol of `rvs-ctl` on a Unix socket (mode 0600) for `rvsadm`
//! and `rvsctl`. Requests from all clients are applied one at a time under a
//! single lock, and every change is persisted before it is acknowledged; a
//! change that cannot be persisted is rolled back. With `--http` it also
//! serves the HTTP API and Prometheus `/metrics` of `rvs-api`, whose writes
//! take the same path as the control socket's.

mod config;
mod failover;
mod health;
mod http;
mod server;
mod sync;
mod xdp;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// The rvs daemon.
#[derive(Parser, Debug)]
#[command(name = "rvsd", version, about, term_width = 100)]
pub struct Args {
    /// Control socket path.
    #[arg(long, env = "RVS_SOCKET", default_value = rvs_ctl::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Directory where the rules are persisted.
    #[arg(long, default_value = "/var/lib/rvs")]
    pub state_dir: PathBuf,
    /// Also offer a scheduler that Linux 6.1 lacks (only `twos`). By default
    /// the scheduler set is exactly Linux 6.1's, so that `-s twos` fails as
    /// it does with the kernel ipvsadm 1.31 ships with.
    #[arg(long = "enable-scheduler", value_name = "NAME")]
    pub extra_schedulers: Vec<String>,
    /// The configuration file (rvs.toml): engine, services, real servers.
    /// It is the table at start; SIGHUP reloads it as a difference.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate --config and exit: 0 if it is valid, else every error as
    /// FILE:LINE:COL: MESSAGE.
    #[arg(long, requires = "config")]
    pub check: bool,
    /// The data path (without --config; a config file names its own).
    #[arg(long, value_enum, default_value_t = server::EngineKind::Proxy)]
    pub engine: server::EngineKind,
    /// The interface the xdp engine is attached to (`--engine xdp`).
    #[arg(long, value_name = "IF")]
    pub interface: Option<String>,
    /// The bpffs directory the xdp engine pins its maps in (connections
    /// survive a restart through them).
    #[arg(long, value_name = "DIR")]
    pub xdp_pin_dir: Option<PathBuf>,
    /// Proxy engine worker threads (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Relay proxied TCP connections with epoll instead of an io_uring per
    /// worker (rvsd falls back to epoll by itself where io_uring is refused).
    #[arg(long)]
    pub no_io_uring: bool,
    /// Refuse rules the engine cannot carry (the proxy engine carries only
    /// masquerading real servers and TCP/UDP services it can listen on),
    /// with a message saying why. Without it such rules are accepted, as
    /// the kernel accepts them, and a warning is logged.
    #[arg(long)]
    pub strict: bool,
    /// Linux's `net.ipv4.vs.expire_nodest_conn`: deleting a real server
    /// expires its connections at once instead of letting them time out.
    #[arg(long)]
    pub expire_nodest_conn: bool,
    /// Linux's `net.ipv4.vs.expire_quiescent_template`: a persistence
    /// template whose real server has weight 0 is dropped when next used.
    #[arg(long)]
    pub expire_quiescent_template: bool,
    /// Linux's `net.ipv4.vs.conn_reuse_mode` (0..=3, default 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub conn_reuse_mode: u8,
    /// Linux's `net.ipv4.vs.secure_tcp`: the SYN-flood defence's TCP state
    /// table; 0 off, 1 (or 2) on while available memory is below
    /// --amemthresh, 3 always.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub secure_tcp: u8,
    /// Linux's `net.ipv4.vs.amemthresh`: available memory, in pages, below
    /// which the automatic defence switches on.
    #[arg(long, default_value_t = 1024, value_name = "PAGES")]
    pub amemthresh: u64,
    /// Serve the HTTP API and Prometheus /metrics on ADDR (e.g.
    /// 127.0.0.1:9100). Off by default.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// The bearer token the HTTP API's writes need (the file's content).
    /// Without it the API is read-only.
    #[arg(long, value_name = "FILE", requires = "http")]
    pub api_token_file: Option<PathBuf>,
    /// Let anyone who can reach --http read the table and /metrics without
    /// the token (reads are open anyway when --http is a loopback address).
    #[arg(long, requires = "http")]
    pub api_public_reads: bool,
    /// Send connection-sync messages to this director by unicast instead
    /// of to the multicast group (repeat for several); the backup then
    /// listens on the sync port of every local address.
    #[arg(long = "sync-peer", value_name = "ADDR")]
    pub sync_peers: Vec<std::net::IpAddr>,
}

impl Args {
    /// The connection-table sysctls these arguments set.
    pub fn sysctls(&self) -> rvs_conn::Sysctls {
        rvs_conn::Sysctls {
            expire_nodest_conn: self.expire_nodest_conn,
            expire_quiescent_template: self.expire_quiescent_template,
            conn_reuse_mode: self.conn_reuse_mode,
            secure_tcp: if self.secure_tcp == 2 {
                1
            } else {
                self.secure_tcp
            },
            amemthresh: self.amemthresh,
            ..Default::default()
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RVS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    match server::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvsd: {e}");
            ExitCode::FAILURE
        }
    }
}
