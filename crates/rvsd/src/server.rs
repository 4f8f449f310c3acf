//! The control server: socket setup, the request loop, persistence and the
//! periodic ticks.

use crate::Args;
use rvs_core::table::SchedulerFactory;
use rvs_core::{Errno, Time};
use rvs_ctl::{Request, Response};
use rvs_director::{Director, DirectorOptions, Interface, Rules, StateDir};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most clients served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 64;
/// Longest request line accepted (a `-R` batch of 100k rules fits).
const MAX_REQUEST: usize = 64 << 20;

/// The director, shared with the data path (which takes its lock only
/// briefly, to schedule and to report connection events).
pub type SharedDirector = Arc<Mutex<Director>>;

/// The control plane's state: the director handle and the rules last
/// written to disk. Lock order: `Shared`, then the director.
pub(crate) struct Shared {
    director: SharedDirector,
    saved: Rules,
    state: StateDir,
    allowed_extra: Vec<String>,
    sysctls: rvs_conn::Sysctls,
    /// The data path, if any.
    engine: Option<crate::xdp::DataPath>,
    /// Refuse requests the engine cannot carry instead of accepting them
    /// for ipvsadm compatibility.
    strict: bool,
    /// Engine problems already logged.
    reported: HashSet<(rvs_core::ServiceKey, String)>,
    config_path: Option<PathBuf>,
    /// The configuration last loaded, for reload diffs.
    config: Option<rvs_config::Config>,
    /// Health checks of the configuration's real servers (with `--config`).
    health: Option<crate::health::SharedHealth>,
    health_driver: Option<rvs_health::Driver>,
    /// The daemon's clock (ms since start) in Unix time, for reports.
    clock: crate::health::Clock,
    engine_kind: EngineKind,
}

fn options(extra: &[String], sysctls: rvs_conn::Sysctls) -> DirectorOptions {
    let extra: Vec<String> = extra.to_vec();
    let schedulers: SchedulerFactory = Box::new(move |name| {
        if name == "twos" && !extra.iter().any(|e| e == "twos") {
            return None;
        }
        rvs_sched::new_scheduler(name)
    });
    DirectorOptions {
        schedulers,
        interfaces: Box::new(interface),
        local_broadcast: Box::new(is_local_broadcast),
        sysctls,
        conn_seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (std::process::id() as u64) << 32,
    }
}

/// Whether `addr` is a broadcast address in this network namespace's local
/// routing table (what the kernel's `inet_addr_type` calls RTN_BROADCAST),
/// read from `/proc/net/fib_trie` once per control request (see
/// [`BROADCASTS`]), so a restore of thousands of real servers parses it once.
fn is_local_broadcast(addr: &std::net::IpAddr) -> bool {
    let std::net::IpAddr::V4(a) = addr else {
        return false;
    };
    let mut cache = lock(&BROADCASTS);
    cache.get_or_insert_with(local_broadcasts).contains(a)
}

/// The local broadcast addresses, read lazily; cleared before each request.
static BROADCASTS: Mutex<Option<std::collections::HashSet<std::net::Ipv4Addr>>> = Mutex::new(None);

fn local_broadcasts() -> std::collections::HashSet<std::net::Ipv4Addr> {
    let mut set = std::collections::HashSet::new();
    let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") else {
        return set;
    };
    let mut current: Option<std::net::Ipv4Addr> = None;
    for line in trie.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("|-- ").or_else(|| t.strip_prefix("+-- ")) {
            current = rest.split('/').next().and_then(|a| a.parse().ok());
        } else if t.starts_with("/32 link BROADCAST") {
            if let Some(a) = current {
                set.insert(a);
            }
        }
    }
    set
}

/// An interface's MTU and IFF_UP flag from sysfs; `None` if it does not exist.
fn interface(name: &str) -> Option<Interface> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let dir = Path::new("/sys/class/net").join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let mtu = read("mtu")?.trim().parse().ok()?;
    let flags = read("flags")?;
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok()?;
    Some(Interface {
        mtu,
        up: flags & 1 != 0,
    })
}

/// Which data path carries the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// The userspace TCP/UDP proxy (no privileges needed).
    Proxy,
    /// The XDP data path on `--interface` (NAT, DR, tunnelling in the kernel).
    Xdp,
    /// No data path: the table only, as a bare IPVS without traffic.
    None,
}

impl EngineKind {
    /// `proxy`, `xdp` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Proxy => "proxy",
            EngineKind::Xdp => "xdp",
            EngineKind::None => "none",
        }
    }
}

