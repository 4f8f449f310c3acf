//! The io_uring relay: a worker's established TCP connections move their
//! bytes through one io_uring per worker instead of a readiness loop.
//!
//! Why: on request/response traffic a readiness loop spends one system call
//! per operation (`recv`, `send` each way, plus `epoll_ctl` per socket), and
//! both HAProxy and the readiness relay sit at that floor. Here the worker
//! queues its receives and sends in the submission ring and the kernel
//! performs them without a system call each; a batch of them costs one
//! `io_uring_enter`, and sockets are never registered with epoll.
//!
//! Shape: each direction of a connection has at most one operation in
//! flight, a receive into a buffer the kernel picks from the worker's
//! provided-buffer ring, then the send of exactly those bytes to the other
//! socket (`MSG_WAITALL`, so the kernel finishes it even when the receiver
//! is slow); the next receive is queued only when the send has completed,
//! which is the backpressure (a slow receiver stops reading on the other
//! side, as the readiness relay does). An idle connection holds no buffer.
//! End of stream, errors, connection completion and "this direction
//! carries bulk data" become [`RingEvent`]s for the connection's task,
//! which reports them to the connection table exactly as the readiness
//! relay does. A direction whose receive fills a whole buffer in `auto`
//! mode is a bulk transfer: the connection is quiesced and handed back to
//! the readiness relay, which splices it (payload never copied).
//!
//! The ring runs in `DEFER_TASKRUN` mode: completions are produced only
//! when the worker enters the ring, and the ring signals an eventfd that
//! the worker's tokio reactor watches, so the ring sleeps in the same
//! `epoll_wait` as everything else the worker does (UDP, accepts, timers).
//!
//! Descriptors: every proxied connection holds two sockets, so a process
//! limited to N open files carries fewer than N/2 connections. Once the
//! descriptors a connection got are numbered past half the open-files
//! limit, the ring moves both sockets into its registered file table
//! ("direct descriptors", which count against no limit but the table's
//! size) and closes their ordinary descriptors; such a connection stays in
//! the ring to the end (it is never handed to the splice relay), its FINs
//! are sent by the ring's own shutdown operation, and a reset turns it back
//! into a descriptor just long enough to set `SO_LINGER` to zero.
//!
//! Every operation in flight refers to memory this module owns (a provided
//! buffer or a connection's unsent bytes); a connection's state is freed
//! only after its last operation has completed, and if the ring goes away
//! with operations in flight their memory is leaked rather than freed.
//! That is the safety argument for the `unsafe` blocks below.

#![allow(unsafe_code)]

use crate::sys::open_files_limit;
use crate::track::Tracked;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use socket2::Socket;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// Size of one provided buffer: also the read size that marks a direction
/// as bulk (a read that fills it).
pub(crate) const BUF_SIZE: usize = 32 * 1024;
/// Provided buffers per group (a power of two): 8 MiB. A worker starts
/// with one group and adds one whenever a receive finds every buffer taken
/// (by sends to receivers that do not read), up to [`MAX_GROUPS`].
pub(crate) const BUF_COUNT: u16 = 256;
/// Buffer groups per worker at most (256 MiB with the default group size):
/// beyond that, receives wait for a buffer to come back.
const MAX_GROUPS: usize = 32;
/// Submission ring entries.
const SQ_ENTRIES: u32 = 1024;
/// Completion ring entries.
const CQ_ENTRIES: u32 = SQ_ENTRIES * 4;
/// Ring passes before the driver yields to the worker's other tasks.
const TURNS: usize = 8;

const IORING_ENTER_GETEVENTS: u32 = 1;
const IORING_RECVSEND_POLL_FIRST: u16 = 1;

// user_data: op (8 bits) | buffer group (7 bits) | side (1 bit) |
// buffer id (16 bits) | slot (32 bits)
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_SEND_UNSENT: u64 = 3;
const OP_POLL_CONNECT: u64 = 4;
const OP_CANCEL: u64 = 5;
const OP_CLOSE: u64 = 6;
/// A shutdown(SHUT_WR) of a direct descriptor.
const OP_SHUTDOWN: u64 = 7;
/// Closing a direct descriptor (the slot field carries its index).
const OP_CLOSE_DIRECT: u64 = 8;
/// Installing a direct descriptor as an ordinary one, to reset it (the
/// slot field carries its index).
const OP_INSTALL_RESET: u64 = 9;
/// Direct descriptors are used once a connection's descriptors are
/// numbered at least this far into the open-files limit (1/`PRESSURE`).
const PRESSURE: u64 = 2;
/// Below this descriptor number the limit is not even looked at.
const PRESSURE_FLOOR: RawFd = 256;
/// Entries of a ring's file table at most (pairs of sockets: half that).
const MAX_DIRECT: u64 = 1 << 16;
/// The slot of operations that belong to no connection.
const NO_SLOT: usize = 0xffff_ffff;

fn user_data(op: u64, side: usize, bid: u16, slot: usize) -> u64 {
    op << 56 | (side as u64) << 48 | (bid as u64) << 32 | slot as u64
}

fn with_group(ud: u64, group: u16) -> u64 {
    ud | u64::from(group & 0x7f) << 49
}

/// Op, side, buffer id, slot, buffer group.
fn decode(ud: u64) -> (u64, usize, u16, usize, u16) {
    (
        ud >> 56,
        ((ud >> 48) & 1) as usize,
        ((ud >> 32) & 0xffff) as u16,
        (ud & 0xffff_ffff) as usize,
        ((ud >> 49) & 0x7f) as u16,
    )
}

