//! The service table: virtual services, their real servers and the trash of
//! deleted real servers, with the validation rules and errnos of
//! `net/netfilter/ipvs/ip_vs_ctl.c` (Linux 6.1).
//!
//! Invariants this module keeps:
//! - each service's real servers are in kernel list order, newest first;
//! - a deleted real server goes to the trash with its counters, and
//!   re-adding the same address and port to a service with the same identity
//!   resurrects it (the kernel's `ip_vs_trash_get_dest`);
//! - every operation either succeeds completely or changes nothing.

use crate::dest::{Dest, DestConfig, DestId, FwdMethod, TunType};
use crate::error::Errno;
use crate::proto::Af;
use crate::sched::Scheduler;
use crate::service::{DestStore, Service, ServiceConfig, ServiceKey, PERSISTENCE_ENGINES};
use crate::stats::Stats;
use crate::{Time, SEC};
use std::collections::HashMap;
use std::net::IpAddr;

/// Builds a scheduler from its ipvsadm name, or `None` if there is no such
/// scheduler (the table then answers ENOENT).
pub type SchedulerFactory = Box<dyn Fn(&str) -> Option<Box<dyn Scheduler>> + Send + Sync>;

/// How long a deleted real server with no connections stays resurrectable
/// (the kernel's IP_VS_DEST_TRASH_PERIOD).
pub const DEST_TRASH_PERIOD: Time = 120 * SEC;

#[derive(Debug)]
struct TrashedDest {
    dest: Dest,
    /// Identity of the service the real server belonged to.
    service: ServiceKey,
    /// Which service object (not just identity) it belonged to: resurrecting
    /// it into a different object zeroes its statistics, as Linux does.
    service_uid: u64,
    /// When it was first seen unused, for the trash period.
    idle_since: Option<Time>,
}

/// What happened to a real server's live connections when it was edited or
/// deleted; the connection table acts on it (e.g. `expire_nodest_conn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestChange {
    Added(DestId),
    Updated(DestId),
    Deleted(DestId),
}

/// The director's table of virtual services.
pub struct ServiceTable {
    /// Services in table order (what `--nosort` shows).
    services: Vec<Service>,
    uids: Vec<u64>,
    index: HashMap<ServiceKey, usize>,
    trash: Vec<TrashedDest>,
    /// Where each live real server is, for [`DestStore`].
    dest_home: HashMap<DestId, ServiceKey>,
    next_id: u64,
    next_uid: u64,
    factory: SchedulerFactory,
    /// Statistics of all traffic (`-Z` with no service zeroes them too).
    pub totals: Stats,
    /// Whether an address is a broadcast address of a local subnet.
    local_broadcast: Box<dyn Fn(&IpAddr) -> bool + Send + Sync>,
}

/// Bits of the kernel's service hash tables (IP_VS_SVC_TAB_BITS).
const SVC_TAB_BITS: u32 = 8;

/// The kernel's service hash bucket (`ip_vs_svc_hashkey` /
/// `ip_vs_svc_fwm_hashkey`). Linux also mixes in a per-boot pointer; rvs
/// uses 0, which is one of the orders a kernel can show.
pub fn service_bucket(key: &ServiceKey) -> u32 {
    let mask = (1 << SVC_TAB_BITS) - 1;
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            let porth = *port as u32;
            let ahash = crate::proto::fold_addr(addr);
            (proto.number() as u32 ^ ahash ^ (porth >> SVC_TAB_BITS) ^ porth) & mask
        }
        ServiceKey::Fwmark { mark, .. } => mark & mask,
    }
}

impl std::fmt::Debug for ServiceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTable")
            .field("services", &self.services)
            .field("trash", &self.trash)
            .finish()
    }
}

fn validate_dest(d: &DestConfig) -> Result<(), Errno> {
    if d.weight < 0 || d.l_threshold > d.u_threshold {
        return Err(Errno::Range);
    }
    if d.fwd == FwdMethod::Tunnel && d.tun_type == TunType::Gue && d.tun_port == 0 {
        return Err(Errno::Inval);
    }
    Ok(())
}

