//! What the driver needs to know about an interface: its index, MAC,
//! whether it is up with carrier, and its addresses (the IPv4 source of
//! adverts, the IPv6 link-local source). Read with `getifaddrs(3)`, which
//! works inside any network namespace without `/sys`.

use crate::announce::Mac;
use nix::ifaddrs::getifaddrs;
use nix::net::if_::{if_nametoindex, InterfaceFlags};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One interface's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub mac: Option<Mac>,
    /// Administratively up and with carrier (`IFF_UP` and `IFF_RUNNING`).
    pub up: bool,
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

impl Link {
    /// The first IPv6 link-local address.
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        self.v6.iter().copied().find(|a| a.is_unicast_link_local())
    }
}

/// Looks `name` up; `None` when no such interface exists.
pub fn link(name: &str) -> io::Result<Option<Link>> {
    let index = match if_nametoindex(name) {
        Ok(i) => i,
        Err(nix::errno::Errno::ENODEV) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut l = Link {
        index,
        mac: None,
        up: false,
        v4: Vec::new(),
        v6: Vec::new(),
    };
    for ifa in getifaddrs()? {
        if ifa.interface_name != name {
            continue;
        }
        l.up = ifa
            .flags
            .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING);
        let Some(a) = ifa.address else { continue };
        if let Some(sin) = a.as_sockaddr_in() {
            l.v4.push(sin.ip());
        } else if let Some(sin6) = a.as_sockaddr_in6() {
            l.v6.push(sin6.ip());
        } else if let Some(ll) = a.as_link_addr() {
            l.mac = ll.addr();
        }
    }
    Ok(Some(l))
}