/// Configuration reloads so far, for `rvsctl status` and `/metrics`.
static RELOADS: Mutex<(u64, u64, Option<rvs_ctl::ReloadOutcome>)> = Mutex::new((0, 0, None));

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn run(args: Args) -> Result<(), String> {
    let mut extra = args.extra_schedulers.clone();
    let config = match &args.config {
        Some(path) => Some(crate::config::load(path)?),
        None => None,
    };
    if args.check {
        let (Some(path), Some(c)) = (&args.config, &config) else {
            return Err("--check needs --config FILE".into());
        };
        println!("{}: ok ({} services)", path.display(), c.services.len());
        return Ok(());
    }
    if let Some(c) = &config {
        extra.extend(c.enable_schedulers.iter().cloned());
    }
    for s in &extra {
        if s != "twos" {
            return Err(format!(
                "--enable-scheduler: unknown extra scheduler `{s}' (only twos is optional)"
            ));
        }
    }
    let sysctls = match &config {
        Some(c) => c.sysctls(),
        None => args.sysctls(),
    };
    let engine_kind = match &config {
        Some(c) if c.engine == rvs_config::Engine::Xdp => EngineKind::Xdp,
        Some(_) => EngineKind::Proxy,
        None => args.engine,
    };
    let state = StateDir::open(&args.state_dir).map_err(|e| {
        format!(
            "cannot open state directory {}: {e}",
            args.state_dir.display()
        )
    })?;
    let saved = state.load()?.unwrap_or_default();
    // The daemon's clock (ms since `epoch`) is shared by the director, the
    // engine and the health checks.
    let epoch = Instant::now();
    let health = config.as_ref().map(crate::health::state);
    let director = match &config {
        // The configuration file is the truth at start, as its health
        // checks' initial states shape it; what rvsadm changes at run time
        // is persisted and kept across reloads of unchanged parts.
        Some(_) => {
            let mut d = Director::new(options(&extra, sysctls));
            let requests = health.as_ref().map(|h| lock(h).sync()).unwrap_or_default();
            let errors: Vec<String> = requests
                .iter()
                .filter_map(|r| match d.apply(r, 0) {
                    Response::Ok => None,
                    other => Some(format!("{r:?}: {other:?}")),
                })
                .collect();
            if !errors.is_empty() {
                return Err(format!(
                    "cannot load the configuration:\n{}",
                    errors.join("\n")
                ));
            }
            d
        }
        None => Director::from_rules(&saved, options(&extra, sysctls)).map_err(|e| {
            format!(
                "cannot restore rules from {}: {e}",
                state.rules_path().display()
            )
        })?,
    };
    let rules = director.rules();
    if rules != saved {
        state
            .save(&rules)
            .map_err(|e| format!("cannot save rules to {}: {e}", state.rules_path().display()))?;
    }
    tracing::info!(
        services = rules.services.len(),
        rules = %state.rules_path().display(),
        config = ?args.config,
        "table ready"
    );
    let http = crate::http::bind(
        args.http,
        args.api_token_file.as_deref(),
        args.api_public_reads,
    )?;
    let listener = bind_socket(&args.socket)?;
    let director: SharedDirector = Arc::new(Mutex::new(director));
    let engine = match engine_kind {
        EngineKind::None => None,
        EngineKind::Proxy => {
            let mut ec = rvs_proxy::EngineConfig {
                workers: args.workers,
                io_uring: !args.no_io_uring,
                ..Default::default()
            };
            if let Some(c) = &config {
                ec.workers = c.proxy.workers as usize;
                ec.connect_timeout = Duration::from_secs(c.proxy.connect_timeout as u64);
                ec.options = crate::config::proxy_options(c);
            }
            let e = rvs_proxy::Engine::start(director.clone(), ec, epoch)
                .map_err(|e| format!("cannot start the proxy engine: {e}"))?;
            tracing::info!(
                workers = e.workers(),
                relay = e.relay_name(),
                "proxy engine started"
            );
            Some(crate::xdp::DataPath::Proxy(e))
        }
        EngineKind::Xdp => {
            let interface = config
                .as_ref()
                .and_then(|c| c.xdp.interface.clone())
                .or_else(|| args.interface.clone())
                .ok_or("the xdp engine needs an interface: --interface IF or [xdp] interface")?;
            let e = crate::xdp::start(
                director.clone(),
                &interface,
                args.xdp_pin_dir.as_deref(),
                epoch,
            )?;
            if let Some(c) = &config {
                e.set_marks(crate::config::mark_rules(c));
            }
            Some(e)
        }
    };
    let shared = Arc::new(Mutex::new(Shared {
        director: director.clone(),
        saved: rules,
        state,
        allowed_extra: extra,
        sysctls,
        engine,
        strict: args.strict,
        reported: HashSet::new(),
        config_path: args.config.clone(),
        config,
        health: health.clone(),
        health_driver: None,
        clock: crate::health::Clock::new(epoch),
        engine_kind,
    }));
    lock(&shared).sync_engine();
    if let Some(h) = health {
        let driver = crate::health::start(h, shared.clone(), epoch)?;
        lock(&shared).health_driver = Some(driver);
    }
    if let Some(c) = &lock(&shared).config {
        crate::failover::start(&c.vrrp, &args.state_dir)?;
    }
    // Lock order: health before the control state, so take the handle out
    // of the control state first.
    let health = lock(&shared).health.clone();
    if let Some(h) = &health {
        crate::health::track_pool(&lock(h));
    }
    tracing::info!(socket = %args.socket.display(), "listening");
    spawn_ticker(director, epoch, http.as_ref().map(|h| h.history()));
    spawn_signal_handler(args.socket.clone(), shared.clone(), epoch)?;
    if let Some(h) = http {
        h.start(shared.clone(), epoch, engine_kind)?;
    }
    let director = lock(&shared).director.clone();
    crate::sync::init(director, epoch, args.sync_peers.clone());
    if let Some(crate::xdp::DataPath::Xdp(e)) = &lock(&shared).engine {
        crate::sync::attach_xdp(e.sync_handle());
    }
    let clients = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: log, back off, keep serving.
                tracing::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
            tracing::warn!("too many control clients; refusing one");
            continue;
        }
        clients.fetch_add(1, Ordering::Relaxed);
        let (shared, clients) = (shared.clone(), clients.clone());
        let spawned = std::thread::Builder::new()
            .name("rvsd-client".into())
            .spawn(move || {
                serve_client(stream, &shared, epoch);
                clients.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start client thread: {e}");
        }
    }
    Ok(())
}

