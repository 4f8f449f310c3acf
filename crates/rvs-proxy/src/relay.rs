//! Moving bytes between a client socket and a real-server socket, both
//! ways, and reporting what the connection table needs to know: each read
//! (counted as one packet), each half-close, each reset.
//!
//! Copy mode reads into the worker's single scratch buffer and writes
//! straight out; only what the receiver cannot take at once is kept, in a
//! buffer owned by that direction, so an idle connection holds no buffer.
//! Splice mode moves data socket → pipe → socket with `splice(2)`; a pipe is
//! borrowed from the worker's pool while data is in flight and given back
//! empty.

use crate::config::RelayMethod;
use crate::sys::Pipe;
use crate::track::Tracked;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::task::{ready, Context, Poll};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Size of the per-worker scratch buffer and of one splice.
pub(crate) const CHUNK: usize = 64 * 1024;
/// Reads per direction before yielding to other tasks.
const BUDGET: usize = 16;
/// Empty pipes a worker keeps for reuse.
const PIPE_POOL: usize = 256;

/// Per-worker resources shared by every relay of that worker.
#[derive(Debug)]
pub(crate) struct RelayShared {
    pub method: RelayMethod,
    scratch: RefCell<Box<[u8]>>,
    pipes: RefCell<Vec<Pipe>>,
}

impl RelayShared {
    pub fn new(method: RelayMethod) -> RelayShared {
        RelayShared {
            method,
            scratch: RefCell::new(vec![0u8; CHUNK].into_boxed_slice()),
            pipes: RefCell::new(Vec::new()),
        }
    }

    fn take_pipe(&self) -> io::Result<Pipe> {
        match self.pipes.borrow_mut().pop() {
            Some(p) => Ok(p),
            None => Pipe::new(),
        }
    }

    fn give_pipe(&self, p: Pipe) {
        let mut v = self.pipes.borrow_mut();
        if v.len() < PIPE_POOL {
            v.push(p);
        }
    }

    /// Runs `f` with the worker's scratch buffer (never across an await).
    pub fn with_scratch<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(&mut self.scratch.borrow_mut())
    }
}

/// What happened on a relayed connection.
#[derive(Debug)]
pub(crate) enum Event {
    /// The client finished sending (FIN); it was passed on to the real server.
    ClientFin,
    /// The real server finished sending; passed on to the client.
    ServerFin,
    /// The client side failed (reset, or writing to it failed).
    ClientReset(io::Error),
    /// The real-server side failed.
    ServerReset(io::Error),
}

enum HalfError {
    Read(io::Error),
    Write(io::Error),
}

/// One direction.
#[derive(Default)]
struct Half {
    /// Copy mode: bytes read but not yet written, from `pos`.
    pending: Vec<u8>,
    pos: usize,
    /// Splice mode: the borrowed pipe and how many bytes it holds.
    pipe: Option<Pipe>,
    in_pipe: usize,
    eof: bool,
    done: bool,
    /// Auto mode: this direction carries bulk data and uses splice.
    bulk: bool,
}

/// Both directions of one connection.
pub(crate) struct Relay<'a> {
    pub client: TcpStream,
    pub server: TcpStream,
    shared: &'a RelayShared,
    tracked: &'a Tracked,
    up: Half,
    down: Half,
}

impl<'a> Relay<'a> {
    pub fn new(
        client: TcpStream,
        server: TcpStream,
        shared: &'a RelayShared,
        tracked: &'a Tracked,
    ) -> Relay<'a> {
        Relay {
            client,
            server,
            shared,
            tracked,
            up: Half::default(),
            down: Half::default(),
        }
    }

    /// Starts the client-to-server direction with bytes that still have
    /// to reach the real server (read before connecting) and with the
    /// client's end of stream when it was seen then.
    pub fn prime(&mut self, unsent: Vec<u8>, client_eof: bool) {
        self.up.pending = unsent;
        self.up.pos = 0;
        self.up.eof = client_eof;
    }

    /// Continues a connection another relay started: `done[0]` (client to
    /// real server) and `done[1]` say which directions have already passed
    /// their end of stream on, `bulk` which carry bulk data.
    pub fn resume(&mut self, done: [bool; 2], bulk: [bool; 2]) {
        for (h, (d, b)) in [&mut self.up, &mut self.down]
            .into_iter()
            .zip(done.into_iter().zip(bulk))
        {
            h.done = d;
            h.eof = d;
            h.bulk = b;
        }
    }

    /// Whether both directions have finished.
    pub fn finished(&self) -> bool {
        self.up.done && self.down.done
    }

    /// Polls for the next event; must not be called once [`Relay::finished`].
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if !self.up.done {
            let r = poll_half(
                cx,
                &self.client,
                &self.server,
                &mut self.up,
                self.down.done,
                self.shared,
                &|n| self.tracked.count_in(n),
            );
            if let Poll::Ready(r) = r {
                return Poll::Ready(match r {
                    Ok(()) => Event::ClientFin,
                    Err(HalfError::Read(e)) => Event::ClientReset(e),
                    Err(HalfError::Write(e)) => Event::ServerReset(e),
                });
            }
        }
        if !self.down.done {
            let r = poll_half(
                cx,
                &self.server,
                &self.client,
                &mut self.down,
                self.up.done,
                self.shared,
                &|n| self.tracked.count_out(n),
            );
            if let Poll::Ready(r) = r {
                return Poll::Ready(match r {
                    Ok(()) => Event::ServerFin,
                    Err(HalfError::Read(e)) => Event::ServerReset(e),
                    Err(HalfError::Write(e)) => Event::ClientReset(e),
                });
            }
        }
        Poll::Pending
    }

    /// Gives borrowed pipes back (only empty ones).
    pub fn release(&mut self) {
        for h in [&mut self.up, &mut self.down] {
            if let Some(p) = h.pipe.take() {
                if h.in_pipe == 0 {
                    self.shared.give_pipe(p);
                }
            }
        }
    }
}

