//! Sending with backpressure (see `mailbox.rs` for the queue side).
//!
//! Every send goes through [`Scheduler::deliver_with`]: the message goes
//! straight to a `receive` that waits for it, or into the mailbox if there
//! is room; otherwise the caller decides, under the mailbox's lock, what a
//! full mailbox means: `try_send` refuses with `RATE_LIMITED`, a script's
//! `send` parks itself as a [`BlockedSend`] (and arms its timeout), the
//! host's awaits a oneshot, and messages from another node wait there
//! counted together ([`ParkedSends`]). A receiver taking a message admits the first
//! blocked send and wakes its sender ([`Scheduler::wake_sender`]); a
//! receiver that ends fails every blocked sender with `NOT_FOUND`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use troupe_dispatcher::{Error, ErrorKind, Pid, Tag, Value};

use crate::mailbox::{BlockedSend, Mailbox, Message, Offered, SendWaker};
use crate::scheduler::Scheduler;
use crate::stats::Event;
use crate::table::Endpoint;
use crate::timers::TimerAction;

/// What became of a message handed to [`Scheduler::deliver_with`].
pub(crate) enum Delivery<R> {
    /// Queued, or given to the waiting `receive`.
    Delivered,
    /// The mailbox was full: what the caller's `full` made of it.
    Full(R),
}

/// A host's send, delivered or parked on a full mailbox.
pub(crate) struct HostSend {
    to: Pid,
    parked: Option<oneshot::Receiver<Result<(), Error>>>,
}

impl HostSend {
    /// Waits until the message is in the mailbox.
    pub async fn wait(self) -> Result<(), Error> {
        match self.parked {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or_else(|_| Err(noproc(self.to))),
        }
    }

    /// [`HostSend::wait`], blocking the calling thread.
    pub fn wait_blocking(self) -> Result<(), Error> {
        match self.parked {
            None => Ok(()),
            Some(rx) => rx.blocking_recv().unwrap_or_else(|_| Err(noproc(self.to))),
        }
    }
}

/// The messages one sender (a stream from another node) left waiting for
/// room in full mailboxes, counted together: the sender goes on
/// delivering (to the same receiver, its messages queue up behind in
/// order) and waits once, for all of them, instead of once per message.
/// A receiver taking a message only counts one down; the last one wakes
/// the sender.
#[derive(Debug, Default)]
pub struct ParkedSends {
    count: AtomicUsize,
    settled: Notify,
}

impl ParkedSends {
    /// How many of its messages still wait for room.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Whether none of its messages waits for room.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every message parked so far is in its mailbox (or its
    /// receiver ended and it was dropped).
    pub async fn settled(&self) {
        // A count reaching zero while no one waits leaves a permit, so
        // this cannot miss it; a stale permit costs one more look.
        while !self.is_empty() {
            self.settled.notified().await;
        }
    }

    /// One of its messages went in (or was dropped).
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settled.notify_one();
        }
    }
}

/// `NOT_FOUND` for a send to a process that is not alive ("noproc").
pub(crate) fn noproc(to: Pid) -> Error {
    Error::not_found(format!("process {to} does not exist (noproc)"))
}

impl Scheduler {
    /// Delivers `msg` to `to`: to its pending `receive` if that wants it,
    /// else into its mailbox. A `bounded` send to a full mailbox goes to
    /// `full` instead, still under the mailbox's lock, so a send that
    /// parks itself there cannot miss the receiver making room.
    pub(crate) fn deliver_with<R>(
        &self,
        to: Pid,
        msg: Message,
        bounded: bool,
        full: impl FnOnce(&mut Mailbox, Message) -> R,
    ) -> Result<Delivery<R>, Error> {
        let delivery = match self.table.endpoint(to) {
            Some(Endpoint::Process(entry)) => {
                let mut mb = entry.mailbox.lock();
                if let Some(w) = mb.waiter.take_if(|w| w.wants(&msg)) {
                    drop(mb);
                    if let Some(key) = w.timer {
                        self.timers.cancel(key);
                    }
                    self.complete_entry(entry, w.tag, Ok(msg.into_value()));
                    self.stats.count(Event::Sent);
                    return Ok(Delivery::Delivered);
                }
                let delivery = queue(&mut mb, msg, bounded, full);
                self.stats.mailbox_len(mb.len());
                delivery
            }
            Some(Endpoint::Host(host)) => {
                let delivery = queue(&mut host.mailbox.lock(), msg, bounded, full);
                if matches!(delivery, Ok(Delivery::Delivered)) {
                    host.notify();
                }
                delivery
            }
            None => {
                self.stats.count(Event::ToDead);
                return Err(noproc(to));
            }
        };
        self.stats.count(match &delivery {
            Ok(Delivery::Delivered) => Event::Sent,
            _ => Event::MailboxFull,
        });
        delivery
    }

    /// Delivers `msg` to `to` without waiting: `RATE_LIMITED` if its
    /// mailbox is full, `NOT_FOUND` if it is gone.
    pub fn deliver(&self, to: Pid, msg: Message) -> Result<(), Error> {
        match self.deliver_with(to, msg, true, |mb, _| mb.full(to))? {
            Delivery::Delivered => Ok(()),
            Delivery::Full(e) => Err(e),
        }
    }