impl Shared {
    /// How the proxy engine relays TCP (`io_uring`, `epoll`, `mixed`) and
    /// its gauges; `None` for the other engines.
    pub(crate) fn proxy_info(&self) -> Option<rvs_api::ProxyInfo> {
        let p = self.engine.as_ref()?.proxy()?;
        Some(rvs_api::ProxyInfo {
            relay: p.relay_name().into(),
            direct_sockets: p.direct_sockets() as u64,
        })
    }

    /// Reconciles the engine's listeners with the table; logs each problem
    /// once.
    fn sync_engine(&mut self) {
        let Some(e) = &self.engine else { return };
        for p in e.sync() {
            if self.reported.insert((p.service, p.message.clone())) {
                tracing::warn!("{p}");
            }
        }
    }

    /// Saves the rules if they changed; on failure rebuilds the director
    /// from the last saved rules and returns false.
    fn persist(&mut self) -> bool {
        let rules = lock(&self.director).rules();
        if rules == self.saved {
            return true;
        }
        match self.state.save(&rules) {
            Ok(()) => {
                self.saved = rules;
                true
            }
            Err(e) => {
                tracing::error!(
                    "cannot persist rules to {}: {e}; change rolled back",
                    self.state.rules_path().display()
                );
                match Director::from_rules(&self.saved, options(&self.allowed_extra, self.sysctls))
                {
                    Ok(d) => *lock(&self.director) = d,
                    Err(e) => tracing::error!("rollback failed: {e}"),
                }
                false
            }
        }
    }

    /// Applies table requests that follow a change of health, as if
    /// rvsadm had sent them; persists and lets the engine follow.
    pub(crate) fn apply_health(&mut self, reqs: &[Request], now: Time) {
        {
            let mut d = lock(&self.director);
            for r in reqs {
                match d.apply(r, now) {
                    Response::Ok => {}
                    other => tracing::warn!("health: {r:?}: {other:?}"),
                }
            }
        }
        self.persist();
        self.sync_engine();
    }
}