/// The kernel refuses real servers that are not unicast (`ip_vs_new_dest`):
/// 0.0.0.0, the limited broadcast and multicast IPv4 (6.1 accepts the rest
/// of 0.0.0.0/8 and 240.0.0.0/4); unspecified, multicast, IPv4-mapped and
/// link-local IPv6. Broadcast addresses of local subnets depend on the
/// host and are checked by [`ServiceTable::set_local_broadcast_check`].
pub fn is_valid_dest_addr(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => {
            let s = a.segments();
            let mapped = s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff;
            let link_local = s[0] & 0xffc0 == 0xfe80;
            !(a.is_unspecified() || a.is_multicast() || mapped || link_local)
        }
    }
}

impl ServiceTable {
    pub fn new(factory: SchedulerFactory) -> ServiceTable {
        ServiceTable {
            services: Vec::new(),
            uids: Vec::new(),
            index: HashMap::new(),
            trash: Vec::new(),
            dest_home: HashMap::new(),
            next_id: 1,
            next_uid: 1,
            factory,
            totals: Stats::default(),
            local_broadcast: Box::new(|_| false),
        }
    }

    /// Installs the host-dependent part of the kernel's unicast check:
    /// `inet_addr_type` also refuses broadcast addresses of local subnets.
    pub fn set_local_broadcast_check(&mut self, f: Box<dyn Fn(&IpAddr) -> bool + Send + Sync>) {
        self.local_broadcast = f;
    }

    /// Services in the order the kernel's netlink dump gives them (what
    /// `--nosort` shows, and the input of ipvsadm's sort): the address hash
    /// table bucket by bucket, then the fwmark table, newest first within a
    /// bucket.
    pub fn services_in_kernel_order(&self) -> Vec<&Service> {
        let mut v: Vec<(usize, &Service)> = self.services.iter().enumerate().collect();
        v.sort_by_key(|(i, s)| {
            (
                s.key.is_fwmark(),
                service_bucket(&s.key),
                std::cmp::Reverse(*i),
            )
        });
        v.into_iter().map(|(_, s)| s).collect()
    }

