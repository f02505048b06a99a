//! The process table of a node: every live endpoint (processes and host
//! mailboxes) by pid, the registered names, the children of live
//! supervisors, and the links and monitors between endpoints, with
//! Erlang's semantics (see `links.rs`).
//!
//! The table knows nothing of workers or run queues: what it cannot do by
//! itself (deliver a notification, stop a process) it asks of the
//! [`Signals`] its caller hands it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::Mutex;
use troupe_dispatcher::{Error, ErrorKind, Pid, Value};

use crate::entry::Entry;
use crate::exit::{Exit, NOPROC};
use crate::links::{LinkSets, LinkState, MonitorRef, down_message, exit_message};
use crate::mailbox::{Mailbox, Message, Taken};
use crate::remote::{ExitReason, NOCONNECTION, RemoteSignal};
use crate::supervisor_spec::Children;

/// A map keyed by pid, hashed with [`PidHasher`].
pub(crate) type PidMap<V> = DashMap<Pid, V, std::hash::BuildHasherDefault<PidHasher>>;

/// Hashes pids for the process table, looked up on every spawn, exit,
/// message and completion. Pids are numbers the runtime hands out in
/// sequence (no one else picks them), so FxHash's multiply-and-rotate is
/// enough: several times cheaper than the default SipHash, and a
/// multiplication by an odd constant spreads consecutive ids over both the
/// map's shards (high bits) and its buckets (low bits).
#[derive(Default, Clone, Copy)]
pub(crate) struct PidHasher(u64);

impl PidHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
}

/// The shared part of a host mailbox, in the table's host map.
pub(crate) struct HostBox {
    pub mailbox: Mutex<Mailbox>,
    pub links: Mutex<LinkState>,
    notify: tokio::sync::Notify,
}

