//! The option table, as data: popt's `options_table[]` of ipvsadm 1.31 and the
//! option bits ("OPTC_*") whose names appear in error messages.
//!
//! The order of [`OPTIONS`] is the order of ipvsadm's table (popt takes the
//! first entry whose name matches, which only matters for the two `--list`
//! entries). The bit index of an [`Opt`] decides which problem the legality
//! check reports first.

/// How an option takes its argument (popt `POPT_ARG_*` / `POPT_ARGFLAG_OPTIONAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// `POPT_ARG_NONE`.
    None,
    /// `POPT_ARG_STRING`: attached (`-s rr`, `-srr`, `-s=rr`, `--scheduler=rr`)
    /// or the next word, whatever it looks like.
    Required,
    /// `POPT_ARG_STRING | POPT_ARGFLAG_OPTIONAL`: attached, or the next word
    /// only when it does not start with `-`.
    Optional,
}

/// The `val` popt returns for an option: what ipvsadm's `switch` dispatches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptVal {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    TcpService,
    UdpService,
    SctpService,
    FwmarkService,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

/// One row of the popt table.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub long: &'static str,
    pub short: Option<u8>,
    pub arg: ArgKind,
    pub val: OptVal,
}

const fn o(long: &'static str, short: u8, arg: ArgKind, val: OptVal) -> OptSpec {
    OptSpec {
        long,
        short: if short == 0 { None } else { Some(short) },
        arg,
        val,
    }
}

use ArgKind::{None as N, Optional as O, Required as R};
use OptVal::*;

/// ipvsadm 1.31's `options_table[]`, in its order.
pub static OPTIONS: &[OptSpec] = &[
    o("add-service", b'A', N, AddService),
    o("edit-service", b'E', N, EditService),
    o("delete-service", b'D', N, DeleteService),
    o("clear", b'C', N, Clear),
    o("list", b'L', N, List),
    o("list", b'l', N, List),
    o("zero", b'Z', N, Zero),
    o("add-server", b'a', N, AddServer),
    o("edit-server", b'e', N, EditServer),
    o("delete-server", b'd', N, DeleteServer),
    o("set", 0, N, Set),
    o("help", b'h', N, Help),
    o("version", b'v', N, Version),
    o("restore", b'R', N, Restore),
    o("save", b'S', N, Save),
    o("start-daemon", 0, R, StartDaemon),
    o("stop-daemon", 0, R, StopDaemon),
    o("tcp-service", b't', R, TcpService),
    o("udp-service", b'u', R, UdpService),
    o("sctp-service", 0, R, SctpService),
    o("fwmark-service", b'f', R, FwmarkService),
    o("scheduler", b's', R, Scheduler),
    o("persistent", b'p', O, Persistent),
    o("netmask", b'M', R, Netmask),
    o("real-server", b'r', R, RealServer),
    o("masquerading", b'm', N, Masquerading),
    o("ipip", b'i', N, Ipip),
    o("gatewaying", b'g', N, Gatewaying),
    o("weight", b'w', R, Weight),
    o("u-threshold", b'x', R, UThreshold),
    o("l-threshold", b'y', R, LThreshold),
    o("numeric", b'n', N, Numeric),
    o("connection", b'c', N, Connection),
    o("mcast-interface", 0, R, McastInterface),
    o("syncid", 0, R, SyncId),
    o("timeout", 0, N, Timeout),
    o("daemon", 0, N, Daemon),
    o("stats", 0, N, Stats),
    o("rate", 0, N, Rate),
    o("thresholds", 0, N, Thresholds),
    o("persistent-conn", 0, N, PersistentConn),
    o("nosort", 0, N, NoSort),
    o("sort", 0, N, Sort),
    o("exact", b'X', N, Exact),
    o("ipv6", b'6', N, Ipv6),
    o("ops", b'o', N, Ops),
    o("pe", 0, R, Pe),
    o("sched-flags", b'b', R, SchedFlags),
    o("mcast-group", 0, R, McastGroup),
    o("mcast-port", 0, R, McastPort),
    o("mcast-ttl", 0, R, McastTtl),
    o("sync-maxlen", 0, R, SyncMaxlen),
    o("tun-info", 0, N, TunInfo),
    o("tun-type", 0, R, TunType),
    o("tun-port", 0, R, TunPort),
    o("tun-nocsum", 0, N, TunNocsum),
    o("tun-csum", 0, N, TunCsum),
    o("tun-remcsum", 0, N, TunRemcsum),
];

/// The first table entry with this long name.
pub fn find_long(name: &str) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|o| o.long == name)
}

/// The table entry with this short name.
pub fn find_short(c: u8) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|o| o.short == Some(c))
}

/// An option bit ("OPTC_*"): its index in the legality table and in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opt {
    Numeric = 0,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Mcast,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

/// Number of option bits.
pub const NUMBER_OF_OPT: usize = 34;

/// Option names as messages show them, indexed by bit.
pub const OPT_NAMES: [&str; NUMBER_OF_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

impl Opt {
    pub fn bit(self) -> u64 {
        1u64 << (self as u8)
    }

    pub fn name(self) -> &'static str {
        OPT_NAMES[self as usize]
    }
}

/// The set of option bits given on a command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptSet(pub u64);

impl OptSet {
    pub fn has(self, o: Opt) -> bool {
        self.0 & o.bit() != 0
    }

    pub fn has_bit(self, i: usize) -> bool {
        self.0 & (1u64 << i) != 0
    }

    pub fn insert(&mut self, o: Opt) {
        self.0 |= o.bit();
    }
}

/// The commands, numbered as ipvsadm's `CMD_*` (their order indexes the
/// legality table and the command names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Cmd {
    Add = 1,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    SetTimeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

/// Command names as messages show them.
pub const CMD_NAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

impl Cmd {
    /// Row in the legality table.
    pub fn index(self) -> usize {
        self as usize - 1
    }

    pub fn name(self) -> &'static str {
        CMD_NAMES[self.index()]
    }
}

/// Output format flags ("FMT_*").
pub mod fmt {
    pub const NUMERIC: u32 = 0x0001;
    pub const RULE: u32 = 0x0002;
    pub const STATS: u32 = 0x0004;
    pub const RATE: u32 = 0x0008;
    pub const THRESHOLDS: u32 = 0x0010;
    pub const PERSISTENTCONN: u32 = 0x0020;
    pub const NOSORT: u32 = 0x0040;
    pub const EXACT: u32 = 0x0080;
    pub const TUN_INFO: u32 = 0x0100;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_bits_match_names() {
        assert_eq!(Opt::TunRemcsum as usize, NUMBER_OF_OPT - 1);
        assert_eq!(Opt::Service.name(), "service-address");
        assert_eq!(Opt::SchedFlags.name(), "sched-flags");
        assert_eq!(Cmd::Zero.name(), "zero");
        assert_eq!(Cmd::SetTimeout.name(), "set");
    }

    #[test]
    fn list_long_name_resolves_to_upper_l() {
        assert_eq!(find_long("list").unwrap().short, Some(b'L'));
        assert!(find_short(b'I').is_none(), "--syncid has no short form");
        assert_eq!(find_short(b'X').unwrap().val, OptVal::Exact);
    }
}
