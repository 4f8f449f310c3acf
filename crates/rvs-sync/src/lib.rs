//! IPVS connection synchronisation between directors: what
//! `net/netfilter/ipvs/ip_vs_sync.c` owns in Linux, without its sockets.
//! The master sends its connection entries to backups in the sync
//! protocol (version 1 by default, version 0 understood), so that a backup
//! that takes over forwards established connections to the same real
//! servers. This crate holds the wire format ([`wire`]: encode, decode,
//! every length checked), the master's decisions of what to send and when
//! and their batching into messages bounded by `sync_maxlen`
//! ([`sender`]: `sync_threshold`, `sync_period`, `sync_refresh_period`,
//! `sync_retries`, `sync_persist_mode`), and the backup's installation of
//! received records into the director's connection table ([`receiver`],
//! through `rvs_conn::ConnTable::install_synced`). It also defines rvs's
//! table request: an empty version 1 message with which a backup that
//! starts asks the master for its whole table ([`Sender::resend_all`]).
//! Time is an argument (`rvs_core::Time`, ms); `rvsd` owns the sockets.

pub mod receiver;
pub mod sender;
pub mod wire;

pub use receiver::{find_dest, Received, Receiver, ReceiverStats, Tally};
pub use sender::{record_of, Sender, SenderStats, SyncParams};
pub use wire::{
    decode, encode, table_request, ConnRecord, DecodeError, EncodeError, Message, Version,
};

/// Default multicast group (224.0.0.81).
pub const DEFAULT_GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 81);
/// Default UDP port.
pub const DEFAULT_PORT: u16 = 8848;
