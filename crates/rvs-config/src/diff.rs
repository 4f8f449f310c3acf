//! Reloading: the table requests that turn one configuration into another.
//!
//! A service is identified by its [`ServiceKey`], a real server by its
//! address and port inside its service, as in the kernel. Anything that
//! keeps its identity is edited in place (`-E`/`-e`), never deleted and
//! re-added, so its connections, counters and scheduler state survive (the
//! scheduler is only re-bound when its name changes). Order: deletions of
//! real servers, deletions of services (their real servers go with them,
//! without separate requests), the timeouts, service edits, real-server
//! edits, and finally additions, each new service directly followed by its
//! real servers in declaration order.
//!
//! What is not in the table (engine, proxy options, sysctls, enabled
//! schedulers) is reported by [`engine_changes`] for the daemon to apply
//! itself, before the requests.

use crate::model::*;
use rvs_core::ServiceKey;
use rvs_ctl::Request;
use std::collections::HashMap;
use std::net::IpAddr;

/// The minimal requests that turn `old`'s table into `new`'s.
pub fn diff(old: &Config, new: &Config) -> Vec<Request> {
    let old_by_key: HashMap<ServiceKey, &Service> =
        old.services.iter().map(|s| (s.key, s)).collect();
    let new_by_key: HashMap<ServiceKey, &Service> =
        new.services.iter().map(|s| (s.key, s)).collect();
    let mut dest_dels = Vec::new();
    let mut svc_dels = Vec::new();
    for os in &old.services {
        match new_by_key.get(&os.key) {
            None => svc_dels.push(Request::DelService { key: os.key }),
            Some(ns) => {
                for r in &os.real_servers {
                    if ns.real_server(&r.dest.addr, r.dest.port).is_none() {
                        dest_dels.push(Request::DelDest {
                            service: os.key,
                            addr: r.dest.addr,
                            port: r.dest.port,
                        });
                    }
                }
            }
        }
    }

    let mut out = dest_dels;
    out.extend(svc_dels);
    if old.timeouts != new.timeouts {
        out.push(Request::SetTimeouts(new.timeouts));
    }
    let mut dest_edits = Vec::new();
    for ns in &new.services {
        let Some(os) = old_by_key.get(&ns.key) else {
            continue;
        };
        if os.config != ns.config {
            out.push(Request::EditService {
                key: ns.key,
                config: ns.config.clone(),
            });
        }
        for r in &ns.real_servers {
            if let Some(or) = os.real_server(&r.dest.addr, r.dest.port) {
                if or.dest != r.dest {
                    dest_edits.push(Request::EditDest {
                        service: ns.key,
                        dest: r.dest.clone(),
                    });
                }
            }
        }
    }
    out.extend(dest_edits);

    for ns in &new.services {
        let old = old_by_key.get(&ns.key);
        if old.is_none() {
            out.push(Request::AddService {
                key: ns.key,
                config: ns.config.clone(),
            });
        }
        for r in &ns.real_servers {
            let known = old.is_some_and(|os| os.real_server(&r.dest.addr, r.dest.port).is_some());
            if !known {
                out.push(Request::AddDest {
                    service: ns.key,
                    dest: r.dest.clone(),
                });
            }
        }
    }
    out
}

/// Something a reload changes outside the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChange {
    /// `engine` itself: rvsd must be restarted to switch data paths.
    Engine { from: Engine, to: Engine },
    /// `[proxy]` options.
    Proxy(ProxyEngine),
    /// `[xdp]` options.
    Xdp(XdpEngine),
    /// `[sysctl]` values.
    Sysctls(rvs_conn::Sysctls),
    /// `enable_schedulers`: the set of schedulers the daemon offers (apply
    /// it before the requests, which may use a newly enabled one).
    Schedulers(Vec<String>),
    /// The proxy options (PROXY protocol, transparent) of a service that
    /// exists in both configurations. New services carry theirs with them.
    ServiceProxy {
        key: ServiceKey,
        options: ProxyOptions,
    },
    /// The PROXY protocol header a kept real server of a kept service gets
    /// (after the service default and its own override).
    RealServerProxy {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        proxy_protocol: ProxyProtocol,
    },
}

impl EngineChange {
    /// Whether the change needs a restart of rvsd rather than a reload.
    pub fn needs_restart(&self) -> bool {
        matches!(self, EngineChange::Engine { .. } | EngineChange::Xdp(_))
    }
}

/// What changed outside the table between `old` and `new`, in a fixed
/// order (engine, proxy, xdp, sysctls, schedulers, then per service in
/// `new`'s order).
pub fn engine_changes(old: &Config, new: &Config) -> Vec<EngineChange> {
    let mut out = Vec::new();
    if old.engine != new.engine {
        out.push(EngineChange::Engine {
            from: old.engine,
            to: new.engine,
        });
    }
    if old.proxy != new.proxy {
        out.push(EngineChange::Proxy(new.proxy.clone()));
    }
    if old.xdp != new.xdp {
        out.push(EngineChange::Xdp(new.xdp.clone()));
    }
    if old.sysctl != new.sysctl {
        out.push(EngineChange::Sysctls(new.sysctls()));
    }
    let mut a = old.enable_schedulers.clone();
    let mut b = new.enable_schedulers.clone();
    a.sort();
    b.sort();
    if a != b {
        out.push(EngineChange::Schedulers(new.enable_schedulers.clone()));
    }
    for ns in &new.services {
        let Some(os) = old.service(&ns.key) else {
            continue;
        };
        if os.proxy_options() != ns.proxy_options() {
            out.push(EngineChange::ServiceProxy {
                key: ns.key,
                options: ns.proxy_options(),
            });
        }
        for r in &ns.real_servers {
            let Some(or) = os.real_server(&r.dest.addr, r.dest.port) else {
                continue;
            };
            let now = ns.proxy_protocol_for(r);
            if os.proxy_protocol_for(or) != now {
                out.push(EngineChange::RealServerProxy {
                    service: ns.key,
                    addr: r.dest.addr,
                    port: r.dest.port,
                    proxy_protocol: now,
                });
            }
        }
    }
    out
}
