//! One live process as the runtime keeps it: its identity, its state word,
//! the slot its worker steps it from, its mailbox and its links.
//!
//! An idle process is mostly this record, so it is kept small (the sizes
//! are pinned by a test below): what comes from outside while the process
//! waits (a completion, an exit signal) shares one lock, results are kept
//! with their error boxed ([`Kept`]), the limits are shared with the
//! parent or the runtime's defaults, and what a step knows at once (an
//! immediate command's result) stays on the worker's stack.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::task::AbortHandle;
use troupe_dispatcher::{CommandId, Error, Pid, Tag, Value};
use troupe_modules::Policy;

use crate::exit::{Exit, ExitCell, Kept};
use crate::introspect::Origin;
use crate::links::LinkState;
use crate::mailbox::Mailbox;
use crate::quota::Quota;
use crate::state::{Signal, State, Wake};
use crate::{Limits, Process, Resume};

/// What a process is resumed with at its next step when no completion is
/// needed (a result known at once is handed over on the worker's stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Its first step.
    Start,
    /// It was preempted: carry on.
    Continue,
}

impl From<Next> for Resume {
    fn from(next: Next) -> Self {
        match next {
            Next::Start => Resume::Start,
            Next::Continue => Resume::Continue,
        }
    }
}

/// The mutable part of a process, touched only by the worker that runs it.
pub(crate) struct Slot {
    /// The engine's process (`None` once it ended).
    pub process: Option<Box<dyn Process>>,
    /// What it is resumed with next, when already known.
    pub next: Option<Next>,
    /// The IO task of the command in flight, aborted if the process ends.
    pub abort: Option<AbortHandle>,
    /// The tag of the last yield. Tags are per process (a completion names
    /// its pid too), so making one touches no shared counter.
    tag: Tag,
    /// The bytes of its engine's memory charged to its quota.
    pub charged: usize,
    /// The command whose result it waits for, from its dispatch until
    /// its next step (for snapshots).
    pub waiting: Option<CommandId>,
    /// When that command was dispatched, in nanoseconds since the
    /// scheduler started (for its wait's latency).
    pub since: u64,
}

impl Slot {
    /// The tag of a new yield.
    pub fn next_tag(&mut self) -> Tag {
        self.tag += 1;
        self.tag
    }

    /// The tag of the last yield.
    pub fn tag(&self) -> Tag {
        self.tag
    }
}

/// What came for a waiting process from outside, under one lock.
#[derive(Default)]
struct Inbox {
    /// A completion of the yield awaited (or an immediate result held over
    /// a requeue).
    completion: Option<Kept>,
    /// How the process ends when [`Signal::Exit`] is raised (boxed: most
    /// processes never get one).
    exit_signal: Option<Box<Exit>>,
}

/// One live process.
pub(crate) struct Entry {
    pub pid: Pid,
    pub key: Box<str>,
    pub policy: Arc<Policy>,
    /// Shared with the parent's or the runtime's defaults when the same.
    pub limits: Arc<Limits>,
    /// Its spawn tree's quota (see `quota.rs`), counting it as live.
    pub quota: Arc<Quota>,
    /// The bytes its engine's footprint charged to the runtime's quota.
    pub footprint: usize,
    /// Scheduling state and pending signal (see `state.rs`).
    pub state: State,
    /// The tag of the yield whose completion is awaited (0: none).
    expect: AtomicU64,
    /// A completion or an exit signal that came for it.
    inbox: Mutex<Inbox>,
    pub slot: Mutex<Slot>,
    pub mailbox: Mutex<Mailbox>,
    /// Links, monitors, name, trap-exits flag.
    pub links: Mutex<LinkState>,
    /// Where its result goes, if someone joins it.
    pub exit: Option<Arc<ExitCell>>,
    /// The timer of the `time.sleep` in flight ([`TimerKey`] bits, 0: none).
    ///
    /// [`TimerKey`]: crate::timers::TimerKey
    pub sleep_timer: AtomicU64,
    /// The timer of the wall-clock limit ([`TimerKey`] bits, 0: none).
    ///
    /// [`TimerKey`]: crate::timers::TimerKey
    pub deadline_timer: AtomicU64,
    /// Where it came from, for snapshots.
    pub origin: Origin,
}

