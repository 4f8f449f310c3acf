//! Applying control requests to the table, and building listings.

use crate::state::{Rules, ServiceRules, RULES_VERSION};
use rvs_conn::{ConnTable, Sysctls};
use rvs_core::table::DestChange;
use rvs_core::table::{SchedulerFactory, ServiceTable};
use rvs_core::{Errno, Protocol, Service, Time, CONN_TAB_SIZE, IPVS_VERSION};
use rvs_ctl::{
    ConnEntry, DaemonConfig, DestEntry, Info, Request, Response, ServiceEntry, SyncRole, Timeouts,
};
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
    /// The connection-table sysctls (`expire_nodest_conn` ...).
    pub sysctls: Sysctls,
    /// Seed of the connection hash (random in a daemon, fixed in tests).
    pub conn_seed: u64,
}

/// Default multicast group of the sync daemon (224.0.0.81).
const SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// Default UDP port of the sync daemon.
const SYNC_PORT: u16 = 8848;

/// The IPVS state of one director.
pub struct Director {
    table: ServiceTable,
    conns: ConnTable,
    /// Running sync daemons, master first.
    daemons: Vec<DaemonConfig>,
    interfaces: InterfaceLookup,
}

impl Director {
    pub fn new(opts: DirectorOptions) -> Director {
        let mut table = ServiceTable::new(opts.schedulers);
        table.set_local_broadcast_check(opts.local_broadcast);
        let mut conns = ConnTable::with_seed(opts.conn_seed);
        conns.sysctls = opts.sysctls;
        Director {
            table,
            conns,
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
        d.set_timeouts(rules.timeouts)
            .map_err(|e| format!("timeouts {:?}: {e}", rules.timeouts))?;
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
            timeouts: self.timeouts(),
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
        let t = self.conns.timeouts.get();
        Timeouts {
            tcp: t.tcp,
            tcp_fin: t.tcp_fin,
            udp: t.udp,
        }
    }

    /// Replaces the connection-table sysctls (a configuration reload).
    pub fn set_sysctls(&mut self, sysctls: Sysctls) {
        self.conns.sysctls = sysctls;
    }

    /// Runs the defence routine with the memory available now (pages);
    /// returns whether `secure_tcp` changed.
    pub fn update_defense(&mut self, available_pages: u64) -> bool {
        self.conns.sysctls.update_defense(available_pages)
    }

    /// The connection table.
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    /// Both tables at once, for a data path that schedules and forwards.
    pub fn tables_mut(&mut self) -> (&mut ServiceTable, &mut ConnTable) {
        (&mut self.table, &mut self.conns)
    }

    /// Periodic housekeeping: expires connections whose time is up, then
    /// frees unused trashed real servers and lets schedulers expire state.
    pub fn tick(&mut self, now: Time) {
        self.conns.expire(now, &mut self.table);
        self.table.tick(now);
    }

    /// With `expire_nodest_conn`, deleting a real server flushes its entries.
    fn after_delete(&mut self, changes: &[DestChange], now: Time) {
        if !self.conns.sysctls.expire_nodest_conn {
            return;
        }
        for c in changes {
            if let DestChange::Deleted(id) = c {
                self.conns.flush_dest(*id, now, &mut self.table);
            }
        }
    }

    fn conn_entries(&self, now: Time) -> Vec<ConnEntry> {
        self.conns
            .iter()
            .map(|c| ConnEntry {
                proto: match c.proto {
                    "UDP" => Protocol::Udp,
                    "SCTP" => Protocol::Sctp,
                    _ => Protocol::Tcp,
                },
                proto_ip: c.proto == "IP",
                caddr: c.caddr,
                cport: c.cport,
                vaddr: c.vaddr,
                vport: c.vport,
                daddr: c.daddr,
                dport: c.dport,
                state: c.state.to_string(),
                expires: c.remaining_secs(now).min(u32::MAX as u64) as u32,
                pe_name: c.pe_name.map(str::to_string),
                pe_data: c.pe_data.map(|d| String::from_utf8_lossy(d).into_owned()),
            })
            .collect()
    }

    /// The 2-second rate-estimator tick.
    pub fn tick_estimators(&mut self) {
        self.table.tick_estimators();
    }

    /// Applies one request (or a batch, item by item). Never panics on any
    /// input.
    pub fn apply(&mut self, req: &Request, now: Time) -> Response {
        self.apply_admitted(req, now, &|_, _| Ok(()))
    }

    /// Like [`Director::apply`], but each request (each item of a batch,
    /// against the table as the earlier items left it) must first pass
    /// `admit`, the running engine's say on what it can carry; a refusal
    /// becomes [`Response::Refused`] and changes nothing.
    pub fn apply_admitted(
        &mut self,
        req: &Request,
        now: Time,
        admit: &dyn Fn(&Request, &ServiceTable) -> Result<(), String>,
    ) -> Response {
        let one = |d: &mut Director, r: &Request| match admit(r, &d.table) {
            Ok(()) => d.apply_one(r, now),
            Err(m) => Response::Refused(m),
        };
        match req {
            Request::Batch(reqs) => Response::Batch(
                reqs.iter()
                    .map(|r| match r {
                        Request::Batch(_) => Response::BadRequest("nested batch".into()),
                        r => one(self, r),
                    })
                    .collect(),
            ),
            r => one(self, r),
        }
    }

    fn apply_one(&mut self, req: &Request, now: Time) -> Response {
        let done = |r: Result<(), Errno>| match r {
            Ok(()) => Response::Ok,
            Err(e) => Response::Err(e),
        };
        match req {
            Request::AddService { key, config } => done(self.table.add_service(*key, config)),
            Request::EditService { key, config } => done(self.table.edit_service(key, config)),
            Request::DelService { key } => match self.table.del_service(key, now) {
                Ok(changes) => {
                    self.after_delete(&changes, now);
                    Response::Ok
                }
                Err(e) => Response::Err(e),
            },
            Request::Flush => {
                let changes = self.table.flush(now);
                self.after_delete(&changes, now);
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
            } => match self.table.del_dest(service, addr, *port, now) {
                Ok(change) => {
                    self.after_delete(&[change], now);
                    Response::Ok
                }
                Err(e) => Response::Err(e),
            },
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
            Request::GetTimeouts => Response::Timeouts(self.timeouts()),
            Request::GetDaemons => Response::Daemons(self.daemons.clone()),
            Request::GetConns => Response::Conns(self.conn_entries(now)),
            // Health checks and the configuration file belong to the daemon,
            // which answers these itself; a bare director has neither.
            Request::GetHealth => Response::Health(Default::default()),
            Request::GetStatus => Response::Status(Default::default()),
            Request::Reload => Response::Refused("no configuration file to reload".into()),
            Request::Batch(_) => Response::BadRequest("nested batch".into()),
        }
    }

    /// `--set tcp tcpfin udp`: 0 keeps a value; above INT_MAX/HZ is EINVAL.
    fn set_timeouts(&mut self, t: Timeouts) -> Result<(), Errno> {
        let v = |x: u32| i32::try_from(x).map_err(|_| Errno::Inval);
        self.conns.timeouts.set(v(t.tcp)?, v(t.tcp_fin)?, v(t.udp)?)
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
