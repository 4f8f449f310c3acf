//! Replays the traffic traces captured from Linux 6.1 IPVS (tests/data/*.out,
//! produced by the oracle VM from the matching *.sh scripts) through our
//! schedulers, and asserts that every connection goes to the real server the
//! kernel chose, in order, and that every plain `ipvsadm -L -n` listing in the
//! trace shows the same weights and connection counters as the replay.
//!
//! The replay is a small model of a director: services in the order the
//! trace creates them, real servers newest first, a trash from which a
//! deleted real server comes back with its counters (as the kernel's
//! `ip_vs_trash_get_dest` does for the same service identity), upper
//! thresholds setting OVERLOAD, and per-client persistence templates for
//! persistent services. Connection accounting follows what the scripts do:
//! a connection of a closed run counts +1 InActConn (TIME_WAIT outlives every
//! trace); a connection of a held run counts +1 ActiveConn until the held
//! listing has been printed, then moves to InActConn. Time advances 10 ms
//! per connection and N s per `$ sleep N` line; `$ sysctl -w
//! net.ipv4.vs.lblc{,r}_expiration=N` sets the director's shared sysctl.
//!
//! Trace syntax read here: `$ ipvsadm ...` / `$ sleep N` command lines, client
//! result lines `i SRC[:SPORT] DST NAME` (NAME `rsN` = 198.19.N.2, `<Error>`
//! = no destination), `# run SERVICE-OPTIONS` markers naming the service the
//! next run goes to (needed only when several services exist), the held-run
//! marker `# while connections are held open:` and `-L -n` listings.

use rvs_core::sched::{PacketInfo, SchedService, Scheduler};
use rvs_core::service::{SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3};
use rvs_core::{Dest, DestConfig, DestId, Protocol, Time, SEC};
use rvs_sched::{new_scheduler_with, SchedSysctls};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A service identity as both ipvsadm options and listings name it:
/// `TCP 198.18.0.100:80` or `FWM 1`.
type SvcKey = String;

#[derive(Debug)]
struct Svc {
    key: SvcKey,
    port: u16,
    sched: Box<dyn Scheduler>,
    sched_name: String,
    flags: u32,
    /// Persistence netmask (IPv4) when persistent.
    persistent: Option<u32>,
    /// Masked client address -> real server.
    templates: HashMap<u32, DestId>,
    dests: Vec<Box<Dest>>,
}

impl Svc {
    fn schedule(&mut self, pkt: &PacketInfo, now: Time) -> Option<usize> {
        let view = SchedService {
            flags: self.flags,
            dests: &self.dests,
        };
        self.sched.schedule(&view, pkt, now)
    }
}

#[derive(Debug, Default)]
struct Director {
    services: Vec<Svc>,
    trash: Vec<(SvcKey, Dest)>,
    next_id: u64,
    now: Time,
    sysctls: SchedSysctls,
}

fn svc_key(opts: &[&str]) -> Option<SvcKey> {
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        match *o {
            "-t" => return Some(format!("TCP {}", it.next()?)),
            "-u" => return Some(format!("UDP {}", it.next()?)),
            "-f" => return Some(format!("FWM {}", it.next()?)),
            _ => {}
        }
    }
    None
}

fn opt<'a>(opts: &[&'a str], name: &str) -> Option<&'a str> {
    opts.iter()
        .position(|o| *o == name)
        .and_then(|i| opts.get(i + 1).copied())
}

fn sched_flags(list: &str) -> u32 {
    list.split(',')
        .map(|f| match f {
            "sh-fallback" | "mh-fallback" | "flag-1" => SVC_F_SCHED1,
            "sh-port" | "mh-port" | "flag-2" => SVC_F_SCHED2,
            "flag-3" => SVC_F_SCHED3,
            other => panic!("unknown scheduler flag {other}"),
        })
        .fold(0, |a, b| a | b)
}

fn addr_port(s: &str) -> (IpAddr, u16) {
    let (a, p) = s.rsplit_once(':').expect("ADDR:PORT");
    (a.parse().expect("address"), p.parse().expect("port"))
}