/// A socket as operations name it: an ordinary descriptor, or an index in
/// the ring's file table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Fd(RawFd),
    Direct(u32),
}

/// `$build` (an expression using `$f`) with `$f` bound to the operation
/// target of `$t`, whichever kind it is.
macro_rules! on_target {
    ($t:expr, |$f:ident| $build:expr) => {
        match $t {
            Target::Fd(fd) => {
                let $f = types::Fd(fd);
                $build
            }
            Target::Direct(i) => {
                let $f = types::Fixed(i);
                $build
            }
        }
    };
}

/// A relayed connection's sockets: held by the ring while it relays, given
/// back by [`Ring::stop`].
pub(crate) enum Sockets {
    /// Ordinary descriptors: client, real server.
    Fds(Socket, Socket),
    /// Direct descriptors: the pair's index in the ring's file table
    /// (client at `2 * pair`, real server next to it).
    Direct(u32),
}

/// What happened on a connection, for its task.
#[derive(Debug)]
pub(crate) enum RingEvent {
    /// The connection to the real server completed.
    Connected,
    /// It failed.
    ConnectFailed(io::Error),
    /// The client finished sending; passed on to the real server.
    ClientFin,
    /// The real server finished sending; passed on to the client.
    ServerFin,
    /// The client side failed (reset, or sending to it failed).
    ClientReset(io::Error),
    /// The real-server side failed.
    ServerReset(io::Error),
    /// A direction carries bulk data: quiesce and hand the sockets back to
    /// the readiness relay, which splices.
    Bulk,
}

/// A connection handed to the ring, which owns both sockets until
/// [`Ring::stop`] gives them back.
pub(crate) struct RelayStart {
    pub client: Socket,
    pub server: Socket,
    pub tracked: Rc<Tracked>,
    /// Bytes for the real server first (PROXY protocol header, the
    /// client's first bytes not sent yet).
    pub unsent: Vec<u8>,
    /// The client had finished sending before the relay started.
    pub client_eof: bool,
    /// The connection to the real server is known to be up; otherwise
    /// [`RingEvent::Connected`] or [`RingEvent::ConnectFailed`] comes
    /// first, and the relay starts at [`Ring::relay`].
    pub connected: bool,
    /// `auto` relay method: a direction that fills a buffer turns bulk.
    pub auto_bulk: bool,
}

/// Where each direction was when a connection was quiesced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quiesced {
    /// Client to real server, real server to client: the end of stream was
    /// passed on.
    pub done: [bool; 2],
    /// The direction that turned bulk.
    pub bulk: [bool; 2],
}

#[derive(Debug, Default)]
struct Half {
    /// A receive is in flight.
    armed: bool,
    /// Its user data (what cancels it).
    recv_ud: u64,
    /// A send is in flight.
    sending: bool,
    /// The source's end of stream was seen (it is passed on once nothing
    /// is left to send).
    eof: bool,
    /// The end of stream was passed on.
    done: bool,
    /// The last receive left bytes in the socket: the next may read at once.
    nonempty: bool,
    bulk: bool,
}

struct Conn {
    /// Client, real server.
    sockets: Sockets,
    tracked: Rc<Tracked>,
    /// Index 0: client → real server; 1: real server → client.
    half: [Half; 2],
    /// Bytes for the real server from before the relay started (PROXY
    /// protocol header, the client's first bytes) still to send.
    unsent: Vec<u8>,
    connecting: bool,
    /// Operations in flight.
    inflight: u32,
    stopping: bool,
    /// Stopping without finishing sends: data still arriving is dropped.
    aborting: bool,
    auto_bulk: bool,
    events: VecDeque<RingEvent>,
    waker: Option<Waker>,
}

impl Conn {
    /// How operations name the socket of `side` (0: client, 1: real server).
    fn target(&self, side: usize) -> Target {
        match &self.sockets {
            Sockets::Fds(client, server) => Target::Fd([client, server][side].as_raw_fd()),
            Sockets::Direct(pair) => Target::Direct(pair * 2 + side as u32),
        }
    }

