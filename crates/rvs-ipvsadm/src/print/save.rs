//! The rule format of `-S`: one `-A` line per service and one `-a` line per
//! real server, ready for `-R`. Thresholds are not saved (ipvsadm 1.31
//! never did), and neither is anything else `-a` cannot express.

use super::fwd_switch;
use super::list::{mask_text, sched_flags_text, SCHED_FLAGS};
use rvs_core::dest::{FwdMethod, TunType};
use rvs_core::service::{SVC_F_ONEPACKET, SVC_F_PERSISTENT};
use rvs_ctl::{DestEntry, ServiceEntry};

/// `-A KEY -s SCHED [-p T [-M MASK]] [--pe PE] [-o] [-b FLAGS]`.
pub fn service_rule(out: &mut Vec<u8>, se: &ServiceEntry, name: &[u8]) {
    out.extend_from_slice(b"-A ");
    out.extend_from_slice(name);
    let c = &se.config;
    let mut s = format!(" -s {}", c.scheduler);
    if c.flags & SVC_F_PERSISTENT != 0 {
        s.push_str(&format!(" -p {}", c.timeout));
        if let Some(m) = mask_text(se) {
            s.push_str(&format!(" -M {m}"));
        }
    }
    if let Some(pe) = c.pe_name.as_deref().filter(|p| !p.is_empty()) {
        s.push_str(&format!(" --pe {pe}"));
    }
    if c.flags & SVC_F_ONEPACKET != 0 {
        s.push_str(" -o");
    }
    if c.flags & SCHED_FLAGS != 0 {
        s.push_str(" -b ");
        s.push_str(&sched_flags_text(se));
    }
    out.extend_from_slice(s.as_bytes());
}

/// `-a KEY -r DEST M -w W`, plus the tunnel options of `-i` servers.
pub fn dest_rule(out: &mut Vec<u8>, svc: &[u8], dname: &[u8], d: &DestEntry) {
    let c = &d.config;
    out.extend_from_slice(b"-a ");
    out.extend_from_slice(svc);
    out.extend_from_slice(b" -r ");
    out.extend_from_slice(dname);
    let mut s = format!(" {} -w {}", fwd_switch(c.fwd), c.weight);
    if c.fwd == FwdMethod::Tunnel {
        let csum = match c.tun_flags {
            0 => "--tun-nocsum",
            1 => "--tun-csum",
            2 => "--tun-remcsum",
            _ => "(null)",
        };
        match c.tun_type {
            TunType::Ipip => s.push_str(" --tun-type ipip"),
            TunType::Gue => {
                s.push_str(&format!(" --tun-type gue --tun-port {} {csum}", c.tun_port))
            }
            TunType::Gre => s.push_str(&format!(" --tun-type gre {csum}")),
        }
    }
    s.push('\n');
    out.extend_from_slice(s.as_bytes());
}