fn v4(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(_) => panic!("IPv4 traces only"),
    }
}

impl Director {
    fn svc_index(&self, key: &str) -> usize {
        self.services
            .iter()
            .position(|s| s.key == key)
            .unwrap_or_else(|| panic!("no service {key}"))
    }

    fn ipvsadm(&mut self, args: &[&str]) {
        let Some(cmd) = args.first() else { return };
        match *cmd {
            "-A" | "-E" => self.set_service(*cmd == "-A", args),
            "-a" | "-e" => self.set_dest(*cmd == "-a", args),
            "-d" => self.del_dest(args),
            "-D" => {
                let key = svc_key(args).expect("service");
                let i = self.svc_index(&key);
                self.remove_service(i);
            }
            "-C" => {
                while !self.services.is_empty() {
                    self.remove_service(0);
                }
            }
            // Listings, zeroing and the like do not change scheduling.
            _ => {}
        }
    }

    fn set_service(&mut self, add: bool, args: &[&str]) {
        let key = svc_key(args).expect("service");
        let name = opt(args, "-s").unwrap_or("wlc").to_string();
        let flags = opt(args, "-b").map_or(0, sched_flags);
        let persistent = args
            .contains(&"-p")
            .then(|| opt(args, "-M").map_or(u32::MAX, |m| v4(m.parse().expect("netmask"))));
        let port = if key.starts_with("FWM") {
            0
        } else {
            addr_port(key.split(' ').nth(1).unwrap()).1
        };
        if add {
            let mut sched = new_scheduler_with(&name, &self.sysctls).expect("known scheduler");
            let dests = Vec::new();
            sched.init_service(&SchedService {
                flags,
                dests: &dests,
            });
            self.services.push(Svc {
                key,
                port,
                sched,
                sched_name: name,
                flags,
                persistent,
                templates: HashMap::new(),
                dests,
            });
        } else {
            let i = self.svc_index(&key);
            let s = &mut self.services[i];
            s.flags = flags;
            s.persistent = persistent;
            if s.sched_name != name {
                s.sched = new_scheduler_with(&name, &self.sysctls).expect("known scheduler");
                s.sched_name = name;
                let view = SchedService {
                    flags,
                    dests: &s.dests,
                };
                s.sched.init_service(&view);
            }
        }
    }

    fn set_dest(&mut self, add: bool, args: &[&str]) {
        let key = svc_key(args).expect("service");
        let (addr, port) = addr_port(opt(args, "-r").expect("-r"));
        let mut cfg = DestConfig::new(addr, port);
        cfg.weight = opt(args, "-w").map_or(1, |w| w.parse().unwrap());
        cfg.u_threshold = opt(args, "-x").map_or(0, |x| x.parse().unwrap());
        cfg.l_threshold = opt(args, "-y").map_or(0, |y| y.parse().unwrap());
        let i = self.svc_index(&key);
        let update = |d: &mut Dest, add: bool| {
            if add || cfg.weight != 0 {
                d.last_weight = cfg.weight;
            }
            if cfg.u_threshold == 0 || cfg.u_threshold > d.config.u_threshold {
                d.overload = false;
            }
            d.available = true;
            d.config = cfg.clone();
        };
        if add {
            let from_trash = self
                .trash
                .iter()
                .position(|(k, d)| *k == key && d.config.addr == addr && d.config.port == port);
            let dest = match from_trash {
                Some(t) => {
                    let mut d = self.trash.remove(t).1;
                    update(&mut d, true);
                    d
                }
                None => {
                    self.next_id += 1;
                    Dest::new(DestId(self.next_id), cfg.clone())
                }
            };
            let s = &mut self.services[i];
            s.dests.insert(0, Box::new(dest));
            let view = SchedService {
                flags: s.flags,
                dests: &s.dests,
            };
            s.sched.add_dest(&view, 0);
        } else {
            let s = &mut self.services[i];
            let j = s
                .dests
                .iter()
                .position(|d| d.config.addr == addr && d.config.port == port);
            let j = j.expect("edited real server exists");
            update(&mut s.dests[j], false);
            let view = SchedService {
                flags: s.flags,
                dests: &s.dests,
            };
            s.sched.upd_dest(&view, j);
        }
    }

