//! The director: everything Linux keeps in `struct netns_ipvs`, behind one
//! owner.
//!
//! [`Director`] holds the service table ([`rvs_core::table::ServiceTable`]),
//! the connection timeouts, and the connection-sync daemon settings. It
//! applies control requests ([`rvs_ctl::Request`]) with the kernel's
//! semantics and errnos, builds the listings clients print, and turns the
//! table into [`Rules`], the persisted form that `rvsd` writes atomically to
//! its state directory ([`state`]) and replays at start. The daemon wraps a
//! `Director` in one lock, which is what serialises concurrent clients.

mod director;
pub mod state;

pub use director::{Director, DirectorOptions, Interface, InterfaceLookup};
pub use state::{Rules, ServiceRules, StateDir};
