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
//! The operations live on the process table (`table.rs`), which owns every
//! endpoint; this file holds what each endpoint keeps and the messages.
//!
//! Host mailboxes are endpoints too: they can monitor and link, they always
//! trap exits, and nothing can kill them.

use std::collections::{HashMap, HashSet};

use troupe_dispatcher::{Pid, Value};

use crate::mailbox::Message;

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
    /// Monitors on this endpoint: watcher and ref (a ref is unique on
    /// its watcher's node, so the pair is unique in the cluster).
    pub watchers: HashSet<(Pid, MonitorRef)>,
    /// The registered name, if any.
    pub name: Option<String>,
}

impl LinkState {
    /// The sets, made now if this is their first use.
    pub fn sets(&mut self) -> &mut LinkSets {
        self.sets.get_or_insert_default()
    }

    /// Whether it ever linked, monitored, was monitored or registered.
    pub fn has_sets(&self) -> bool {
        self.sets.is_some()
    }

    /// The registered name, if any.
    pub fn name(&self) -> Option<&str> {
        self.sets.as_ref()?.name.as_deref()
    }

    /// Its linked pids, the pids it monitors and the pids monitoring it,
    /// each sorted, for observers.
    pub fn peers(&self) -> [Vec<Pid>; 3] {
        let Some(s) = &self.sets else {
            return Default::default();
        };
        let sorted = |pids: &mut dyn Iterator<Item = Pid>| {
            let mut v: Vec<Pid> = pids.collect();
            v.sort_unstable();
            v
        };
        [
            sorted(&mut s.links.iter().copied()),
            sorted(&mut s.monitors.values().copied()),
            sorted(&mut s.watchers.iter().map(|&(w, _)| w)),
        ]
    }

    /// Marks the endpoint dead and takes what it held, for the notices
    /// of its end.
    pub fn end(&mut self) -> Option<Box<LinkSets>> {
        self.dead = true;
        self.sets.take()
    }

    /// Removes `other` from the linked pids; false if it was not there.
    pub fn unlink(&mut self, other: Pid) -> bool {
        self.sets.as_mut().is_some_and(|s| s.links.remove(&other))
    }

    /// Removes the monitor `r` this endpoint holds; the pid it watched.
    pub fn drop_monitor(&mut self, r: MonitorRef) -> Option<Pid> {
        self.sets.as_mut()?.monitors.remove(&r)
    }

    /// Removes the monitor `r` of `watcher` on this endpoint.
    pub fn drop_watcher(&mut self, watcher: Pid, r: MonitorRef) {
        if let Some(s) = self.sets.as_mut() {
            s.watchers.remove(&(watcher, r));
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

/// The message a trapped exit signal of `from` becomes.
pub(crate) fn exit_message(from: Pid, reason: Value) -> Message {
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

/// The `DOWN` message of monitor `r` on `from`.
pub(crate) fn down_message(from: Pid, reason: Value, r: MonitorRef) -> Message {
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