/// Everything an entry is made from.
pub(crate) struct NewEntry {
    pub pid: Pid,
    pub key: String,
    pub policy: Arc<Policy>,
    pub limits: Arc<Limits>,
    /// Already counting the new process ([`Quota::admit`]).
    pub quota: Arc<Quota>,
    /// Already charged to the runtime's quota.
    pub footprint: usize,
    pub mailbox: usize,
    pub mailbox_bytes: usize,
    pub process: Box<dyn Process>,
    pub exit: Option<Arc<ExitCell>>,
    pub origin: Origin,
}

impl Entry {
    pub fn new(n: NewEntry) -> Arc<Self> {
        Arc::new(Self {
            pid: n.pid,
            key: n.key.into_boxed_str(),
            policy: n.policy,
            limits: n.limits,
            quota: Arc::clone(&n.quota),
            footprint: n.footprint,
            state: State::scheduled(),
            expect: AtomicU64::new(0),
            inbox: Mutex::new(Inbox::default()),
            slot: Mutex::new(Slot {
                process: Some(n.process),
                next: Some(Next::Start),
                abort: None,
                tag: 0,
                charged: 0,
                waiting: None,
                since: 0,
            }),
            mailbox: Mutex::new(Mailbox::new(n.mailbox, n.mailbox_bytes, Some(n.quota))),
            links: Mutex::new(LinkState::default()),
            exit: n.exit,
            sleep_timer: AtomicU64::new(0),
            deadline_timer: AtomicU64::new(0),
            origin: n.origin,
        })
    }

    /// From now on, a completion for `tag` is the one awaited (0: none).
    pub fn expect(&self, tag: Tag) {
        self.expect.store(tag, Ordering::Release);
    }

    /// The tag of the completion awaited (0: none).
    pub fn expected(&self) -> Tag {
        self.expect.load(Ordering::Acquire)
    }

    /// Stores the result of the yield `tag`; `Wake::Nothing` (and nothing
    /// stored) unless that is the one awaited.
    pub fn complete(&self, tag: Tag, result: Result<Value, Error>) -> Wake {
        if self.expect.load(Ordering::Acquire) != tag {
            return Wake::Nothing;
        }
        self.hold(result);
        self.state.wake()
    }

    /// Keeps `result` for the next step to take (an immediate result whose
    /// process is requeued before it could be resumed with it).
    pub fn hold(&self, result: Result<Value, Error>) {
        self.inbox.lock().completion = Some(Kept::new(result));
    }

    /// The completion that came, if any.
    pub fn take_completion(&self) -> Option<Result<Value, Error>> {
        let kept = self.inbox.lock().completion.take();
        kept.map(Kept::into_result)
    }

    /// Raises an exit signal: the process ends with `exit` at its next step
    /// (the first exit signal wins).
    pub fn raise_exit(&self, exit: Exit) -> Wake {
        {
            let mut inbox = self.inbox.lock();
            if inbox.exit_signal.is_none() {
                inbox.exit_signal = Some(Box::new(exit));
            }
        }
        self.state.raise(Signal::Exit)
    }

    /// The exit an exit signal asked for (a kill if it went missing).
    pub fn take_exit_signal(&self) -> Exit {
        let exit = self.inbox.lock().exit_signal.take();
        exit.map_or(Exit::Killed, |e| *e)
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::{Entry, Slot};
    use crate::exit::{ExitCell, Kept};
    use crate::mailbox::Mailbox;

    /// An idle process is mostly these records: they must not regrow
    /// unnoticed (each was cut on purpose; see the module's doc).
    #[test]
    fn records_stay_small() {
        // Before the cut: 472, 96, 120, 112 and 64 (an inline
        // `Result<Value, Error>`). The quotas added 40 bytes: the tree's
        // quota in the entry and the mailbox, the mailbox's byte count
        // and cap, the memory charged in the slot; the engine's footprint 8 more.
        // What snapshots show of its origin (parent, engine, kind, start,
        // workflow id), packed: 40 more. When the command it waits for
        // was dispatched (command latency metrics): 8 more.
        assert_eq!(size_of::<Entry>(), 408);
        assert_eq!(size_of::<Slot>(), 56);
        assert_eq!(size_of::<Mailbox>(), 120);
        assert_eq!(size_of::<ExitCell>(), 80);
        assert_eq!(size_of::<Option<Kept>>(), 32);
    }
}
