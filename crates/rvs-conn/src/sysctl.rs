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
        }
    }
}

impl Sysctls {
    /// Whether the secure_tcp state table applies now.
    pub fn secure_tcp_active(&self) -> bool {
        self.secure_tcp >= 2
    }
}
