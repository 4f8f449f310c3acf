//! Errors the table raises, named after the errno the kernel returns.
//!
//! ipvsadm turns an errno into a message that depends on the operation
//! (`EEXIST` on add-service is "Service already exists", on add-dest
//! "Destination already exists"); that mapping belongs to `rvsadm`. The table
//! only says which errno applies, exactly where Linux would.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Errno {
    /// EPERM
    Perm,
    /// ENOENT: unknown scheduler or persistence engine; unknown destination.
    NoEnt,
    /// ESRCH: unknown service.
    Srch,
    /// ENOMEM
    NoMem,
    /// EEXIST: duplicate service, destination, or running daemon.
    Exist,
    /// ENODEV: no such interface.
    NoDev,
    /// EINVAL
    Inval,
    /// ERANGE: negative weight, lower threshold above upper.
    Range,
    /// ENOPROTOOPT
    NoProtoOpt,
    /// EOPNOTSUPP
    OpNotSupp,
    /// EAFNOSUPPORT
    AfNoSupport,
    /// ENETUNREACH: a master sync daemon on an interface that is down.
    NetUnreach,
    /// EIO: rvs-specific, the daemon could not persist the change (and
    /// rolled it back).
    Io,
}

impl Errno {
    /// The C library's `strerror` text, used when ipvsadm has no specific message.
    pub fn strerror(self) -> &'static str {
        match self {
            Errno::Perm => "Operation not permitted",
            Errno::NoEnt => "No such file or directory",
            Errno::Srch => "No such process",
            Errno::NoMem => "Cannot allocate memory",
            Errno::Exist => "File exists",
            Errno::NoDev => "No such device",
            Errno::Inval => "Invalid argument",
            Errno::Range => "Numerical result out of range",
            Errno::NoProtoOpt => "Protocol not available",
            Errno::OpNotSupp => "Operation not supported",
            Errno::AfNoSupport => "Address family not supported by protocol",
            Errno::NetUnreach => "Network is unreachable",
            Errno::Io => "Input/output error",
        }
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.strerror())
    }
}

impl std::error::Error for Errno {}
