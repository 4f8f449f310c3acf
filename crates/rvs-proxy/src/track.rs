//! What a worker knows about each of its connections and UDP flows between
//! two visits to the director: traffic not yet counted in the connection
//! table, activity for the idle timeout, and the cancellation that closes
//! the connection when its entry dies (expiry, `-d` with
//! `expire_nodest_conn`, `-C`) or the engine stops.

use rvs_conn::{tcp, ConnId, ConnTable, Direction, Transport};
use rvs_core::table::ServiceTable;
use rvs_core::{DestId, DestStore, Protocol, Time};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// Traffic not yet reported to the connection table. A "packet" is one
/// successful read (TCP: one `read`/`splice` from a socket; UDP: one datagram).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub in_pkts: u64,
    pub in_bytes: u64,
    pub out_pkts: u64,
    pub out_bytes: u64,
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        self.in_pkts == 0 && self.out_pkts == 0
    }
}

/// Reply traffic of a one-packet UDP flow, whose entries are freed at once:
/// counted straight into the real server's statistics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DestCounts {
    pub dest: DestId,
    pub pkts: u64,
    pub bytes: u64,
}

/// One connection or UDP flow of a worker.
pub(crate) struct Tracked {
    pub proto: Protocol,
    /// The connection-table entry; `None` for one-packet UDP flows.
    pub conn: Cell<Option<ConnId>>,
    pending: Cell<Counts>,
    ops_out: RefCell<Vec<DestCounts>>,
    /// Reads so far, for idleness.
    activity: Cell<u64>,
    seen_activity: Cell<u64>,
    idle_since: Cell<Time>,
    cancelled: Cell<bool>,
    notify: Notify,
    /// The relay task's waker (see [`Tracked::poll_cancelled`]).
    waker: Cell<Option<Waker>>,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("proto", &self.proto)
            .field("conn", &self.conn.get())
            .field("pending", &self.pending.get())
            .field("cancelled", &self.cancelled.get())
            .finish()
    }
}

impl Tracked {
    pub fn new(proto: Protocol, conn: Option<ConnId>, now: Time) -> Tracked {
        Tracked {
            proto,
            conn: Cell::new(conn),
            pending: Cell::new(Counts::default()),
            ops_out: RefCell::new(Vec::new()),
            activity: Cell::new(0),
            seen_activity: Cell::new(0),
            idle_since: Cell::new(now),
            cancelled: Cell::new(false),
            notify: Notify::new(),
            waker: Cell::new(None),
        }
    }

    /// Counts one read of `n` bytes from the client.
    #[inline]
    pub fn count_in(&self, n: usize) {
        let mut c = self.pending.get();
        c.in_pkts += 1;
        c.in_bytes += n as u64;
        self.pending.set(c);
        self.activity.set(self.activity.get() + 1);
    }

    /// Counts one read of `n` bytes from the real server.
    #[inline]
    pub fn count_out(&self, n: usize) {
        let mut c = self.pending.get();
        c.out_pkts += 1;
        c.out_bytes += n as u64;
        self.pending.set(c);
        self.activity.set(self.activity.get() + 1);
    }

    /// Counts a reply datagram of a one-packet flow from real server `dest`.
    pub fn count_ops_out(&self, dest: DestId, n: usize) {
        let mut v = self.ops_out.borrow_mut();
        match v.iter_mut().find(|d| d.dest == dest) {
            Some(d) => {
                d.pkts += 1;
                d.bytes += n as u64;
            }
            None => v.push(DestCounts {
                dest,
                pkts: 1,
                bytes: n as u64,
            }),
        }
        self.activity.set(self.activity.get() + 1);
    }

    /// Marks activity without traffic (a one-packet datagram counted at
    /// scheduling time).
    pub fn touch(&self) {
        self.activity.set(self.activity.get() + 1);
    }

