//! Links, monitors and exit signals, with Erlang's semantics.
//!
//! - A **link** is symmetric. When a process ends, every linked process gets
//!   an exit signal with its exit reason. A normal exit is ignored; any other
//!   reason ends the linked process with the same reason (`killed` stays
//!   `killed`), unless it *traps exits*, in which case the signal becomes a
//!   message with topic `EXIT` and payload `{pid, reason}`.
//! - A **monitor** is one-way: the watcher gets a `DOWN` message with payload
//!   `{pid, reason, ref}` once, whatever the reason; never a signal.
//! - Linking or monitoring a pid that is not alive delivers the notification
//!   at once with reason `"noproc"` (a link from a process that does not
//!   trap exits fails with `NOT_FOUND` instead, since the signal would end
//!   it on the spot).
//!
//! State lives in each endpoint's [`LinkState`], guarded by its own mutex; no
//! code path holds two of those locks at once. The `dead` flag is set under
//! the lock in the same critical section that takes the state out when a
//! process ends, so a link or monitor made concurrently either lands in that
//! state (and is notified) or sees `dead` (and gets `noproc`). A link is
//! recorded on the caller's side first and removed from the receiver's side
//! when a signal is delivered: a signal is acted on only if the link is
//! still there, so an `unlink` that returned is never followed by an exit
//! signal through that link.
//!
//! Host mailboxes are endpoints too: they can monitor and link, they always
//! trap exits, and nothing can kill them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use troupe_dispatcher::{Error, Pid, Value};

use crate::exit::{Exit, NOPROC};
use crate::host::HostBox;
use crate::mailbox::Message;
use crate::scheduler::{Entry, Scheduler};

/// Identifies one monitor, as `process.monitor` returns it.
pub(crate) type MonitorRef = i64;

/// Topic of the message a trapped exit signal becomes.
pub(crate) const EXIT_TOPIC: &str = "EXIT";
/// Topic of the message a monitor delivers.
pub(crate) const DOWN_TOPIC: &str = "DOWN";

/// One endpoint's links, monitors, name and flags. The flags are inline;
/// the sets and the name are allocated on first use, since most processes
/// never link, monitor or register (an idle endpoint costs 16 bytes here).
#[derive(Debug, Default)]
pub(crate) struct LinkState {
    /// The endpoint has ended; nothing may be added any more.
    pub dead: bool,
    /// Exit signals become `EXIT` messages.
    pub trap_exits: bool,
    sets: Option<Box<LinkSets>>,
}

/// The part of a [`LinkState`] made on first use.
#[derive(Debug, Default)]
pub(crate) struct LinkSets {
    /// Linked pids.
    pub links: HashSet<Pid>,
    /// Monitors this endpoint holds: ref → watched pid.
    pub monitors: HashMap<MonitorRef, Pid>,
    /// Monitors on this endpoint: ref → watcher.
    pub watchers: HashMap<MonitorRef, Pid>,
    /// The registered name, if any.
    pub name: Option<String>,
}

impl LinkState {
    /// The sets, made now if this is their first use.
    pub fn sets(&mut self) -> &mut LinkSets {
        self.sets.get_or_insert_default()
    }

    /// The registered name, if any.
    pub fn name(&self) -> Option<&str> {
        self.sets.as_ref()?.name.as_deref()
    }

    /// Removes `other` from the linked pids; false if it was not there.
    pub fn unlink(&mut self, other: Pid) -> bool {
        self.sets.as_mut().is_some_and(|s| s.links.remove(&other))
    }

    /// Removes the monitor `r` this endpoint holds; the pid it watched.
    pub fn drop_monitor(&mut self, r: MonitorRef) -> Option<Pid> {
        self.sets.as_mut()?.monitors.remove(&r)
    }

    /// Removes the monitor `r` on this endpoint.
    pub fn drop_watcher(&mut self, r: MonitorRef) {
        if let Some(s) = self.sets.as_mut() {
            s.watchers.remove(&r);
        }
    }
}

/// A process or a host mailbox: anything with a pid that can be linked,
/// monitored, registered and sent to.
pub(crate) enum Endpoint {
    Process(Arc<Entry>),
    Host(Arc<HostBox>),
}

impl Endpoint {
    pub fn links(&self) -> &Mutex<LinkState> {
        match self {
            Endpoint::Process(e) => &e.links,
            Endpoint::Host(h) => &h.links,
        }
    }
}