    fn del_dest(&mut self, args: &[&str]) {
        let key = svc_key(args).expect("service");
        let (addr, port) = addr_port(opt(args, "-r").expect("-r"));
        let i = self.svc_index(&key);
        let s = &mut self.services[i];
        let j = s
            .dests
            .iter()
            .position(|d| d.config.addr == addr && d.config.port == port);
        let j = j.expect("deleted real server exists");
        let mut d = s.dests.remove(j);
        let view = SchedService {
            flags: s.flags,
            dests: &s.dests,
        };
        s.sched.del_dest(&view, &d, j);
        d.available = false;
        self.trash.push((key, *d));
    }

    fn remove_service(&mut self, i: usize) {
        let s = self.services.remove(i);
        for mut d in s.dests {
            d.available = false;
            self.trash.push((s.key.clone(), *d));
        }
    }

    /// One new connection: the real server's address, or `None`.
    fn connect(&mut self, svc: usize, pkt: &PacketInfo, held: bool) -> Option<(usize, DestId)> {
        self.now += 10;
        let now = self.now;
        let s = &mut self.services[svc];
        s.sched.tick(now);
        let chosen = match s.persistent {
            Some(mask) => {
                let client = v4(pkt.saddr) & mask;
                let bound = s
                    .templates
                    .get(&client)
                    .and_then(|id| s.dests.iter().position(|d| d.id == *id));
                match bound {
                    Some(j) => Some(j),
                    None => {
                        let j = s.schedule(pkt, now)?;
                        s.templates.insert(client, s.dests[j].id);
                        s.dests[j].persistconns += 1;
                        Some(j)
                    }
                }
            }
            None => s.schedule(pkt, now),
        }?;
        let d = &mut s.dests[chosen];
        if held {
            d.activeconns += 1;
        } else {
            d.inactconns += 1;
        }
        let total = d.activeconns + d.inactconns;
        if d.config.u_threshold != 0 && total >= d.config.u_threshold {
            d.overload = true;
        }
        Some((svc, d.id))
    }

    /// The held run is over: its connections close and become inactive.
    fn release(&mut self, held: &[(usize, DestId)]) {
        for (svc, id) in held {
            let d = self.services[*svc]
                .dests
                .iter_mut()
                .map(|d| &mut **d)
                .chain(self.trash.iter_mut().map(|(_, d)| d))
                .find(|d| d.id == *id)
                .expect("held connection's real server");
            d.activeconns -= 1;
            d.inactconns += 1;
        }
    }

    fn tick_all(&mut self) {
        for s in &mut self.services {
            s.sched.tick(self.now);
        }
    }
}

/// `i SRC[:SPORT] DST NAME`
struct ClientLine {
    saddr: IpAddr,
    sport: Option<u16>,
    daddr: IpAddr,
    /// The real server the kernel chose, `None` for a refused connection.
    server: Option<IpAddr>,
}

fn client_line(line: &str) -> Option<ClientLine> {
    let f: Vec<&str> = line.split(' ').collect();
    if f.len() != 4 || f[0].parse::<u32>().is_err() {
        return None;
    }
    let (saddr, sport) = match f[1].split_once(':') {
        Some((a, p)) => (a.parse().ok()?, Some(p.parse().ok()?)),
        None => (f[1].parse().ok()?, None),
    };
    let server = match f[3].strip_prefix("rs") {
        Some(n) => Some(IpAddr::V4(Ipv4Addr::new(198, 19, n.parse().ok()?, 2))),
        None if f[3].starts_with('<') => None,
        None => return None,
    };
    Some(ClientLine {
        saddr,
        sport,
        daddr: f[2].parse().ok()?,
        server,
    })
}

fn server_name(a: Option<IpAddr>) -> String {
    match a {
        Some(IpAddr::V4(a)) => format!("rs{}", a.octets()[2]),
        Some(a) => a.to_string(),
        None => "<none>".into(),
    }
}

