//! UDP in IPVS (`net/netfilter/ipvs/ip_vs_proto_udp.c`): a single state,
//! shown as "UDP". Every datagram re-arms the entry with the UDP timeout; a
//! datagram from the real server marks the controlling template ASSURED.
//! UDP entries never count as active.

/// The only UDP state (`IP_VS_UDP_S_NORMAL`).
pub const NORMAL: u8 = 0;
/// Number of UDP states.
pub const STATES: usize = 1;

/// The state's name as `/proc/net/ip_vs_conn` shows it.
pub fn state_name(state: u8) -> &'static str {
    if state == NORMAL {
        "UDP"
    } else {
        "ERR!"
    }
}
