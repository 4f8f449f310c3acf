//! The SCTP state machine of `net/netfilter/ipvs/ip_vs_proto_sctp.c`:
//! states as seen from the real server (plus INIT1, REJECTED and the cookie
//! states), the event a packet's first chunk gives, and the INPUT / OUTPUT /
//! INPUT_ONLY transition tables. Only ESTABLISHED counts as active.

use crate::tcp::TableDir;

pub const NONE: u8 = 0;
pub const INIT1: u8 = 1;
pub const INIT: u8 = 2;
pub const COOKIE_SENT: u8 = 3;
pub const COOKIE_REPLIED: u8 = 4;
pub const COOKIE_WAIT: u8 = 5;
pub const COOKIE: u8 = 6;
pub const COOKIE_ECHOED: u8 = 7;
pub const ESTABLISHED: u8 = 8;
pub const SHUTDOWN_SENT: u8 = 9;
pub const SHUTDOWN_RECEIVED: u8 = 10;
pub const SHUTDOWN_ACK_SENT: u8 = 11;
pub const REJECTED: u8 = 12;
pub const CLOSED: u8 = 13;
/// Number of SCTP states.
pub const STATES: usize = 14;

/// Chunk types (RFC 9260 §3.2) that the state machine distinguishes.
pub const CID_DATA: u8 = 0;
pub const CID_INIT: u8 = 1;
pub const CID_INIT_ACK: u8 = 2;
pub const CID_SACK: u8 = 3;
pub const CID_HEARTBEAT: u8 = 4;
pub const CID_HEARTBEAT_ACK: u8 = 5;
pub const CID_ABORT: u8 = 6;
pub const CID_SHUTDOWN: u8 = 7;
pub const CID_SHUTDOWN_ACK: u8 = 8;
pub const CID_ERROR: u8 = 9;
pub const CID_COOKIE_ECHO: u8 = 10;
pub const CID_COOKIE_ACK: u8 = 11;
pub const CID_ECN_ECNE: u8 = 12;
pub const CID_ECN_CWR: u8 = 13;
pub const CID_SHUTDOWN_COMPLETE: u8 = 14;

const NAMES: [&str; STATES] = [
    "NONE",
    "INIT1",
    "INIT",
    "C-SENT",
    "C-REPLIED",
    "C-WAIT",
    "COOKIE",
    "C-ECHOED",
    "ESTABLISHED",
    "S-SENT",
    "S-RECEIVED",
    "S-ACK-SENT",
    "REJECTED",
    "CLOSED",
];

/// The state's name as `/proc/net/ip_vs_conn` shows it ("ERR!" when out of range).
pub fn state_name(state: u8) -> &'static str {
    NAMES.get(state as usize).copied().unwrap_or("ERR!")
}

/// Only ESTABLISHED counts in the real server's `activeconns`.
pub fn is_active(state: u8) -> bool {
    state == ESTABLISHED
}

/// The chunks of a packet that matter: the first one, and the one after it
/// (a COOKIE ECHO or COOKIE ACK bundled with a following ABORT counts as
/// an ABORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunks {
    pub first: u8,
    pub second: Option<u8>,
}

impl Chunks {
    pub fn one(first: u8) -> Chunks {
        Chunks {
            first,
            second: None,
        }
    }

    /// The chunk type the state machine acts on.
    pub fn effective(self) -> u8 {
        match (self.first, self.second) {
            (CID_COOKIE_ECHO | CID_COOKIE_ACK, Some(CID_ABORT)) => CID_ABORT,
            (t, _) => t,
        }
    }
}

/// Row of the transition table for a chunk type; unknown types are DATA.
fn event(chunk: u8) -> usize {
    match chunk {
        CID_INIT => 1,
        CID_INIT_ACK => 2,
        CID_COOKIE_ECHO => 3,
        CID_COOKIE_ACK => 4,
        CID_SHUTDOWN => 5,
        CID_SHUTDOWN_ACK => 6,
        CID_SHUTDOWN_COMPLETE => 7,
        CID_ERROR => 8,
        CID_ABORT => 9,
        _ => 0,
    }
}

const I1: u8 = INIT1;
const IN: u8 = INIT;
const CS: u8 = COOKIE_SENT;
const CR: u8 = COOKIE_REPLIED;
const CW: u8 = COOKIE_WAIT;
const CO: u8 = COOKIE;
const CE: u8 = COOKIE_ECHOED;
const ES: u8 = ESTABLISHED;
const SS: u8 = SHUTDOWN_SENT;
const SR: u8 = SHUTDOWN_RECEIVED;
const SA: u8 = SHUTDOWN_ACK_SENT;
const RJ: u8 = REJECTED;
const CL: u8 = CLOSED;