/// What a replay checked.
#[derive(Debug, Default)]
struct Outcome {
    decisions: usize,
    listings: usize,
    mismatches: Vec<String>,
}

fn replay(name: &str) -> Outcome {
    replay_path(&data_dir().join(format!("{name}.out")), name)
}

fn replay_path(path: &std::path::Path, name: &str) -> Outcome {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let mut dir = Director::default();
    let mut out = Outcome::default();
    let mut run_svc: Option<SvcKey> = None;
    let mut run_held: Option<bool> = None;
    let mut held_conns: Vec<(usize, DestId)> = Vec::new();
    let mut release_after_listing = false;
    // Inside a `-L -n` listing: the service whose rows follow.
    let mut listing: Option<Option<SvcKey>> = None;
    let mut k = 0;
    for (n, line) in lines.iter().enumerate() {
        let lineno = n + 1;
        let client = client_line(line);
        if client.is_none() {
            // Any other line ends a run.
            run_held = None;
        }
        if let Some(ref mut cur) = listing {
            if line.starts_with("[exit=") {
                listing = None;
                if release_after_listing {
                    dir.release(&held_conns);
                    held_conns.clear();
                    release_after_listing = false;
                }
                continue;
            }
            if line.starts_with("TCP ") || line.starts_with("UDP ") || line.starts_with("FWM ") {
                let f: Vec<&str> = line.split_whitespace().collect();
                *cur = Some(format!("{} {}", f[0], f[1]));
            } else if let Some(row) = line.trim_start().strip_prefix("-> ") {
                let f: Vec<&str> = row.split_whitespace().collect();
                if f.len() == 5 && f[0] != "RemoteAddress:Port" {
                    let key = cur.clone().expect("service row before real servers");
                    let (addr, port) = addr_port(f[0]);
                    let s = &dir.services[dir.svc_index(&key)];
                    let d = s
                        .dests
                        .iter()
                        .find(|d| d.config.addr == addr && d.config.port == port);
                    let got =
                        d.map(|d| format!("{} {} {}", d.weight(), d.activeconns, d.inactconns));
                    let want = format!("{} {} {}", f[2], f[3], f[4]);
                    out.listings += 1;
                    if got.as_deref() != Some(want.as_str()) {
                        out.mismatches.push(format!(
                            "{name}.out:{lineno}: {key} -> {} weight/active/inactive: kernel {want}, replay {got:?}",
                            f[0]
                        ));
                    }
                }
            }
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            let args: Vec<&str> = cmd.split_whitespace().collect();
            match args.first() {
                Some(&"ipvsadm") => {
                    let rest = &args[1..];
                    let plain_listing = rest.first().is_some_and(|a| *a == "-L")
                        && rest.contains(&"-n")
                        && rest.iter().all(|a| {
                            ["-L", "-n", "--nosort", "-t", "-f"].contains(a) || !a.starts_with('-')
                        });
                    if plain_listing {
                        listing = Some(None);
                    } else {
                        dir.ipvsadm(rest);
                    }
                }
                Some(&"sysctl") => {
                    let (key, value) = args[2].split_once('=').expect("sysctl -w KEY=VALUE");
                    let ms = value.parse::<u64>().expect("seconds") * SEC;
                    match key {
                        "net.ipv4.vs.lblc_expiration" => dir.sysctls.lblc_expiration.set(ms),
                        "net.ipv4.vs.lblcr_expiration" => dir.sysctls.lblcr_expiration.set(ms),
                        other => panic!("{name}.out:{lineno}: unmodelled sysctl {other}"),
                    }
                }
                Some(&"sleep") => {
                    let secs: u64 = args[1].parse().expect("sleep seconds");
                    dir.now += secs * SEC;
                    dir.tick_all();
                }
                _ => {}
            }
            continue;
        }
        if let Some(svc) = line.strip_prefix("# run ") {
            let opts: Vec<&str> = svc.split_whitespace().collect();
            run_svc = Some(svc_key(&opts).expect("service in run marker"));
            continue;
        }
        if *line == "# while connections are held open:" {
            release_after_listing = true;
            continue;
        }
        let Some(c) = client else { continue };
        let held = *run_held.get_or_insert_with(|| {
            let after = lines[n..].iter().find(|l| client_line(l).is_none());
            after == Some(&"# while connections are held open:")
        });
        let svc = match &run_svc {
            Some(key) => dir.svc_index(key),
            None => {
                assert_eq!(dir.services.len(), 1, "{name}.out:{lineno}: which service?");
                0
            }
        };
        k += 1;
        let pkt = PacketInfo {
            proto: Protocol::Tcp,
            saddr: c.saddr,
            sport: c.sport.unwrap_or(32768 + k as u16),
            daddr: c.daddr,
            dport: if dir.services[svc].port == 0 {
                80
            } else {
                dir.services[svc].port
            },
            inverse: false,
        };
        let got = dir.connect(svc, &pkt, held);
        if held {
            held_conns.extend(got);
        }
        let got_addr = got.map(|(s, id)| {
            let s = &dir.services[s];
            s.dests.iter().find(|d| d.id == id).unwrap().config.addr
        });
        out.decisions += 1;
        if got_addr != c.server {
            out.mismatches.push(format!(
                "{name}.out:{lineno}: {line}: kernel {}, replay {}",
                server_name(c.server),
                server_name(got_addr)
            ));
        }
    }
    out
}

