//! Socket life events of a userspace proxy, mapped onto the same state
//! machines a packet engine drives, so `ipvsadm -L -c`, the active/inactive
//! counts and the timeouts mean the same thing for both data paths.
//!
//! A proxy's kernel has already validated the client's handshake, so
//! [`ProxyEvent::Established`] replays a complete handshake through the
//! normal TCP table even while secure_tcp is on. Data transfer is reported
//! with [`ConnTable::process`] (TCP: an ACK packet; UDP: one datagram per
//! call), which also counts the statistics. Events do not count packets.

use crate::conn::{ConnId, ConnInfo, Direction, Transport};
use crate::sctp::{self, Chunks};
use crate::table::ConnTable;
use crate::tcp;
use rvs_core::{DestStore, Protocol, Time};

/// What a proxy knows about a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyEvent {
    /// The client connection was accepted (and the server side connected).
    Established,
    /// The client shut down its sending side (FIN from the client).
    ClientFin,
    /// The server shut down its sending side (FIN from the server).
    ServerFin,
    /// The client reset the connection.
    ClientReset,
    /// The server reset or refused the connection.
    ServerReset,
    /// Both sockets are closed. After both FINs this leaves TIME_WAIT as
    /// it is; otherwise the connection was aborted and goes to CLOSE.
    Closed,
}

type Step = (Direction, Transport);

const TCP_ESTABLISHED: [Step; 3] = [
    (Direction::Input, Transport::Tcp(tcp::SYN)),
    (Direction::Output, Transport::Tcp(tcp::SYN | tcp::ACK)),
    (Direction::Input, Transport::Tcp(tcp::ACK)),
];

const SCTP_ESTABLISHED: [Step; 4] = [
    (
        Direction::Input,
        Transport::Sctp(Chunks {
            first: sctp::CID_INIT,
            second: None,
        }),
    ),
    (
        Direction::Output,
        Transport::Sctp(Chunks {
            first: sctp::CID_INIT_ACK,
            second: None,
        }),
    ),
    (
        Direction::Input,
        Transport::Sctp(Chunks {
            first: sctp::CID_COOKIE_ECHO,
            second: None,
        }),
    ),
    (
        Direction::Output,
        Transport::Sctp(Chunks {
            first: sctp::CID_COOKIE_ACK,
            second: None,
        }),
    ),
];

fn tcp_step(dir: Direction, flags: u8) -> [Step; 1] {
    [(dir, Transport::Tcp(flags))]
}

fn sctp_step(dir: Direction, chunk: u8) -> [Step; 1] {
    [(dir, Transport::Sctp(Chunks::one(chunk)))]
}

impl ConnTable {
    /// Applies a proxy event to entry `id` and re-arms its timer. Returns
    /// the entry afterwards, or `None` if `id` is stale. UDP entries have
    /// no connection life cycle: events only re-arm them.
    pub fn proxy_event(
        &mut self,
        id: ConnId,
        ev: ProxyEvent,
        now: Time,
        store: &mut (impl DestStore + ?Sized),
    ) -> Option<ConnInfo> {
        let c = self.get(id)?;
        if c.is_template() {
            return None;
        }
        let state = c.state();
        let steps: &[Step] = match (c.protocol(), ev) {
            (Some(Protocol::Tcp), ProxyEvent::Established) => &TCP_ESTABLISHED,
            (Some(Protocol::Tcp), ProxyEvent::ClientFin) => {
                &tcp_step(Direction::Input, tcp::FIN | tcp::ACK)
            }
            (Some(Protocol::Tcp), ProxyEvent::ServerFin) => {
                &tcp_step(Direction::Output, tcp::FIN | tcp::ACK)
            }
            (Some(Protocol::Tcp), ProxyEvent::ClientReset) => &tcp_step(Direction::Input, tcp::RST),
            (Some(Protocol::Tcp), ProxyEvent::ServerReset) => {
                &tcp_step(Direction::Output, tcp::RST)
            }
            (Some(Protocol::Tcp), ProxyEvent::Closed) => {
                if state == tcp::TIME_WAIT || state == tcp::CLOSE {
                    &[]
                } else {
                    &tcp_step(Direction::Input, tcp::RST)
                }
            }
            (Some(Protocol::Sctp), ProxyEvent::Established) => &SCTP_ESTABLISHED,
            (Some(Protocol::Sctp), ProxyEvent::ClientFin) => {
                &sctp_step(Direction::Input, sctp::CID_SHUTDOWN)
            }
            (Some(Protocol::Sctp), ProxyEvent::ServerFin) => {
                &sctp_step(Direction::Output, sctp::CID_SHUTDOWN)
            }
            (Some(Protocol::Sctp), ProxyEvent::ClientReset) => {
                &sctp_step(Direction::Input, sctp::CID_ABORT)
            }
            (Some(Protocol::Sctp), ProxyEvent::ServerReset) => {
                &sctp_step(Direction::Output, sctp::CID_ABORT)
            }
            (Some(Protocol::Sctp), ProxyEvent::Closed) => {
                if state == sctp::CLOSED {
                    &[]
                } else {
                    &sctp_step(Direction::Input, sctp::CID_ABORT)
                }
            }
            _ => &[],
        };
        let secure = self.sysctls.secure_tcp;
        // The handshake already happened in the proxy's kernel.
        self.sysctls.secure_tcp = 0;
        for &(dir, l4) in steps {
            self.transition(id.idx, dir, l4, store);
        }
        self.sysctls.secure_tcp = secure;
        let info = self.get(id)?.info();
        self.put(id, now, store);
        Some(info)
    }
}
