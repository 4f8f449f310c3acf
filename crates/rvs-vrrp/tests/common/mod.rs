//! A throw-away L2 segment in network namespaces: a "switch" namespace
//! holding a bridge, and one namespace per host with a veth into it
//! (`eth0`). Everything is removed on drop, test failure included;
//! processes started here are killed by PID.
#![allow(dead_code)]

use rvs_vrrp::{InstanceSpec, Running};
use std::fs::File;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const VIP: &str = "198.18.0.100";
pub const VIP6: &str = "2001:db8:0:1::100";

/// `None` (and a printed reason) when the test cannot run here.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() && Command::new("ip").arg("-V").output().is_ok() {
        true
    } else {
        eprintln!("skipping {test}: needs root and iproute2 (network namespaces)");
        false
    }
}

pub struct Lab {
    pub prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    pub dir: PathBuf,
}

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_out(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Lab {
    /// A segment with hosts `hosts` (e.g. `["a", "b"]`), host i at
    /// 198.18.0.(i+1)/24 and 2001:db8:0:1::(i+1)/64 on its `eth0`.
    pub fn new(tag: &str, hosts: &[&str]) -> Lab {
        let prefix = format!("rvrrp{}{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            prefix,
            namespaces: Vec::new(),
            children: Vec::new(),
            dir,
        };
        let sw = lab.add_ns("sw");
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for (i, h) in hosts.iter().enumerate() {
            let ns = lab.add_ns(h);
            let _ = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ])
                .status();
            let port = format!("{}p{h}", lab.prefix);
            let port = &port[port.len().saturating_sub(15)..];
            ip(&[
                "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            ip(&["link", "set", port, "netns", &sw]);
            ip(&["-n", &sw, "link", "set", port, "master", "br0"]);
            ip(&["-n", &sw, "link", "set", port, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("198.18.0.{}/24", i + 1),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("2001:db8:0:1::{}/64", i + 1),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    fn add_ns(&mut self, h: &str) -> String {
        let ns = format!("{}{h}", self.prefix);
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ns
    }

    /// The namespace of host `h`.
    pub fn ns(&self, h: &str) -> String {
        format!("{}{h}", self.prefix)
    }

    /// The bridge port of host `h` (in the switch namespace).
    fn port(&self, h: &str) -> String {
        let port = format!("{}p{h}", self.prefix);
        port[port.len().saturating_sub(15)..].to_string()
    }

    /// Cuts host `h` off the segment without taking its link down.
    pub fn partition(&self, h: &str) {
        ip(&[
            "-n",
            &self.ns("sw"),
            "link",
            "set",
            &self.port(h),
            "nomaster",
        ]);
    }

    pub fn heal(&self, h: &str) {
        ip(&[
            "-n",
            &self.ns("sw"),
            "link",
            "set",
            &self.port(h),
            "master",
            "br0",
        ]);
    }

    /// Whether `addr` is on host `h`'s eth0.
    pub fn has(&self, h: &str, addr: &str) -> bool {
        let out = ip_out(&["-n", &self.ns(h), "-o", "addr", "show", "dev", "eth0"]);
        out.split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    /// Waits up to `limit` for `cond`; returns how long it took.
    pub fn wait(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if cond() {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// The MAC of host `h`'s eth0.
    pub fn mac(&self, h: &str) -> String {
        let out = ip_out(&["-n", &self.ns(h), "-o", "link", "show", "dev", "eth0"]);
        let w: Vec<&str> = out.split_whitespace().collect();
        let i = w
            .iter()
            .position(|x| *x == "link/ether")
            .expect("link/ether");
        w[i + 1].to_string()
    }

    /// The MAC host `h` has for `addr`, if any.
    pub fn neigh(&self, h: &str, addr: &str) -> Option<String> {
        let out = ip_out(&["-n", &self.ns(h), "neigh", "show", addr, "dev", "eth0"]);
        let w: Vec<&str> = out.split_whitespace().collect();
        w.iter()
            .position(|x| *x == "lladdr")
            .map(|i| w[i + 1].to_string())
    }

    /// Starts an rvs-vrrp instance on host `h` (its thread lives in the
    /// host's namespace).
    pub fn start(&self, h: &str, spec: InstanceSpec) -> Running {
        let path = format!("/run/netns/{}", self.ns(h));
        std::thread::spawn(move || {
            let f = File::open(&path).expect("open netns");
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            Running::spawn(spec, None).expect("spawn instance")
        })
        .join()
        .unwrap()
    }

    /// Runs `cmd args` in host `h`'s namespace in the background.
    pub fn spawn(&mut self, h: &str, cmd: &str, args: &[&str], log: &str) -> u32 {
        let out = File::create(self.dir.join(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(h), cmd])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    pub fn kill(&mut self, pid: u32, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        if let Some(c) = self.children.iter_mut().find(|c| c.id() == pid) {
            let _ = c.wait();
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}

/// A v3 instance with 0.1 s adverts and the IPv4 VIP.
pub fn spec(name: &str, prio: u8) -> InstanceSpec {
    let mut s = InstanceSpec::new(
        name,
        "eth0",
        51,
        vec![rvs_vrrp::Vip {
            addr: VIP.parse().unwrap(),
            prefix: 24,
        }],
    );
    s.version = rvs_vrrp::Version::V3;
    s.priority = prio;
    s.interval_cs = 10;
    s
}

pub fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}