/// `[direction][event][state]`; rows: data, init, init_ack, cookie_echo,
/// cookie_ack, shutdown, shutdown_ack, shutdown_complete, error, abort.
#[rustfmt::skip]
static STATES_TABLE: [[[u8; STATES]; 10]; 3] = [
    // INPUT        NO  I1  IN  CS  CR  CW  CO  CE  ES  SS  SR  SA  RJ  CL
    [/* d   */    [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* i   */    [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
     /* i_a */    [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_e */    [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_a */    [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
     /* s   */    [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
     /* s_a */    [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
     /* s_c */    [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
     /* err */    [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
     /* ab  */    [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL]],
    // OUTPUT
    [/* d   */    [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* i   */    [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
     /* i_a */    [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_e */    [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
     /* c_a */    [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
     /* s   */    [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
     /* s_a */    [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
     /* s_c */    [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* err */    [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* ab  */    [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL]],
    // INPUT_ONLY
    [/* d   */    [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* i   */    [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
     /* i_a */    [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_e */    [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* c_a */    [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
     /* s   */    [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
     /* s_a */    [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
     /* s_c */    [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
     /* err */    [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
     /* ab  */    [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL]],
];

/// The next state for a packet whose chunks are `chunks`, seen in `dir`
/// while the entry is in `state`. A state out of range goes to CLOSED.
pub fn next_state(dir: TableDir, chunks: Chunks, state: u8) -> u8 {
    let d = match dir {
        TableDir::Input => 0,
        TableDir::Output => 1,
        TableDir::InputOnly => 2,
    };
    STATES_TABLE[d][event(chunks.effective())]
        .get(state as usize)
        .copied()
        .unwrap_or(CLOSED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir_chunks: &[(TableDir, u8)]) -> Vec<u8> {
        let mut s = NONE;
        dir_chunks
            .iter()
            .map(|&(d, c)| {
                s = next_state(d, Chunks::one(c), s);
                s
            })
            .collect()
    }

    #[test]
    fn nat_association_setup_and_shutdown() {
        use TableDir::*;
        let seen = run(&[
            (Input, CID_INIT),
            (Output, CID_INIT_ACK),
            (Input, CID_COOKIE_ECHO),
            (Output, CID_COOKIE_ACK),
            (Input, CID_DATA),
            (Input, CID_SHUTDOWN),
            (Output, CID_SHUTDOWN_ACK),
            (Input, CID_SHUTDOWN_COMPLETE),
        ]);
        assert_eq!(
            seen,
            vec![
                INIT1,
                COOKIE_SENT,
                COOKIE_REPLIED,
                ESTABLISHED,
                ESTABLISHED,
                SHUTDOWN_RECEIVED,
                SHUTDOWN_ACK_SENT,
                CLOSED
            ]
        );
    }

    #[test]
    fn direct_routing_sees_only_the_client() {
        use TableDir::*;
        let seen = run(&[
            (InputOnly, CID_INIT),
            (InputOnly, CID_COOKIE_ECHO),
            (InputOnly, CID_DATA),
            (InputOnly, CID_ABORT),
        ]);
        assert_eq!(seen, vec![INIT1, ESTABLISHED, ESTABLISHED, CLOSED]);
    }

    #[test]
    fn cookie_echo_bundled_with_abort_is_an_abort() {
        let c = Chunks {
            first: CID_COOKIE_ECHO,
            second: Some(CID_ABORT),
        };
        assert_eq!(c.effective(), CID_ABORT);
        assert_eq!(next_state(TableDir::Input, c, COOKIE_SENT), CLOSED);
        // Anything else after the first chunk does not matter.
        let d = Chunks {
            first: CID_DATA,
            second: Some(CID_ABORT),
        };
        assert_eq!(next_state(TableDir::Input, d, ESTABLISHED), ESTABLISHED);
    }

    #[test]
    fn unknown_chunks_are_data_and_names_match() {
        assert_eq!(
            next_state(TableDir::Input, Chunks::one(200), NONE),
            ESTABLISHED
        );
        assert_eq!(state_name(COOKIE_SENT), "C-SENT");
        assert_eq!(state_name(SHUTDOWN_ACK_SENT), "S-ACK-SENT");
        assert_eq!(state_name(14), "ERR!");
        assert!(is_active(ESTABLISHED) && !is_active(COOKIE_ECHOED));
    }
}