    fn push_event(&mut self, ev: RingEvent) {
        self.events.push_back(ev);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The provided-buffer ring: buffer memory and the ring the kernel picks
/// from.
struct Buffers {
    /// `count` entries of `struct io_uring_buf` (16 bytes), page aligned.
    ring: *mut u8,
    count: u16,
    /// Buffers the kernel can pick (given back and not yet seen taken).
    free: u16,
    ring_layout: std::alloc::Layout,
    mem: Box<[u8]>,
    tail: u16,
    /// Buffers given back since the tail was last published.
    unpublished: bool,
}

impl Buffers {
    fn new(count: u16) -> io::Result<Buffers> {
        let ring_layout = std::alloc::Layout::from_size_align(count as usize * 16, 4096)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // SAFETY: the layout has a non-zero size.
        let ring = unsafe { std::alloc::alloc_zeroed(ring_layout) };
        if ring.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut b = Buffers {
            ring,
            count,
            free: 0,
            ring_layout,
            mem: vec![0u8; count as usize * BUF_SIZE].into_boxed_slice(),
            tail: 0,
            unpublished: false,
        };
        for bid in 0..count {
            b.give(bid);
        }
        b.publish();
        Ok(b)
    }

    fn addr(&self, bid: u16) -> *const u8 {
        self.mem[bid as usize * BUF_SIZE..].as_ptr()
    }

    /// Puts buffer `bid` back at the ring's tail (visible to the kernel at
    /// the next [`Buffers::publish`]).
    fn give(&mut self, bid: u16) {
        let slot = (self.tail & (self.count - 1)) as usize;
        let addr = self.addr(bid) as u64;
        // SAFETY: `slot` < count, so the 16-byte entry lies inside the
        // ring allocation; the kernel reads entries only up to the
        // published tail, and this one is beyond it until `publish`.
        unsafe {
            let e = self.ring.add(slot * 16);
            std::ptr::write_unaligned(e as *mut u64, addr);
            std::ptr::write_unaligned(e.add(8) as *mut u32, BUF_SIZE as u32);
            std::ptr::write_unaligned(e.add(12) as *mut u16, bid);
        }
        self.tail = self.tail.wrapping_add(1);
        self.free += 1;
        self.unpublished = true;
    }

    fn publish(&mut self) {
        // SAFETY: the tail lives in the `resv` field of the first entry
        // (offset 14), 2-byte aligned inside the page-aligned ring; the
        // kernel reads it with acquire semantics.
        unsafe {
            let t = &*(self.ring.add(14) as *const std::sync::atomic::AtomicU16);
            t.store(self.tail, std::sync::atomic::Ordering::Release);
        }
        self.unpublished = false;
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        if !self.ring.is_null() {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.ring, self.ring_layout) }
        }
    }
}

/// The ring's file table of direct descriptors, registered the first time
/// a connection needs it.
#[derive(Default)]
struct DirectTable {
    /// Pairs of entries the table has (0: not registered).
    pairs: u32,
    /// Registration failed: descriptors stay ordinary.
    unavailable: bool,
    /// Pairs from `next` on were never used; freed ones wait in `free`.
    next: u32,
    free: Vec<u32>,
    /// Per pair: entries still holding a socket (free again at 0).
    open: Vec<u8>,
}

/// One worker's ring and the connections it relays.
pub(crate) struct Ring {
    // Field order matters: the ring (and with it every operation in
    // flight) goes before the memory those operations use.
    ring: RefCell<IoUring<squeue::Entry, cqueue::Entry>>,
    evfd: AsyncFd<OwnedFd>,
    kick: Notify,
    /// Entries that did not fit in the submission ring.
    backlog: RefCell<Vec<squeue::Entry>>,
    conns: RefCell<Vec<Option<Conn>>>,
    free: RefCell<Vec<usize>>,
    /// Receives refused for want of a buffer, re-queued when one returns.
    starving: RefCell<Vec<(usize, usize)>>,
    /// Buffer groups (index = group id); receives pick from `group`.
    bufs: RefCell<Vec<Buffers>>,
    group: Cell<u16>,
    /// Buffers per group.
    group_size: u16,
    /// Buffers registered, all workers together (for the engine's report).
    buffers_total: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Operations in flight, all connections together.
    inflight: Cell<usize>,
    direct: RefCell<DirectTable>,
    /// Sockets held as direct descriptors, all workers together.
    direct_total: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The ring's registered index (entering through it skips a file
    /// lookup per enter), or its descriptor where registration failed.
    enter_fd: (RawFd, u32),
}

