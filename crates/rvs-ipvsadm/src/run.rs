//! Running a command line: ipvsadm's `main` and `process_options` with the
//! kernel replaced by rvsd.
//!
//! ipvsadm leaves the process from deep inside (`fail()`, `exit(1)` after a
//! failed listing, `tryhelp_exit`). Here every such exit is a
//! [`Stop`] carried up with `?`, so [`Runner::run`] always returns the
//! exit code and the caller decides how to terminate.

use crate::errors::{kernel_message, Op};
use crate::options::{fmt, Cmd, Opt};
use crate::parse::{parse_args_with, Command, Exit};
use crate::print::{conn, list};
use crate::resolve::NameDb;
use crate::usage::{try_help, usage, VERSION_LINE};
use rvs_core::Errno;
use rvs_ctl::{
    ClientError, ConnEntry, DaemonConfig, Info, Request, Response, ServiceEntry, Timeouts,
};
use std::io::{Read, Write};
use std::path::PathBuf;

/// Something that answers control requests: the real [`rvs_ctl::Client`],
/// or a fake in tests.
pub trait Backend {
    fn call(&mut self, req: &Request) -> Result<Response, ClientError>;
}

impl Backend for rvs_ctl::Client {
    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        rvs_ctl::Client::call(self, req)
    }
}

/// Opens the connection to the daemon the first time a command needs it.
pub type Connector = Box<dyn FnMut() -> std::io::Result<Box<dyn Backend>>>;

/// The connector for the real daemon at `path`.
pub fn unix_connector(path: PathBuf) -> Connector {
    Box::new(move || {
        let c = rvs_ctl::Client::connect(&path)?;
        Ok(Box::new(c) as Box<dyn Backend>)
    })
}

/// What ipvsadm prints when the kernel refuses its control channel; rvsadm
/// prints it when the daemon's socket refuses the connection.
const NOT_ROOT: &str = "Can't initialize ipvs: Permission denied (you must be root)\n\
                        Are you sure that IP Virtual Server is built in the kernel or as module?\n";

/// "Leave the process with this code now."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop(pub i32);

/// Exit code for a `process_options` result (`-1` is 255).
pub fn exit_code(result: i32) -> i32 {
    result & 0xff
}

/// One ipvsadm process: its streams, name databases and daemon connection.
pub struct Runner<'a> {
    /// `argv[0]` as invoked; it appears in the usage and "try help" texts.
    pub prog: String,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub stdin: &'a mut dyn Read,
    pub names: &'a NameDb,
    /// popt's POSIX mode (`POSIXLY_CORRECT`).
    pub posix: bool,
    /// The daemon socket, for messages.
    pub socket: PathBuf,
    /// Set when ipvsadm would have died of SIGSEGV (exit code 139).
    pub crashed: bool,
    connector: Connector,
    backend: Option<Box<dyn Backend>>,
}

/// A write request and the libipvs call it stands for.
pub(crate) struct Write1 {
    pub req: Request,
    pub op: Op,
}

/// The request a table-changing command sends, if it is one.
pub(crate) fn write_request(c: &Command) -> Option<Write1> {
    let svc = c.svc.key();
    let (req, op) = match c.cmd {
        Cmd::Flush => (Request::Flush, Op::Flush),
        Cmd::Add => (
            Request::AddService {
                key: svc?,
                config: c.svc.config(),
            },
            Op::AddService,
        ),
        Cmd::Edit => (
            Request::EditService {
                key: svc?,
                config: c.svc.config(),
            },
            Op::EditService,
        ),
        Cmd::Del => (Request::DelService { key: svc? }, Op::DelService),
        Cmd::Zero => (
            Request::Zero {
                service: if c.svc.is_unspecified() { None } else { svc },
            },
            Op::ZeroService,
        ),
        Cmd::AddDest => (
            Request::AddDest {
                service: svc?,
                dest: c.dest.config()?,
            },
            Op::AddDest,
        ),
        Cmd::EditDest => (
            Request::EditDest {
                service: svc?,
                dest: c.dest.config()?,
            },
            Op::EditDest,
        ),
        Cmd::DelDest => (
            Request::DelDest {
                service: svc?,
                addr: c.dest.addr?,
                port: c.dest.port,
            },
            Op::DelDest,
        ),
        Cmd::SetTimeout => (Request::SetTimeouts(c.timeouts), Op::SetTimeout),
        Cmd::StartDaemon => (Request::StartDaemon(c.daemon.config()), Op::StartDaemon),
        Cmd::StopDaemon => (
            Request::StopDaemon {
                role: c.daemon.role,
            },
            Op::StopDaemon,
        ),
        Cmd::List | Cmd::Save | Cmd::Restore => return None,
    };
    Some(Write1 { req, op })
}

