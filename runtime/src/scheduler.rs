//! The scheduler of a node: what it is made of, and how a process is
//! started, woken, completed, signalled, sent to and ended.
//!
//! It is assembled from parts that each hold only what they need:
//!
//! - the run queues (`queue.rs`) and the idle workers' parking lot
//!   (`idle.rs`), driven by the worker loop and the step loop (`worker.rs`);
//! - the process table (`table.rs`): entries, names, host mailboxes, links,
//!   monitors and supervisors' children;
//! - the program cache and hot-reload services (`programs.rs`);
//! - the timers (`timers.rs`, a hierarchical wheel the workers drive: each
//!   pass of a worker's loop fires the timers that are due, one atomic load
//!   when none is, and a worker with nothing to run parks until the
//!   earliest deadline at the latest; there is no timer thread). Timers are
//!   cancelled when what they wait for is over: a process's sleep and its
//!   wall-clock limit when it ends, a `receive` timeout when a message
//!   comes.
//!
//! Workers never block on IO: every wait is a parked process. The state
//! machine that makes sure a completion racing a yield is never lost, and
//! the signals that stop a process from outside, are in `state.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use troupe_dispatcher::{
    Completion, CompletionSink, Dispatcher, Error, ErrorKind, Pid, Tag, Value,
};
use troupe_modules::{ModuleRegistry, Policy};
use troupe_sources::Source;

use crate::Limits;
use crate::commands::Builtins;
use crate::engine::Engine;
use crate::entry::Entry;
use crate::exit::Exit;
use crate::idle::Idle;
use crate::journal::{JournalStore, Wait};
use crate::links::MonitorRef;
use crate::mailbox::Message;
use crate::programs::Programs;
use crate::queue::{Pushed, RunQueues};
use crate::quota::{Caps, Quota};
use crate::remote::{RemoteNodes, RemoteSignal};
use crate::state::{Signal, Wake};
use crate::stats::{Counters, Event};
use crate::table::{ProcessTable, Signals};
use crate::timers::{TimerAction, TimerKey, Timers};

/// The scheduler: run queues, idle workers, process table, timers,
/// programs, and what processes are started with.
pub(crate) struct Scheduler {
    pub table: ProcessTable,
    pub queues: RunQueues,
    pub idle: Idle,
    pub timers: Timers,
    pub programs: Programs,
    pub dispatcher: Dispatcher,
    /// The commands the runtime handles itself, typed.
    pub builtins: Builtins,
    pub sink: Arc<dyn CompletionSink>,
    /// The scheduler itself, for the processes it starts that need a
    /// link back (supervisors): weak, so they never keep it alive.
    pub me: std::sync::Weak<Scheduler>,
    pub modules: Arc<ModuleRegistry>,
    pub started: Instant,
    pub default_policy: Arc<Policy>,
    /// Shared by every process spawned with them.
    pub default_limits: Arc<Limits>,
    pub default_mailbox: usize,
    /// The byte cap of every mailbox.
    pub mailbox_bytes: usize,
    /// The node-wide caps every spawn tree's quota counts against.
    pub quota: Arc<Quota>,
    /// Where workflow journals live.
    pub journals: Option<Arc<dyn JournalStore>>,
    /// What it did, for metrics.
    pub stats: Counters,
    /// The cluster this node belongs to, once it joined one.
    pub remote: OnceLock<Arc<dyn RemoteNodes>>,
    shutting_down: AtomicBool,
}

/// Parts the runtime builder hands to the scheduler.
pub(crate) struct SchedulerParts {
    pub node: u32,
    pub dispatcher: Dispatcher,
    pub me: std::sync::Weak<Scheduler>,
    pub modules: Arc<ModuleRegistry>,
    pub engines: Vec<Arc<dyn Engine>>,
    pub source: Arc<dyn Source>,
    pub default_policy: Arc<Policy>,
    pub default_limits: Limits,
    pub default_mailbox: usize,
    pub mailbox_bytes: usize,
    pub caps: Caps,
    pub journals: Option<Arc<dyn JournalStore>>,
    /// How many worker threads will run.
    pub workers: usize,
}

impl Scheduler {
    pub fn new(p: SchedulerParts) -> Self {
        let builtins = Builtins::new();
        let commands = builtins.id_limit().max(p.dispatcher.id_limit());
        Self {
            table: ProcessTable::new(p.node),
            queues: RunQueues::new(),
            idle: Idle::default(),
            timers: Timers::new(),
            programs: Programs::new(p.engines, p.source),
            dispatcher: p.dispatcher,
            builtins,
            sink: Arc::new(Sink(p.me.clone())),
            me: p.me,
            modules: p.modules,
            started: Instant::now(),
            default_policy: p.default_policy,
            default_limits: Arc::new(p.default_limits),
            default_mailbox: p.default_mailbox,
            mailbox_bytes: p.mailbox_bytes,
            quota: Quota::runtime(p.caps),
            journals: p.journals,
            stats: Counters::new(p.workers, commands),
            remote: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Whether the runtime is shutting down.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Starts the shutdown: no more spawns, every live process is asked to
    /// stop at its next step, and every parked worker wakes to see it.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        for entry in self.table.entries() {
            self.raise(entry, Signal::Shutdown);
        }
        self.idle.wake_all();
    }