    /// Services in table order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.index.get(key).map(|&i| &self.services[i])
    }

    pub fn service_mut(&mut self, key: &ServiceKey) -> Option<&mut Service> {
        self.index.get(key).map(|&i| &mut self.services[i])
    }

    /// A service and the global statistics together, as scheduling a new
    /// connection needs both.
    pub fn service_and_totals_mut(
        &mut self,
        key: &ServiceKey,
    ) -> Option<(&mut Service, &mut Stats)> {
        let &i = self.index.get(key)?;
        Some((&mut self.services[i], &mut self.totals))
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    fn check_config(
        &self,
        key: &ServiceKey,
        cfg: &ServiceConfig,
    ) -> Result<Box<dyn Scheduler>, Errno> {
        let sched = (self.factory)(&cfg.scheduler).ok_or(Errno::NoEnt)?;
        if let Some(pe) = &cfg.pe_name {
            if !pe.is_empty() && !PERSISTENCE_ENGINES.contains(&pe.as_str()) {
                return Err(Errno::NoEnt);
            }
        }
        if key.af() == Af::Inet6 && !(1..=128).contains(&cfg.netmask) {
            return Err(Errno::Inval);
        }
        Ok(sched)
    }

    fn normalise(cfg: &ServiceConfig) -> ServiceConfig {
        let mut c = cfg.clone();
        c.flags &= crate::service::SVC_F_USER_MASK;
        if c.pe_name.as_deref() == Some("") {
            c.pe_name = None;
        }
        c
    }

    /// `-A`: EEXIST if the service exists (checked first, as the kernel
    /// does), ENOENT for an unknown scheduler or persistence engine, EINVAL
    /// for an IPv6 prefix outside 1..=128.
    pub fn add_service(&mut self, key: ServiceKey, cfg: &ServiceConfig) -> Result<(), Errno> {
        if self.index.contains_key(&key) {
            return Err(Errno::Exist);
        }
        let mut sched = self.check_config(&key, cfg)?;
        let mut svc = Service {
            key,
            config: Self::normalise(cfg),
            dests: Vec::new(),
            dest_keys: Default::default(),
            scheduler: None,
            stats: Stats::default(),
        };
        sched.init_service(&svc.sched_view());
        svc.scheduler = Some(sched);
        self.index.insert(key, self.services.len());
        self.services.push(svc);
        self.uids.push(self.next_uid);
        self.next_uid += 1;
        Ok(())
    }

    /// `-E`: replaces every attribute. The scheduler is re-bound (and its
    /// state reset) only when its name changes.
    pub fn edit_service(&mut self, key: &ServiceKey, cfg: &ServiceConfig) -> Result<(), Errno> {
        let &i = self.index.get(key).ok_or(Errno::Srch)?;
        let new_sched = self.check_config(key, cfg)?;
        let svc = &mut self.services[i];
        let cfg = Self::normalise(cfg);
        let rebind = svc.config.scheduler != cfg.scheduler;
        svc.config = cfg;
        // Scheduler flags (sh-port, mh-fallback ...) are read at schedule
        // time; only a new scheduler name re-binds and resets state.
        if rebind {
            let mut sched = new_sched;
            sched.init_service(&svc.sched_view());
            svc.scheduler = Some(sched);
        }
        Ok(())
    }

    /// `-D`: ESRCH if missing. Its real servers go to the trash.
    pub fn del_service(&mut self, key: &ServiceKey, now: Time) -> Result<Vec<DestChange>, Errno> {
        let &i = self.index.get(key).ok_or(Errno::Srch)?;
        let svc = self.services.remove(i);
        let uid = self.uids.remove(i);
        self.reindex();
        let mut changes = Vec::new();
        for d in svc.dests {
            changes.push(DestChange::Deleted(d.id));
            self.trash_dest(*d, svc.key, uid, now);
        }
        Ok(changes)
    }

    /// `-C`: deletes every service.
    pub fn flush(&mut self, now: Time) -> Vec<DestChange> {
        let keys: Vec<ServiceKey> = self.services.iter().map(|s| s.key).collect();
        let mut changes = Vec::new();
        for k in keys {
            if let Ok(c) = self.del_service(&k, now) {
                changes.extend(c);
            }
        }
        changes
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, s) in self.services.iter().enumerate() {
            self.index.insert(s.key, i);
        }
    }

    fn trash_dest(&mut self, mut d: Dest, service: ServiceKey, service_uid: u64, _now: Time) {
        d.available = false;
        self.dest_home.remove(&d.id);
        self.trash.push(TrashedDest {
            dest: d,
            service,
            service_uid,
            idle_since: None,
        });
    }

    /// `-a`: ESRCH for an unknown service, ERANGE for a negative weight or
    /// l_threshold > u_threshold, EINVAL for GUE without a port, a mixed
    /// address family without tunnelling, or a non-unicast address, EEXIST
    /// for a duplicate.
    pub fn add_dest(&mut self, key: &ServiceKey, cfg: &DestConfig) -> Result<DestChange, Errno> {
        let &i = self.index.get(key).ok_or(Errno::Srch)?;
        if cfg.af() != key.af() && cfg.fwd != FwdMethod::Tunnel {
            return Err(Errno::Inval);
        }
        validate_dest(cfg)?;
        if self.services[i].dest_keys.contains(&(cfg.addr, cfg.port)) {
            return Err(Errno::Exist);
        }
        let uid = self.uids[i];
        let trashed = self.trash.iter().position(|t| {
            t.service == *key && t.dest.config.addr == cfg.addr && t.dest.config.port == cfg.port
        });
        let dest = match trashed {
            Some(t) => {
                let t = self.trash.remove(t);
                let mut d = t.dest;
                if t.service_uid != uid {
                    d.stats = Stats::default();
                }
                Self::update_dest(&mut d, cfg, true);
                d
            }
            None => {
                if !is_valid_dest_addr(&cfg.addr) || (self.local_broadcast)(&cfg.addr) {
                    return Err(Errno::Inval);
                }
                let id = DestId(self.next_id);
                self.next_id += 1;
                Dest::new(id, cfg.clone())
            }
        };
        let id = dest.id;
        self.dest_home.insert(id, *key);
        let svc = &mut self.services[i];
        svc.dest_keys.insert((cfg.addr, cfg.port));
        svc.dests.insert(0, Box::new(dest));
        if let Some(mut s) = svc.scheduler.take() {
            s.add_dest(&svc.sched_view(), 0);
            svc.scheduler = Some(s);
        }
        Ok(DestChange::Added(id))
    }

    /// The kernel's `__ip_vs_update_dest`.
    fn update_dest(d: &mut Dest, cfg: &DestConfig, add: bool) {
        if add || cfg.weight != 0 {
            d.last_weight = cfg.weight;
        }
        d.available = true;
        if cfg.u_threshold == 0 || cfg.u_threshold > d.config.u_threshold {
            d.overload = false;
        }
        d.config = cfg.clone();
    }

    /// `-e`: replaces every attribute of an existing real server.
    pub fn edit_dest(&mut self, key: &ServiceKey, cfg: &DestConfig) -> Result<DestChange, Errno> {
        let &i = self.index.get(key).ok_or(Errno::Srch)?;
        if cfg.af() != key.af() && cfg.fwd != FwdMethod::Tunnel {
            return Err(Errno::Inval);
        }
        validate_dest(cfg)?;
        let svc = &mut self.services[i];
        let j = svc.dest_index(&cfg.addr, cfg.port).ok_or(Errno::NoEnt)?;
        Self::update_dest(&mut svc.dests[j], cfg, false);
        let id = svc.dests[j].id;
        if let Some(mut s) = svc.scheduler.take() {
            s.upd_dest(&svc.sched_view(), j);
            svc.scheduler = Some(s);
        }
        Ok(DestChange::Updated(id))
    }

    /// `-d`: the real server leaves the service for the trash.
    pub fn del_dest(
        &mut self,
        key: &ServiceKey,
        addr: &IpAddr,
        port: u16,
        now: Time,
    ) -> Result<DestChange, Errno> {
        let &i = self.index.get(key).ok_or(Errno::Srch)?;
        let uid = self.uids[i];
        let svc = &mut self.services[i];
        let j = svc.dest_index(addr, port).ok_or(Errno::NoEnt)?;
        let d = svc.dests.remove(j);
        svc.dest_keys.remove(&(*addr, port));
        if let Some(mut s) = svc.scheduler.take() {
            s.del_dest(&svc.sched_view(), &d, j);
            svc.scheduler = Some(s);
        }
        let id = d.id;
        self.trash_dest(*d, *key, uid, now);
        Ok(DestChange::Deleted(id))
    }

    /// `-Z`: zeroes one service and its real servers, or everything
    /// (including the totals) when `key` is `None`.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), Errno> {
        match key {
            Some(k) => {
                let &i = self.index.get(k).ok_or(Errno::Srch)?;
                Self::zero_service(&mut self.services[i]);
            }
            None => {
                for s in &mut self.services {
                    Self::zero_service(s);
                }
                self.totals.zero();
            }
        }
        Ok(())
    }

    fn zero_service(s: &mut Service) {
        s.stats.zero();
        for d in &mut s.dests {
            d.stats.zero();
        }
    }

    /// One 2-second estimator tick for every stats object.
    pub fn tick_estimators(&mut self) {
        self.totals.tick();
        for s in &mut self.services {
            s.stats.tick();
            for d in &mut s.dests {
                d.stats.tick();
            }
        }
    }

    /// Periodic housekeeping: frees trashed real servers that have had no
    /// connections for [`DEST_TRASH_PERIOD`], and lets schedulers expire
    /// their own state.
    pub fn tick(&mut self, now: Time) {
        self.trash.retain_mut(|t| {
            let d = &t.dest;
            if d.activeconns + d.inactconns + d.persistconns > 0 {
                t.idle_since = None;
                return true;
            }
            match t.idle_since {
                None => {
                    t.idle_since = Some(now);
                    true
                }
                Some(since) => now < since + DEST_TRASH_PERIOD,
            }
        });
        for s in &mut self.services {
            if let Some(sc) = s.scheduler.as_mut() {
                sc.tick(now);
            }
        }
    }

    /// Real servers in the trash (deleted, still referenced or recent).
    pub fn trash_len(&self) -> usize {
        self.trash.len()
    }

    /// Whether any service mixes address families (the sync daemon refuses them).
    pub fn has_mixed_family_dests(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.dests.iter().any(|d| d.config.af() != s.key.af()))
    }

    fn find_dest_mut(&mut self, id: DestId) -> Option<(&mut Dest, Option<usize>)> {
        if let Some(key) = self.dest_home.get(&id) {
            let &i = self.index.get(key)?;
            let d = self.services[i].dests.iter_mut().find(|d| d.id == id)?;
            return Some((d, Some(i)));
        }
        self.trash
            .iter_mut()
            .find(|t| t.dest.id == id)
            .map(|t| (&mut t.dest, None))
    }
}