fn check(name: &str) {
    let o = replay(name);
    eprintln!(
        "{name}: {} decisions, {} listing rows",
        o.decisions, o.listings
    );
    assert!(o.decisions > 0, "{name}: no scheduling decisions found");
    assert!(
        o.mismatches.is_empty(),
        "{name}: {} mismatches with Linux ({} decisions, {} listing rows checked):\n{}",
        o.mismatches.len(),
        o.decisions,
        o.listings,
        o.mismatches.join("\n")
    );
}

macro_rules! traces {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check($file);
            }
        )*

        /// Every captured trace has a test above, and every test a trace.
        #[test]
        fn every_trace_is_replayed() {
            let mut want: Vec<&str> = vec![$($file),*];
            want.sort();
            let mut have: Vec<String> = std::fs::read_dir(data_dir())
                .unwrap()
                .filter_map(|e| {
                    let name = e.unwrap().file_name().into_string().unwrap();
                    name.strip_suffix(".out").map(str::to_string)
                })
                .collect();
            have.sort();
            assert_eq!(have, want);
            for f in &have {
                assert!(data_dir().join(format!("{f}.sh")).exists(), "{f}.sh missing");
            }
        }
    };
}

traces! {
    rr_cycles => "sched-rr",
    rr_cursor_survives_deletes => "sched-rr-del",
    wrr_weights_and_quiescing => "sched-wrr",
    wrr_gcd_edits_adds_deletes_threshold => "sched-wrr-edges",
    lc_held_connections => "sched-lc-hold",
    rr_with_persistence_templates => "sched-persist",
    lc_wlc_sed_nq_held_and_closed => "sched-leastconn",
    fo_and_ovf => "sched-fo-ovf",
    sh_weights_fallback_port => "sched-sh",
    mh_maglev_table_fallback_port => "sched-mh",
    dh_destination_buckets => "sched-dh",
    lblc_entries_and_overload => "sched-lblc",
    lblcr_sets_and_expiry => "sched-lblcr",
}

/// The replay must be able to fail: a wrong scheduler on a real trace is
/// caught.
#[test]
fn a_wrong_scheduler_is_caught() {
    let path = data_dir().join("sched-wrr.out");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace(" wrr", " rr");
    let tmp = std::env::temp_dir().join(format!("rvs-sched-wrong-{}.out", std::process::id()));
    std::fs::write(&tmp, text).unwrap();
    // Replay the doctored copy through the same code path.
    let o = replay_path(&tmp, "doctored sched-wrr");
    std::fs::remove_file(&tmp).ok();
    assert!(!o.mismatches.is_empty());
}