impl Ring {
    /// Sets up a ring, or says why this kernel (or sandbox) cannot.
    pub fn new(
        group_size: u16,
        buffers_total: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        direct_total: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> io::Result<Rc<Ring>> {
        if !group_size.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "io_uring buffers per group must be a power of two",
            ));
        }
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES)?;
        let enter_fd = register_ring_fd(ring.as_raw_fd());
        let bufs = register_group(&ring, group_size, 0)?;
        buffers_total.fetch_add(group_size as usize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: eventfd has no memory preconditions.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let evfd = unsafe { OwnedFd::from_raw_fd(fd) };
        ring.submitter().register_eventfd(evfd.as_raw_fd())?;
        Ok(Rc::new(Ring {
            ring: RefCell::new(ring),
            // SAFETY: the descriptor is owned by the `AsyncFd` and closed
            // only when it is dropped (which deregisters it first).
            evfd: unsafe { AsyncFd::register_with_interest(evfd, tokio::io::Interest::READABLE) }?,
            kick: Notify::new(),
            backlog: RefCell::new(Vec::new()),
            conns: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            starving: RefCell::new(Vec::new()),
            bufs: RefCell::new(vec![bufs]),
            group: Cell::new(0),
            group_size,
            buffers_total,
            inflight: Cell::new(0),
            direct: RefCell::new(DirectTable::default()),
            direct_total,
            enter_fd,
        }))
    }

    /// Starts relaying a connection (see [`RelayStart`]); returns its slot.
    pub fn start(&self, start: RelayStart) -> usize {
        let RelayStart {
            client,
            server,
            tracked,
            unsent,
            client_eof,
            connected,
            auto_bulk,
        } = start;
        let mut conn = Conn {
            sockets: Sockets::Fds(client, server),
            tracked,
            half: [Half::default(), Half::default()],
            unsent,
            connecting: !connected,
            inflight: 0,
            stopping: false,
            aborting: false,
            auto_bulk,
            events: VecDeque::new(),
            waker: None,
        };
        conn.half[0].eof = client_eof;
        let slot = match self.free.borrow_mut().pop() {
            Some(s) => s,
            None => {
                let mut conns = self.conns.borrow_mut();
                conns.push(None);
                conns.len() - 1
            }
        };
        let mut conns = self.conns.borrow_mut();
        let c = conns[slot].insert(conn);
        if c.connecting {
            let e = on_target!(c.target(1), |f| opcode::PollAdd::new(
                f,
                libc::POLLOUT as u32
            )
            .build()
            .user_data(user_data(OP_POLL_CONNECT, 1, 0, slot)));
            self.push(c, e);
        } else {
            self.adopt(c);
            self.begin(c, slot);
        }
        drop(conns);
        self.kick.notify_one();
        slot
    }

    /// Moves a connection's sockets into the ring's file table when their
    /// descriptors are numbered past the pressure mark (module doc). Called
    /// when nothing of the connection is in flight or queued.
    fn adopt(&self, c: &mut Conn) {
        let Sockets::Fds(client, server) = &c.sockets else {
            return;
        };
        let (cfd, sfd) = (client.as_raw_fd(), server.as_raw_fd());
        let high = cfd.max(sfd);
        if high < PRESSURE_FLOOR {
            return;
        }
        let limit = open_files_limit();
        if (high as u64) < limit / PRESSURE {
            return;
        }
        let mut t = self.direct.borrow_mut();
        if t.unavailable {
            return;
        }
        if t.pairs == 0 {
            let pairs = (limit.min(MAX_DIRECT) / 2) as u32;
            if let Err(e) = self
                .ring
                .borrow()
                .submitter()
                .register_files_sparse(pairs * 2)
            {
                tracing::info!(
                    "io_uring relay: no file table ({e}): connections keep two descriptors each"
                );
                t.unavailable = true;
                return;
            }
            t.pairs = pairs;
            t.open = vec![0; pairs as usize];
            tracing::info!(
                entries = pairs * 2,
                "io_uring relay: half the open-files limit is in use, new connections move to direct descriptors"
            );
        }
        let pair = match t.free.pop() {
            Some(p) => p,
            None if t.next < t.pairs => {
                t.next += 1;
                t.next - 1
            }
            None => return,
        };
        match self
            .ring
            .borrow()
            .submitter()
            .register_files_update(pair * 2, &[cfd, sfd])
        {
            Ok(2) => {}
            r => {
                if let Err(e) = r {
                    tracing::debug!("io_uring relay: cannot register sockets: {e}");
                }
                // An entry that was set would keep its socket open after
                // the descriptor closes: clear both (-1 empties an entry).
                let _ = self
                    .ring
                    .borrow()
                    .submitter()
                    .register_files_update(pair * 2, &[-1, -1]);
                t.free.push(pair);
                return;
            }
        }
        t.open[pair as usize] = 2;
        // The table holds the sockets now: their descriptors close here.
        c.sockets = Sockets::Direct(pair);
        c.auto_bulk = false;
        self.direct_total
            .fetch_add(2, std::sync::atomic::Ordering::Relaxed);
    }

    /// The connection is up: send what is pending, then relay both ways.
    fn begin(&self, c: &mut Conn, slot: usize) {
        if !c.unsent.is_empty() {
            let e = on_target!(c.target(1), |f| opcode::Send::new(
                f,
                c.unsent.as_ptr(),
                c.unsent.len() as u32
            )
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .user_data(user_data(OP_SEND_UNSENT, 0, 0, slot)));
            c.half[0].sending = true;
            self.push(c, e);
        } else {
            self.advance(c, slot, 0);
        }
        self.advance(c, slot, 1);
    }

    /// Next step of direction `side` once nothing of it is in flight:
    /// pass the end of stream on, or receive more.
    fn advance(&self, c: &mut Conn, slot: usize, side: usize) {
        let h = &c.half[side];
        if c.stopping || h.armed || h.sending || h.done || h.bulk {
            return;
        }
        if h.eof {
            c.half[side].done = true;
            if !c.half[side ^ 1].done {
                match c.target(side ^ 1) {
                    Target::Fd(fd) => {
                        // A direct call: io_uring runs shutdown in a worker thread.
                        // SAFETY: plain system call on a descriptor the ring owns.
                        let r = unsafe { libc::shutdown(fd, libc::SHUT_WR) };
                        if r < 0 {
                            let e = io::Error::last_os_error();
                            // The receiver is already gone: that is its reset, not ours.
                            if e.raw_os_error() != Some(libc::ENOTCONN) {
                                c.push_event(write_failed(side, e));
                                return;
                            }
                        }
                    }
                    Target::Direct(i) => {
                        // No descriptor to call it on: the ring's own
                        // operation (its failure comes as a reset later).
                        let e = opcode::Shutdown::new(types::Fixed(i), libc::SHUT_WR)
                            .build()
                            .user_data(user_data(OP_SHUTDOWN, side, 0, slot));
                        self.push(c, e);
                    }
                }
            }
            // Otherwise closing both sockets (next) sends this FIN.
            c.push_event(fin_event(side));
            return;
        }
        let ioprio = if h.nonempty {
            0
        } else {
            IORING_RECVSEND_POLL_FIRST
        };
        let group = self.group.get();
        let ud = with_group(user_data(OP_RECV, side, 0, slot), group);
        let e = on_target!(c.target(side), |f| opcode::Recv::new(
            f,
            std::ptr::null_mut(),
            BUF_SIZE as u32
        )
        .buf_group(group)
        .ioprio(ioprio)
        .build()
        .flags(squeue::Flags::BUFFER_SELECT)
        .user_data(ud));
        c.half[side].armed = true;
        c.half[side].recv_ud = ud;
        self.push(c, e);
    }

    fn push(&self, c: &mut Conn, e: squeue::Entry) {
        c.inflight += 1;
        self.inflight.set(self.inflight.get() + 1);
        let mut ring = self.ring.borrow_mut();
        // SAFETY: every entry refers to memory that outlives the operation
        // (module doc).
        if unsafe { ring.submission().push(&e) }.is_err() {
            self.backlog.borrow_mut().push(e);
        }
    }

    /// The next event of connection `slot`, if any.
    pub fn poll_event(&self, slot: usize, cx: &mut Context<'_>) -> Poll<RingEvent> {
        let mut conns = self.conns.borrow_mut();
        let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) else {
            return Poll::Pending;
        };
        match c.events.pop_front() {
            Some(ev) => Poll::Ready(ev),
            None => {
                if !c.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    c.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Starts relaying a connection that was not connected at
    /// [`Ring::start`], once its task has seen [`RingEvent::Connected`].
    pub fn relay(&self, slot: usize) {
        let mut conns = self.conns.borrow_mut();
        if let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) {
            if !c.stopping {
                self.adopt(c);
                self.begin(c, slot);
            }
        }
        drop(conns);
        self.kick.notify_one();
    }

    /// Takes the other direction's end-of-stream event when it is the next
    /// one queued (both ends can complete in one pass of the ring).
    pub fn next_fin(&self, slot: usize) -> Option<RingEvent> {
        let mut conns = self.conns.borrow_mut();
        let c = conns.get_mut(slot).and_then(Option::as_mut)?;
        match c.events.front() {
            Some(RingEvent::ClientFin | RingEvent::ServerFin) => c.events.pop_front(),
            _ => None,
        }
    }

    /// Closes a stopped connection's sockets in the next pass of the ring
    /// instead of with system calls of their own.
    pub fn close(&self, sockets: Sockets) {
        match sockets {
            Sockets::Fds(client, server) => {
                self.close_socket(client);
                self.close_socket(server);
            }
            Sockets::Direct(pair) => {
                for i in [pair * 2, pair * 2 + 1] {
                    self.close_direct(i);
                }
            }
        }
        self.kick.notify_one();
    }

    /// Closes one ordinary socket in the next pass of the ring.
    pub fn close_socket(&self, s: Socket) {
        let fd = OwnedFd::from(s).into_raw_fd();
        // SAFETY: a close refers to no memory.
        unsafe {
            self.push_free(
                opcode::Close::new(types::Fd(fd))
                    .build()
                    .user_data(user_data(OP_CLOSE, 0, 0, NO_SLOT)),
            )
        };
        self.kick.notify_one();
    }

    /// Resets a stopped connection's sockets (`SO_LINGER` zero, then
    /// close). A direct descriptor is installed as an ordinary one for the
    /// socket option first; where that fails it is closed (a FIN).
    pub fn reset(&self, sockets: Sockets) {
        match sockets {
            Sockets::Fds(client, server) => {
                crate::sock::reset(client);
                crate::sock::reset(server);
            }
            Sockets::Direct(pair) => {
                for i in [pair * 2, pair * 2 + 1] {
                    // SAFETY: an install refers to no memory.
                    unsafe {
                        self.push_free(
                            opcode::FixedFdInstall::new(types::Fixed(i), 0)
                                .build()
                                .user_data(user_data(OP_INSTALL_RESET, 0, 0, i as usize)),
                        )
                    };
                }
                self.kick.notify_one();
            }
        }
    }

    fn close_direct(&self, i: u32) {
        // SAFETY: a close refers to no memory.
        unsafe {
            self.push_free(
                opcode::Close::new(types::Fixed(i))
                    .build()
                    .user_data(user_data(OP_CLOSE_DIRECT, 0, 0, i as usize)),
            )
        };
    }

    /// Queues an operation that belongs to no connection.
    ///
    /// # Safety
    /// The entry must refer to no memory that may go before it completes.
    unsafe fn push_free(&self, e: squeue::Entry) {
        self.inflight.set(self.inflight.get() + 1);
        let mut ring = self.ring.borrow_mut();
        // SAFETY: the caller's promise.
        if unsafe { ring.submission().push(&e) }.is_err() {
            self.backlog.borrow_mut().push(e);
        }
    }

    /// A direct descriptor's close completed: its pair is free once both are.
    fn direct_closed(&self, i: u32) {
        let mut t = self.direct.borrow_mut();
        let pair = (i / 2) as usize;
        if let Some(open) = t.open.get_mut(pair) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                t.free.push(pair as u32);
            }
        }
        self.direct_total
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether both directions have passed their end of stream on.
    pub fn finished(&self, slot: usize) -> bool {
        let conns = self.conns.borrow();
        conns[slot]
            .as_ref()
            .is_some_and(|c| c.half[0].done && c.half[1].done)
    }

    /// Stops relaying: cancels what is in flight (only the receives when
    /// `keep_sends`, so that no byte read is lost), waits until nothing is,
    /// and frees the connection's state, giving its sockets back (to close,
    /// reset, or hand to the readiness relay). A stop with `keep_sends`
    /// whose wait was abandoned can be followed by one without, which
    /// cancels the sends too.
    pub async fn stop(&self, slot: usize, keep_sends: bool) -> (Quiesced, Sockets) {
        {
            let mut conns = self.conns.borrow_mut();
            let c = conns[slot].as_mut().expect("a started connection");
            c.stopping = true;
            c.aborting = !keep_sends;
            let mut cancels = Vec::new();
            for side in 0..2 {
                if keep_sends {
                    if c.half[side].armed {
                        cancels.push(types::CancelBuilder::user_data(c.half[side].recv_ud));
                    }
                } else if c.inflight > 0 {
                    cancels.push(on_target!(c.target(side), |f| types::CancelBuilder::fd(f).all()));
                }
            }
            if keep_sends && c.connecting {
                cancels.push(types::CancelBuilder::user_data(user_data(
                    OP_POLL_CONNECT,
                    1,
                    0,
                    slot,
                )));
            }
            for cb in cancels {
                let e = opcode::AsyncCancel2::new(cb)
                    .build()
                    .user_data(user_data(OP_CANCEL, 0, 0, slot));
                self.push(c, e);
            }
        }
        self.kick.notify_one();
        std::future::poll_fn(|cx| {
            let mut conns = self.conns.borrow_mut();
            let c = conns[slot].as_mut().expect("a started connection");
            if c.inflight == 0 {
                Poll::Ready(())
            } else {
                c.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        let c = self.conns.borrow_mut()[slot]
            .take()
            .expect("a started connection");
        self.free.borrow_mut().push(slot);
        let q = Quiesced {
            done: [c.half[0].done, c.half[1].done],
            bulk: [c.half[0].bulk, c.half[1].bulk],
        };
        (q, c.sockets)
    }

    /// Submits what is queued and handles what completed, until the ring
    /// is quiet (or for a bounded number of passes, to let the worker's
    /// other tasks run).
    fn turn(&self) -> io::Result<bool> {
        for _ in 0..TURNS {
            self.refill();
            {
                // GETEVENTS runs deferred work (at most 20 items per enter:
                // the loop enters again while completions keep coming).
                let to_submit = self.ring.borrow_mut().submission().len() as u32;
                let (fd, flags) = self.enter_fd;
                // SAFETY: io_uring_enter without an argument block.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_io_uring_enter,
                        fd,
                        to_submit,
                        0u32,
                        IORING_ENTER_GETEVENTS | flags,
                        std::ptr::null::<libc::c_void>(),
                        0usize,
                    )
                };
                match if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(r)
                } {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
                        ) => {}
                    Err(e) => return Err(e),
                }
            }
            let reaped = self.reap();
            let queued = !self.ring.borrow_mut().submission().is_empty()
                || !self.backlog.borrow().is_empty();
            if reaped == 0 && !queued {
                return Ok(false);
            }
            if reaped == 0 {
                continue;
            }
        }
        Ok(true)
    }

    /// Moves entries that did not fit into the submission ring.
    fn refill(&self) {
        let mut backlog = self.backlog.borrow_mut();
        if backlog.is_empty() {
            return;
        }
        let mut ring = self.ring.borrow_mut();
        let mut sq = ring.submission();
        let mut n = 0;
        for e in backlog.iter() {
            // SAFETY: as in `push`.
            if unsafe { sq.push(e) }.is_err() {
                break;
            }
            n += 1;
        }
        drop(sq);
        backlog.drain(..n);
    }

    /// Handles every completion in the ring; returns how many.
    fn reap(&self) -> usize {
        let mut n = 0;
        loop {
            let batch: Vec<cqueue::Entry> = {
                let mut ring = self.ring.borrow_mut();
                ring.completion().take(256).collect()
            };
            if batch.is_empty() {
                break;
            }
            n += batch.len();
            for cqe in batch {
                self.complete(cqe);
            }
        }
        let mut bufs = self.bufs.borrow_mut();
        let mut returned = false;
        for b in bufs.iter_mut() {
            if b.unpublished {
                b.publish();
                returned = true;
            }
        }
        // Receives go to the group with the most buffers to give.
        if returned {
            if let Some((g, _)) = bufs.iter().enumerate().max_by_key(|(_, b)| b.free) {
                self.group.set(g as u16);
            }
        }
        drop(bufs);
        if returned {
            let starving = std::mem::take(&mut *self.starving.borrow_mut());
            let mut conns = self.conns.borrow_mut();
            for (slot, side) in starving {
                if let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) {
                    self.advance(c, slot, side);
                }
            }
        }
        n
    }

    /// A receive found no buffer in `group`: move receives to another group
    /// with buffers, or add a group; `false` when the limit is reached (the
    /// receive waits for a buffer to come back).
    fn more_buffers(&self, group: u16) -> bool {
        let mut bufs = self.bufs.borrow_mut();
        if let Some(b) = bufs.get_mut(group as usize) {
            if b.unpublished {
                // Buffers came back in this pass and the kernel has not
                // seen them yet: show them and try the same group again.
                b.publish();
                return true;
            }
            b.free = 0;
        }
        if let Some((g, _)) = bufs.iter().enumerate().find(|(_, b)| b.free > 0) {
            self.group.set(g as u16);
            return true;
        }
        if bufs.len() >= MAX_GROUPS {
            return false;
        }
        let id = bufs.len() as u16;
        match register_group(&self.ring.borrow(), self.group_size, id) {
            Ok(b) => {
                bufs.push(b);
                self.group.set(id);
                self.buffers_total.fetch_add(
                    self.group_size as usize,
                    std::sync::atomic::Ordering::Relaxed,
                );
                tracing::debug!(groups = id + 1, "io_uring relay: buffer group added");
                true
            }
            Err(e) => {
                tracing::warn!("io_uring relay: cannot add buffers: {e}");
                false
            }
        }
    }

    /// Gives back the newest buffer group once all its buffers are back
    /// (the groups added for receivers that did not read). Called when the
    /// ring is quiet, once a second.
    fn shrink(&self) {
        let mut bufs = self.bufs.borrow_mut();
        let last = bufs.len() - 1;
        if last == 0 || bufs[last].free != bufs[last].count || bufs[last].unpublished {
            return;
        }
        // A receive still waiting on this group fails with ENOBUFS when
        // data comes and moves to another group (`more_buffers`).
        if let Err(e) = self
            .ring
            .borrow()
            .submitter()
            .unregister_buf_ring(last as u16)
        {
            tracing::debug!("io_uring relay: cannot give a buffer group back: {e}");
            return;
        }
        bufs.pop();
        self.buffers_total.fetch_sub(
            self.group_size as usize,
            std::sync::atomic::Ordering::Relaxed,
        );
        if self.group.get() as usize >= bufs.len() {
            let g = bufs
                .iter()
                .enumerate()
                .max_by_key(|(_, b)| b.free)
                .map_or(0, |(g, _)| g);
            self.group.set(g as u16);
        }
        tracing::debug!(
            groups = bufs.len(),
            "io_uring relay: buffer group given back"
        );
    }

    fn complete(&self, cqe: cqueue::Entry) {
        let (op, side, bid, slot, group) = decode(cqe.user_data());
        let res = cqe.result();
        let flags = cqe.flags();
        self.inflight.set(self.inflight.get() - 1);
        match op {
            OP_CLOSE => return,
            OP_CLOSE_DIRECT => return self.direct_closed(slot as u32),
            OP_INSTALL_RESET => {
                if res >= 0 {
                    // SAFETY: the install just made this descriptor, for us.
                    crate::sock::reset(unsafe { OwnedFd::from_raw_fd(res) });
                }
                // The table's entry holds the socket's last reference.
                return self.close_direct(slot as u32);
            }
            _ => {}
        }
        let mut conns = self.conns.borrow_mut();
        let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        c.inflight -= 1;
        match op {
            OP_RECV => {
                c.half[side].armed = false;
                if let Some(b) = cqueue::buffer_select(flags) {
                    // Taken by the kernel for this receive.
                    let mut bufs = self.bufs.borrow_mut();
                    bufs[group as usize].free = bufs[group as usize].free.saturating_sub(1);
                    if res <= 0 || c.aborting {
                        bufs[group as usize].give(b);
                    }
                }
                if res > 0 {
                    // Aborting: the buffer went back above.
                    if !c.aborting {
                        let bid = cqueue::buffer_select(flags).expect("a provided buffer");
                        let n = res as usize;
                        if side == 0 {
                            c.tracked.count_in(n);
                        } else {
                            c.tracked.count_out(n);
                        }
                        c.half[side].nonempty = cqueue::sock_nonempty(flags);
                        if n == BUF_SIZE && c.auto_bulk && !c.stopping {
                            c.half[side].bulk = true;
                            c.push_event(RingEvent::Bulk);
                        }
                        // Something is still waiting in the source socket:
                        // more bytes, or (the kernel reports it the same
                        // way) its FIN. The next receive is queued as soon
                        // as this send completes and returns at once, so
                        // holding these bytes back (MSG_MORE) costs one
                        // turn of the ring, and lets the FIN leave in the
                        // same segment (one segment less per connection
                        // that ends after its last bytes, as HTTP/1.0 and
                        // `Connection: close` replies do).
                        let more = if c.half[side].nonempty && !c.stopping && !c.half[side].bulk {
                            libc::MSG_MORE
                        } else {
                            0
                        };
                        let addr = self.bufs.borrow()[group as usize].addr(bid);
                        let e = on_target!(c.target(side ^ 1), |f| opcode::Send::new(
                            f, addr, n as u32
                        )
                        .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL | more)
                        .build()
                        .user_data(with_group(user_data(OP_SEND, side, bid, slot), group)));
                        c.half[side].sending = true;
                        self.push(c, e);
                    }
                } else {
                    match -res {
                        0 => {
                            c.half[side].eof = true;
                            self.advance(c, slot, side);
                        }
                        libc::ENOBUFS => {
                            if self.more_buffers(group) {
                                self.advance(c, slot, side);
                            } else {
                                self.starving.borrow_mut().push((slot, side));
                            }
                        }
                        libc::ECANCELED => {}
                        libc::EINTR | libc::EAGAIN => self.advance(c, slot, side),
                        errno => {
                            if !c.stopping {
                                c.push_event(read_failed(side, io::Error::from_raw_os_error(errno)))
                            }
                        }
                    }
                }
            }
            OP_SEND | OP_SEND_UNSENT => {
                c.half[side].sending = false;
                let len = if op == OP_SEND {
                    self.bufs.borrow_mut()[group as usize].give(bid);
                    None
                } else {
                    let l = c.unsent.len();
                    c.unsent = Vec::new();
                    Some(l)
                };
                if res < 0 {
                    if !c.stopping {
                        c.push_event(write_failed(side, io::Error::from_raw_os_error(-res)));
                    }
                } else if len.is_some_and(|l| (res as usize) < l) {
                    if !c.stopping {
                        c.push_event(write_failed(
                            side,
                            io::Error::from(io::ErrorKind::WriteZero),
                        ));
                    }
                } else {
                    self.advance(c, slot, side);
                }
            }
            OP_POLL_CONNECT => {
                c.connecting = false;
                if c.stopping {
                    // Cancelled (connect timeout, or the connection's entry died).
                } else if res < 0 {
                    c.push_event(RingEvent::ConnectFailed(io::Error::from_raw_os_error(-res)));
                } else {
                    let fd = match c.target(1) {
                        Target::Fd(fd) => fd,
                        Target::Direct(_) => unreachable!("adopted once connected"),
                    };
                    match socket_error(fd) {
                        // The task reports the connection established and
                        // then calls `relay`, so that no traffic is counted
                        // before it.
                        Ok(()) => c.push_event(RingEvent::Connected),
                        Err(e) => c.push_event(RingEvent::ConnectFailed(e)),
                    }
                }
            }
            // The receiver already gone (ENOTCONN) is its reset, not ours.
            OP_SHUTDOWN if res < 0 && -res != libc::ENOTCONN && !c.stopping => {
                c.push_event(write_failed(side, io::Error::from_raw_os_error(-res)));
            }
            _ => {} // OP_CANCEL, OP_SHUTDOWN done
        }
        if c.inflight == 0 && c.stopping {
            if let Some(w) = c.waker.take() {
                w.wake();
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.inflight.get() > 0 {
            // Operations may still refer to this memory while the kernel
            // tears the ring down: leak it rather than free it under them.
            std::mem::forget(std::mem::take(&mut *self.bufs.borrow_mut()));
            std::mem::forget(std::mem::take(&mut *self.conns.borrow_mut()));
        }
    }
}

