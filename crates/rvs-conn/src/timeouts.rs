//! Per-protocol timeout tables: how long an entry lives after its last
//! packet, by state. The defaults are the kernel's; `ipvsadm --set tcp
//! tcpfin udp` changes only TCP ESTABLISHED, TCP FIN_WAIT and UDP
//! (`ip_vs_set_timeout` in `ip_vs_ctl.c`). A change applies to an entry at
//! its next packet, never to a running timer.

use crate::{sctp, tcp, udp};
use rvs_core::{Errno, Time, SEC};

/// The kernel's tick rate on the reference system (Debian's 6.1 kernel has
/// CONFIG_HZ=250). Timeouts are stored in jiffies there, so a value above
/// `i32::MAX / HZ` seconds is refused.
pub const HZ: i32 = 250;

/// Default TCP timeouts by state, in milliseconds.
pub const TCP_DEFAULTS: [Time; tcp::STATES] = [
    2 * SEC,       // NONE
    15 * 60 * SEC, // ESTABLISHED
    2 * 60 * SEC,  // SYN_SENT
    60 * SEC,      // SYN_RECV
    2 * 60 * SEC,  // FIN_WAIT
    2 * 60 * SEC,  // TIME_WAIT
    10 * SEC,      // CLOSE
    60 * SEC,      // CLOSE_WAIT
    30 * SEC,      // LAST_ACK
    2 * 60 * SEC,  // LISTEN
    120 * SEC,     // SYNACK
];

/// Default UDP timeout, in milliseconds.
pub const UDP_DEFAULTS: [Time; udp::STATES] = [5 * 60 * SEC];

const SCTP_MAX_RTO: Time = 61 * SEC;

/// Default SCTP timeouts by state, in milliseconds.
pub const SCTP_DEFAULTS: [Time; sctp::STATES] = [
    2 * SEC,       // NONE
    4 * SEC,       // INIT1
    SCTP_MAX_RTO,  // INIT
    SCTP_MAX_RTO,  // COOKIE_SENT
    SCTP_MAX_RTO,  // COOKIE_REPLIED
    SCTP_MAX_RTO,  // COOKIE_WAIT
    SCTP_MAX_RTO,  // COOKIE
    SCTP_MAX_RTO,  // COOKIE_ECHOED
    15 * 60 * SEC, // ESTABLISHED
    SCTP_MAX_RTO,  // SHUTDOWN_SENT
    SCTP_MAX_RTO,  // SHUTDOWN_RECEIVED
    SCTP_MAX_RTO,  // SHUTDOWN_ACK_SENT
    4 * SEC,       // REJECTED
    SCTP_MAX_RTO,  // CLOSED
];

/// Lifetime of a new entry before its first packet has been handled.
pub const NEW_CONN_TIMEOUT: Time = 3 * SEC;
/// How long an expiring entry that still controls others is kept, again
/// and again (its timeout is overwritten with this value).
pub const CONTROL_REARM: Time = 60 * SEC;

/// The three timeout tables of one director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: [Time; tcp::STATES],
    pub udp: [Time; udp::STATES],
    pub sctp: [Time; sctp::STATES],
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            tcp: TCP_DEFAULTS,
            udp: UDP_DEFAULTS,
            sctp: SCTP_DEFAULTS,
        }
    }
}

/// The three values `ipvsadm -L --timeout` shows, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutsTriple {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

impl Timeouts {
    /// `--set tcp tcpfin udp` in seconds; 0 keeps a value. EINVAL (and no
    /// change at all) when any value is negative or above `i32::MAX / HZ`.
    pub fn set(&mut self, tcp: i32, tcp_fin: i32, udp: i32) -> Result<(), Errno> {
        let max = i32::MAX / HZ;
        if [tcp, tcp_fin, udp].iter().any(|&v| v < 0 || v > max) {
            return Err(Errno::Inval);
        }
        if tcp != 0 {
            self.tcp[tcp::ESTABLISHED as usize] = tcp as Time * SEC;
        }
        if tcp_fin != 0 {
            self.tcp[tcp::FIN_WAIT as usize] = tcp_fin as Time * SEC;
        }
        if udp != 0 {
            self.udp[udp::NORMAL as usize] = udp as Time * SEC;
        }
        Ok(())
    }

    /// The values `-L --timeout` prints (whole seconds).
    pub fn get(&self) -> TimeoutsTriple {
        TimeoutsTriple {
            tcp: (self.tcp[tcp::ESTABLISHED as usize] / SEC) as u32,
            tcp_fin: (self.tcp[tcp::FIN_WAIT as usize] / SEC) as u32,
            udp: (self.udp[udp::NORMAL as usize] / SEC) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_print_as_ipvsadm_shows_them() {
        let t = Timeouts::default();
        assert_eq!(
            t.get(),
            TimeoutsTriple {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }
        );
    }

    #[test]
    fn set_changes_only_established_fin_wait_and_udp() {
        let mut t = Timeouts::default();
        t.set(100, 30, 40).unwrap();
        let mut want = TCP_DEFAULTS;
        want[tcp::ESTABLISHED as usize] = 100 * SEC;
        want[tcp::FIN_WAIT as usize] = 30 * SEC;
        assert_eq!(t.tcp, want);
        assert_eq!(t.udp, [40 * SEC]);
        assert_eq!(t.sctp, SCTP_DEFAULTS);
        // TIME_WAIT, CLOSE_WAIT and LAST_ACK keep their defaults.
        assert_eq!(t.tcp[tcp::TIME_WAIT as usize], 120 * SEC);
    }

    #[test]
    fn zero_keeps_the_current_value() {
        let mut t = Timeouts::default();
        t.set(2147483, 0, 0).unwrap();
        t.set(0, 0, 0).unwrap();
        assert_eq!(t.get().tcp, 2147483);
        assert_eq!(t.get().tcp_fin, 120);
    }

    #[test]
    fn out_of_range_changes_nothing() {
        let mut t = Timeouts::default();
        assert_eq!(t.set(10, -1, 0), Err(Errno::Inval));
        assert_eq!(t.set(0, 0, i32::MAX / HZ + 1), Err(Errno::Inval));
        assert_eq!(t, Timeouts::default());
        assert_eq!(t.set(i32::MAX / HZ, 0, 0), Ok(()));
    }
}
