//! The `net.ipv4.vs.*` sysctls that change what the connection table does,
//! with the kernel's defaults (Documentation/networking/ipvs-sysctl.rst).

/// Connection-table sysctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sysctls {
    /// On: a packet for an entry whose real server was deleted expires the
    /// entry and is scheduled afresh, and deleting a real server flushes
    /// its entries. Off (default): such packets are dropped until the entry
    /// times out.
    pub expire_nodest_conn: bool,
    /// On: a persistence template whose real server has weight 0 is
    /// invalidated when next used. Off (default): weight 0 keeps serving
    /// clients that have a template.
    pub expire_quiescent_template: bool,
    /// 0: a SYN hitting an old entry reuses it. Bit 0 (default 1):
    /// reschedule when the old TCP entry is in TIME_WAIT or CLOSE (SCTP:
    /// CLOSED). Bit 1: also in FIN_WAIT for entries whose replies are not
    /// seen (DR, TUN).
    pub conn_reuse_mode: u8,
    /// 0 off, 1 and 2 automatic, 3 always. The secure state table is in use
    /// while the value is 2 or 3 (the once-a-second defence routine, which
    /// is not part of this crate, switches between 1 and 2).
    pub secure_tcp: u8,
    /// Create entries for any TCP packet, not just SYN.
    pub sloppy_tcp: bool,
    /// Create entries for any SCTP chunk, not just INIT.
    pub sloppy_sctp: bool,
    /// Fwmark services with no usable real server forward to the original
    /// destination through a BYPASS entry.
    pub cache_bypass: bool,
    /// `amemthresh`: below this many pages of available memory the
    /// automatic defences (`secure_tcp` 1) switch on.
    pub amemthresh: u64,
}

impl Default for Sysctls {
    fn default() -> Sysctls {
        Sysctls {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            secure_tcp: 0,
            sloppy_tcp: false,
            sloppy_sctp: false,
            cache_bypass: false,
            amemthresh: 1024,
        }
    }
}

impl Sysctls {
    /// Whether the secure_tcp state table applies now.
    pub fn secure_tcp_active(&self) -> bool {
        self.secure_tcp >= 2
    }

    /// The kernel's once-a-second defence routine (`update_defense_level`)
    /// for `secure_tcp`: in automatic mode the secure table is switched on
    /// (1 → 2) while fewer than `amemthresh` pages are available and off
    /// again (2 → 1) when memory comes back; 0 and 3 never change. Returns
    /// whether the value changed.
    pub fn update_defense(&mut self, available_pages: u64) -> bool {
        let nomem = available_pages < self.amemthresh;
        let next = match (self.secure_tcp, nomem) {
            (1, true) => 2,
            (2, false) => 1,
            (v, _) => v,
        };
        let changed = next != self.secure_tcp;
        self.secure_tcp = next;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::Sysctls;

    #[test]
    fn automatic_secure_tcp_follows_available_memory() {
        let mut s = Sysctls {
            secure_tcp: 1,
            ..Default::default()
        };
        assert!(!s.update_defense(5000));
        assert!(!s.secure_tcp_active());
        assert!(s.update_defense(1023), "below amemthresh: on");
        assert_eq!(s.secure_tcp, 2);
        assert!(s.secure_tcp_active());
        assert!(!s.update_defense(10), "stays on");
        assert!(s.update_defense(1024), "memory back: off");
        assert_eq!(s.secure_tcp, 1);
        for fixed in [0, 3] {
            let mut s = Sysctls {
                secure_tcp: fixed,
                ..Default::default()
            };
            assert!(!s.update_defense(0));
            assert!(!s.update_defense(u64::MAX));
            assert_eq!(s.secure_tcp, fixed);
        }
    }
}
