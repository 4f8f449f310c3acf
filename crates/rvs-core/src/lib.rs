//! The IPVS model shared by every part of rvs, with no I/O.
//!
//! This crate owns what `include/net/ip_vs.h` owns in Linux: the protocol and
//! address-family enums, the identity and attributes of a virtual service
//! ([`ServiceKey`], [`ServiceConfig`]), a real server ([`DestConfig`], [`Dest`])
//! with its connection counters and OVERLOAD flag, the statistics counters and
//! the kernel's rate estimator ([`stats`]), the errno-style errors the table
//! raises ([`Errno`]), and the contract every scheduler implements
//! ([`sched::Scheduler`]). The service table itself, with the validation rules
//! of `ip_vs_ctl.c`, is [`table::ServiceTable`]. Time is always an argument
//! ([`Time`], milliseconds on a monotonic clock), never read here.

pub mod dest;
pub mod error;
pub mod proto;
pub mod sched;
pub mod service;
pub mod stats;
pub mod table;

pub use dest::{Dest, DestConfig, DestId, FwdMethod, TunType};
pub use error::Errno;
pub use proto::{Af, Protocol};
pub use service::{DestStore, Service, ServiceConfig, ServiceKey};
pub use stats::{Counters, Estimator, Rates, Stats};

/// Milliseconds on a monotonic clock. Every time-dependent function takes it
/// as an argument so that behaviour is reproducible in tests.
pub type Time = u64;

/// Milliseconds in one second, for readability at call sites.
pub const SEC: Time = 1000;

/// IPVS version reported by `-L` ("IP Virtual Server version 1.2.1").
pub const IPVS_VERSION: u32 = 0x010201;

/// Size of the kernel's connection hash table (2^CONFIG_IP_VS_TAB_BITS),
/// printed as `size=4096` in listings.
pub const CONN_TAB_SIZE: u32 = 4096;