    /// Schedules a process, waking a parked worker if a peer should take it.
    pub fn push(&self, entry: Arc<Entry>) {
        if self.queues.push(entry) == Pushed::Shared {
            self.idle.wake_one();
        }
    }

    /// Inserts a new process and schedules its first step, behind what
    /// is queued (see [`RunQueues::push_back`]).
    pub fn start(&self, entry: Arc<Entry>) {
        self.stats.count(Event::Spawned);
        self.table.insert(Arc::clone(&entry));
        if let Some(t) = entry.limits.timeout {
            let key = self.add_timer(t, TimerAction::Deadline { pid: entry.pid });
            entry.deadline_timer.store(key.to_bits(), Ordering::Release);
        }
        self.queues.push_back(entry);
        self.idle.wake_one();
    }

    /// Starts a timer. If it is now the earliest, parked workers wake to
    /// re-arm their wake-up.
    pub fn add_timer(&self, delay: Duration, action: TimerAction) -> TimerKey {
        let (key, earliest) = self.timers.add(delay, action);
        if earliest && self.idle.any_parked() {
            self.idle.wake_all();
        }
        key
    }

    /// Cancels the timer whose key `cell` holds, if any, and empties it.
    pub fn cancel_timer(&self, cell: &AtomicU64) {
        if let Some(key) = TimerKey::from_bits(cell.swap(0, Ordering::AcqRel)) {
            self.timers.cancel(key);
        }
    }

    /// Fires the timers that are due (a worker calls this on every pass).
    pub fn fire_timers(&self) {
        if !self.timers.is_due() {
            return;
        }
        let mut due = Vec::new();
        self.timers.poll(&mut due);
        for action in due {
            self.handle_timer(action);
        }
    }

    fn handle_timer(&self, action: TimerAction) {
        match action {
            TimerAction::Wake { pid, tag } => {
                if let Some(entry) = self.table.lookup(pid) {
                    // Fired: nothing left to cancel (the process sleeps
                    // again only after this completion).
                    entry.sleep_timer.store(0, Ordering::Release);
                    self.complete_entry(entry, tag, Ok(Value::Nil));
                }
            }
            TimerAction::ReceiveTimeout { pid, tag } => {
                let Some(entry) = self.table.lookup(pid) else {
                    return;
                };
                let waiting = entry
                    .mailbox
                    .lock()
                    .waiter
                    .take_if(|w| w.tag == tag)
                    .is_some();
                if waiting {
                    let timeout = Error::new(ErrorKind::Timeout, "receive timed out");
                    self.complete_entry(entry, tag, Err(timeout));
                }
            }
            TimerAction::SendTimeout { to, pid, tag } => self.send_timed_out(to, pid, tag),
            TimerAction::Deadline { pid } => {
                if let Some(entry) = self.table.lookup(pid) {
                    entry.deadline_timer.store(0, Ordering::Release);
                    self.raise(entry, Signal::Timeout);
                }
            }
        }
    }

    /// Ends process `pid`'s wait in `wait` with `error`, as if the command
    /// returned it (a workflow's cancellation); false if it is not waiting
    /// in one.
    pub fn interrupt_wait(&self, pid: Pid, wait: Wait, error: Error) -> bool {
        let Some(entry) = self.table.lookup(pid) else {
            return false;
        };
        let tag = match wait {
            Wait::Receive => match entry.mailbox.lock().waiter.take() {
                Some(w) => w.tag,
                None => return false,
            },
            Wait::Sleep => {
                let Some(key) = TimerKey::from_bits(entry.sleep_timer.swap(0, Ordering::AcqRel))
                else {
                    return false;
                };
                self.timers.cancel(key);
                entry.expected()
            }
        };
        self.complete_entry(entry, tag, Err(error));
        true
    }

    /// Delivers a completion: if the process waits for this tag, stores the
    /// result and wakes it; otherwise (stale, process gone) drops it.
    pub fn complete(&self, c: Completion) {
        if let Some(entry) = self.table.lookup(c.pid) {
            self.complete_entry(entry, c.tag, c.result);
        }
    }

    /// [`Scheduler::complete`] for a process already looked up.
    pub fn complete_entry(&self, entry: Arc<Entry>, tag: Tag, result: Result<Value, Error>) {
        if entry.complete(tag, result) == Wake::Schedule {
            self.push(entry);
        }
    }

