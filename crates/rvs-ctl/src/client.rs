//! The blocking client used by the command-line tools.

use crate::types::*;
use rvs_core::{DestConfig, Errno, ServiceConfig, ServiceKey};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Where rvsd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";

/// The socket path: `$RVS_SOCKET`, else [`DEFAULT_SOCKET`].
pub fn socket_path() -> PathBuf {
    match std::env::var_os("RVS_SOCKET") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The daemon could not be reached or the connection broke.
    Io(std::io::Error),
    /// The daemon refused the operation with the errno Linux would return.
    Errno(Errno),
    /// The daemon answered something this client did not expect.
    Protocol(String),
    /// The engine cannot carry the request (see [`Response::Refused`]).
    Refused(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Errno(e) => write!(f, "{e}"),
            ClientError::Protocol(s) => write!(f, "protocol error: {s}"),
            ClientError::Refused(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A connection to rvsd. Each call is one request line and one response line.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> std::io::Result<Client> {
        let s = UnixStream::connect(path)?;
        Ok(Client {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Sends one request and waits for its response.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let mut line =
            serde_json::to_string(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let mut resp = String::new();
        if self.reader.read_line(&mut resp)? == 0 {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "rvsd closed the connection",
            )));
        }
        serde_json::from_str(&resp).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn expect_ok(&mut self, req: Request) -> Result<(), ClientError> {
        match self.call(&req)? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub fn add_service(
        &mut self,
        key: ServiceKey,
        config: ServiceConfig,
    ) -> Result<(), ClientError> {
        self.expect_ok(Request::AddService { key, config })
    }
    pub fn edit_service(
        &mut self,
        key: ServiceKey,
        config: ServiceConfig,
    ) -> Result<(), ClientError> {
        self.expect_ok(Request::EditService { key, config })
    }
    pub fn del_service(&mut self, key: ServiceKey) -> Result<(), ClientError> {
        self.expect_ok(Request::DelService { key })
    }
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.expect_ok(Request::Flush)
    }
    pub fn add_dest(&mut self, service: ServiceKey, dest: DestConfig) -> Result<(), ClientError> {
        self.expect_ok(Request::AddDest { service, dest })
    }
    pub fn edit_dest(&mut self, service: ServiceKey, dest: DestConfig) -> Result<(), ClientError> {
        self.expect_ok(Request::EditDest { service, dest })
    }
    pub fn del_dest(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), ClientError> {
        self.expect_ok(Request::DelDest {
            service,
            addr,
            port,
        })
    }
    pub fn zero(&mut self, service: Option<ServiceKey>) -> Result<(), ClientError> {
        self.expect_ok(Request::Zero { service })
    }
    pub fn set_timeouts(&mut self, t: Timeouts) -> Result<(), ClientError> {
        self.expect_ok(Request::SetTimeouts(t))
    }
    pub fn start_daemon(&mut self, d: DaemonConfig) -> Result<(), ClientError> {
        self.expect_ok(Request::StartDaemon(d))
    }
    pub fn stop_daemon(&mut self, role: SyncRole) -> Result<(), ClientError> {
        self.expect_ok(Request::StopDaemon { role })
    }
    pub fn info(&mut self) -> Result<Info, ClientError> {
        match self.call(&Request::GetInfo)? {
            Response::Info(i) => Ok(i),
            other => Err(unexpected(other)),
        }
    }
    pub fn services(&mut self) -> Result<Vec<ServiceEntry>, ClientError> {
        match self.call(&Request::GetServices)? {
            Response::Services(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
    pub fn service(&mut self, key: ServiceKey) -> Result<ServiceEntry, ClientError> {
        match self.call(&Request::GetService { key })? {
            Response::Service(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
    pub fn timeouts(&mut self) -> Result<Timeouts, ClientError> {
        match self.call(&Request::GetTimeouts)? {
            Response::Timeouts(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }
    pub fn daemons(&mut self) -> Result<Vec<DaemonConfig>, ClientError> {
        match self.call(&Request::GetDaemons)? {
            Response::Daemons(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }
    pub fn conns(&mut self) -> Result<Vec<ConnEntry>, ClientError> {
        match self.call(&Request::GetConns)? {
            Response::Conns(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }
    /// Applies several writes in one round trip; one result per request.
    pub fn batch(&mut self, reqs: Vec<Request>) -> Result<Vec<Result<(), Errno>>, ClientError> {
        let n = reqs.len();
        match self.call(&Request::Batch(reqs))? {
            Response::Batch(rs) if rs.len() == n => Ok(rs
                .into_iter()
                .map(|r| match r {
                    Response::Err(e) => Err(e),
                    _ => Ok(()),
                })
                .collect()),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(r: Response) -> ClientError {
    match r {
        Response::Err(e) => ClientError::Errno(e),
        Response::BadRequest(s) => ClientError::Protocol(s),
        Response::Refused(s) => ClientError::Refused(s),
        other => ClientError::Protocol(format!("unexpected response {other:?}")),
    }
}
