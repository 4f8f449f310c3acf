//! The HTTP API listener (`--http`): binds at start, so a busy address
//! stops rvsd before it serves anything, and runs the `rvs-api` router on
//! its own thread with a current-thread tokio runtime. Every request goes
//! through [`crate::server::handle`], the same path as the control socket.
//! It also owns the rate history the status page draws, which the ticker
//! fills after each estimator tick ([`record_rates`]).

use crate::server::{handle, EngineKind, Shared};
use rvs_api::history::{HistoryConfig, HistoryView, RateHistory};
use rvs_core::table::ServiceTable;
use rvs_core::Time;
use rvs_ctl::{Request, Response};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The daemon as the API sees it.
struct DaemonControl {
    shared: Arc<Mutex<Shared>>,
    epoch: Instant,
    engine: EngineKind,
    history: History,
}

/// The rate history, shared by the ticker (writer) and the API (reader).
pub type History = Arc<Mutex<RateHistory>>;

/// Records the table's current rates into `h` with the wall-clock time.
/// Called by the ticker with the director locked, right after the
/// estimators ticked; the work is bounded by the history's series cap.
pub fn record_rates(h: &History, table: &ServiceTable) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    h.lock()
        .unwrap_or_else(|p| p.into_inner())
        .record_table(now, table);
}

impl rvs_api::Control for DaemonControl {
    fn call(&self, req: Request) -> Response {
        handle(&self.shared, &req, self.epoch.elapsed().as_millis() as Time)
    }

    fn engine(&self) -> String {
        match self.engine {
            EngineKind::Proxy => "proxy",
            EngineKind::Xdp => "xdp",
            EngineKind::None => "none",
        }
        .into()
    }

    fn proxy(&self) -> Option<rvs_api::ProxyInfo> {
        let s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.proxy_info()
    }

    fn history(&self, from: Option<u64>) -> Option<HistoryView> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        Some(h.view(from))
    }
}

/// A bound listener and who may use it.
pub struct Http {
    listener: TcpListener,
    opts: rvs_api::ApiOptions,
    history: History,
}

/// Reads the token (the file's content without surrounding whitespace).
fn read_token(path: &Path) -> Result<String, String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --api-token-file {}: {e}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(format!("--api-token-file {} is empty", path.display()));
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "--api-token-file {}: the token must be one word",
            path.display()
        ));
    }
    Ok(t.to_string())
}

/// Binds `--http` and reads the token; `None` without `--http`.
pub fn bind(
    addr: Option<SocketAddr>,
    token_file: Option<&Path>,
    public_reads: bool,
) -> Result<Option<Http>, String> {
    let Some(addr) = addr else { return Ok(None) };
    let token = token_file.map(read_token).transpose()?;
    let opts = rvs_api::ApiOptions::for_listener(addr, token, public_reads);
    if opts.reads_need_token && opts.token.is_none() {
        return Err(format!(
            "--http {addr} is not a loopback address: give --api-token-file \
             (reads then need the token) or --api-public-reads"
        ));
    }
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("cannot bind --http {addr}: {e}"))?;
    Ok(Some(Http {
        listener,
        opts,
        history: Arc::new(Mutex::new(RateHistory::new(HistoryConfig::default()))),
    }))
}

impl Http {
    /// The rate history the ticker should fill.
    pub fn history(&self) -> History {
        self.history.clone()
    }

    /// Serves the API on its own thread.
    pub fn start(
        self,
        shared: Arc<Mutex<Shared>>,
        epoch: Instant,
        engine: EngineKind,
    ) -> Result<(), String> {
        let local = self
            .listener
            .local_addr()
            .map_err(|e| format!("--http: {e}"))?;
        let app = rvs_api::router(
            Arc::new(DaemonControl {
                shared,
                epoch,
                engine,
                history: self.history.clone(),
            }),
            self.opts.clone(),
        );
        tracing::info!(
            addr = %local,
            writes = self.opts.token.is_some(),
            open_reads = !self.opts.reads_need_token,
            "HTTP API listening"
        );
        std::thread::Builder::new()
            .name("rvsd-http".into())
            .spawn(move || {
                if let Err(e) = rvs_api::serve_blocking(self.listener, app) {
                    tracing::error!("HTTP API stopped: {e}");
                }
            })
            .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
        Ok(())
    }
}