fn strip_os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl<'a> Runner<'a> {
    pub fn new(
        prog: String,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        stdin: &'a mut dyn Read,
        names: &'a NameDb,
        socket: PathBuf,
        connector: Connector,
    ) -> Runner<'a> {
        Runner {
            prog,
            out,
            err,
            stdin,
            names,
            posix: false,
            socket,
            crashed: false,
            connector,
            backend: None,
        }
    }

    pub(crate) fn eprint(&mut self, s: &str) {
        let _ = self.err.write_all(s.as_bytes());
        let _ = self.err.flush();
    }

    pub(crate) fn print(&mut self, s: &[u8]) {
        let _ = self.out.write_all(s);
    }

    /// The whole process: `ipvsadm ARGS...`. Returns the exit code.
    pub fn run(&mut self, argv: &[String]) -> i32 {
        let r = self.init().and_then(|()| {
            if argv.len() <= 1 {
                self.list_all(0).map(|()| 0)
            } else {
                self.process_options(argv, false)
            }
        });
        match r {
            Ok(result) => exit_code(result),
            Err(Stop(code)) => exit_code(code),
        }
    }

    /// ipvsadm opens the kernel channel before it looks at its arguments,
    /// so without the rights to it even `-h` fails. rvsadm connects first
    /// too: a socket that refuses us ends the process the same way. A daemon
    /// that is not running only matters to commands that need it.
    fn init(&mut self) -> Result<(), Stop> {
        match (self.connector)() {
            Ok(b) => {
                self.backend = Some(b);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                self.eprint(NOT_ROOT);
                Err(Stop(2))
            }
            Err(_) => Ok(()),
        }
    }

    fn backend(&mut self) -> Result<&mut Box<dyn Backend>, Stop> {
        if self.backend.is_none() {
            match (self.connector)() {
                Ok(b) => self.backend = Some(b),
                Err(e) => {
                    let msg = if e.kind() == std::io::ErrorKind::PermissionDenied {
                        NOT_ROOT.to_string()
                    } else {
                        format!(
                            "Can't initialize ipvs: cannot connect to rvsd at {}: {}\n\
                             Are you sure that rvsd is running (and RVS_SOCKET names its socket)?\n",
                            self.socket.display(),
                            strip_os_error(&e)
                        )
                    };
                    self.eprint(&msg);
                    return Err(Stop(2));
                }
            }
        }
        Ok(self.backend.as_mut().expect("connected above"))
    }

    /// One request; daemon-level failures (connection lost, garbled answer)
    /// stop the process with exit 2, an errno is returned.
    pub(crate) fn call(&mut self, req: &Request) -> Result<Result<Response, Errno>, Stop> {
        let r = self.backend()?.call(req);
        match r {
            Ok(Response::Err(e)) => Ok(Err(e)),
            Ok(Response::Refused(m)) | Err(ClientError::Refused(m)) => {
                // Not an ipvsadm situation: the table would take the rule
                // but the engine cannot carry it. Fail like a kernel error.
                self.eprint(&format!("{m}\n"));
                Err(Stop(255))
            }
            Ok(resp) => Ok(Ok(resp)),
            Err(ClientError::Errno(e)) => Ok(Err(e)),
            Err(ClientError::Io(e)) => {
                let msg = format!(
                    "rvsadm: lost the connection to rvsd at {}: {}\n",
                    self.socket.display(),
                    strip_os_error(&e)
                );
                self.eprint(&msg);
                Err(Stop(2))
            }
            Err(ClientError::Protocol(s)) => {
                let msg = format!(
                    "rvsadm: unexpected answer from rvsd at {}: {}\n",
                    self.socket.display(),
                    s
                );
                self.eprint(&msg);
                Err(Stop(2))
            }
        }
    }

    fn unexpected(&mut self, shown: &str) -> Stop {
        let msg = format!(
            "rvsadm: unexpected answer from rvsd at {}: {shown}\n",
            self.socket.display()
        );
        self.eprint(&msg);
        Stop(2)
    }

    fn fetch<T>(
        &mut self,
        req: Request,
        pick: fn(Response) -> Option<T>,
    ) -> Result<Result<T, Errno>, Stop> {
        match self.call(&req)? {
            Err(e) => Ok(Err(e)),
            Ok(resp) => {
                let shown = format!("{resp:?}");
                match pick(resp) {
                    Some(v) => Ok(Ok(v)),
                    None => Err(self.unexpected(&shown)),
                }
            }
        }
    }

    /// One table write; an errno prints ipvsadm's message and gives -1.
    pub(crate) fn write(&mut self, w: Write1) -> Result<i32, Stop> {
        match self.call(&w.req)? {
            Ok(Response::Ok) => Ok(0),
            Ok(other) => Err(self.unexpected(&format!("{other:?}"))),
            Err(e) => {
                let msg = format!("{}\n", kernel_message(w.op, e));
                self.eprint(&msg);
                Ok(-1)
            }
        }
    }

    /// `process_options`: parse one command line and run it. `Ok(r)` is the
    /// result ipvsadm returns (0 or -1), `Err(Stop)` an immediate exit.
    pub fn process_options(&mut self, argv: &[String], reading_stdin: bool) -> Result<i32, Stop> {
        let cmd = match parse_args_with(argv, self.names, self.posix) {
            Ok(c) => c,
            Err(e) => return self.exit_for(e),
        };
        self.execute(&cmd, reading_stdin)
    }

    /// What an [`Exit`] does to the process.
    pub(crate) fn exit_for(&mut self, e: Exit) -> Result<i32, Stop> {
        match e {
            Exit::Fail { code, msg } => {
                self.eprint(&format!("{msg}\n"));
                Err(Stop(code))
            }
            Exit::Popt { msg } => {
                self.eprint(&format!("{msg}\n"));
                Ok(-1)
            }
            Exit::TryHelp => {
                let t = try_help(&self.prog);
                self.eprint(&t);
                Err(Stop(255))
            }
            Exit::Usage => {
                let u = usage(&self.prog);
                self.print(u.as_bytes());
                Err(Stop(0))
            }
            Exit::Version => {
                self.print(VERSION_LINE.as_bytes());
                Err(Stop(0))
            }
            Exit::Crash => {
                self.crashed = true;
                Err(Stop(139))
            }
        }
    }

    /// Runs a validated command.
    pub fn execute(&mut self, c: &Command, reading_stdin: bool) -> Result<i32, Stop> {
        match c.cmd {
            Cmd::List => {
                let o = c.options;
                if o.has(Opt::Connection) {
                    self.list_conn(c.format)?;
                } else if o.has(Opt::Service) {
                    self.list_service(c)?;
                } else if o.has(Opt::Timeout) {
                    self.list_timeout()?;
                } else if o.has(Opt::Daemon) {
                    self.list_daemon()?;
                } else {
                    self.list_all(c.format)?;
                }
                Ok(0)
            }
            Cmd::Save => {
                self.list_all(c.format | fmt::RULE)?;
                Ok(0)
            }
            Cmd::Restore => self.restore(reading_stdin),
            _ => match write_request(c) {
                Some(w) => self.write(w),
                None => Ok(0),
            },
        }
    }

    fn info(&mut self) -> Result<Info, Stop> {
        match self.fetch(Request::GetInfo, |r| match r {
            Response::Info(i) => Some(i),
            _ => None,
        })? {
            Ok(i) => Ok(i),
            Err(e) => {
                self.eprint(&format!("{}\n", kernel_message(Op::GetInfo, e)));
                Err(Stop(1))
            }
        }
    }

    /// `list_all` (also `-S`).
    pub fn list_all(&mut self, format: u32) -> Result<(), Stop> {
        let info = if format & fmt::RULE == 0 {
            Some(self.info()?)
        } else {
            None
        };
        let services = self.fetch(Request::GetServices, |r| match r {
            Response::Services(s) => Some(s),
            _ => None,
        })?;
        let services: Vec<ServiceEntry> = match services {
            Ok(s) => s,
            Err(e) => {
                if let Some(i) = &info {
                    self.print(list::version_line(i).as_bytes());
                }
                self.eprint(&format!("{}\n", kernel_message(Op::GetServices, e)));
                return Err(Stop(1));
            }
        };
        let info = info.unwrap_or(Info {
            version: rvs_core::IPVS_VERSION,
            conn_tab_size: rvs_core::CONN_TAB_SIZE,
        });
        let text = list::list_all(&info, &services, format, self.names);
        self.print(&text);
        Ok(())
    }

    fn list_service(&mut self, c: &Command) -> Result<(), Stop> {
        let Some(key) = c.svc.key() else {
            return Ok(());
        };
        match self.fetch(Request::GetService { key }, |r| match r {
            Response::Service(s) => Some(s),
            _ => None,
        })? {
            Ok(se) => {
                let text = list::list_service(&se, c.format, self.names);
                self.print(&text);
                Ok(())
            }
            Err(e) => {
                self.eprint(&format!("{}\n", kernel_message(Op::GetService, e)));
                Err(Stop(1))
            }
        }
    }

    fn list_timeout(&mut self) -> Result<(), Stop> {
        let t: Result<Timeouts, Errno> = self.fetch(Request::GetTimeouts, |r| match r {
            Response::Timeouts(t) => Some(t),
            _ => None,
        })?;
        match t {
            Ok(t) => {
                self.print(list::timeout_line(&t).as_bytes());
                Ok(())
            }
            Err(_) => Err(Stop(1)),
        }
    }

    fn list_daemon(&mut self) -> Result<(), Stop> {
        let d: Result<Vec<DaemonConfig>, Errno> = self.fetch(Request::GetDaemons, |r| match r {
            Response::Daemons(d) => Some(d),
            _ => None,
        })?;
        match d {
            Ok(d) => {
                self.print(list::daemon_lines(&d).as_bytes());
                Ok(())
            }
            Err(_) => Err(Stop(1)),
        }
    }

    fn list_conn(&mut self, format: u32) -> Result<(), Stop> {
        let c: Result<Vec<ConnEntry>, Errno> = self.fetch(Request::GetConns, |r| match r {
            Response::Conns(c) => Some(c),
            _ => None,
        })?;
        match c {
            Ok(c) => {
                let text = conn::list_conn(&c, format, self.names);
                self.print(&text);
                Ok(())
            }
            Err(_) => {
                self.eprint("cannot open file /proc/net/ip_vs_conn\n");
                Err(Stop(1))
            }
        }
    }
}