fn fin_event(side: usize) -> RingEvent {
    if side == 0 {
        RingEvent::ClientFin
    } else {
        RingEvent::ServerFin
    }
}

fn read_failed(side: usize, e: io::Error) -> RingEvent {
    if side == 0 {
        RingEvent::ClientReset(e)
    } else {
        RingEvent::ServerReset(e)
    }
}

fn write_failed(side: usize, e: io::Error) -> RingEvent {
    if side == 0 {
        RingEvent::ServerReset(e)
    } else {
        RingEvent::ClientReset(e)
    }
}

/// A new group of `count` provided buffers, registered with `ring` as
/// group `id`.
fn register_group(
    ring: &IoUring<squeue::Entry, cqueue::Entry>,
    count: u16,
    id: u16,
) -> io::Result<Buffers> {
    let b = Buffers::new(count)?;
    // SAFETY: the buffer ring is a heap allocation of its own (stable when
    // `Buffers` moves) that lives as long as the ring: `Ring` drops the
    // ring before its buffers (and leaks them if operations are in flight).
    unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(b.ring as u64, count, id, 0)?;
    }
    Ok(b)
}

/// Registers the ring's descriptor with itself; returns what to pass to
/// `io_uring_enter` (the index and `IORING_ENTER_REGISTERED_RING`, or the
/// plain descriptor where the kernel is older than 5.18).
fn register_ring_fd(ring: RawFd) -> (RawFd, u32) {
    const IORING_REGISTER_RING_FDS: libc::c_uint = 20;
    const IORING_ENTER_REGISTERED_RING: u32 = 16;
    #[repr(C)]
    struct RsrcUpdate {
        offset: u32,
        resv: u32,
        data: u64,
    }
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: ring as u64,
    };
    // SAFETY: `up` is a valid io_uring_rsrc_update for the one entry passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring,
            IORING_REGISTER_RING_FDS,
            &mut up as *mut RsrcUpdate,
            1u32,
        )
    };
    if r == 1 {
        (up.offset as RawFd, IORING_ENTER_REGISTERED_RING)
    } else {
        (ring, 0)
    }
}

