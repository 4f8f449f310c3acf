//! Applying control requests to the table, and building listings.

use crate::state::{Rules, ServiceRules, RULES_VERSION};
use rvs_core::table::{SchedulerFactory, ServiceTable};
use rvs_core::{Errno, Service, Time, CONN_TAB_SIZE, IPVS_VERSION};
use rvs_ctl::{DaemonConfig, DestEntry, Info, Request, Response, ServiceEntry, SyncRole, Timeouts};
use std::net::{IpAddr, Ipv4Addr};

/// What the sync daemon needs to know about an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    pub mtu: u32,
    /// IFF_UP: a master cannot send on an interface that is down.
    pub up: bool,
}

/// Looks up an interface by name; `None` if there is no such interface
/// (the sync daemon then fails with ENODEV, as in Linux).
pub type InterfaceLookup = Box<dyn Fn(&str) -> Option<Interface> + Send + Sync>;

/// What the director needs from its environment.
pub struct DirectorOptions {
    pub schedulers: SchedulerFactory,
    pub interfaces: InterfaceLookup,
    /// Whether an address is the broadcast address of a local subnet (the
    /// kernel refuses those as real servers).
    pub local_broadcast: Box<dyn Fn(&IpAddr) -> bool + Send + Sync>,
}

/// Linux's HZ on the reference kernel; `--set` rejects values above INT_MAX/HZ.
const HZ: u32 = 250;
/// Default multicast group of the sync daemon (224.0.0.81).
const SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// Default UDP port of the sync daemon.
const SYNC_PORT: u16 = 8848;

/// The IPVS state of one director.
pub struct Director {
    table: ServiceTable,
    timeouts: Timeouts,
    /// Running sync daemons, master first.
    daemons: Vec<DaemonConfig>,
    interfaces: InterfaceLookup,
}

impl Director {
    pub fn new(opts: DirectorOptions) -> Director {
        let mut table = ServiceTable::new(opts.schedulers);
        table.set_local_broadcast_check(opts.local_broadcast);
        Director {
            table,
            timeouts: Timeouts::default(),
            daemons: Vec::new(),
            interfaces: opts.interfaces,
        }
    }

    /// Rebuilds a director from saved rules. Fails (naming the rule) if a
    /// rule no longer applies, e.g. a scheduler that this build lacks.
    pub fn from_rules(rules: &Rules, opts: DirectorOptions) -> Result<Director, String> {
        // Saved rules were accepted once; the host's subnets may have changed
        // since, which must not make the daemon refuse to start.
        let broadcast = opts.local_broadcast;
        let mut d = Director::new(DirectorOptions {
            local_broadcast: Box::new(|_| false),
            ..opts
        });
        for s in &rules.services {
            d.table
                .add_service(s.key, &s.config)
                .map_err(|e| format!("service {:?}: {e}", s.key))?;
            for dest in &s.dests {
                d.table
                    .add_dest(&s.key, dest)
                    .map_err(|e| format!("real server {} of {:?}: {e}", dest.addr, s.key))?;
            }
        }
        d.timeouts = rules.timeouts;
        d.daemons = rules.daemons.clone();
        d.daemons.sort_by_key(|c| c.role);
        d.table.set_local_broadcast_check(broadcast);
        Ok(d)
    }

    /// The persisted form of the current state.
    pub fn rules(&self) -> Rules {
        Rules {
            version: RULES_VERSION,
            services: self
                .table
                .services()
                .iter()
                .map(|s| ServiceRules {
                    key: s.key,
                    config: s.config.clone(),
                    dests: s.dests.iter().rev().map(|d| d.config.clone()).collect(),
                })
                .collect(),
            timeouts: self.timeouts,
            daemons: self.daemons.clone(),
        }
    }

    pub fn table(&self) -> &ServiceTable {
        &self.table
    }