/// SIGHUP and `rvsctl reload`: re-reads the configuration file and applies
/// the difference to the running table, so unchanged services and real
/// servers keep their connections, counters and health-check state. A file
/// with errors changes nothing. Returns what was done, or why nothing was.
pub(crate) fn reload(shared: &Mutex<Shared>, now: Time) -> Result<String, String> {
    let r = reload_inner(shared, now);
    let mut stats = lock(&RELOADS);
    match &r {
        Ok(_) => stats.0 += 1,
        Err(_) => stats.1 += 1,
    }
    stats.2 = Some(rvs_ctl::ReloadOutcome {
        at_ms: unix_ms(),
        ok: r.is_ok(),
        message: match &r {
            Ok(m) | Err(m) => m.clone(),
        },
    });
    r
}

fn reload_inner(shared: &Mutex<Shared>, now: Time) -> Result<String, String> {
    let (path, health) = {
        let s = lock(shared);
        (s.config_path.clone(), s.health.clone())
    };
    let Some(path) = path else {
        return Err("rvsd runs without --config: nothing to reload".into());
    };
    let new =
        crate::config::load(&path).map_err(|e| format!("reload refused, nothing changed:\n{e}"))?;
    // Lock order: health, then the control state.
    let mut h = health.as_ref().map(|h| lock(h));
    let mut guard = lock(shared);
    let s = &mut *guard;
    let Some(old) = s.config.clone() else {
        return Err("rvsd runs without --config: nothing to reload".into());
    };
    let changes = rvs_config::engine_changes(&old, &new);
    if changes.iter().any(|c| c.needs_restart()) {
        return Err(format!(
            "reload refused: the engine changed ({changes:?}); restart rvsd for that"
        ));
    }
    if let Some(e) = s.engine.as_ref().and_then(|e| e.proxy()) {
        let o = crate::config::proxy_options(&new);
        e.check_options(&o)
            .map_err(|m| format!("reload refused: {m}"))?;
        e.set_options(o);
    }
    let (summary, reqs) = match h.as_mut() {
        Some(h) => {
            let (summary, reqs) = h.reload(new.clone(), now);
            (Some(summary), reqs)
        }
        None => (None, rvs_config::diff(&old, &new)),
    };
    {
        let mut d = lock(&s.director);
        d.set_sysctls(new.sysctls());
        for r in &reqs {
            match d.apply(r, now) {
                Response::Ok => {}
                other => tracing::warn!("reload: {r:?}: {other:?}"),
            }
        }
    }
    s.persist();
    let vrrp = crate::failover::reload(&new.vrrp);
    if let Some(h) = &h {
        crate::health::track_pool(h);
    }
    if let Some(e) = &s.engine {
        e.set_marks(crate::config::mark_rules(&new));
    }
    s.config = Some(new);
    s.sync_engine();
    if let Some(d) = &s.health_driver {
        d.wake();
    }
    let checks = summary.map_or(String::new(), |x| {
        format!(
            ", checks kept {} new {} dropped {}",
            x.kept, x.fresh, x.dropped
        )
    });
    Ok(format!(
        "{}: reloaded, {} table changes{checks}{vrrp}",
        path.display(),
        reqs.len()
    ))
}

/// Binds the control socket with mode 0600. Refuses to steal the socket of
/// a running daemon; removes a stale one.
fn bind_socket(path: &Path) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another rvsd is already listening on {}",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
    }
    // Bind under a temporary name, restrict it, then rename into place, so
    // the socket is never reachable with a wider mode.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let l = UnixListener::bind(&tmp).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot move socket into {}: {e}", path.display()))?;
    Ok(l)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Available memory in 4 KiB pages (`MemAvailable`), as the kernel's
/// defence routine measures it (its pages are 4 KiB on x86-64 and most
/// arm64 kernels).
fn available_pages() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 4)
}

fn spawn_ticker(director: SharedDirector, epoch: Instant, history: Option<crate::http::History>) {
    std::thread::Builder::new()
        .name("rvsd-ticker".into())
        .spawn(move || {
            let period = Duration::from_millis(rvs_core::stats::ESTIMATOR_PERIOD_MS);
            let mut next = Instant::now() + period;
            loop {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep(next - now);
                }
                next += period;
                let mut d = lock(&director);
                d.tick_estimators();
                if let Some(pages) = available_pages() {
                    if d.update_defense(pages) {
                        tracing::warn!(
                            available_pages = pages,
                            active = d.conns().sysctls.secure_tcp_active(),
                            "secure_tcp defence changed"
                        );
                    }
                }
                if let Some(h) = &history {
                    crate::http::record_rates(h, d.table());
                }
                d.tick(epoch.elapsed().as_millis() as Time);
            }
        })
        .expect("spawn ticker thread");
}

