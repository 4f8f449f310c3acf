//! `-L -c`: the connection table as ipvsadm prints `/proc/net/ip_vs_conn`,
//! in the daemon's (hash) order, never sorted.

use super::{addrport_to_anyname, pad_right, proto_number};
use crate::options::fmt;
use crate::resolve::NameDb;
use rvs_ctl::ConnEntry;

/// The two title lines.
pub fn conn_title(format: u32) -> String {
    if format & fmt::PERSISTENTCONN != 0 {
        format!(
            "IPVS connection entries\npro expire {:<11} {:<18} {:<18} {:<18} {:<16} {}\n",
            "state", "source", "virtual", "destination", "pe name", "pe_data"
        )
    } else {
        format!(
            "IPVS connection entries\npro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        )
    }
}

/// One entry. With `--persistent-conn`, entries that carry persistence-engine
/// data get two more columns (destination 16 wide, pe name 18 wide).
pub fn conn_line(out: &mut Vec<u8>, c: &ConnEntry, format: u32, names: &NameDb) {
    // ipvsadm resolves names with protocol 0 for anything but TCP and
    // UDP, and prints the kernel's protocol name (`IP` for fwmark
    // templates).
    let proto = if c.proto_ip { 0 } else { proto_number(c.proto) };
    let cname = addrport_to_anyname(&c.caddr, c.cport, proto, format, names);
    let vname = addrport_to_anyname(&c.vaddr, c.vport, proto, format, names);
    let dname = addrport_to_anyname(&c.daddr, c.dport, proto, format, names);
    let expire = format!(
        "{:02}:{:02}",
        (c.expires / 60) as i32,
        (c.expires % 60) as i32
    );
    let label = if c.proto_ip { "IP" } else { c.proto.label() };
    pad_right(out, label.as_bytes(), 3);
    out.push(b' ');
    pad_right(out, expire.as_bytes(), 6);
    out.push(b' ');
    pad_right(out, c.state.as_bytes(), 11);
    out.push(b' ');
    pad_right(out, &cname, 18);
    out.push(b' ');
    pad_right(out, &vname, 18);
    out.push(b' ');
    let pe = match (&c.pe_name, &c.pe_data) {
        (Some(n), Some(d)) if !n.is_empty() && !d.is_empty() => Some((n, d)),
        _ => None,
    };
    match pe {
        Some((n, d)) if format & fmt::PERSISTENTCONN != 0 => {
            pad_right(out, &dname, 16);
            out.push(b' ');
            pad_right(out, n.as_bytes(), 18);
            out.push(b' ');
            out.extend_from_slice(d.as_bytes());
        }
        _ => out.extend_from_slice(&dname),
    }
    out.push(b'\n');
}

/// Title and all entries.
pub fn list_conn(conns: &[ConnEntry], format: u32, names: &NameDb) -> Vec<u8> {
    let mut out = conn_title(format).into_bytes();
    for c in conns {
        conn_line(&mut out, c, format, names);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::Protocol;

    fn conn(cport: u16, state: &str, expires: u32) -> ConnEntry {
        ConnEntry {
            proto: Protocol::Tcp,
            caddr: "198.18.0.11".parse().unwrap(),
            cport,
            vaddr: "198.18.0.100".parse().unwrap(),
            vport: 80,
            daddr: "198.19.2.2".parse().unwrap(),
            dport: 80,
            state: state.to_string(),
            expires,
            pe_name: None,
            pe_data: None,
            proto_ip: false,
        }
    }

    #[test]
    fn fwmark_templates_are_listed_as_ip() {
        let db = NameDb::from_text("", "http 80/tcp\n");
        let mut t = conn(0, "NONE", 356);
        t.vaddr = "0.0.0.1".parse().unwrap();
        t.vport = 0;
        t.proto_ip = true;
        let out = list_conn(&[t], fmt::NUMERIC, &db);
        let text = String::from_utf8(out).unwrap();
        let line = text.lines().last().unwrap();
        assert_eq!(
            line,
            "IP  05:56  NONE        198.18.0.11:0      0.0.0.1:0          198.19.2.2:80"
        );
    }

    #[test]
    fn matches_sched_persist_golden() {
        let db = NameDb::from_text("", "http 80/tcp\n");
        let conns = [conn(0, "ASSURED", 56), conn(51673, "TIME_WAIT", 116)];
        let out = list_conn(&conns, fmt::NUMERIC | fmt::PERSISTENTCONN, &db);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination        pe name          pe_data\n\
             TCP 00:56  ASSURED     198.18.0.11:0      198.18.0.100:80    198.19.2.2:80\n\
             TCP 01:56  TIME_WAIT   198.18.0.11:51673  198.18.0.100:80    198.19.2.2:80\n"
        );
        let out = list_conn(&conns[1..], 0, &db);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination\n\
             TCP 01:56  TIME_WAIT   198.18.0.11:51673  198.18.0.100:http  198.19.2.2:http\n"
        );
    }

    #[test]
    fn pe_columns_only_with_persistent_conn() {
        let db = NameDb::default();
        let mut c = conn(5060, "UDP", 3600);
        c.proto = Protocol::Udp;
        c.pe_name = Some("sip".into());
        c.pe_data = Some("abc".into());
        let mut out = Vec::new();
        conn_line(&mut out, &c, fmt::NUMERIC | fmt::PERSISTENTCONN, &db);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "UDP 60:00  UDP         198.18.0.11:5060   198.18.0.100:80    198.19.2.2:80    sip                abc\n"
        );
    }
}
