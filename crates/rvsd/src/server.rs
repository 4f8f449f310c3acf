//! The control server: socket setup, the request loop, persistence and the
//! periodic ticks.

use crate::Args;
use rvs_core::table::SchedulerFactory;
use rvs_core::{Errno, Time};
use rvs_ctl::{Request, Response};
use rvs_director::{Director, DirectorOptions, Interface, Rules, StateDir};
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
struct Shared {
    director: SharedDirector,
    saved: Rules,
    state: StateDir,
    allowed_extra: Vec<String>,
    sysctls: rvs_conn::Sysctls,
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

pub fn run(args: Args) -> Result<(), String> {
    for s in &args.extra_schedulers {
        if s != "twos" {
            return Err(format!(
                "--enable-scheduler: unknown extra scheduler `{s}' (only twos is optional)"
            ));
        }
    }
    let state = StateDir::open(&args.state_dir).map_err(|e| {
        format!(
            "cannot open state directory {}: {e}",
            args.state_dir.display()
        )
    })?;
    let saved = state.load()?.unwrap_or_default();
    let director = Director::from_rules(&saved, options(&args.extra_schedulers, args.sysctls()))
        .map_err(|e| {
            format!(
                "cannot restore rules from {}: {e}",
                state.rules_path().display()
            )
        })?;
    tracing::info!(
        services = saved.services.len(),
        rules = %state.rules_path().display(),
        "restored table"
    );
    let listener = bind_socket(&args.socket)?;
    tracing::info!(socket = %args.socket.display(), "listening");
    let director: SharedDirector = Arc::new(Mutex::new(director));
    let shared = Arc::new(Mutex::new(Shared {
        director: director.clone(),
        saved,
        state,
        allowed_extra: args.extra_schedulers.clone(),
        sysctls: args.sysctls(),
    }));
    let epoch = Instant::now();
    spawn_ticker(director, epoch);
    spawn_signal_handler(args.socket.clone())?;
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

fn spawn_ticker(director: SharedDirector, epoch: Instant) {
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
                d.tick(epoch.elapsed().as_millis() as Time);
            }
        })
        .expect("spawn ticker thread");
}

fn spawn_signal_handler(socket: PathBuf) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("signal setup: {e}"))?;
    std::thread::Builder::new()
        .name("rvsd-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "shutting down");
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

/// Applies a request under the lock and persists what it changed.
fn handle(shared: &Mutex<Shared>, req: &Request, now: Time) -> Response {
    let mut guard = lock(shared);
    *lock(&BROADCASTS) = None;
    let s = &mut *guard;
    let (resp, rules) = {
        let mut d = lock(&s.director);
        let resp = d.apply(req, now);
        if !req.is_write() {
            return resp;
        }
        (resp, d.rules())
    };
    if rules == s.saved {
        return resp;
    }
    match s.state.save(&rules) {
        Ok(()) => {
            s.saved = rules;
            resp
        }
        Err(e) => {
            tracing::error!(
                "cannot persist rules to {}: {e}; change rolled back",
                s.state.rules_path().display()
            );
            match Director::from_rules(&s.saved, options(&s.allowed_extra, s.sysctls)) {
                Ok(d) => *lock(&s.director) = d,
                Err(e) => tracing::error!("rollback failed: {e}"),
            }
            match resp {
                Response::Batch(rs) => {
                    Response::Batch(rs.iter().map(|_| Response::Err(Errno::Io)).collect())
                }
                _ => Response::Err(Errno::Io),
            }
        }
    }
}
