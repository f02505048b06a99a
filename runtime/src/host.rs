//! Host mailboxes: a pid owned by Rust code. Scripts `send` to it like to
//! any process (by pid or registered name); the host reads with an async
//! [`HostMailbox::recv`], and can monitor or link processes to get their
//! `DOWN` / `EXIT` messages.

use std::sync::Arc;

use parking_lot::Mutex;
use troupe_dispatcher::{Error, Pid, Value};

use crate::Runtime;
use crate::exit::Exit;
use crate::links::LinkState;
use crate::mailbox::{Mailbox, Message};

/// The shared part of a host mailbox, in the scheduler's host table.
pub(crate) struct HostBox {
    pub mailbox: Mutex<Mailbox>,
    pub links: Mutex<LinkState>,
    notify: tokio::sync::Notify,
}

impl HostBox {
    pub fn new(capacity: usize) -> Self {
        Self {
            mailbox: Mutex::new(Mailbox::new(capacity)),
            links: Mutex::new(LinkState::default()),
            notify: tokio::sync::Notify::new(),
        }
    }

    /// Queues a message and wakes any `recv`.
    pub fn push(&self, owner: Pid, msg: Message, bounded: bool) -> Result<(), Error> {
        self.mailbox.lock().push(owner, msg, bounded)?;
        self.notify.notify_waiters();
        Ok(())
    }

    async fn take(&self, topic: Option<&str>) -> Message {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(m) = self.mailbox.lock().take(topic) {
                return m;
            }
            notified.await;
        }
    }
}

/// A mailbox with a pid, owned by the host.
///
/// Messages keep their order per sender. The mailbox is bounded like a
/// process's (a script's `send` to a full one gets `RATE_LIMITED`), except
/// for `DOWN`/`EXIT` notifications. Dropping it frees its pid and name; the
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
    pub(crate) fn new(pid: Pid, inner: Arc<HostBox>, rt: Runtime) -> Self {
        Self { pid, inner, rt }
    }

    /// The mailbox's pid; pass it to scripts so they can `send` to it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits for the next message. Cancel-safe: a message is taken only
    /// when the future completes.
    pub async fn recv(&self) -> Message {
        self.inner.take(None).await
    }

    /// Waits for the next message on `topic`, leaving others queued.
    pub async fn recv_topic(&self, topic: &str) -> Message {
        self.inner.take(Some(topic)).await
    }

    /// The next message, if one is queued.
    pub fn try_recv(&self) -> Option<Message> {
        self.inner.mailbox.lock().take(None)
    }

    /// Sends a message with this mailbox as the sender, so the script can
    /// reply to `msg.from`.
    pub fn send(&self, to: Pid, topic: &str, payload: impl Into<Value>) -> Result<(), Error> {
        self.rt.sched().deliver(
            to,
            Message {
                from: Some(self.pid),
                topic: topic.to_owned(),
                payload: payload.into(),
            },
        )
    }

    /// Monitors `pid`: a `DOWN` message `{pid, reason, ref}` arrives here
    /// when it ends (at once, with reason `"noproc"`, if it is not alive).
    /// Returns the monitor's ref.
    pub fn monitor(&self, pid: Pid) -> Result<i64, Error> {
        self.rt.sched().monitor(self.pid, pid)
    }

    /// Stops a monitor; false if it already fired.
    pub fn demonitor(&self, r: i64) -> bool {
        self.rt.sched().demonitor(self.pid, r)
    }

    /// Links to `pid`: its exit arrives here as an `EXIT` message (a host
    /// mailbox always traps exits).
    pub fn link(&self, pid: Pid) -> Result<(), Error> {
        self.rt.sched().link(self.pid, pid)
    }

    /// Registers this mailbox under `name`, so scripts can `send(name, …)`.
    pub fn register(&self, name: &str) -> Result<(), Error> {
        self.rt.sched().register(self.pid, name)
    }
}

impl Drop for HostMailbox {
    fn drop(&mut self) {
        let sched = self.rt.sched();
        sched.hosts.remove(&self.pid);
        sched.release(self.pid, &self.inner.links, &Exit::Normal(Value::Nil));
    }
}
