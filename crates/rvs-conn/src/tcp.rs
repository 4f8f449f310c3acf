//! The TCP state machine of `net/netfilter/ipvs/ip_vs_proto_tcp.c`: states,
//! their names as `ipvsadm -L -c` prints them, which of them count as
//! active, the event a packet's flags give, and the two transition tables
//! (normal, and "secure_tcp" used while that defence is on), each with an
//! INPUT, OUTPUT and INPUT_ONLY part.

/// TCP states. The numbers are the kernel's (they travel in sync messages).
pub const NONE: u8 = 0;
pub const ESTABLISHED: u8 = 1;
pub const SYN_SENT: u8 = 2;
pub const SYN_RECV: u8 = 3;
pub const FIN_WAIT: u8 = 4;
pub const TIME_WAIT: u8 = 5;
pub const CLOSE: u8 = 6;
pub const CLOSE_WAIT: u8 = 7;
pub const LAST_ACK: u8 = 8;
pub const LISTEN: u8 = 9;
pub const SYNACK: u8 = 10;
/// Number of TCP states.
pub const STATES: usize = 11;

/// TCP header flag bits, as in the header's flags byte.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

const NAMES: [&str; STATES] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
];

/// The state's name as `/proc/net/ip_vs_conn` shows it ("ERR!" when out of range).
pub fn state_name(state: u8) -> &'static str {
    NAMES.get(state as usize).copied().unwrap_or("ERR!")
}

/// Whether a connection in `state` counts in the real server's
/// `activeconns` (since Linux 4.8 the handshake states count too).
pub fn is_active(state: u8) -> bool {
    matches!(state, ESTABLISHED | SYN_SENT | SYN_RECV | SYNACK)
}

/// Which part of a transition table applies to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableDir {
    /// Client → server, replies are seen (NAT).
    Input,
    /// Server → client.
    Output,
    /// Client → server of an entry whose replies are never seen (DR, TUN).
    InputOnly,
}

/// A packet's event: the first of RST, SYN, FIN, ACK that is set. `None`
/// when none is: the entry then goes to CLOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Syn,
    Fin,
    Ack,
    Rst,
}

impl Event {
    /// The kernel's `tcp_state_idx`: RST first, then SYN, FIN, ACK.
    pub fn from_flags(flags: u8) -> Option<Event> {
        if flags & RST != 0 {
            Some(Event::Rst)
        } else if flags & SYN != 0 {
            Some(Event::Syn)
        } else if flags & FIN != 0 {
            Some(Event::Fin)
        } else if flags & ACK != 0 {
            Some(Event::Ack)
        } else {
            None
        }
    }

    fn row(self) -> usize {
        match self {
            Event::Syn => 0,
            Event::Fin => 1,
            Event::Ack => 2,
            Event::Rst => 3,
        }
    }
}

const ES: u8 = ESTABLISHED;
const SS: u8 = SYN_SENT;
const SR: u8 = SYN_RECV;
const FW: u8 = FIN_WAIT;
const TW: u8 = TIME_WAIT;
const CL: u8 = CLOSE;
const CW: u8 = CLOSE_WAIT;
const LA: u8 = LAST_ACK;
const LI: u8 = LISTEN;
const SA: u8 = SYNACK;

type Table = [[[u8; STATES]; 4]; 3];

/// Rows per direction: syn, fin, ack, rst. Columns: the current state.
#[rustfmt::skip]
static NORMAL: Table = [
    // INPUT      NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [/* syn */  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
     /* fin */  [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
     /* rst */  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR]],
    // OUTPUT
    [/* syn */  [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
     /* fin */  [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
     /* rst */  [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL]],
    // INPUT_ONLY
    [/* syn */  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
     /* fin */  [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
     /* rst */  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL]],
];

/// The "secure_tcp" table (`tcp_states_dos`): a handshake only becomes
/// ESTABLISHED once the server side has answered.
#[rustfmt::skip]
static SECURE: Table = [
    // INPUT      NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [/* syn */  [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
     /* fin */  [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
     /* ack */  [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
     /* rst */  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL]],
    // OUTPUT
    [/* syn */  [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
     /* fin */  [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
     /* rst */  [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL]],
    // INPUT_ONLY
    [/* syn */  [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
     /* fin */  [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
     /* ack */  [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
     /* rst */  [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL]],
];

/// The next state for a packet with TCP `flags` seen in `dir` while the
/// entry is in `state`. `secure` selects the secure_tcp table.
pub fn next_state(secure: bool, dir: TableDir, flags: u8, state: u8) -> u8 {
    let Some(ev) = Event::from_flags(flags) else {
        return CLOSE;
    };
    next_state_for(secure, dir, ev, state)
}

/// One cell of a transition table. A state out of range goes to CLOSE.
pub fn next_state_for(secure: bool, dir: TableDir, ev: Event, state: u8) -> u8 {
    let table = if secure { &SECURE } else { &NORMAL };
    let d = match dir {
        TableDir::Input => 0,
        TableDir::Output => 1,
        TableDir::InputOnly => 2,
    };
    table[d][ev.row()]
        .get(state as usize)
        .copied()
        .unwrap_or(CLOSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_priority_is_rst_syn_fin_ack() {
        assert_eq!(Event::from_flags(RST | SYN | FIN | ACK), Some(Event::Rst));
        assert_eq!(Event::from_flags(SYN | ACK), Some(Event::Syn));
        assert_eq!(Event::from_flags(FIN | ACK), Some(Event::Fin));
        assert_eq!(Event::from_flags(ACK | PSH), Some(Event::Ack));
        assert_eq!(Event::from_flags(PSH), None);
    }

    #[test]
    fn no_known_flag_closes() {
        for s in 0..STATES as u8 {
            assert_eq!(next_state(false, TableDir::Input, PSH, s), CLOSE);
            assert_eq!(next_state(true, TableDir::Output, 0, s), CLOSE);
        }
    }

    #[test]
    fn names_and_activity() {
        assert_eq!(state_name(TIME_WAIT), "TIME_WAIT");
        assert_eq!(state_name(SYNACK), "SYNACK");
        assert_eq!(state_name(11), "ERR!");
        let active: Vec<u8> = (0..STATES as u8).filter(|&s| is_active(s)).collect();
        assert_eq!(active, vec![ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK]);
    }
}