fn spawn_signal_handler(
    socket: PathBuf,
    shared: Arc<Mutex<Shared>>,
    epoch: Instant,
) -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| format!("signal setup: {e}"))?;
    std::thread::Builder::new()
        .name("rvsd-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    match reload(&shared, epoch.elapsed().as_millis() as Time) {
                        Ok(m) => tracing::info!("{m}"),
                        Err(m) => tracing::error!("{m}"),
                    }
                    continue;
                }
                tracing::info!(signal = sig, "shutting down");
                crate::failover::shutdown();
                let _ = std::fs::remove_file(&socket);
                std::process::exit(0);
            }
        })
        .map_err(|e| format!("signal thread: {e}"))?;
    Ok(())
}

fn serve_client(stream: UnixStream, shared: &Mutex<Shared>, epoch: Instant) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = std::io::BufWriter::new(write_half);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => return,
        }
        let resp = if line.len() > MAX_REQUEST {
            Response::BadRequest(format!("request longer than {MAX_REQUEST} bytes"))
        } else {
            match serde_json::from_slice::<Request>(&line) {
                Ok(req) => handle(shared, &req, epoch.elapsed().as_millis() as Time),
                Err(e) => Response::BadRequest(format!("invalid request: {e}")),
            }
        };
        let mut out = serde_json::to_vec(&resp).unwrap_or_else(|_| b"\"Ok\"".to_vec());
        out.push(b'\n');
        if writer.write_all(&out).and_then(|_| writer.flush()).is_err() {
            return;
        }
        if line.len() > MAX_REQUEST {
            return;
        }
    }
}

/// Applies a request under the lock, persists what it changed, and lets
/// the engine follow the table.
pub(crate) fn handle(shared: &Mutex<Shared>, req: &Request, now: Time) -> Response {
    match req {
        Request::Reload => {
            return match reload(shared, now) {
                Ok(m) => {
                    tracing::info!("{m}");
                    Response::Ok
                }
                Err(m) => {
                    tracing::error!("{m}");
                    Response::Refused(m)
                }
            }
        }
        Request::GetHealth => {
            let (health, clock) = {
                let s = lock(shared);
                (s.health.clone(), s.clock)
            };
            let report = health
                .map(|h| crate::health::report(&lock(&h), &clock))
                .unwrap_or_default();
            return Response::Health(report);
        }
        Request::GetStatus => {
            let (engine, config, clock) = {
                let s = lock(shared);
                (
                    s.engine_kind.name().to_string(),
                    s.config_path.as_ref().map(|p| p.display().to_string()),
                    s.clock,
                )
            };
            let (ok, failed, last) = lock(&RELOADS).clone();
            return Response::Status(rvs_ctl::DaemonStatus {
                version: env!("CARGO_PKG_VERSION").to_string(),
                engine,
                config,
                started_ms: clock.unix_ms(0),
                reloads_ok: ok,
                reloads_failed: failed,
                last_reload: last,
                failover: crate::failover::status()
                    .into_iter()
                    .map(|v| rvs_ctl::VrrpStatus {
                        name: v.name,
                        interface: v.interface,
                        vrid: v.vrid,
                        state: v.state.name().to_string(),
                        priority: v.priority,
                        base_priority: v.base_priority,
                        master: v.master,
                        since_ms: v
                            .since
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_millis() as u64)
                            .unwrap_or(0),
                        transitions: v.transitions,
                        fault: v.fault,
                        vips: v.vips.iter().map(|x| x.to_string()).collect(),
                    })
                    .collect(),
            });
        }
        _ => {}
    }
    let mut guard = lock(shared);
    *lock(&BROADCASTS) = None;
    let s = &mut *guard;
    if !req.is_write() {
        return lock(&s.director).apply(req, now);
    }
    let resp = {
        let mut d = lock(&s.director);
        match (&s.engine, s.strict) {
            (Some(e), true) => d.apply_admitted(req, now, &|r, t| e.admit(r, t)),
            _ => d.apply(req, now),
        }
    };
    if !s.persist() {
        return match resp {
            Response::Batch(rs) => {
                Response::Batch(rs.iter().map(|_| Response::Err(Errno::Io)).collect())
            }
            _ => Response::Err(Errno::Io),
        };
    }
    s.sync_engine();
    crate::sync::reconcile();
    resp
}