/// Drives one direction until it finishes (EOF passed on: `Ok`) or fails.
fn poll_half(
    cx: &mut Context<'_>,
    src: &TcpStream,
    dst: &TcpStream,
    h: &mut Half,
    other_done: bool,
    shared: &RelayShared,
    count: &dyn Fn(usize),
) -> Poll<Result<(), HalfError>> {
    let method = shared.method;
    let mut budget = BUDGET;
    loop {
        // 1. Flush what the receiver could not take yet.
        while h.pos < h.pending.len() {
            ready!(dst.poll_write_ready(cx)).map_err(HalfError::Write)?;
            match dst.try_write(&h.pending[h.pos..]) {
                Ok(n) => h.pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(HalfError::Write(e))),
            }
        }
        if !h.pending.is_empty() {
            h.pending = Vec::new();
            h.pos = 0;
        }
        while h.in_pipe > 0 {
            ready!(dst.poll_write_ready(cx)).map_err(HalfError::Write)?;
            let pipe = h.pipe.as_ref().expect("data in a pipe we hold");
            let fd = dst.as_raw_fd();
            match dst.try_io(Interest::WRITABLE, || pipe.drain(fd, h.in_pipe)) {
                Ok(n) => h.in_pipe -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(HalfError::Write(e))),
            }
        }
        if let Some(p) = h.pipe.take() {
            shared.give_pipe(p);
        }
        // 2. Pass an end of stream on. When the other direction has ended
        // already, closing both sockets (next) sends the FIN.
        if h.eof {
            h.done = true;
            if other_done {
                return Poll::Ready(Ok(()));
            }
            return Poll::Ready(
                match socket2::SockRef::from(dst).shutdown(Shutdown::Write) {
                    Ok(()) => Ok(()),
                    // The receiver is already gone: that is its reset, not ours.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                    Err(e) => Err(HalfError::Write(e)),
                },
            );
        }
        if budget == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        budget -= 1;
        // 3. Read more.
        ready!(src.poll_read_ready(cx)).map_err(HalfError::Read)?;
        let splice = match method {
            RelayMethod::Copy => false,
            RelayMethod::Splice => true,
            RelayMethod::Auto => h.bulk,
        };
        let pipe = if splice {
            shared.take_pipe().ok()
        } else {
            None
        };
        let spliced = pipe.is_some();
        let n = match pipe {
            Some(pipe) => {
                let fd = src.as_raw_fd();
                let r = src.try_io(Interest::READABLE, || pipe.fill(fd, CHUNK));
                h.pipe = Some(pipe);
                match r {
                    Ok(0) => {
                        h.eof = true;
                        continue;
                    }
                    Ok(n) => {
                        count(n);
                        h.in_pipe = n;
                        n
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(HalfError::Read(e))),
                }
            }
            // Copy mode, or no descriptor left for a pipe: copy this chunk.
            None => match copy_chunk(src, dst, h, shared, count) {
                Ok(n) => n,
                Err(e) => return Poll::Ready(Err(e)),
            },
        };
        if n == 0 {
            continue;
        }
        if n == CHUNK && method == RelayMethod::Auto {
            h.bulk = true;
        }
        if n < CHUNK && !spliced {
            // A short recv drained the socket: skip the read that would
            // only say EAGAIN, and wait for the next readiness event
            // (clearing readiness is safe: a newer event is kept). Not
            // after splice, which also stops when the pipe's slots are full.
            let _ = src.try_io(Interest::READABLE, || {
                Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
            });
        }
    }
}

/// One read into the scratch buffer and as much of a write as the
/// receiver takes now; the rest goes to the direction's own buffer.
/// Returns the bytes read (0 at end of stream or when nothing was there).
fn copy_chunk(
    src: &TcpStream,
    dst: &TcpStream,
    h: &mut Half,
    shared: &RelayShared,
    count: &dyn Fn(usize),
) -> Result<usize, HalfError> {
    shared.with_scratch(|buf| {
        let n = match src.try_read(buf) {
            Ok(0) => {
                h.eof = true;
                return Ok(0);
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(HalfError::Read(e)),
        };
        count(n);
        // A short read that emptied a socket whose peer has finished
        // sending: the end of stream is next. Knowing it now saves the read
        // that would return 0, and MSG_MORE holds these bytes back for the
        // FIN that `poll_half` sends right after, so both leave in one
        // segment.
        let fin = n < buf.len() && read_closed(src);
        let flags = if fin {
            libc::MSG_NOSIGNAL | libc::MSG_MORE
        } else {
            libc::MSG_NOSIGNAL
        };
        let mut off = 0;
        while off < n {
            let r = dst.try_io(Interest::WRITABLE, || {
                socket2::SockRef::from(dst).send_with_flags(&buf[off..n], flags)
            });
            match r {
                Ok(m) => off += m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(HalfError::Write(e)),
            }
        }
        if off < n {
            h.pending.extend_from_slice(&buf[off..n]);
            h.pos = 0;
        }
        if fin {
            h.eof = true;
        }
        Ok(n)
    })
}

/// Whether the runtime has seen the peer's FIN on `s` (EPOLLRDHUP) without
/// an error. The FIN came before the event that made `s` readable, so a
/// read shorter than its buffer after that event took every byte before it.
/// An error (a reset) is left for the next read to report.
fn read_closed(s: &TcpStream) -> bool {
    let ready = s.ready(Interest::READABLE | Interest::ERROR);
    let mut ready = std::pin::pin!(ready);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match ready.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(r)) => r.is_read_closed() && !r.is_error(),
        _ => false,
    }
}
