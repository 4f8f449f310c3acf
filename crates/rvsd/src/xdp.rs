//! The data path rvsd holds: the proxy engine or the xdp engine, behind
//! the three calls the control plane makes (sync after every change, admit
//! in strict mode, options on reload).

use rvs_core::table::ServiceTable;
use rvs_ctl::Request;
use rvs_proxy::SyncProblem;

/// The running engine.
pub enum DataPath {
    Proxy(rvs_proxy::Engine),
    Xdp(rvs_xdp::Engine),
}

impl DataPath {
    /// Lets the engine follow the table; the services it cannot serve.
    pub fn sync(&self) -> Vec<SyncProblem> {
        match self {
            DataPath::Proxy(e) => e.sync(),
            DataPath::Xdp(e) => e
                .sync()
                .into_iter()
                .map(|p| SyncProblem {
                    service: p.service,
                    message: p.message,
                })
                .collect(),
        }
    }

    /// Whether the engine can carry `req`.
    pub fn admit(&self, req: &Request, table: &ServiceTable) -> Result<(), String> {
        match self {
            DataPath::Proxy(e) => e.admit(req, table),
            DataPath::Xdp(e) => e.admit(req, table),
        }
    }

    /// The xdp engine's firewall-mark classification (from the
    /// configuration file's `match` lists); the next sync applies it.
    pub fn set_marks(&self, rules: Vec<rvs_xdp::MarkRule>) {
        if let DataPath::Xdp(e) = self {
            e.set_marks(rules);
        }
    }

    /// The proxy engine, if that is the one running.
    pub fn proxy(&self) -> Option<&rvs_proxy::Engine> {
        match self {
            DataPath::Proxy(e) => Some(e),
            DataPath::Xdp(_) => None,
        }
    }
}

/// Starts the xdp engine on `interface`, its maps pinned under `pin_dir`.
pub fn start(
    director: crate::server::SharedDirector,
    interface: &str,
    pin_dir: Option<&std::path::Path>,
    epoch: std::time::Instant,
) -> Result<DataPath, String> {
    let mut o = rvs_xdp::XdpOptions::new(interface);
    if let Some(p) = pin_dir {
        o.pin_dir = p.to_path_buf();
    }
    let e = rvs_xdp::Engine::start(director, o, epoch)
        .map_err(|e| format!("cannot start the xdp engine on {interface}: {e}"))?;
    tracing::info!(interface, native = e.native(), "xdp engine started");
    Ok(DataPath::Xdp(e))
}