    /// Ends `pid` with `exit` at its next step (an exit signal: a kill, or
    /// a linked process's crash); false if it is not alive. The first
    /// signal wins.
    pub fn stop(&self, pid: Pid, exit: Exit) -> bool {
        let Some(entry) = self.table.lookup(pid) else {
            return false;
        };
        if entry.raise_exit(exit) == Wake::Schedule {
            self.push(entry);
        }
        true
    }

    /// Kills every process of the spawn tree `quota` counts, after
    /// closing it so none joins meanwhile; how many were alive.
    pub fn kill_tree(&self, quota: &Arc<Quota>) -> usize {
        quota.close();
        let members: Vec<Pid> = self
            .table
            .entries()
            .into_iter()
            .filter(|e| Arc::ptr_eq(&e.quota, quota))
            .map(|e| e.pid)
            .collect();
        members
            .into_iter()
            .filter(|&pid| self.stop(pid, Exit::Killed))
            .count()
    }

    fn raise(&self, entry: Arc<Entry>, signal: Signal) {
        if entry.state.raise(signal) == Wake::Schedule {
            self.push(entry);
        }
    }

    /// Links `me` and `other` (see [`ProcessTable::link`]).
    pub fn link(&self, me: Pid, other: Pid) -> Result<(), Error> {
        self.table.link(me, other, self)
    }

    /// `me` starts watching `target` (see [`ProcessTable::monitor`]).
    pub fn monitor(&self, me: Pid, target: Pid) -> Result<MonitorRef, Error> {
        self.table.monitor(me, target, self)
    }

    /// Ends a process: removes it, cancels its pending work, signals its
    /// links and monitors, lets the process see its end, drops its engine
    /// state, and tells whoever joins it.
    pub fn finish(&self, entry: &Arc<Entry>, exit: Exit) {
        entry.state.finish();
        let live = self.table.remove(entry.pid);
        let process = {
            let mut slot = entry.slot.lock();
            if let Some(a) = slot.abort.take() {
                a.abort();
            }
            entry.quota.refund(std::mem::take(&mut slot.charged));
            slot.process.take()
        };
        if live {
            entry.quota.leave();
            self.quota.refund(entry.footprint);
        }
        self.cancel_timer(&entry.sleep_timer);
        self.cancel_timer(&entry.deadline_timer);
        let (waiter, senders) = {
            let mut mb = entry.mailbox.lock();
            (mb.waiter.take(), mb.close())
        };
        if let Some(key) = waiter.and_then(|w| w.timer) {
            self.timers.cancel(key);
        }
        self.fail_senders(entry.pid, senders);
        match &exit {
            Exit::Normal(_) => {
                self.stats.count(Event::ExitedNormal);
                tracing::debug!(pid = %entry.pid, "process exited");
            }
            Exit::Killed => {
                self.stats.count(Event::ExitedKilled);
                tracing::debug!(pid = %entry.pid, "process killed");
            }
            Exit::Failed(e) => {
                self.stats.failed(e.kind());
                tracing::debug!(pid = %entry.pid, error = %e, "process failed");
            }
        }
        self.table.release(entry.pid, &entry.links, &exit, self);
        let result = exit.into_result();
        if let Some(mut process) = process {
            // A process cancelled by a shutdown did not end: it was
            // interrupted (a workflow stays unfinished, to be resumed).
            let interrupted = self.shutting_down()
                && matches!(&result, Err(e) if e.kind() == ErrorKind::Canceled);
            if !interrupted {
                process.finish(&result);
            }
        }
        if let Some(cell) = &entry.exit {
            cell.set(result);
        }
    }

    /// Finishes every process still in the table (after the workers stopped).
    pub fn drain(&self) {
        for entry in self.table.entries() {
            self.finish(
                &entry,
                Exit::Failed(Error::new(ErrorKind::Canceled, "runtime shut down")),
            );
        }
    }
}

impl Signals for Scheduler {
    /// A runtime notification (`EXIT`, `DOWN`) is not bounded by the
    /// mailbox capacity, and there is nothing to report if `to` is gone.
    fn notify(&self, to: Pid, msg: Message) {
        let _ = self.deliver_with(to, msg, false, |_, _| ());
    }

    fn stop(&self, to: Pid, exit: Exit) -> bool {
        Scheduler::stop(self, to, exit)
    }

    fn remote(&self, signal: RemoteSignal) -> bool {
        self.remote.get().is_some_and(|r| r.signal(signal))
    }
}

/// The completion sink handed to the dispatcher: a weak link back to the
/// scheduler, so pending IO never keeps a shut-down runtime alive.
pub(crate) struct Sink(pub std::sync::Weak<Scheduler>);

impl CompletionSink for Sink {
    fn complete(&self, c: Completion) {
        if let Some(s) = self.0.upgrade() {
            s.complete(c);
        }
    }
}