fn map(entries: [(&str, Value); 3]) -> Value {
    entries
        .into_iter()
        .filter(|(_, v)| !v.is_nil())
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn exit_message(from: Pid, reason: Value) -> Message {
    Message {
        from: Some(from),
        topic: EXIT_TOPIC.to_owned(),
        payload: map([
            ("pid", Value::from(from.to_string())),
            ("reason", reason),
            ("ref", Value::Nil),
        ]),
    }
}

fn down_message(from: Pid, reason: Value, r: MonitorRef) -> Message {
    Message {
        from: Some(from),
        topic: DOWN_TOPIC.to_owned(),
        payload: map([
            ("pid", Value::from(from.to_string())),
            ("reason", reason),
            ("ref", Value::Int(r)),
        ]),
    }
}

fn gone(pid: Pid) -> Error {
    Error::new(
        troupe_dispatcher::ErrorKind::Canceled,
        format!("{pid} is gone"),
    )
}

impl Scheduler {
    /// The live process or host mailbox `pid`.
    pub(crate) fn endpoint(&self, pid: Pid) -> Option<Endpoint> {
        if let Some(e) = self.lookup(pid) {
            return Some(Endpoint::Process(e));
        }
        self.hosts.get(&pid).map(|h| Endpoint::Host(Arc::clone(&h)))
    }

    /// Links `me` and `other`. If `other` is not alive: a trapping `me`
    /// gets `EXIT {pid, "noproc"}`, any other gets `NOT_FOUND`.
    pub(crate) fn link(&self, me: Pid, other: Pid) -> Result<(), Error> {
        if me == other {
            return Ok(());
        }
        let mine = self.endpoint(me).ok_or_else(|| gone(me))?;
        let traps = {
            let mut st = mine.links().lock();
            st.sets().links.insert(other);
            st.trap_exits
        };
        let alive = self.endpoint(other).is_some_and(|ep| {
            let mut st = ep.links().lock();
            if !st.dead {
                st.sets().links.insert(me);
            }
            !st.dead
        });
        if alive {
            return Ok(());
        }
        mine.links().lock().unlink(other);
        if traps {
            self.notify(me, exit_message(other, Value::from(NOPROC)));
            Ok(())
        } else {
            Err(Error::not_found(format!(
                "{NOPROC}: cannot link to {other}, it is not alive"
            )))
        }
    }

    /// Removes the link between `me` and `other`, if any.
    pub(crate) fn unlink(&self, me: Pid, other: Pid) {
        if let Some(ep) = self.endpoint(me) {
            ep.links().lock().unlink(other);
        }
        if let Some(ep) = self.endpoint(other) {
            ep.links().lock().unlink(me);
        }
    }

    /// `me` starts watching `target`; if `target` is not alive, the `DOWN`
    /// with reason `"noproc"` is delivered at once.
    pub(crate) fn monitor(&self, me: Pid, target: Pid) -> Result<MonitorRef, Error> {
        let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let mine = self.endpoint(me).ok_or_else(|| gone(me))?;
        mine.links().lock().sets().monitors.insert(r, target);
        let alive = self.endpoint(target).is_some_and(|ep| {
            let mut st = ep.links().lock();
            if !st.dead {
                st.sets().watchers.insert(r, me);
            }
            !st.dead
        });
        if !alive {
            mine.links().lock().drop_monitor(r);
            self.notify(me, down_message(target, Value::from(NOPROC), r));
        }
        Ok(r)
    }

    /// Stops monitor `r` held by `me`; false if it was not active (already
    /// fired, or never existed). A `DOWN` already delivered stays queued.
    pub(crate) fn demonitor(&self, me: Pid, r: MonitorRef) -> bool {
        let Some(target) = self
            .endpoint(me)
            .and_then(|ep| ep.links().lock().drop_monitor(r))
        else {
            return false;
        };
        if let Some(ep) = self.endpoint(target) {
            ep.links().lock().drop_watcher(r);
        }
        true
    }

    /// Sets whether `me` traps exits; returns the previous setting.
    pub(crate) fn trap_exits(&self, me: Pid, on: bool) -> Result<bool, Error> {
        let ep = self.endpoint(me).ok_or_else(|| gone(me))?;
        let mut st = ep.links().lock();
        Ok(std::mem::replace(&mut st.trap_exits, on))
    }

    /// Delivers the exit signal of `from` (which ended with `exit`) to the
    /// linked `to`.
    fn exit_signal(&self, to: Pid, from: Pid, exit: &Exit) {
        let Some(ep) = self.endpoint(to) else {
            return;
        };
        let traps = {
            let mut st = ep.links().lock();
            if !st.unlink(from) {
                return; // unlinked meanwhile
            }
            st.trap_exits || matches!(ep, Endpoint::Host(_))
        };
        if traps {
            self.notify(to, exit_message(from, exit.reason()));
        } else if !exit.is_normal() {
            self.stop(to, exit.propagated());
        }
    }

    /// Everything that follows the end of endpoint `pid`: its name is freed,
    /// the monitors it held are dropped, linked endpoints get its exit signal
    /// and watchers its `DOWN`.
    pub(crate) fn release(&self, pid: Pid, links: &Mutex<LinkState>, exit: &Exit) {
        let sets = {
            let mut st = links.lock();
            st.dead = true;
            st.sets.take()
        };
        // Nothing linked, monitored or registered: nothing to tell.
        let Some(st) = sets else {
            return;
        };
        if let Some(name) = st.name {
            self.names.remove_if(&name, |_, owner| *owner == pid);
        }
        for (r, target) in st.monitors {
            if let Some(ep) = self.endpoint(target) {
                ep.links().lock().drop_watcher(r);
            }
        }
        for other in st.links {
            self.exit_signal(other, pid, exit);
        }
        if st.watchers.is_empty() {
            return;
        }
        let reason = exit.reason();
        for (r, watcher) in st.watchers {
            let active = self
                .endpoint(watcher)
                .is_some_and(|ep| ep.links().lock().drop_monitor(r).is_some());
            if active {
                self.notify(watcher, down_message(pid, reason.clone(), r));
            }
        }
    }

    /// Links a process being spawned to its (live) parent before it starts,
    /// so even an immediate crash reaches the parent (`spawn_link`).
    pub(crate) fn link_at_spawn(&self, child: &Entry, parent: Pid) -> Result<(), Error> {
        let ep = self.endpoint(parent).ok_or_else(|| gone(parent))?;
        {
            let mut st = ep.links().lock();
            if st.dead {
                return Err(gone(parent));
            }
            st.sets().links.insert(child.pid);
        }
        child.links.lock().sets().links.insert(parent);
        Ok(())
    }
}
