//! One live process as the runtime keeps it: its identity, its state word,
//! the slot its worker steps it from, its mailbox and its links.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::task::AbortHandle;
use troupe_dispatcher::{Error, Pid, Tag, Value};
use troupe_modules::Policy;

use crate::exit::{Exit, ExitCell};
use crate::links::LinkState;
use crate::mailbox::Mailbox;
use crate::state::{Signal, State, Wake};
use crate::{Limits, Process, Resume};

/// The mutable part of a process, touched only by the worker that runs it.
pub(crate) struct Slot {
    /// The engine's process (`None` once it ended).
    pub process: Option<Box<dyn Process>>,
    /// What it is resumed with next, when already known.
    pub next: Option<Resume>,
    /// The IO task of the command in flight, aborted if the process ends.
    pub abort: Option<AbortHandle>,
    /// The tag of the last yield. Tags are per process (a completion names
    /// its pid too), so making one touches no shared counter.
    tag: Tag,
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

/// One live process.
pub(crate) struct Entry {
    pub pid: Pid,
    pub key: String,
    pub policy: Arc<Policy>,
    pub limits: Limits,
    /// Scheduling state and pending signal (see `state.rs`).
    pub state: State,
    /// The tag of the yield whose completion is awaited (0: none).
    expect: AtomicU64,
    /// A completion that came for it.
    inbox: Mutex<Option<Result<Value, Error>>>,
    pub slot: Mutex<Slot>,
    pub mailbox: Mutex<Mailbox>,
    /// Links, monitors, name, trap-exits flag.
    pub links: Mutex<LinkState>,
    /// How the process ends when [`Signal::Exit`] is raised (boxed: most
    /// processes never get one).
    exit_signal: Mutex<Option<Box<Exit>>>,
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
}

/// Everything an entry is made from.
pub(crate) struct NewEntry {
    pub pid: Pid,
    pub key: String,
    pub policy: Arc<Policy>,
    pub limits: Limits,
    pub mailbox: usize,
    pub process: Box<dyn Process>,
    pub exit: Option<Arc<ExitCell>>,
}

impl Entry {
    pub fn new(n: NewEntry) -> Arc<Self> {
        Arc::new(Self {
            pid: n.pid,
            key: n.key,
            policy: n.policy,
            limits: n.limits,
            state: State::scheduled(),
            expect: AtomicU64::new(0),
            inbox: Mutex::new(None),
            slot: Mutex::new(Slot {
                process: Some(n.process),
                next: Some(Resume::Start),
                abort: None,
                tag: 0,
            }),
            mailbox: Mutex::new(Mailbox::new(n.mailbox)),
            links: Mutex::new(LinkState::default()),
            exit_signal: Mutex::new(None),
            exit: n.exit,
            sleep_timer: AtomicU64::new(0),
            deadline_timer: AtomicU64::new(0),
        })
    }

    /// From now on, a completion for `tag` is the one awaited (0: none).
    pub fn expect(&self, tag: Tag) {
        self.expect.store(tag, Ordering::Release);
    }

    /// Stores the result of the yield `tag`; `Wake::Nothing` (and nothing
    /// stored) unless that is the one awaited.
    pub fn complete(&self, tag: Tag, result: Result<Value, Error>) -> Wake {
        if self.expect.load(Ordering::Acquire) != tag {
            return Wake::Nothing;
        }
        *self.inbox.lock() = Some(result);
        self.state.wake()
    }

    /// The completion that came, if any.
    pub fn take_completion(&self) -> Option<Result<Value, Error>> {
        self.inbox.lock().take()
    }

    /// Raises an exit signal: the process ends with `exit` at its next step
    /// (the first exit signal wins).
    pub fn raise_exit(&self, exit: Exit) -> Wake {
        {
            let mut slot = self.exit_signal.lock();
            if slot.is_none() {
                *slot = Some(Box::new(exit));
            }
        }
        self.state.raise(Signal::Exit)
    }

    /// The exit an exit signal asked for (a kill if it went missing).
    pub fn take_exit_signal(&self) -> Exit {
        self.exit_signal.lock().take().map_or(Exit::Killed, |e| *e)
    }
}