    pub fn table_mut(&mut self) -> &mut ServiceTable {
        &mut self.table
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Periodic housekeeping (trash, scheduler state); call every few seconds.
    pub fn tick(&mut self, now: Time) {
        self.table.tick(now);
    }

    /// The 2-second rate-estimator tick.
    pub fn tick_estimators(&mut self) {
        self.table.tick_estimators();
    }

    /// Applies one request. Never panics on any input.
    pub fn apply(&mut self, req: &Request, now: Time) -> Response {
        let done = |r: Result<(), Errno>| match r {
            Ok(()) => Response::Ok,
            Err(e) => Response::Err(e),
        };
        match req {
            Request::AddService { key, config } => done(self.table.add_service(*key, config)),
            Request::EditService { key, config } => done(self.table.edit_service(key, config)),
            Request::DelService { key } => done(self.table.del_service(key, now).map(drop)),
            Request::Flush => {
                self.table.flush(now);
                Response::Ok
            }
            Request::AddDest { service, dest } => {
                done(self.table.add_dest(service, dest).map(drop))
            }
            Request::EditDest { service, dest } => {
                done(self.table.edit_dest(service, dest).map(drop))
            }
            Request::DelDest {
                service,
                addr,
                port,
            } => done(self.table.del_dest(service, addr, *port, now).map(drop)),
            Request::Zero { service } => done(self.table.zero(service.as_ref())),
            Request::SetTimeouts(t) => done(self.set_timeouts(*t)),
            Request::StartDaemon(c) => done(self.start_daemon(c)),
            Request::StopDaemon { role } => done(self.stop_daemon(*role)),
            Request::GetInfo => Response::Info(Info {
                version: IPVS_VERSION,
                conn_tab_size: CONN_TAB_SIZE,
            }),
            Request::GetServices => Response::Services(
                self.table
                    .services_in_kernel_order()
                    .into_iter()
                    .map(service_entry)
                    .collect(),
            ),
            Request::GetService { key } => match self.table.service(key) {
                Some(s) => Response::Service(service_entry(s)),
                None => Response::Err(Errno::Srch),
            },
            Request::GetTimeouts => Response::Timeouts(self.timeouts),
            Request::GetDaemons => Response::Daemons(self.daemons.clone()),
            Request::GetConns => Response::Conns(Vec::new()),
            Request::Batch(reqs) => Response::Batch(
                reqs.iter()
                    .map(|r| match r {
                        Request::Batch(_) => Response::BadRequest("nested batch".into()),
                        r => self.apply(r, now),
                    })
                    .collect(),
            ),
        }
    }

    /// `--set tcp tcpfin udp`: 0 keeps a value; above INT_MAX/HZ is EINVAL.
    fn set_timeouts(&mut self, t: Timeouts) -> Result<(), Errno> {
        let max = i32::MAX as u32 / HZ;
        if t.tcp > max || t.tcp_fin > max || t.udp > max {
            return Err(Errno::Inval);
        }
        if t.tcp != 0 {
            self.timeouts.tcp = t.tcp;
        }
        if t.tcp_fin != 0 {
            self.timeouts.tcp_fin = t.tcp_fin;
        }
        if t.udp != 0 {
            self.timeouts.udp = t.udp;
        }
        Ok(())
    }

    /// `--start-daemon`: EEXIST if that role runs, EINVAL with mixed-family
    /// real servers or a non-multicast group, ENODEV for an unknown
    /// interface. Fills in Linux's defaults.
    fn start_daemon(&mut self, c: &DaemonConfig) -> Result<(), Errno> {
        if self.table.has_mixed_family_dests() {
            return Err(Errno::Inval);
        }
        if let Some(g) = c.mcast_group {
            if !g.is_multicast() {
                return Err(Errno::Inval);
            }
        }
        if self.daemons.iter().any(|d| d.role == c.role) {
            return Err(Errno::Exist);
        }
        let iface = (self.interfaces)(&c.mcast_ifn).ok_or(Errno::NoDev)?;
        if c.role == SyncRole::Master && !iface.up {
            return Err(Errno::NetUnreach);
        }
        let mtu = iface.mtu;
        let mut c = c.clone();
        let group = c.mcast_group.unwrap_or(IpAddr::V4(SYNC_GROUP));
        c.mcast_group = Some(group);
        let hlen: u32 = if group.is_ipv6() { 40 + 8 } else { 20 + 8 };
        let (link_mtu, min_len) = match c.role {
            SyncRole::Backup => (mtu.clamp(1500, 65535), 1024),
            SyncRole::Master => (1500, 1),
        };
        c.sync_maxlen = if c.sync_maxlen == 0 {
            (link_mtu - hlen) as u16
        } else {
            (c.sync_maxlen as u32).clamp(min_len, 65535 - hlen) as u16
        };
        if c.mcast_port == 0 {
            c.mcast_port = SYNC_PORT;
        }
        if c.mcast_ttl == 0 {
            c.mcast_ttl = 1;
        }
        self.daemons.push(c);
        self.daemons.sort_by_key(|d| d.role);
        Ok(())
    }

    /// `--stop-daemon`: ESRCH if that role is not running.
    fn stop_daemon(&mut self, role: SyncRole) -> Result<(), Errno> {
        let before = self.daemons.len();
        self.daemons.retain(|d| d.role != role);
        if self.daemons.len() == before {
            return Err(Errno::Srch);
        }
        Ok(())
    }
}

fn service_entry(s: &Service) -> ServiceEntry {
    ServiceEntry {
        key: s.key,
        config: s.config.clone(),
        stats: s.stats.shown(),
        rates: s.stats.rates(),
        dests: s
            .dests
            .iter()
            .map(|d| DestEntry {
                config: d.config.clone(),
                activeconns: d.activeconns,
                inactconns: d.inactconns,
                persistconns: d.persistconns,
                stats: d.stats.shown(),
                rates: d.stats.rates(),
            })
            .collect(),
    }
}