/// The pending error of a socket whose connection attempt has ended.
fn socket_error(fd: RawFd) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(())
}

/// Runs the ring for a worker: sleeps until the ring signals completions
/// (or a connection queued work), then turns it.
pub(crate) async fn drive(ring: Rc<Ring>) {
    // A guard: the ring is also turned once a second, so that a
    // completion whose signal was coalesced with another can never leave a
    // connection waiting for longer than that.
    let mut guard = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut last_error: Option<std::time::Instant> = None;
    let mut shrink = false;
    guard.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            g = ring.evfd.readable() => match g {
                Ok(mut g) => g.clear_ready(),
                Err(e) => {
                    tracing::error!("io_uring eventfd: {e}");
                    return;
                }
            },
            _ = ring.kick.notified() => {}
            _ = guard.tick() => shrink = true,
        }
        match ring.turn() {
            Ok(true) => {
                // More to do: let the worker's other tasks run first.
                ring.kick.notify_one();
                tokio::task::yield_now().await;
            }
            Ok(false) => {
                // The ring is quiet (with DEFER_TASKRUN no buffer is taken
                // until the next enter): the free counts are exact.
                if std::mem::take(&mut shrink) {
                    ring.shrink();
                }
            }
            Err(e) => {
                // Connections depend on the ring: keep turning it (an
                // enter can fail for want of memory), logging once a second.
                let now = std::time::Instant::now();
                if last_error
                    .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1))
                {
                    tracing::error!("io_uring: {e}");
                    last_error = Some(now);
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                ring.kick.notify_one();
            }
        }
    }
}
