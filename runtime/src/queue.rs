//! Run queues, after tokio's `runtime/scheduler/multi_thread/queue.rs`.
//!
//! Each worker thread owns a FIFO deque and a LIFO "next" slot; processes
//! it wakes go there, others (timer, IO completions, the host) go to the
//! global injector. The slot holds the process woken last: the worker runs
//! it as soon as the current one waits, without waking a parked peer (a
//! message round trip between two processes stays on one worker and one
//! cache); the one it displaces goes to the deque, where peers can steal
//! it. After [`MAX_NEXT_RUNS`] slot runs in a row the slot goes behind the
//! deque, so a ping-ponging pair cannot starve it. An idle worker takes from
//! its deque, then steals a batch from the injector, then from its peers.
//!
//! A worker's own queue lives in a thread-local, tagged with the address of
//! the [`RunQueues`] it belongs to, so another runtime's process never lands
//! on it. Peers reach it through its stealer only.

use std::cell::RefCell;
use std::sync::Arc;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use parking_lot::{Mutex, RwLock};

use crate::entry::Entry;

/// How many processes a worker takes from its "next" slot in a row before it
/// serves its deque (fairness).
const MAX_NEXT_RUNS: u32 = 16;

/// A worker's own run queue.
struct Local {
    /// The address of the [`RunQueues`] the worker belongs to.
    owner: usize,
    queue: Worker<Arc<Entry>>,
    /// The process woken last by this worker, run next.
    next: Option<Arc<Entry>>,
    /// Slot runs in a row (see [`MAX_NEXT_RUNS`]).
    next_runs: u32,
}

thread_local! {
    /// The run queue of the worker running on this thread.
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Whether a push left work that a parked peer should take.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Into the pushing worker's "next" slot: it runs it itself.
    Next,
    /// Somewhere a peer can take it: wake one.
    Shared,
}

/// The injector and every worker's stealer.
pub(crate) struct RunQueues {
    injector: Injector<Arc<Entry>>,
    stealers: Mutex<Vec<Stealer<Arc<Entry>>>>,
    /// The stealers as of the last registration, read without the lock.
    snapshot: RwLock<Arc<[Stealer<Arc<Entry>>]>>,
}

impl RunQueues {
    /// Queues with no worker yet.
    pub fn new() -> Self {
        Self {
            injector: Injector::new(),
            stealers: Mutex::new(Vec::new()),
            snapshot: RwLock::new(Arc::from(Vec::new())),
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Gives the calling thread its own queue; call on the worker thread.
    pub fn register_worker(&self) {
        let queue = Worker::new_fifo();
        let mut all = self.stealers.lock();
        all.push(queue.stealer());
        *self.snapshot.write() = Arc::from(all.clone());
        LOCAL.with(|l| {
            *l.borrow_mut() = Some(Local {
                owner: self.id(),
                queue,
                next: None,
                next_runs: 0,
            });
        });
    }

    /// Hands what is left on the calling worker's queue to the others;
    /// call when the worker stops.
    pub fn unregister_worker(&self) {
        LOCAL.with(|l| {
            if let Some(local) = l.borrow_mut().take() {
                for e in local
                    .next
                    .into_iter()
                    .chain(std::iter::from_fn(|| local.queue.pop()))
                {
                    self.injector.push(e);
                }
            }
        });
    }

    /// Schedules a process: on one of our workers, into its "next" slot
    /// (the process there before moves to its deque); elsewhere, on the
    /// injector.
    pub fn push(&self, entry: Arc<Entry>) -> Pushed {
        let me = self.id();
        let elsewhere = LOCAL.with(|l| match &mut *l.borrow_mut() {
            Some(local) if local.owner == me => match local.next.replace(entry) {
                None => Ok(Pushed::Next),
                Some(displaced) => {
                    local.queue.push(displaced);
                    Ok(Pushed::Shared)
                }
            },
            _ => Err(entry),
        });
        elsewhere.unwrap_or_else(|entry| {
            self.injector.push(entry);
            Pushed::Shared
        })
    }

    /// Schedules a process behind what the calling worker has queued,
    /// leaving its "next" slot alone (a new process: a spawning loop must
    /// not push a woken process out of the slot, behind all it spawned).
    pub fn push_back(&self, entry: Arc<Entry>) {
        let me = self.id();
        let elsewhere = LOCAL.with(|l| match &*l.borrow() {
            Some(local) if local.owner == me => {
                local.queue.push(entry);
                Ok(())
            }
            _ => Err(entry),
        });
        if let Err(entry) = elsewhere {
            self.injector.push(entry);
        }
    }

    /// Queues a process behind everything else (a preempted one).
    pub fn inject(&self, entry: Arc<Entry>) {
        self.injector.push(entry);
    }

    /// The next process of the calling worker's own: its slot (unless it
    /// ran [`MAX_NEXT_RUNS`] in a row), else its deque. When there is none,
    /// [`RunQueues::steal`] looks in the injector and the peers'.
    pub fn pop_local(&self) -> Option<Arc<Entry>> {
        let me = self.id();
        LOCAL.with(|l| match &mut *l.borrow_mut() {
            Some(local) if local.owner == me => {
                if let Some(next) = local.next.take() {
                    if local.next_runs < MAX_NEXT_RUNS {
                        local.next_runs += 1;
                        return Some(next);
                    }
                    local.queue.push(next);
                }
                local.next_runs = 0;
                local.queue.pop()
            }
            _ => None,
        })
    }

    /// A process from the injector or a peer.
    pub fn steal(&self) -> Option<Arc<Entry>> {
        let me = self.id();
        loop {
            let mut retry = false;
            let stolen = LOCAL.with(|l| match &*l.borrow() {
                Some(local) if local.owner == me => self.injector.steal_batch_and_pop(&local.queue),
                _ => self.injector.steal(),
            });
            match stolen {
                Steal::Success(e) => return Some(e),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let stealers = Arc::clone(&self.snapshot.read());
            for s in stealers.iter() {
                match s.steal() {
                    Steal::Success(e) => return Some(e),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Whether any process waits in the injector or a worker's deque.
    pub fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.snapshot.read().iter().any(|s| !s.is_empty())
    }
}
