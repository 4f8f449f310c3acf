//! Layer-4 protocols and address families, with the kernel's numbering.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A transport protocol IPVS balances. The discriminants are IP protocol
/// numbers; they decide listing order (TCP 6 < UDP 17 < SCTP 132).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    Tcp = 6,
    Udp = 17,
    Sctp = 132,
}

impl Protocol {
    /// IP protocol number.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// Name as printed in listings: `TCP`, `UDP`, `SCTP`.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// Name as used by `/etc/services`: `tcp`, `udp`, `sctp`.
    pub fn service_proto(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// Address family. The discriminants are `AF_INET`/`AF_INET6`, so IPv4 sorts
/// before IPv6 as in ipvsadm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Af {
    Inet = 2,
    Inet6 = 10,
}

impl Af {
    pub fn of(addr: &IpAddr) -> Af {
        match addr {
            IpAddr::V4(_) => Af::Inet,
            IpAddr::V6(_) => Af::Inet6,
        }
    }

    /// `AF_INET` / `AF_INET6` as the integer ipvsadm compares.
    pub fn number(self) -> u16 {
        self as u16
    }
}

/// Folds an address into the 32-bit host-order value the hashing schedulers
/// use: the IPv4 address itself, or the XOR of an IPv6 address's four words.
pub fn fold_addr(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}
