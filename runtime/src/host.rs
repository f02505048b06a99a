//! Host mailboxes: a pid owned by Rust code. Scripts `send` to it like to
//! any process (by pid or registered name); the host reads with an async
//! [`HostMailbox::recv`], and can monitor or link processes to get their
//! `DOWN` / `EXIT` messages.

use std::sync::Arc;

use troupe_dispatcher::{Error, Pid, Value};

use crate::exit::Exit;
use crate::mailbox::{Message, Taken};
use crate::table::HostBox;
use crate::{ProcessHandle, Runtime};

impl Runtime {
    /// A new host mailbox with the runtime's default capacity: a pid that
    /// scripts can send to and the host reads from.
    pub fn mailbox(&self) -> HostMailbox {
        self.mailbox_with_capacity(self.sched().default_mailbox)
    }

    /// A new host mailbox holding at most `capacity` messages.
    pub fn mailbox_with_capacity(&self, capacity: usize) -> HostMailbox {
        let sched = self.sched();
        let table = &sched.table;
        let pid = table.next_pid();
        let inner = Arc::new(HostBox::new(capacity.max(1), sched.mailbox_bytes));
        table.hosts.insert(pid, Arc::clone(&inner));
        HostMailbox {
            pid,
            inner,
            rt: self.clone(),
        }
    }
}

impl ProcessHandle {
    /// Monitors it from `mailbox`: a `DOWN` message `{pid, reason, ref}`
    /// arrives there when it ends. Returns the monitor's ref.
    pub fn monitor(&self, mailbox: &HostMailbox) -> Result<i64, Error> {
        mailbox.monitor(self.pid)
    }
}

/// A mailbox with a pid, owned by the host.
///
/// Messages keep their order per sender. The mailbox is bounded like a
/// process's: a script's `send` to a full one waits until the host takes
/// a message (`try_send` gets `RATE_LIMITED`), except for `DOWN`/`EXIT`
/// notifications, which always fit. Dropping it frees its pid and name; the
/// processes linked to it get an `EXIT` with reason `"normal"` if they trap
/// exits.
///
/// Made by [`Runtime::mailbox`]; the `troupe` crate's docs show it at work.
pub struct HostMailbox {
    pid: Pid,
    inner: Arc<HostBox>,
    rt: Runtime,
}

impl HostMailbox {
    /// The mailbox's pid; pass it to scripts so they can `send` to it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits for the next message. Cancel-safe: a message is taken only
    /// when the future completes.
    pub async fn recv(&self) -> Message {
        self.admit(self.inner.take(None).await)
    }

    /// Waits for the next message on `topic`, leaving others queued.
    pub async fn recv_topic(&self, topic: &str) -> Message {
        self.admit(self.inner.take(Some(topic)).await)
    }

    /// The next message, if one is queued.
    pub fn try_recv(&self) -> Option<Message> {
        let taken = self.inner.mailbox.lock().take(None)?;
        Some(self.admit(taken))
    }

    /// Wakes the sender whose message took the freed place, if any.
    fn admit(&self, taken: Taken) -> Message {
        if let Some(waker) = taken.admitted {
            self.rt.sched().wake_sender(waker, Ok(()));
        }
        taken.msg
    }

    fn message(&self, topic: &str, payload: impl Into<Value>) -> Message {
        Message {
            from: Some(self.pid),
            topic: topic.to_owned(),
            payload: payload.into(),
        }
    }

    /// Sends a message with this mailbox as the sender, so the script can
    /// reply to `msg.from`; waits while `to`'s mailbox is full.
    /// `NOT_FOUND` if `to` is not alive or ends before it takes the message.
    pub async fn send(&self, to: Pid, topic: &str, payload: impl Into<Value>) -> Result<(), Error> {
        let msg = self.message(topic, payload);
        self.rt.sched().send_parked(to, msg)?.wait().await
    }

    /// Sends without waiting: `RATE_LIMITED` if `to`'s mailbox is full.
    pub fn try_send(&self, to: Pid, topic: &str, payload: impl Into<Value>) -> Result<(), Error> {
        self.rt.sched().deliver(to, self.message(topic, payload))
    }

    /// Monitors `pid`: a `DOWN` message `{pid, reason, ref}` arrives here
    /// when it ends (at once, with reason `"noproc"`, if it is not alive).
    /// Returns the monitor's ref.
    pub fn monitor(&self, pid: Pid) -> Result<i64, Error> {
        self.rt.sched().monitor(self.pid, pid)
    }

    /// Stops a monitor; false if it already fired.
    pub fn demonitor(&self, r: i64) -> bool {
        let sched = self.rt.sched();
        sched.table.demonitor(self.pid, r, sched)
    }

    /// Links to `pid`: its exit arrives here as an `EXIT` message (a host
    /// mailbox always traps exits).
    pub fn link(&self, pid: Pid) -> Result<(), Error> {
        self.rt.sched().link(self.pid, pid)
    }

    /// Registers this mailbox under `name`, so scripts can `send(name, …)`.
    pub fn register(&self, name: &str) -> Result<(), Error> {
        self.rt.sched().table.register(self.pid, name)
    }
}

impl Drop for HostMailbox {
    fn drop(&mut self) {
        let sched = self.rt.sched();
        sched.table.hosts.remove(&self.pid);
        let senders = self.inner.mailbox.lock().close();
        sched.fail_senders(self.pid, senders);
        let exit = Exit::Normal(Value::Nil);
        sched
            .table
            .release(self.pid, &self.inner.links, &exit, sched);
    }
}
