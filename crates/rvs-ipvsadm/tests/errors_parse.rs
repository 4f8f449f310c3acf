//! Every command line of the oracle's `errors-parse` case
//! (`shared/oracle/cases/errors-parse.out`), run through [`Runner`] with no
//! daemon running: the ones ipvsadm rejects by itself must produce the
//! exact stderr, stdout and exit code anyway; the ones only the kernel
//! rejects must parse.

use rvs_ipvsadm::run::Connector;
use rvs_ipvsadm::usage::usage;
use rvs_ipvsadm::{parse_args_with, NameDb, Runner};
use std::cell::Cell;
use std::rc::Rc;

/// (argv, exit code or -1 for "the kernel decides", stderr, stdout is the usage text)
const CASES: &[(&[&str], i32, &str, bool)] = &[
    (&["ipvsadm", "-A", "-s", "rr"], 2, "You need to supply the 'service-address' option for the 'add-service' command\n", false),
    (&["ipvsadm", "-A"], 2, "You need to supply the 'service-address' option for the 'add-service' command\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80"], 2, "You need to supply the 'real-server' option for the 'add-server' command\n", false),
    (&["ipvsadm", "-a", "-r", "192.168.1.1"], 2, "You need to supply the 'service-address' option for the 'add-server' command\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:99999"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:-1"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:nosuchservice"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80:90"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "999.0.0.1:80"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0:80"], -1, "", false),
    (&["ipvsadm", "-A", "-t", "10.1:80", "-s", "rr"], -1, "", false),
    (&["ipvsadm", "-A", "-t", "0x0a000001:80", "-s", "rr"], -1, "", false),
    (&["ipvsadm", "-A", "-t", "12345"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "nosuch.host.invalid:80"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "[2001:db8::1]80"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "[2001:db8::1"], 2, "illegal virtual server address[:port] specified\n", false),
    (&["ipvsadm", "-A", "-t", "[10.0.0.1]:80"], 2, "Zero port specified for non-persistent service\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1"], 2, "Zero port specified for non-persistent service\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:0"], 2, "Zero port specified for non-persistent service\n", false),
    (&["ipvsadm", "-A", "-t", "[2001:db8::1]:0"], 2, "Zero port specified for non-persistent service\n", false),
    (&["ipvsadm", "-A", "-f", "0"], 2, "invalid fwmark value `0' specified\n", false),
    (&["ipvsadm", "-A", "-f", "-1"], 2, "invalid fwmark value `-1' specified\n", false),
    (&["ipvsadm", "-A", "-f", "abc"], 2, "invalid fwmark value `abc' specified\n", false),
    (&["ipvsadm", "-A", "-f", "4294967296"], 2, "invalid fwmark value `4294967296' specified\n", false),
    (&["ipvsadm", "-A", "-f", "1x"], 2, "invalid fwmark value `1x' specified\n", false),
    (&["ipvsadm", "-A", "-6", "-f", "1"], 2, "-6 used before -f\n\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-6"], 2, "-6 used before -f\n\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-p", "0"], 2, "invalid timeout value `0' specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-p", "2678401"], 2, "invalid timeout value `2678401' specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-p", "abc"], 2, "invalid timeout value `abc' specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-p", "60", "-M", "255.255.255.256"], 2, "illegal virtual server persistent mask specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-p", "60", "-M", "24"], -1, "", false),
    (&["ipvsadm", "-A", "-t", "[2001:db8::1]:80", "-p", "60", "-M", "129"], 2, "illegal ipv6 netmask specified\n", false),
    (&["ipvsadm", "-A", "-t", "[2001:db8::1]:80", "-p", "60", "-M", "0"], 2, "illegal ipv6 netmask specified\n", false),
    (&["ipvsadm", "-A", "-t", "[2001:db8::1]:80", "-p", "60", "-M", "255.255.255.0"], 2, "illegal ipv6 netmask specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-o"], 2, "One-Packet Scheduling is only for UDP virtual services\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr", "-b", "sh-port"], 2, "incompatible scheduler flag `sh-port'\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "sh", "-b", "mh-port"], 2, "incompatible scheduler flag `mh-port'\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr", "-b", "bogus"], 2, "invalid scheduler flag `bogus'\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-b", "sh-fallback"], 2, "incompatible scheduler flag `sh-fallback'\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr", "-b", ""], -1, "", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-r", "192.168.1.1"], 2, "Illegal 'real-server' option with the 'add-service' command\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-w", "1"], 2, "Illegal 'weight' option with the 'add-service' command\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-m"], 2, "Illegal 'forwarding-method' option with the 'add-service' command\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-n"], 2, "Illegal 'numeric' option with the 'add-service' command\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-t", "10.0.0.2:80"], 2, "multiple 'service-address' options specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-u", "10.0.0.1:80"], 2, "multiple 'service-address' options specified\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr", "-s", "wrr"], 2, "multiple 'scheduler' options specified\n", false),
    (&["ipvsadm", "-A", "-D", "-t", "10.0.0.1:80"], 2, "invalid option `-D'\n", false),
    (&["ipvsadm", "-L", "-A"], 2, "invalid option `-A'\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-w", "65536"], -1, "", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-w", "-1"], 2, "illegal weight specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-w", "abc"], 2, "illegal weight specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-w", ""], 2, "illegal weight specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-x", "-1"], 2, "illegal u_threshold specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-y", "2147483648"], 2, "illegal l_threshold specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-m", "-g"], 2, "multiple 'forwarding-method' options specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1:99999"], 2, "illegal real server address[:port] specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "12345"], 2, "illegal real server address[:port] specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "[2001:db8::1]", "-m"], 2, "illegal real server address[:port] specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "--tun-type", "gue"], 2, "Tunnel options conflict with forward method\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-i", "--tun-type", "gue"], 2, "You need to supply the 'tun-port' option for the 'gue' tunnel type\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-i", "--tun-type", "vxlan"], 2, "illegal tunnel type specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-i", "--tun-port", "5000"], 2, "Illegal 'tun-port' option with the 'ipip' tunnel type\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-i", "--tun-type", "gre", "--tun-port", "5000"], 2, "Illegal 'tun-port' option with the 'gre' tunnel type\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-i", "--tun-type", "gre", "--tun-remcsum"], 2, "Illegal 'tun-remcsum' option with the 'gre' tunnel type\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-i", "--tun-type", "gue", "--tun-port", "5000", "--tun-csum", "--tun-nocsum"], 2, "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-i", "--tun-type", "gue", "--tun-port", "0"], 2, "illegal tunnel port specified\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-s", "rr"], 2, "Illegal 'scheduler' option with the 'add-server' command\n", false),
    (&["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-p"], 2, "Illegal 'persistent' option with the 'add-server' command\n", false),
    (&["ipvsadm", "-d", "-t", "10.0.0.1:80", "-r", "192.168.1.1", "-w", "2"], 2, "Illegal 'weight' option with the 'delete-server' command\n", false),
    (&["ipvsadm", "-L", "-s", "rr"], 2, "Illegal 'scheduler' option with the 'list' command\n", false),
    (&["ipvsadm", "-L", "-c", "-t", "10.0.0.1:80"], 2, "The option 'service-address' conflicts with the 'connection' option in the 'list' command\n", false),
    (&["ipvsadm", "-L", "--daemon", "--timeout"], 2, "The option 'daemon' conflicts with the 'timeout' option in the 'list' command\n", false),
    (&["ipvsadm", "-L", "foo"], 2, "unexpected argument foo\n", false),
    (&["ipvsadm", "-S", "-c"], 2, "Illegal 'connection' option with the 'save' command\n", false),
    (&["ipvsadm", "-Z", "-n"], 2, "Illegal 'numeric' option with the 'zero' command\n", false),
    (&["ipvsadm", "-C", "-t", "10.0.0.1:80"], 2, "Illegal 'service-address' option with the 'flush' command\n", false),
    (&["ipvsadm", "-n"], 255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", false),
    (&["ipvsadm", "-n", "-L"], 255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", false),
    (&["ipvsadm", "-t", "10.0.0.1:80"], 255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", false),
    (&["ipvsadm", "--foo"], 255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", false),
    (&["ipvsadm", "-Q"], 255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", false),
    (&["ipvsadm", "-A", "-t"], 255, "-t: missing argument\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "--bogus"], 255, "--bogus: unknown option\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "extra"], 2, "unexpected argument extra\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s"], 255, "-s: missing argument\n", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", ""], -1, "", false),
    (&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "abcdefghijklmnopqrstuvwxyz"], -1, "", false),
    (&["ipvsadm", "-h", "-L"], 0, "", true),
    (&["ipvsadm", "-L", "-h"], 2, "invalid option `-h'\n", false),
    (&["ipvsadm", "-L", "-n", "-n"], 2, "multiple 'numeric' options specified\n", false),
    (&["ipvsadm", "-Lnn"], 2, "multiple 'numeric' options specified\n", false),
    (&["ipvsadm", ""], 255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", false),
    (&["ipvsadm", "-"], 255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", false),
    (&["ipvsadm", "--"], 255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", false),
    (&["ipvsadm", "-L", "--"], -1, "", false),
    (&["ipvsadm", "-At", "10.0.0.1:80"], -1, "", false),
    (&["ipvsadm", "-Ln", "-t", "10.0.0.1:80"], -1, "", false),
    (&["ipvsadm", "-L", "-n"], -1, "", false),
];

fn names() -> NameDb {
    NameDb::from_text(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\toracle\n",
        "http\t\t80/tcp\t\twww\nhttp-alt\t8080/tcp\twebcache\n",
    )
}

/// Runs one command line; also says how often a connection was attempted.
fn run(argv: &[&str], names: &NameDb) -> (i32, String, String, u32) {
    let asked = Rc::new(Cell::new(0));
    let count = asked.clone();
    let connector: Connector = Box::new(move || {
        count.set(count.get() + 1);
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    });
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut stdin: &[u8] = b"";
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let code = {
        let mut r = Runner::new(
            "ipvsadm".to_string(),
            &mut out,
            &mut err,
            &mut stdin,
            names,
            "/nonexistent/rvsd.sock".into(),
            connector,
        );
        r.run(&argv)
    };
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
        asked.get(),
    )
}

#[test]
fn local_rejections_match_ipvsadm_exactly() {
    let names = names();
    let mut checked = 0;
    for &(argv, exit, stderr, shows_usage) in CASES {
        if exit == -1 {
            continue;
        }
        let (code, out, err, asked) = run(argv, &names);
        assert_eq!((code, err.as_str()), (exit, stderr), "{argv:?}");
        assert_eq!(asked, 1, "{argv:?}: only the start-up attempt");
        if shows_usage {
            assert_eq!(out, usage("ipvsadm"), "{argv:?}");
        } else {
            assert_eq!(out, "", "{argv:?}");
        }
        checked += 1;
    }
    assert_eq!(checked, 89);
}

#[test]
fn kernel_rejections_are_valid_command_lines() {
    let names = names();
    for &(argv, exit, _, _) in CASES {
        if exit != -1 {
            continue;
        }
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        assert!(parse_args_with(&argv, &names, false).is_ok(), "{argv:?}");
    }
}

#[test]
fn daemon_unreachable_is_reported_with_the_socket_path() {
    let (code, out, err, asked) = run(&["ipvsadm", "-L", "-n"], &names());
    assert_eq!(asked, 2, "start-up, then again when -L needs it");
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert!(
        err.contains("/nonexistent/rvsd.sock") && err.contains("rvsd"),
        "{err}"
    );
}

#[test]
fn a_refused_socket_reads_like_a_non_root_ipvsadm() {
    let connector: Connector =
        Box::new(|| Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut stdin: &[u8] = b"";
    let names = names();
    let code = Runner::new(
        "ipvsadm".into(),
        &mut out,
        &mut err,
        &mut stdin,
        &names,
        "/run/rvs/rvsd.sock".into(),
        connector,
    )
    .run(&[
        "ipvsadm".to_string(),
        "-A".to_string(),
        "-t".to_string(),
        "10.0.0.7:80".to_string(),
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "Can't initialize ipvs: Permission denied (you must be root)\n\
         Are you sure that IP Virtual Server is built in the kernel or as module?\n"
    );
}
