//! Which options each command accepts (`commands_v_options`) and which
//! tunnel options each tunnel type accepts (`tunnel_types_v_options`), as
//! data, with the checks that scan them.
//!
//! The rows below are byte-for-byte the tables compiled into Debian's
//! ipvsadm 1.31. Key: `+` required, `x` illegal, `1` at most one of the
//! `1` options, ` ` optional. The scan goes from bit 0 upwards and reports
//! the first violation, which is why option order in [`crate::options::Opt`]
//! matters.

use crate::options::{Cmd, Opt, OptSet, NUMBER_OF_OPT, OPT_NAMES};

/// One row per command (in `Cmd` order), one column per option bit.
///
/// Columns: `-n -c svc -s -p -M -r fwd -w -x -y mcast timeout daemon stats rate
/// thresholds persistent-conn nosort syncid exact ops pe -b mcast-group
/// mcast-port mcast-ttl sync-maxlen tun-info tun-type tun-port tun-nocsum
/// tun-csum tun-remcsum`.
pub const COMMANDS_V_OPTIONS: [&[u8; NUMBER_OF_OPT]; 14] = [
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // add-service
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // edit-service
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // list
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // add-server
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // edit-server
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
];

/// `generic_opt_check`: the first violation of the command's row, as the
/// message ipvsadm prints (exit 2).
pub fn check_command(cmd: Cmd, options: OptSet) -> Result<(), String> {
    let row = COMMANDS_V_OPTIONS[cmd.index()];
    let mut last = None;
    for (j, &rule) in row.iter().enumerate() {
        if !options.has_bit(j) {
            if rule == b'+' {
                return Err(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    OPT_NAMES[j],
                    cmd.name()
                ));
            }
            continue;
        }
        match rule {
            b'x' => {
                return Err(format!(
                    "Illegal '{}' option with the '{}' command",
                    OPT_NAMES[j],
                    cmd.name()
                ))
            }
            b'1' => match last {
                None => last = Some(j),
                Some(first) => {
                    return Err(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        OPT_NAMES[j],
                        OPT_NAMES[first],
                        cmd.name()
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// Tunnel type names, indexed by `--tun-type` value.
pub const TUN_NAMES: [&str; 3] = ["ipip", "gue", "gre"];

/// The tunnel options, in column order.
pub const TUN_OPTS: [Opt; 4] = [Opt::TunPort, Opt::TunNocsum, Opt::TunCsum, Opt::TunRemcsum];

/// One row per tunnel type (ipip, gue, gre), one column per [`TUN_OPTS`] entry.
pub const TUNNEL_TYPES_V_OPTIONS: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x11x"];

/// `tunnel_opt_check`: the first violation for tunnel type `tun_type`.
pub fn check_tunnel(tun_type: u16, options: OptSet) -> Result<(), String> {
    let Some(row) = TUNNEL_TYPES_V_OPTIONS.get(tun_type as usize) else {
        return Ok(());
    };
    let tname = TUN_NAMES[tun_type as usize];
    let mut last: Option<Opt> = None;
    for (j, &rule) in row.iter().enumerate() {
        let opt = TUN_OPTS[j];
        if !options.has(opt) {
            if rule == b'+' {
                return Err(format!(
                    "You need to supply the '{}' option for the '{}' tunnel type",
                    opt.name(),
                    tname
                ));
            }
            continue;
        }
        match rule {
            b'x' => {
                return Err(format!(
                    "Illegal '{}' option with the '{}' tunnel type",
                    opt.name(),
                    tname
                ))
            }
            b'1' => match last {
                None => last = Some(opt),
                Some(first) => {
                    return Err(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
                        opt.name(),
                        first.name(),
                        tname
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(opts: &[Opt]) -> OptSet {
        let mut s = OptSet::default();
        for &o in opts {
            s.insert(o);
        }
        s
    }

    #[test]
    fn required_then_illegal_in_bit_order() {
        assert_eq!(
            check_command(Cmd::Add, set(&[Opt::Scheduler])).unwrap_err(),
            "You need to supply the 'service-address' option for the 'add-service' command"
        );
        // numeric (bit 0) is reported before the missing real-server (bit 6).
        assert_eq!(
            check_command(Cmd::AddDest, set(&[Opt::Numeric, Opt::Service])).unwrap_err(),
            "Illegal 'numeric' option with the 'add-server' command"
        );
        assert_eq!(
            check_command(Cmd::AddDest, set(&[Opt::Service])).unwrap_err(),
            "You need to supply the 'real-server' option for the 'add-server' command"
        );
    }

    #[test]
    fn one_of_group_names_the_later_option_first() {
        assert_eq!(
            check_command(Cmd::List, set(&[Opt::Connection, Opt::Service])).unwrap_err(),
            "The option 'service-address' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(
            check_command(Cmd::List, set(&[Opt::Daemon, Opt::Timeout])).unwrap_err(),
            "The option 'daemon' conflicts with the 'timeout' option in the 'list' command"
        );
        assert!(check_command(Cmd::List, set(&[Opt::Numeric, Opt::Stats, Opt::TunInfo])).is_ok());
    }

    #[test]
    fn daemon_rows() {
        assert!(check_command(
            Cmd::StartDaemon,
            set(&[
                Opt::Mcast,
                Opt::SyncId,
                Opt::McastGroup,
                Opt::McastPort,
                Opt::McastTtl,
                Opt::SyncMaxlen
            ])
        )
        .is_ok());
        assert!(check_command(Cmd::StopDaemon, set(&[Opt::SyncId])).is_ok());
        assert_eq!(
            check_command(Cmd::StopDaemon, set(&[Opt::Mcast])).unwrap_err(),
            "Illegal 'mcast-interface' option with the 'stop-daemon' command"
        );
    }

    #[test]
    fn tunnel_table() {
        assert_eq!(
            check_tunnel(1, set(&[])).unwrap_err(),
            "You need to supply the 'tun-port' option for the 'gue' tunnel type"
        );
        assert_eq!(
            check_tunnel(0, set(&[Opt::TunPort])).unwrap_err(),
            "Illegal 'tun-port' option with the 'ipip' tunnel type"
        );
        assert_eq!(
            check_tunnel(1, set(&[Opt::TunPort, Opt::TunCsum, Opt::TunNocsum])).unwrap_err(),
            "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type"
        );
        assert_eq!(
            check_tunnel(2, set(&[Opt::TunRemcsum])).unwrap_err(),
            "Illegal 'tun-remcsum' option with the 'gre' tunnel type"
        );
        assert!(check_tunnel(2, set(&[Opt::TunCsum])).is_ok());
    }
}
