//! libipvs's `ipvs_strerror`: the message ipvsadm prints for an errno,
//! which depends on the operation that failed.

use rvs_core::Errno;

/// The libipvs call an errno came back from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    AddService,
    EditService,
    DelService,
    ZeroService,
    AddDest,
    EditDest,
    DelDest,
    Flush,
    SetTimeout,
    StartDaemon,
    StopDaemon,
    GetInfo,
    GetServices,
    GetService,
    GetDests,
    GetTimeout,
    GetDaemon,
    GetConns,
}

/// The message for `e` returned by `op` (ipvsadm prints it alone on a line).
pub fn kernel_message(op: Op, e: Errno) -> &'static str {
    use Errno::*;
    let specific = match (op, e) {
        (Op::AddService, Exist) => Some("Service already exists"),
        (Op::AddService, NoEnt) | (Op::EditService, NoEnt) => {
            Some("Scheduler or persistence engine not found")
        }
        (Op::EditService | Op::DelService | Op::ZeroService, Srch) => Some("No such service"),
        (Op::AddDest | Op::EditDest | Op::DelDest, Srch) => Some("Service not defined"),
        (Op::AddDest, Exist) => Some("Destination already exists"),
        (Op::EditDest | Op::DelDest, NoEnt) => Some("No such destination"),
        (Op::StartDaemon, Exist) => Some("Daemon has already run"),
        (Op::StopDaemon, Srch) => Some("No daemon is running"),
        (Op::GetServices | Op::GetService | Op::GetDests, Srch) => Some("No such service"),
        _ => None,
    };
    if let Some(m) = specific {
        return m;
    }
    match e {
        Perm => "Permission denied (you must be root)",
        Inval => "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        NoProtoOpt => "Protocol not available",
        NoMem => "Memory allocation problem",
        OpNotSupp => "Operation not supported with IPv6",
        AfNoSupport => "Operation not supported with specified address family",
        other => other.strerror(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_errno_different_messages() {
        assert_eq!(
            kernel_message(Op::AddService, Errno::Exist),
            "Service already exists"
        );
        assert_eq!(
            kernel_message(Op::AddDest, Errno::Exist),
            "Destination already exists"
        );
        assert_eq!(
            kernel_message(Op::StartDaemon, Errno::Exist),
            "Daemon has already run"
        );
        assert_eq!(kernel_message(Op::Flush, Errno::Exist), "File exists");
        assert_eq!(
            kernel_message(Op::DelService, Errno::Srch),
            "No such service"
        );
        assert_eq!(
            kernel_message(Op::DelDest, Errno::Srch),
            "Service not defined"
        );
        assert_eq!(
            kernel_message(Op::StopDaemon, Errno::Srch),
            "No daemon is running"
        );
        assert_eq!(
            kernel_message(Op::AddDest, Errno::NoEnt),
            "No such file or directory"
        );
        assert_eq!(
            kernel_message(Op::AddDest, Errno::Range),
            "Numerical result out of range"
        );
        assert_eq!(
            kernel_message(Op::StartDaemon, Errno::NoDev),
            "No such device"
        );
        assert_eq!(
            kernel_message(Op::AddDest, Errno::Inval),
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        );
    }
}