impl DestStore for ServiceTable {
    fn dest_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        self.find_dest_mut(id).map(|(d, _)| d)
    }

    fn count_conn(&mut self, id: DestId) {
        if let Some((d, svc)) = self.find_dest_mut(id) {
            d.stats.total.conns += 1;
            if let Some(i) = svc {
                self.services[i].stats.total.conns += 1;
            }
            self.totals.total.conns += 1;
        }
    }

    fn count_in(&mut self, id: DestId, bytes: u64) {
        // Linux counts only while the real server is available.
        if let Some((d, Some(i))) = self.find_dest_mut(id) {
            d.stats.count_in(bytes);
            self.services[i].stats.count_in(bytes);
            self.totals.count_in(bytes);
        }
    }

    fn count_out(&mut self, id: DestId, bytes: u64) {
        if let Some((d, Some(i))) = self.find_dest_mut(id) {
            d.stats.count_out(bytes);
            self.services[i].stats.count_out(bytes);
            self.totals.count_out(bytes);
        }
    }

    fn count_in_n(&mut self, id: DestId, pkts: u64, bytes: u64) {
        if let Some((d, Some(i))) = self.find_dest_mut(id) {
            d.stats.count_in_n(pkts, bytes);
            self.services[i].stats.count_in_n(pkts, bytes);
            self.totals.count_in_n(pkts, bytes);
        }
    }

    fn count_out_n(&mut self, id: DestId, pkts: u64, bytes: u64) {
        if let Some((d, Some(i))) = self.find_dest_mut(id) {
            d.stats.count_out_n(pkts, bytes);
            self.services[i].stats.count_out_n(pkts, bytes);
            self.totals.count_out_n(pkts, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Protocol;
    use crate::sched::{PacketInfo, SchedService};
    use std::net::Ipv4Addr;

    /// Picks the first eligible real server; enough to exercise the table.
    #[derive(Debug)]
    struct First;
    impl Scheduler for First {
        fn name(&self) -> &'static str {
            "first"
        }
        fn schedule(&mut self, svc: &SchedService<'_>, _: &PacketInfo, _: Time) -> Option<usize> {
            svc.dests.iter().position(|d| d.is_eligible())
        }
    }

    fn table() -> ServiceTable {
        ServiceTable::new(Box::new(|n| match n {
            "wlc" | "rr" => Some(Box::new(First) as Box<dyn Scheduler>),
            _ => None,
        }))
    }

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
    }

    fn tcp(a: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: v4(a),
            port,
        }
    }

    fn rr() -> ServiceConfig {
        ServiceConfig {
            scheduler: "rr".into(),
            ..ServiceConfig::defaults(Af::Inet)
        }
    }

    #[test]
    fn duplicate_service_is_reported_before_an_unknown_scheduler() {
        let mut t = table();
        let k = tcp("10.0.0.1", 80);
        t.add_service(k, &rr()).unwrap();
        let bogus = ServiceConfig {
            scheduler: "bogus".into(),
            ..rr()
        };
        assert_eq!(t.add_service(k, &bogus), Err(Errno::Exist));
        assert_eq!(
            t.add_service(tcp("10.0.0.2", 80), &bogus),
            Err(Errno::NoEnt)
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ipv6_prefix_and_pe_are_validated() {
        let mut t = table();
        let k = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "2001:db8::1".parse().unwrap(),
            port: 80,
        };
        let mut c = ServiceConfig::defaults(Af::Inet6);
        c.netmask = 129;
        assert_eq!(t.add_service(k, &c), Err(Errno::Inval));
        c.netmask = 64;
        c.pe_name = Some("nope".into());
        assert_eq!(t.add_service(k, &c), Err(Errno::NoEnt));
        c.pe_name = Some("sip".into());
        assert_eq!(t.add_service(k, &c), Ok(()));
    }

    #[test]
    fn real_servers_are_kept_newest_first() {
        let mut t = table();
        let k = tcp("10.0.0.1", 80);
        t.add_service(k, &rr()).unwrap();
        for a in ["192.168.1.1", "192.168.1.2", "192.168.1.3"] {
            t.add_dest(&k, &DestConfig::new(v4(a), 80)).unwrap();
        }
        let order: Vec<String> = t
            .service(&k)
            .unwrap()
            .dests
            .iter()
            .map(|d| d.config.addr.to_string())
            .collect();
        assert_eq!(order, ["192.168.1.3", "192.168.1.2", "192.168.1.1"]);
    }

    #[test]
    fn dest_errors_follow_the_kernel() {
        let mut t = table();
        let k = tcp("10.0.0.1", 80);
        let d = DestConfig::new(v4("192.168.1.1"), 80);
        assert_eq!(t.add_dest(&k, &d), Err(Errno::Srch));
        t.add_service(k, &rr()).unwrap();
        t.add_dest(&k, &d).unwrap();
        assert_eq!(t.add_dest(&k, &d), Err(Errno::Exist));
        let mut bad = d.clone();
        bad.l_threshold = 5;
        assert_eq!(t.edit_dest(&k, &bad), Err(Errno::Range));
        t.add_dest(&k, &DestConfig::new(v4("0.1.2.3"), 80)).unwrap();
        for a in ["0.0.0.0", "255.255.255.255", "224.0.0.1"] {
            assert_eq!(
                t.add_dest(&k, &DestConfig::new(v4(a), 80)),
                Err(Errno::Inval),
                "{a}"
            );
        }
        let v6 = DestConfig::new("2001:db8::1".parse().unwrap(), 80);
        assert_eq!(t.add_dest(&k, &v6), Err(Errno::Inval));
        assert_eq!(
            t.edit_dest(&k, &DestConfig::new(v4("192.168.1.9"), 80)),
            Err(Errno::NoEnt)
        );
        assert_eq!(t.del_dest(&k, &v4("192.168.1.9"), 80, 0), Err(Errno::NoEnt));
    }

    #[test]
    fn trash_resurrects_counters_and_zeroes_stats_in_a_new_service_object() {
        let mut t = table();
        let k = tcp("10.0.0.1", 80);
        t.add_service(k, &rr()).unwrap();
        let DestChange::Added(id) = t
            .add_dest(&k, &DestConfig::new(v4("192.168.1.1"), 80))
            .unwrap()
        else {
            panic!()
        };
        t.dest_mut(id).unwrap().inactconns = 3;
        t.count_in(id, 100);
        t.flush(0);
        assert!(!t.dest_mut(id).unwrap().available);
        t.add_service(k, &rr()).unwrap();
        assert_eq!(
            t.add_dest(&k, &DestConfig::new(v4("192.168.1.1"), 80)),
            Ok(DestChange::Added(id))
        );
        let d = t.dest_mut(id).unwrap();
        assert_eq!(
            (d.inactconns, d.available, d.stats.total.inpkts),
            (3, true, 0)
        );
    }

    #[test]
    fn unused_trash_is_freed_after_the_trash_period() {
        let mut t = table();
        let k = tcp("10.0.0.1", 80);
        t.add_service(k, &rr()).unwrap();
        t.add_dest(&k, &DestConfig::new(v4("192.168.1.1"), 80))
            .unwrap();
        t.del_dest(&k, &v4("192.168.1.1"), 80, 0).unwrap();
        t.tick(0);
        t.tick(DEST_TRASH_PERIOD - 1);
        assert_eq!(t.trash_len(), 1);
        t.tick(DEST_TRASH_PERIOD);
        assert_eq!(t.trash_len(), 0);
    }

    #[test]
    fn edits_keep_last_weight_and_clear_overload_as_linux_does() {
        let mut t = table();
        let k = tcp("10.0.0.1", 80);
        t.add_service(k, &rr()).unwrap();
        let mut c = DestConfig::new(v4("192.168.1.1"), 80);
        c.weight = 5;
        c.u_threshold = 10;
        let DestChange::Added(id) = t.add_dest(&k, &c).unwrap() else {
            panic!()
        };
        t.dest_mut(id).unwrap().overload = true;
        c.weight = 0;
        c.u_threshold = 8; // lower: OVERLOAD stays
        t.edit_dest(&k, &c).unwrap();
        let d = t.dest_mut(id).unwrap();
        assert_eq!((d.last_weight, d.config.weight, d.overload), (5, 0, true));
        c.u_threshold = 0; // no limit: OVERLOAD clears
        t.edit_dest(&k, &c).unwrap();
        assert!(!t.dest_mut(id).unwrap().overload);
    }

    #[test]
    fn kernel_order_is_by_hash_bucket_newest_first_then_fwmarks() {
        let mut t = table();
        // 10.0.1.1 folds to the same low byte as 10.0.0.1, so both land in
        // bucket 6 ^ 1 ^ 80; fwmark services come after every address bucket.
        let fw = ServiceKey::Fwmark {
            mark: 1,
            af: Af::Inet,
        };
        t.add_service(fw, &rr()).unwrap();
        let a = tcp("10.0.0.1", 80);
        let b = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: v4("10.0.1.1"),
            port: 80,
        };
        assert_eq!(service_bucket(&a), 6 ^ 1 ^ 80);
        assert_eq!(service_bucket(&a), service_bucket(&b));
        t.add_service(a, &rr()).unwrap();
        t.add_service(b, &rr()).unwrap();
        let order: Vec<ServiceKey> = t.services_in_kernel_order().iter().map(|s| s.key).collect();
        assert_eq!(order, [b, a, fw]);
    }

    #[test]
    fn local_broadcasts_are_refused_when_the_host_says_so() {
        let mut t = table();
        let k = tcp("10.0.0.1", 80);
        t.add_service(k, &rr()).unwrap();
        t.set_local_broadcast_check(Box::new(|a| *a == v4("192.0.2.255")));
        assert_eq!(
            t.add_dest(&k, &DestConfig::new(v4("192.0.2.255"), 80)),
            Err(Errno::Inval)
        );
        assert!(t
            .add_dest(&k, &DestConfig::new(v4("192.0.2.254"), 80))
            .is_ok());
    }

    #[test]
    fn batched_counts_equal_single_counts() {
        let mut a = table();
        let k = tcp("10.0.0.1", 80);
        a.add_service(k, &rr()).unwrap();
        let DestChange::Added(id) = a
            .add_dest(&k, &DestConfig::new(v4("192.168.1.1"), 80))
            .unwrap()
        else {
            panic!()
        };
        for _ in 0..5 {
            a.count_in(id, 100);
        }
        let single = (a.dest_mut(id).unwrap().stats.total, a.totals.total);
        a.count_in_n(id, 5, 500);
        let d = a.dest_mut(id).unwrap().stats.total;
        assert_eq!(
            (d.inpkts, d.inbytes),
            (single.0.inpkts * 2, single.0.inbytes * 2)
        );
        assert_eq!(a.service(&k).unwrap().stats.total.inpkts, 10);
        assert_eq!(a.totals.total.inbytes, 1000);
        a.del_dest(&k, &v4("192.168.1.1"), 80, 0).unwrap();
        a.count_out_n(id, 3, 30);
        assert_eq!(
            a.totals.total.outpkts, 0,
            "no counting once the real server is gone"
        );
    }

    #[test]
    fn zero_missing_service_is_esrch_and_zero_all_zeroes_totals() {
        let mut t = table();
        assert_eq!(t.zero(Some(&tcp("10.0.0.1", 80))), Err(Errno::Srch));
        t.totals.count_in(10);
        t.zero(None).unwrap();
        assert_eq!(t.totals.shown().inpkts, 0);
    }
}