    /// A script's `send` from `sender`, waiting in yield `tag`: delivered
    /// now (true), or parked until the receiver makes room (false), with
    /// a timeout whose timer key goes to `timer` (the sender's cell for
    /// the timer of its command in flight). A process cannot wait for room
    /// in its own mailbox: a send to itself never parks (`RATE_LIMITED`
    /// when full).
    pub(crate) fn send_or_block(
        &self,
        to: Pid,
        msg: Message,
        (sender, tag): (Pid, Tag),
        timeout: Option<Duration>,
        timer: &AtomicU64,
    ) -> Result<bool, Error> {
        if to == sender {
            return self.deliver(to, msg).map(|()| true);
        }
        let parked = self.deliver_with(to, msg, true, |mb, msg| {
            mb.block(BlockedSend {
                msg,
                waker: SendWaker::Process { pid: sender, tag },
            });
            // Armed under the mailbox's lock: the timer cannot fire before
            // the send it cancels is in place.
            if let Some(after) = timeout {
                let action = TimerAction::SendTimeout {
                    to,
                    pid: sender,
                    tag,
                };
                timer.store(self.add_timer(after, action).to_bits(), Ordering::Release);
            }
        })?;
        Ok(matches!(parked, Delivery::Delivered))
    }

    /// The host's `send`: delivers now, or parks the message; the
    /// [`HostSend`] tells when it went through.
    pub(crate) fn send_parked(&self, to: Pid, msg: Message) -> Result<HostSend, Error> {
        let parked = self.deliver_with(to, msg, true, |mb, msg| {
            let (tx, rx) = oneshot::channel();
            mb.block(BlockedSend {
                msg,
                waker: SendWaker::Host(tx),
            });
            rx
        })?;
        Ok(HostSend {
            to,
            parked: match parked {
                Delivery::Delivered => None,
                Delivery::Full(rx) => Some(rx),
            },
        })
    }

    /// Delivers `msg` to `to` now, or parks it behind its full mailbox,
    /// counted in `parked`; never waits. `NOT_FOUND` if `to` is not alive.
    pub(crate) fn send_counted(
        &self,
        to: Pid,
        msg: Message,
        parked: &Arc<ParkedSends>,
    ) -> Result<(), Error> {
        self.deliver_with(to, msg, true, |mb, msg| {
            // Counted under the mailbox's lock, before a take can count
            // it down.
            parked.count.fetch_add(1, Ordering::AcqRel);
            mb.block(BlockedSend {
                msg,
                waker: SendWaker::Parked(Arc::clone(parked)),
            });
        })
        .map(|_| ())
    }

    /// Tells a blocked sender how its send ended: `Ok` once its message is
    /// in the mailbox, an error if it never will be.
    pub(crate) fn wake_sender(&self, waker: SendWaker, result: Result<(), Error>) {
        match waker {
            SendWaker::Host(tx) => {
                let _ = tx.send(result);
            }
            SendWaker::Parked(parked) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "dropped a message from another node");
                }
                parked.done();
            }
            SendWaker::Process { pid, tag } => {
                if let Some(entry) = self.table.lookup(pid) {
                    self.cancel_timer(&entry.sleep_timer);
                    self.complete_entry(entry, tag, result.map(|()| Value::Bool(true)));
                }
            }
        }
    }

    /// Fails the sends still waiting on the mailbox of `owner`, which ended.
    pub(crate) fn fail_senders(&self, owner: Pid, wakers: Vec<SendWaker>) {
        for waker in wakers {
            self.wake_sender(waker, Err(noproc(owner)));
        }
    }

    /// A blocked send's timeout fired: take its message back and fail it.
    pub(crate) fn send_timed_out(&self, to: Pid, sender: Pid, tag: Tag) {
        if let Some(entry) = self.table.lookup(sender) {
            entry.sleep_timer.store(0, Ordering::Release);
        }
        let withdrawn = match self.table.endpoint(to) {
            Some(Endpoint::Process(e)) => e.mailbox.lock().unblock(sender, tag),
            Some(Endpoint::Host(h)) => h.mailbox.lock().unblock(sender, tag),
            None => false,
        };
        if withdrawn {
            let timeout = Error::new(
                ErrorKind::Timeout,
                format!("send to {to} timed out waiting for room in its mailbox"),
            );
            let waker = SendWaker::Process { pid: sender, tag };
            self.wake_sender(waker, Err(timeout));
        }
    }
}

/// Queues `msg` in `mb`, or hands it to `full`; `LIMIT_EXCEEDED` when it
/// can never fit or the receiver's tree has no memory left for it.
fn queue<R>(
    mb: &mut Mailbox,
    msg: Message,
    bounded: bool,
    full: impl FnOnce(&mut Mailbox, Message) -> R,
) -> Result<Delivery<R>, Error> {
    if !bounded {
        mb.push_unbounded(msg);
        return Ok(Delivery::Delivered);
    }
    Ok(match mb.offer(msg)? {
        Offered::Queued => Delivery::Delivered,
        Offered::Full(msg) => Delivery::Full(full(mb, msg)),
    })
}