impl HostBox {
    /// A host mailbox of `capacity` messages and `max_bytes` bytes (the
    /// host's memory: charged to no spawn tree).
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            mailbox: Mutex::new(Mailbox::new(capacity, max_bytes, None)),
            links: Mutex::new(LinkState::default()),
            notify: tokio::sync::Notify::new(),
        }
    }

    /// Wakes any `recv`: a message was queued.
    pub fn notify(&self) {
        self.notify.notify_waiters();
    }

    /// Waits for the first message on `topic` (any if `None`) and takes it.
    pub async fn take(&self, topic: Option<&str>) -> Taken {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(t) = self.mailbox.lock().take(topic) {
                return t;
            }
            notified.await;
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

/// What the table asks of whoever runs the processes.
pub(crate) trait Signals {
    /// Delivers a runtime notification (`EXIT`, `DOWN`) to `to`'s mailbox.
    fn notify(&self, to: Pid, msg: Message);

    /// Ends `to` with `exit` at its next step; false if it is not alive.
    fn stop(&self, to: Pid, exit: Exit) -> bool;

    /// Queues `signal` for its process of another node; false if that
    /// node cannot be reached.
    fn remote(&self, signal: RemoteSignal) -> bool;
}

/// Every live endpoint of a node, its names and its links.
pub(crate) struct ProcessTable {
    node: u32,
    next_pid: AtomicU64,
    next_ref: AtomicI64,
    procs: PidMap<Arc<Entry>>,
    /// Host mailboxes by pid.
    pub hosts: PidMap<Arc<HostBox>>,
    /// Registered names.
    pub names: DashMap<String, Pid>,
    /// The children of live supervisors, for `which_children`.
    pub supervisors: DashMap<Pid, Children>,
}

fn gone(pid: Pid) -> Error {
    Error::new(ErrorKind::Canceled, format!("{pid} is gone"))
}

impl ProcessTable {
    /// The node whose pids this table hands out.
    pub(crate) fn node(&self) -> u32 {
        self.node
    }

    /// An empty table handing out pids of `node`.
    pub fn new(node: u32) -> Self {
        Self {
            node,
            next_pid: AtomicU64::new(1),
            next_ref: AtomicI64::new(1),
            procs: PidMap::default(),
            hosts: PidMap::default(),
            names: DashMap::new(),
            supervisors: DashMap::new(),
        }
    }

    /// A new pid.
    pub fn next_pid(&self) -> Pid {
        Pid::new(self.node, self.next_pid.fetch_add(1, Ordering::Relaxed))
    }

    /// Adds a process.
    pub fn insert(&self, entry: Arc<Entry>) {
        self.procs.insert(entry.pid, entry);
    }

    /// Removes a process; false if it was not in the table.
    pub fn remove(&self, pid: Pid) -> bool {
        self.procs.remove(&pid).is_some()
    }

    /// The live process `pid`.
    pub fn lookup(&self, pid: Pid) -> Option<Arc<Entry>> {
        self.procs.get(&pid).map(|e| Arc::clone(&e))
    }

    /// Whether process `pid` is alive.
    pub fn contains(&self, pid: Pid) -> bool {
        self.procs.contains_key(&pid)
    }

    /// How many processes are alive.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Every live process.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.procs.iter().map(|e| Arc::clone(e.value())).collect()
    }

    /// Calls `f` with every live process, without copying the table.
    pub fn each(&self, mut f: impl FnMut(&Entry)) {
        for e in self.procs.iter() {
            f(e.value());
        }
    }

    /// Every live process, by pid (sorted on the table's keys, so no
    /// entry is read to order them).
    pub fn entries_by_pid(&self) -> Vec<Arc<Entry>> {
        let mut all: Vec<(Pid, Arc<Entry>)> = self
            .procs
            .iter()
            .map(|e| (*e.key(), Arc::clone(e.value())))
            .collect();
        all.sort_unstable_by_key(|(pid, _)| *pid);
        all.into_iter().map(|(_, e)| e).collect()
    }

    /// The live process or host mailbox `pid`.
    pub fn endpoint(&self, pid: Pid) -> Option<Endpoint> {
        if let Some(e) = self.lookup(pid) {
            return Some(Endpoint::Process(e));
        }
        self.hosts.get(&pid).map(|h| Endpoint::Host(Arc::clone(&h)))
    }

    /// Records something on the live endpoint `pid` (a link, a watcher);
    /// false, recording nothing, if it is not alive.
    fn add_if_alive(&self, pid: Pid, add: impl FnOnce(&mut LinkSets)) -> bool {
        self.endpoint(pid).is_some_and(|ep| {
            let mut st = ep.links().lock();
            if !st.dead {
                add(st.sets());
            }
            !st.dead
        })
    }

    /// Whether `pid` is a process of another node.
    fn is_remote(&self, pid: Pid) -> bool {
        pid.node() != self.node
    }

    /// Links `me` and `other`. If `other` is not alive: a trapping `me`
    /// gets `EXIT {pid, "noproc"}`, any other gets `NOT_FOUND`. A process
    /// of another node is linked at once, and checked there: if it is not
    /// alive, its `noproc` comes back as an exit signal (as in Erlang); if
    /// its node cannot be reached, `me` is told as above with
    /// `noconnection` (`UNAVAILABLE`).
    pub fn link(&self, me: Pid, other: Pid, signals: &dyn Signals) -> Result<(), Error> {
        if me == other {
            return Ok(());
        }
        let mine = self.endpoint(me).ok_or_else(|| gone(me))?;
        let traps = {
            let mut st = mine.links().lock();
            st.sets().links.insert(other);
            st.trap_exits
        };
        let (alive, reason) = if self.is_remote(other) {
            let sent = signals.remote(RemoteSignal::Link {
                from: me,
                to: other,
            });
            (sent, NOCONNECTION)
        } else {
            let alive = self.add_if_alive(other, |sets| {
                sets.links.insert(me);
            });
            (alive, NOPROC)
        };
        if alive {
            return Ok(());
        }
        mine.links().lock().unlink(other);
        if traps {
            signals.notify(me, exit_message(other, Value::from(reason)));
            Ok(())
        } else if reason == NOPROC {
            Err(Error::not_found(format!(
                "{NOPROC}: cannot link to {other}, it is not alive"
            )))
        } else {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("{NOCONNECTION}: cannot link to {other}, its node cannot be reached"),
            ))
        }
    }

    /// Removes the link between `me` and `other`, if any.
    pub fn unlink(&self, me: Pid, other: Pid, signals: &dyn Signals) {
        let was = self
            .endpoint(me)
            .is_some_and(|ep| ep.links().lock().unlink(other));
        if self.is_remote(other) {
            if was {
                signals.remote(RemoteSignal::Unlink {
                    from: me,
                    to: other,
                });
            }
        } else if let Some(ep) = self.endpoint(other) {
            ep.links().lock().unlink(me);
        }
    }

    /// `me` starts watching `target`; if `target` is not alive, the `DOWN`
    /// with reason `"noproc"` is delivered at once (from `target`'s node,
    /// for a process of another node; `"noconnection"` at once if that
    /// node cannot be reached).
    pub fn monitor(
        &self,
        me: Pid,
        target: Pid,
        signals: &dyn Signals,
    ) -> Result<MonitorRef, Error> {
        let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let mine = self.endpoint(me).ok_or_else(|| gone(me))?;
        mine.links().lock().sets().monitors.insert(r, target);
        let (alive, reason) = if self.is_remote(target) {
            let sent = signals.remote(RemoteSignal::Monitor {
                watcher: me,
                target,
                r,
            });
            (sent, NOCONNECTION)
        } else {
            let alive = self.add_if_alive(target, |sets| {
                sets.watchers.insert((me, r));
            });
            (alive, NOPROC)
        };
        if !alive {
            mine.links().lock().drop_monitor(r);
            signals.notify(me, down_message(target, Value::from(reason), r));
        }
        Ok(r)
    }

    /// Stops monitor `r` held by `me`; false if it was not active (already
    /// fired, or never existed). A `DOWN` already delivered stays queued.
    pub fn demonitor(&self, me: Pid, r: MonitorRef, signals: &dyn Signals) -> bool {
        let Some(target) = self
            .endpoint(me)
            .and_then(|ep| ep.links().lock().drop_monitor(r))
        else {
            return false;
        };
        self.drop_watcher(target, me, r, signals);
        true
    }

    /// Takes monitor `r` of `watcher` off `target`, here or on its node.
    fn drop_watcher(&self, target: Pid, watcher: Pid, r: MonitorRef, signals: &dyn Signals) {
        if self.is_remote(target) {
            signals.remote(RemoteSignal::Demonitor { watcher, target, r });
        } else if let Some(ep) = self.endpoint(target) {
            ep.links().lock().drop_watcher(watcher, r);
        }
    }

    /// Sets whether `me` traps exits; returns the previous setting.
    pub fn trap_exits(&self, me: Pid, on: bool) -> Result<bool, Error> {
        let ep = self.endpoint(me).ok_or_else(|| gone(me))?;
        let mut st = ep.links().lock();
        Ok(std::mem::replace(&mut st.trap_exits, on))
    }

    /// Delivers the exit signal of `from` (which ended with `exit`) to the
    /// linked `to`, here or on its node.
    fn exit_signal(&self, to: Pid, from: Pid, exit: &Exit, signals: &dyn Signals) {
        if self.is_remote(to) {
            let reason = ExitReason::of(exit);
            signals.remote(RemoteSignal::Exit { from, to, reason });
            return;
        }
        let propagated = (!exit.is_normal()).then(|| exit.propagated());
        self.exit_signal_with(to, from, exit.reason(), propagated, signals);
    }

    /// Delivers to the linked local `to` an exit signal of `from` with
    /// `reason`: a message if `to` traps exits, else the end `propagated`
    /// (none for a normal exit). Nothing if the link is gone meanwhile.
    fn exit_signal_with(
        &self,
        to: Pid,
        from: Pid,
        reason: Value,
        propagated: Option<Exit>,
        signals: &dyn Signals,
    ) {
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
            signals.notify(to, exit_message(from, reason));
        } else if let Some(exit) = propagated {
            signals.stop(to, exit);
        }
    }

    /// Everything that follows the end of endpoint `pid`: its name is freed,
    /// the monitors it held are dropped, linked endpoints get its exit signal
    /// and watchers its `DOWN`.
    pub fn release(&self, pid: Pid, links: &Mutex<LinkState>, exit: &Exit, signals: &dyn Signals) {
        // Nothing linked, monitored or registered: nothing to tell.
        let Some(st) = links.lock().end() else {
            return;
        };
        if let Some(name) = st.name {
            self.names.remove_if(&name, |_, owner| *owner == pid);
        }
        for (r, target) in st.monitors {
            self.drop_watcher(target, pid, r, signals);
        }
        for other in st.links {
            self.exit_signal(other, pid, exit, signals);
        }
        if st.watchers.is_empty() {
            return;
        }
        let reason = exit.reason();
        for (watcher, r) in st.watchers {
            if self.is_remote(watcher) {
                signals.remote(RemoteSignal::Down {
                    target: pid,
                    watcher,
                    r,
                    reason: ExitReason::of(exit),
                });
            } else {
                self.down(watcher, pid, r, reason.clone(), signals);
            }
        }
    }

    /// Delivers `DOWN` of monitor `r` (on `target`, with `reason`) to the
    /// local `watcher`, if the monitor is still active.
    fn down(&self, watcher: Pid, target: Pid, r: MonitorRef, reason: Value, signals: &dyn Signals) {
        let active = self
            .endpoint(watcher)
            .is_some_and(|ep| ep.links().lock().drop_monitor(r).is_some());
        if active {
            signals.notify(watcher, down_message(target, reason, r));
        }
    }

    /// Acts on a signal from a process of another node to one of this
    /// node; what cannot be done (a link or monitor to a process that is
    /// not alive) goes back as `noproc`.
    pub fn deliver_signal(&self, signal: RemoteSignal, signals: &dyn Signals) {
        match signal {
            RemoteSignal::Link { from, to } => {
                let alive = self.add_if_alive(to, |sets| {
                    sets.links.insert(from);
                });
                if !alive {
                    let reason = ExitReason::NoProc;
                    signals.remote(RemoteSignal::Exit {
                        from: to,
                        to: from,
                        reason,
                    });
                }
            }
            RemoteSignal::Unlink { from, to } => {
                if let Some(ep) = self.endpoint(to) {
                    ep.links().lock().unlink(from);
                }
            }
            RemoteSignal::Exit { from, to, reason } => {
                let propagated = reason.propagated(from);
                self.exit_signal_with(to, from, reason.value(), propagated, signals);
            }
            RemoteSignal::Kill { to, .. } => {
                signals.stop(to, Exit::Killed);
            }
            RemoteSignal::Monitor { watcher, target, r } => {
                let alive = self.add_if_alive(target, |sets| {
                    sets.watchers.insert((watcher, r));
                });
                if !alive {
                    let reason = ExitReason::NoProc;
                    signals.remote(RemoteSignal::Down {
                        target,
                        watcher,
                        r,
                        reason,
                    });
                }
            }
            RemoteSignal::Demonitor { watcher, target, r } => {
                if let Some(ep) = self.endpoint(target) {
                    ep.links().lock().drop_watcher(watcher, r);
                }
            }
            RemoteSignal::Down {
                target,
                watcher,
                r,
                reason,
            } => self.down(watcher, target, r, reason.value(), signals),
        }
    }

    /// Node `node` went away: every link to one of its processes delivers
    /// an exit signal with reason `noconnection`, every monitor of one a
    /// `DOWN` with it, and its monitors of this node's processes are
    /// forgotten.
    pub fn node_down(&self, node: u32, signals: &dyn Signals) {
        let mut endpoints: Vec<(Pid, Endpoint)> = self
            .procs
            .iter()
            .map(|e| (*e.key(), Endpoint::Process(Arc::clone(e.value()))))
            .collect();
        endpoints.extend(
            self.hosts
                .iter()
                .map(|h| (*h.key(), Endpoint::Host(Arc::clone(h.value())))),
        );
        let on_node = |pid: &Pid| pid.node() == node;
        for (me, ep) in endpoints {
            let (links, monitors) = {
                let mut st = ep.links().lock();
                if st.dead || !st.has_sets() {
                    continue;
                }
                let sets = st.sets();
                sets.watchers.retain(|(w, _)| !on_node(w));
                let links: Vec<Pid> = sets.links.iter().copied().filter(on_node).collect();
                let monitors: Vec<(MonitorRef, Pid)> = sets
                    .monitors
                    .iter()
                    .filter(|(_, t)| on_node(t))
                    .map(|(&r, &t)| (r, t))
                    .collect();
                (links, monitors)
            };
            let reason = ExitReason::NoConnection;
            for other in links {
                let propagated = reason.propagated(other);
                self.exit_signal_with(me, other, reason.value(), propagated, signals);
            }
            for (r, target) in monitors {
                self.down(me, target, r, reason.value(), signals);
            }
        }
    }

    /// Links a process being spawned to its (live) parent before it starts,
    /// so even an immediate crash reaches the parent (`spawn_link`).
    pub fn link_at_spawn(&self, child: &Entry, parent: Pid) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault};

    use troupe_dispatcher::Pid;

    use super::PidHasher;

    #[test]
    fn consecutive_pids_spread_over_buckets_and_shards() {
        let hasher = BuildHasherDefault::<PidHasher>::default();
        let hashes: Vec<u64> = (1..=4096)
            .map(|i| hasher.hash_one(Pid::new(0, i)))
            .collect();
        // A table of 4096 buckets indexes by the low bits: no collisions.
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        assert_eq!(buckets.len(), 4096);
        // DashMap picks one of its shards (here 32) by the bits below the
        // top seven: every shard gets its share.
        let mut shards = [0_u32; 32];
        for h in &hashes {
            shards[usize::try_from((h << 7) >> 59).expect("5 bits")] += 1;
        }
        assert!(shards.iter().all(|&n| n >= 64), "{shards:?}");
    }
}