    pub fn cancel(&self) {
        if !self.cancelled.replace(true) {
            self.notify.notify_waiters();
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    /// Ready once cancelled; otherwise keeps `cx`'s waker to wake on
    /// cancellation. Cheaper than [`Tracked::cancelled`] on a hot path:
    /// no lock, and the waker is cloned only when it changes.
    pub fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.cancelled.get() {
            return Poll::Ready(());
        }
        match self.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => self.waker.set(Some(w)),
            _ => self.waker.set(Some(cx.waker().clone())),
        }
        Poll::Pending
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }

    /// Resolves once [`Tracked::cancel`] has been called.
    pub async fn cancelled(&self) {
        loop {
            let n = self.notify.notified();
            if self.cancelled.get() {
                return;
            }
            n.await;
        }
    }

    /// Reports pending traffic to the table (with the director locked).
    /// Returns false when the entry no longer exists.
    pub fn flush(&self, conns: &mut ConnTable, table: &mut ServiceTable, now: Time) -> bool {
        let ops = std::mem::take(&mut *self.ops_out.borrow_mut());
        for d in ops {
            count_n(table, d.dest, Direction::Output, d.pkts, d.bytes);
        }
        let c = self.pending.take();
        let Some(id) = self.conn.get() else {
            return true;
        };
        if c.is_zero() {
            return conns.get(id).is_some();
        }
        let l4 = match self.proto {
            Protocol::Udp => Transport::Udp,
            _ => Transport::Tcp(tcp::ACK),
        };
        let dest = conns.get(id).and_then(|e| e.dest());
        let mut alive = true;
        for (dir, pkts, bytes) in [
            (Direction::Input, c.in_pkts, c.in_bytes),
            (Direction::Output, c.out_pkts, c.out_bytes),
        ] {
            if pkts == 0 {
                continue;
            }
            // One packet through the state machine (which re-arms the
            // entry), the others straight into the statistics.
            alive &= conns.process(id, dir, l4, bytes, now, table).is_some();
            if let Some(d) = dest {
                count_n(table, d, dir, pkts - 1, 0);
            }
        }
        alive
    }

    /// Whether the flow has been idle for `limit` ms as of `now`; called once
    /// per maintenance round.
    pub fn idle_for(&self, now: Time) -> Time {
        let a = self.activity.get();
        if a != self.seen_activity.get() {
            self.seen_activity.set(a);
            self.idle_since.set(now);
        }
        now.saturating_sub(self.idle_since.get())
    }
}

fn count_n(table: &mut ServiceTable, dest: DestId, dir: Direction, pkts: u64, bytes: u64) {
    match dir {
        Direction::Input => table.count_in_n(dest, pkts, bytes),
        Direction::Output => table.count_out_n(dest, pkts, bytes),
    }
}

/// The connections and flows of one worker: a slab, so that adding and
/// removing one per connection neither hashes nor allocates once warm.
#[derive(Debug)]
pub(crate) struct Registry {
    items: RefCell<Vec<Option<Rc<Tracked>>>>,
    /// Free slots of `items`.
    free: RefCell<Vec<usize>>,
    /// Live items of every worker together.
    live: Arc<AtomicUsize>,
}

impl Registry {
    pub fn new(live: Arc<AtomicUsize>) -> Registry {
        Registry {
            items: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            live,
        }
    }

    pub fn insert(&self, t: Rc<Tracked>) -> usize {
        let mut items = self.items.borrow_mut();
        let k = match self.free.borrow_mut().pop() {
            Some(k) => {
                items[k] = Some(t);
                k
            }
            None => {
                items.push(Some(t));
                items.len() - 1
            }
        };
        self.live.fetch_add(1, Ordering::Relaxed);
        k
    }

    pub fn remove(&self, k: usize) {
        let taken = self.items.borrow_mut().get_mut(k).and_then(Option::take);
        if taken.is_some() {
            self.free.borrow_mut().push(k);
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Vec<Rc<Tracked>> {
        self.items.borrow().iter().flatten().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.items.borrow().len() - self.free.borrow().len()
    }
}

/// Removes a tracked item from its registry when the task that owns it
/// ends, however it ends.
pub(crate) struct Registration<'a> {
    pub registry: &'a Registry,
    pub key: usize,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.remove(self.key);
    }
}
