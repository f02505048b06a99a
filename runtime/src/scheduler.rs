//! Workers, run queues and the process table.
//!
//! Each worker thread owns a FIFO deque and a "next" slot; processes it wakes
//! go there, others (timer, IO completions, the host) go to the global
//! injector. The slot holds the process woken last: the worker runs it as
//! soon as the current one waits, without waking a parked peer (a message
//! round trip between two processes stays on one worker and one cache);
//! the one it displaces goes to the deque, where peers can steal it. After
//! [`MAX_NEXT_RUNS`] slot runs in a row the slot goes behind the deque, so a
//! ping-ponging pair cannot starve it. An idle worker steals from the
//! injector, then from its peers, spins for up to [`SPIN`] if no other
//! worker is spinning (50 µs: work that comes within it costs no sleep and
//! no wake-up, which made a host's spawn loop 25% faster), then parks on a
//! condition variable.
//! Workers never block on IO: every wait is a parked process.
//!
//! The workers also drive the timers (`timers.rs`, a hierarchical wheel):
//! each pass of a worker's loop fires the timers that are due (one atomic
//! load when none is), and a worker with nothing to run parks until the
//! earliest deadline at the latest. There is no timer thread. Timers are
//! cancelled when what they wait for is over: a process's sleep and its
//! wall-clock limit when it ends, a `receive` timeout when a message comes.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use dashmap::DashMap;
use parking_lot::{Condvar, Mutex};
use tokio::task::AbortHandle;
use troupe_dispatcher::{
    Completion, CompletionSink, Dispatched, Dispatcher, Error, ErrorKind, HandlerCx, Pid, Value,
};
use troupe_modules::{ModuleRegistry, Policy, builtin::ids};

use troupe_sources::Source;

use crate::engine::Engine;
use crate::exit::{self, Exit};
use crate::host::HostBox;
use crate::journal::{Before, Journal, JournalStore};
use crate::links::{Endpoint, LinkState};
use crate::mailbox::{Mailbox, Message};
use crate::reload::{CachedProgram, Services};
use crate::state::{Park, State, Wake};
use crate::timers::{TimerAction, TimerKey, Timers};
use crate::{Limits, Process, Resume, Step, StepCx};

/// How many inline command results a process may consume in a row before it
/// goes to the back of the run queue (fairness).
const INLINE_BURST: u32 = 64;

/// How many processes a worker takes from its "next" slot in a row before it
/// serves its deque (fairness).
const MAX_NEXT_RUNS: u32 = 16;

/// How long an idle worker looks for work before it parks.
const SPIN: Duration = Duration::from_micros(50);

/// Why a process is being stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    None = 0,
    /// An exit signal: the exit waits in [`Entry::exit_signal`].
    Exit = 1,
    Timeout = 2,
    Shutdown = 3,
}

/// Where a finished process's result goes.
#[derive(Default)]
pub(crate) struct ExitCell {
    value: Mutex<Option<Result<Value, Error>>>,
    cv: Condvar,
    notify: tokio::sync::Notify,
}

impl ExitCell {
    fn set(&self, r: Result<Value, Error>) {
        *self.value.lock() = Some(r);
        self.cv.notify_all();
        self.notify.notify_waiters();
    }

    pub async fn wait(&self) -> Result<Value, Error> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.value.lock().clone() {
                return r;
            }
            notified.await;
        }
    }

    pub fn wait_blocking(&self) -> Result<Value, Error> {
        let mut v = self.value.lock();
        loop {
            if let Some(r) = v.clone() {
                return r;
            }
            self.cv.wait(&mut v);
        }
    }
}

/// The mutable part of a process, touched only by the worker that runs it.
pub(crate) struct Slot {
    process: Option<Box<dyn Process>>,
    next: Option<Resume>,
    abort: Option<AbortHandle>,
    /// A workflow's journal (see `journal.rs`).
    journal: Option<Box<dyn Journal>>,
    /// The command in flight ran live: its result goes to the journal first.
    recording: bool,
    /// A result waiting for its journal record to become durable.
    held: Option<Result<Value, Error>>,
    /// The tag of the last yield. Tags are per process (a completion names
    /// its pid too), so making one touches no shared counter.
    tag: u64,
}

impl Slot {
    /// The tag of a new yield.
    fn next_tag(&mut self) -> u64 {
        self.tag += 1;
        self.tag
    }
}

/// One live process.
pub(crate) struct Entry {
    pub pid: Pid,
    pub key: String,
    pub policy: Arc<Policy>,
    pub limits: Limits,
    state: State,
    signal: std::sync::atomic::AtomicU8,
    expect: AtomicU64,
    inbox: Mutex<Option<Result<Value, Error>>>,
    slot: Mutex<Slot>,
    pub mailbox: Mutex<Mailbox>,
    /// Links, monitors, name, trap-exits flag.
    pub links: Mutex<LinkState>,
    /// How the process ends when [`Signal::Exit`] is raised (boxed: most
    /// processes never get one).
    exit_signal: Mutex<Option<Box<Exit>>>,
    exit: Option<Arc<ExitCell>>,
    /// The timer of the `time.sleep` in flight ([`TimerKey`] bits, 0: none).
    pub sleep_timer: AtomicU64,
    /// The timer of the wall-clock limit ([`TimerKey`] bits, 0: none).
    deadline_timer: AtomicU64,
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
    pub journal: Option<Box<dyn Journal>>,
}

impl Entry {
    pub fn new(n: NewEntry) -> Arc<Self> {
        Arc::new(Self {
            pid: n.pid,
            key: n.key,
            policy: n.policy,
            limits: n.limits,
            state: State::scheduled(),
            signal: std::sync::atomic::AtomicU8::new(Signal::None as u8),
            expect: AtomicU64::new(0),
            inbox: Mutex::new(None),
            slot: Mutex::new(Slot {
                process: Some(n.process),
                next: Some(Resume::Start),
                abort: None,
                journal: n.journal,
                recording: false,
                held: None,
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

    fn signal(&self) -> Signal {
        match self.signal.load(Ordering::Acquire) {
            1 => Signal::Exit,
            2 => Signal::Timeout,
            3 => Signal::Shutdown,
            _ => Signal::None,
        }
    }
}

/// A worker's own run queue.
struct Local {
    /// The address of the scheduler the worker belongs to, so another
    /// runtime's process never lands here.
    id: usize,
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

/// The scheduler: process table, run queues, workers' parking lot.
pub(crate) struct Scheduler {
    pub node: u32,
    pub procs: PidMap<Arc<Entry>>,
    injector: Injector<Arc<Entry>>,
    stealers: Mutex<Vec<Stealer<Arc<Entry>>>>,
    stealers_snapshot: parking_lot::RwLock<Arc<[Stealer<Arc<Entry>>]>>,
    sleepers: AtomicUsize,
    /// A worker is spinning before it parks (see `spin_for_work`).
    spinning: AtomicBool,
    park_lock: Mutex<()>,
    park_cv: Condvar,
    pub shutting_down: AtomicBool,
    next_pid: AtomicU64,
    pub dispatcher: Dispatcher,
    pub sink: Arc<dyn CompletionSink>,
    pub timers: Timers,
    pub modules: Arc<ModuleRegistry>,
    pub engines: Vec<Arc<dyn Engine>>,
    pub started: Instant,
    pub source: Arc<dyn Source>,
    pub programs: DashMap<String, CachedProgram>,
    /// Processes that restart when their script changes.
    pub services: Services,
    pub default_policy: Arc<Policy>,
    pub default_limits: Limits,
    pub default_mailbox: usize,
    /// Registered names.
    pub names: DashMap<String, Pid>,
    /// Host mailboxes by pid.
    pub hosts: PidMap<Arc<HostBox>>,
    pub next_ref: AtomicI64,
    /// The children of live supervisors, for `which_children`.
    pub supervisors: DashMap<Pid, crate::supervisor::Children>,
    /// Where workflow journals live.
    pub journals: Option<Arc<dyn JournalStore>>,
}

/// Parts the runtime builder hands to the scheduler.
pub(crate) struct SchedulerParts {
    pub node: u32,
    pub dispatcher: Dispatcher,
    pub sink: Arc<dyn CompletionSink>,
    pub modules: Arc<ModuleRegistry>,
    pub engines: Vec<Arc<dyn Engine>>,
    pub source: Arc<dyn Source>,
    pub default_policy: Arc<Policy>,
    pub default_limits: Limits,
    pub default_mailbox: usize,
    pub journals: Option<Arc<dyn JournalStore>>,
}

impl Scheduler {
    pub fn new(p: SchedulerParts) -> Self {
        Self {
            node: p.node,
            procs: PidMap::default(),
            injector: Injector::new(),
            stealers: Mutex::new(Vec::new()),
            stealers_snapshot: parking_lot::RwLock::new(Arc::from(Vec::new())),
            sleepers: AtomicUsize::new(0),
            spinning: AtomicBool::new(false),
            park_lock: Mutex::new(()),
            park_cv: Condvar::new(),
            shutting_down: AtomicBool::new(false),
            next_pid: AtomicU64::new(1),
            dispatcher: p.dispatcher,
            sink: p.sink,
            timers: Timers::new(),
            modules: p.modules,
            engines: p.engines,
            started: Instant::now(),
            source: p.source,
            programs: DashMap::new(),
            services: Services::default(),
            default_policy: p.default_policy,
            default_limits: p.default_limits,
            default_mailbox: p.default_mailbox,
            names: DashMap::new(),
            hosts: PidMap::default(),
            next_ref: AtomicI64::new(1),
            supervisors: DashMap::new(),
            journals: p.journals,
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    pub fn next_pid(&self) -> Pid {
        Pid::new(self.node, self.next_pid.fetch_add(1, Ordering::Relaxed))
    }

    /// Schedules a process: on one of our workers, into its "next" slot
    /// (the process there before moves to its deque, and a parked worker is
    /// woken to steal it); elsewhere, on the injector, waking a parked
    /// worker.
    pub fn push(&self, entry: Arc<Entry>) {
        let me = self.id();
        let elsewhere = LOCAL.with(|l| match &mut *l.borrow_mut() {
            Some(local) if local.id == me => match local.next.replace(entry) {
                None => Ok(false),
                Some(displaced) => {
                    local.queue.push(displaced);
                    Ok(true)
                }
            },
            _ => Err(entry),
        });
        match elsewhere {
            Ok(false) => {}
            Ok(true) => self.notify_one(),
            Err(entry) => {
                self.injector.push(entry);
                self.notify_one();
            }
        }
    }

    fn notify_one(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = self.park_lock.lock();
            self.park_cv.notify_one();
        }
    }

    pub fn notify_all(&self) {
        let _g = self.park_lock.lock();
        self.park_cv.notify_all();
    }

    /// Inserts a new process and schedules its first step.
    pub fn start(&self, entry: Arc<Entry>) {
        self.procs.insert(entry.pid, Arc::clone(&entry));
        if let Some(t) = entry.limits.timeout {
            let key = self.add_timer(t, TimerAction::Deadline { pid: entry.pid });
            entry.deadline_timer.store(key.to_bits(), Ordering::Release);
        }
        self.push(entry);
    }

    /// Starts a timer. If it is now the earliest, parked workers wake to
    /// re-arm their wake-up.
    pub fn add_timer(&self, delay: Duration, action: TimerAction) -> TimerKey {
        let (key, earliest) = self.timers.add(delay, action);
        if earliest && self.sleepers.load(Ordering::SeqCst) > 0 {
            self.notify_all();
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
    fn fire_timers(&self) {
        if !self.timers.is_due() {
            return;
        }
        let mut due = Vec::new();
        self.timers.poll(&mut due);
        for action in due {
            self.handle_timer(action);
        }
    }

    /// Delivers a completion: if the process waits for this tag, stores the
    /// result and wakes it; otherwise (stale, process gone) drops it.
    pub fn complete(&self, c: Completion) {
        let Some(entry) = self.procs.get(&c.pid).map(|e| Arc::clone(&e)) else {
            return;
        };
        self.complete_entry(entry, c.tag, c.result);
    }

    /// [`Scheduler::complete`] for a process already looked up.
    fn complete_entry(&self, entry: Arc<Entry>, tag: u64, result: Result<Value, Error>) {
        if entry.expect.load(Ordering::Acquire) != tag {
            return;
        }
        *entry.inbox.lock() = Some(result);
        self.wake(entry);
    }

    pub fn wake(&self, entry: Arc<Entry>) {
        if entry.state.wake() == Wake::Schedule {
            self.push(entry);
        }
    }

    /// Ends `pid` with `exit` at its next step (an exit signal: a kill, or
    /// a linked process's crash); false if it is not alive. The first
    /// signal wins.
    pub fn stop(&self, pid: Pid, exit: Exit) -> bool {
        let Some(entry) = self.lookup(pid) else {
            return false;
        };
        {
            let mut slot = entry.exit_signal.lock();
            if slot.is_none() {
                *slot = Some(Box::new(exit));
            }
        }
        self.raise(entry, Signal::Exit);
        true
    }

    /// Stops a process from outside at its next step.
    pub fn signal(&self, pid: Pid, signal: Signal) -> bool {
        let Some(entry) = self.lookup(pid) else {
            return false;
        };
        self.raise(entry, signal);
        true
    }

    fn raise(&self, entry: Arc<Entry>, signal: Signal) {
        let _ = entry.signal.compare_exchange(
            Signal::None as u8,
            signal as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.wake(entry);
    }

    /// Delivers a message to `to`'s mailbox, or straight to its pending
    /// `receive`. A full mailbox is `RATE_LIMITED`; nothing is dropped.
    pub fn deliver(&self, to: Pid, msg: Message) -> Result<(), Error> {
        self.enqueue(to, msg, true)
    }

    /// Delivers a runtime notification (`EXIT`, `DOWN`): not bounded by the
    /// mailbox capacity, and nothing to report if `to` is gone.
    pub fn notify(&self, to: Pid, msg: Message) {
        let _ = self.enqueue(to, msg, false);
    }

    fn enqueue(&self, to: Pid, msg: Message, bounded: bool) -> Result<(), Error> {
        let entry = match self.endpoint(to) {
            Some(Endpoint::Process(e)) => e,
            Some(Endpoint::Host(h)) => return h.push(to, msg, bounded),
            None => return Err(Error::not_found(format!("process {to} does not exist"))),
        };
        let mut mb = entry.mailbox.lock();
        if let Some(w) = mb.waiter.take_if(|w| w.wants(&msg)) {
            drop(mb);
            if let Some(key) = w.timer {
                self.timers.cancel(key);
            }
            self.complete_entry(entry, w.tag, Ok(msg.into_value()));
            return Ok(());
        }
        mb.push(to, msg, bounded)
    }

    // ---- workers -------------------------------------------------------

    /// Registers a worker's local queue; call on the worker thread.
    pub fn register_worker(&self) {
        let queue = Worker::new_fifo();
        let mut all = self.stealers.lock();
        all.push(queue.stealer());
        *self.stealers_snapshot.write() = Arc::from(all.clone());
        LOCAL.with(|l| {
            *l.borrow_mut() = Some(Local {
                id: self.id(),
                queue,
                next: None,
                next_runs: 0,
            });
        });
    }

    /// The next process for this worker: its slot (unless it ran
    /// [`MAX_NEXT_RUNS`] in a row), its deque, the injector, its peers.
    fn find_work(&self) -> Option<Arc<Entry>> {
        let me = self.id();
        let local = LOCAL.with(|l| match &mut *l.borrow_mut() {
            Some(local) if local.id == me => {
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
        });
        if local.is_some() {
            return local;
        }
        loop {
            let mut retry = false;
            let stolen = LOCAL.with(|l| match &*l.borrow() {
                Some(local) if local.id == me => self.injector.steal_batch_and_pop(&local.queue),
                _ => self.injector.steal(),
            });
            match stolen {
                Steal::Success(e) => return Some(e),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let stealers = Arc::clone(&self.stealers_snapshot.read());
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

    fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers_snapshot.read().iter().any(|s| !s.is_empty())
    }

    /// Spins for up to [`SPIN`] before a worker parks, so work that comes
    /// within it (a reply, the host's next spawn) costs no sleep and no
    /// wake-up on either side; true if some came (or a timer is due).
    /// One worker spins at a time (as Go's scheduler limits its spinning
    /// threads): the others park at once, so idle workers burn at most one
    /// core's worth of spinning.
    fn spin_for_work(&self) -> bool {
        if self.spinning.swap(true, Ordering::AcqRel) {
            return false;
        }
        let start = Instant::now();
        let found = loop {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if self.has_work() || self.timers.is_due() {
                break true;
            }
            if start.elapsed() >= SPIN || self.shutting_down.load(Ordering::Acquire) {
                break false;
            }
        };
        self.spinning.store(false, Ordering::Release);
        found
    }

    /// The worker thread's loop.
    pub fn work(&self) {
        self.register_worker();
        loop {
            self.fire_timers();
            if let Some(entry) = self.find_work() {
                self.run(entry);
                continue;
            }
            if self.shutting_down.load(Ordering::Acquire) {
                break;
            }
            if self.spin_for_work() {
                continue;
            }
            let mut g = self.park_lock.lock();
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            // `add_timer` reads `sleepers` after it publishes an earlier
            // deadline and then notifies under `park_lock`: either the
            // deadline read here is the new one, or the notify comes.
            if !self.has_work()
                && !self.shutting_down.load(Ordering::Acquire)
                && !self.timers.is_due()
            {
                match self.timers.next_due() {
                    Some(at) => {
                        self.park_cv.wait_until(&mut g, at);
                    }
                    None => self.park_cv.wait(&mut g),
                }
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        LOCAL.with(|l| {
            // Hand anything left on our local queue to the others.
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

    /// Steps one process until it waits, is preempted or ends.
    fn run(&self, entry: Arc<Entry>) {
        if !entry.state.start_running() {
            return;
        }
        let mut slot = entry.slot.lock();
        let mut burst = 0;
        loop {
            let input = match slot.next.take() {
                Some(i) => i,
                None => match entry.inbox.lock().take() {
                    Some(r) => match slot.held.take() {
                        // The journal's answer: is the held result durable?
                        Some(held) => match r {
                            Ok(_) => Resume::Return(held),
                            Err(e) => {
                                drop(slot);
                                self.finish(&entry, Exit::Failed(e));
                                return;
                            }
                        },
                        None => match self.journaled(&entry, &mut slot, r) {
                            Some(resume) => resume,
                            None => continue,
                        },
                    },
                    None => {
                        // Woken by a signal only: keep waiting unless signalled.
                        if entry.signal() == Signal::None {
                            drop(slot);
                            match entry.state.park() {
                                Park::Parked => return,
                                Park::RunAgain => {
                                    slot = entry.slot.lock();
                                    continue;
                                }
                            }
                        }
                        Resume::Continue
                    }
                },
            };
            match entry.signal() {
                Signal::None => {}
                s => {
                    let exit = match s {
                        Signal::Timeout => Exit::Failed(Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "process {} exceeded its wall-clock limit of {:?}",
                                entry.pid,
                                entry.limits.timeout.unwrap_or_default()
                            ),
                        )),
                        Signal::Shutdown => {
                            Exit::Failed(Error::new(ErrorKind::Canceled, "runtime shut down"))
                        }
                        _ => entry.exit_signal.lock().take().map_or(Exit::Killed, |e| *e),
                    };
                    drop(slot);
                    self.finish(&entry, exit);
                    return;
                }
            }
            let step = {
                let Slot {
                    process, journal, ..
                } = &mut *slot;
                let Some(process) = process.as_mut() else {
                    return;
                };
                // A journaled process gets only what its journal answers by
                // itself; every other command is yielded, so the journal
                // sees it.
                let mut cx = match journal {
                    Some(journal) => StepCx::journaled(entry.pid, journal.as_mut()),
                    None => StepCx::with_immediate(
                        entry.pid,
                        &self.dispatcher,
                        HandlerCx {
                            pid: entry.pid,
                            tag: 0,
                            sink: &self.sink,
                            runtime: Some(self),
                            process: Some(&entry),
                        },
                    ),
                };
                process.step(&mut cx, input)
            };
            match step {
                Step::Yield(call) if call.id == ids::PROCESS_EXIT => {
                    drop(slot);
                    self.finish(&entry, exit::from_exit_call(call.args.get("reason")));
                    return;
                }
                Step::Yield(call) => {
                    let call = match slot.journal.as_mut() {
                        None => call,
                        Some(journal) => {
                            let name = self.dispatcher.name(call.id).unwrap_or("unknown command");
                            match journal.before(name, call) {
                                Ok(Before::Dispatch(call)) => {
                                    slot.recording = true;
                                    call
                                }
                                Ok(Before::Passthrough(call)) => call,
                                Ok(Before::Replay(r)) => {
                                    slot.next = Some(Resume::Return(r));
                                    burst += 1;
                                    if burst >= INLINE_BURST {
                                        drop(slot);
                                        self.requeue(entry);
                                        return;
                                    }
                                    continue;
                                }
                                Err(e) => {
                                    drop(slot);
                                    self.finish(&entry, Exit::Failed(e));
                                    return;
                                }
                            }
                        }
                    };
                    let tag = slot.next_tag();
                    entry.expect.store(tag, Ordering::Release);
                    let hcx = HandlerCx {
                        pid: entry.pid,
                        tag,
                        sink: &self.sink,
                        runtime: Some(self),
                        process: Some(&entry),
                    };
                    match self.dispatcher.dispatch(&hcx, call) {
                        Dispatched::Ready(r) => {
                            entry.expect.store(0, Ordering::Release);
                            slot.next = self.journaled(&entry, &mut slot, r);
                            burst += 1;
                            if burst >= INLINE_BURST {
                                drop(slot);
                                self.requeue(entry);
                                return;
                            }
                        }
                        Dispatched::Pending(abort) => {
                            slot.abort = abort;
                            // Loop: take the inbox if the completion already
                            // came, else park.
                        }
                    }
                }
                Step::Preempted => {
                    slot.next = Some(Resume::Continue);
                    drop(slot);
                    if self.shutting_down.load(Ordering::Acquire) {
                        let _ = entry.signal.compare_exchange(
                            0,
                            Signal::Shutdown as u8,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                    }
                    self.requeue(entry);
                    return;
                }
                Step::Done(v) => {
                    drop(slot);
                    self.finish(&entry, Exit::Normal(v));
                    return;
                }
                Step::Failed(e) => {
                    drop(slot);
                    self.finish(&entry, Exit::Failed(e));
                    return;
                }
            }
        }
    }

    /// A command's result on its way to the process. A live result of a
    /// workflow goes to its journal first: the process then waits (`None`)
    /// for the journal to report it durable, and gets it after that.
    fn journaled(&self, entry: &Entry, slot: &mut Slot, r: Result<Value, Error>) -> Option<Resume> {
        if !slot.recording || slot.journal.is_none() {
            return Some(Resume::Return(r));
        }
        slot.recording = false;
        let tag = slot.next_tag();
        entry.expect.store(tag, Ordering::Release);
        let journal = slot.journal.as_mut()?;
        let hcx = HandlerCx {
            pid: entry.pid,
            tag,
            sink: &self.sink,
            runtime: None,
            process: None,
        };
        journal.record(&r, hcx.completer());
        slot.held = Some(r);
        None
    }

    fn requeue(&self, entry: Arc<Entry>) {
        entry.state.requeue();
        // Behind everything else, so a busy process cannot starve the others.
        self.injector.push(entry);
        self.notify_one();
    }

    /// Ends a process: removes it, cancels its pending work, drops its
    /// engine state, frees its name, signals its links and monitors, and
    /// tells whoever joins it.
    pub fn finish(&self, entry: &Arc<Entry>, exit: Exit) {
        entry.state.finish();
        self.procs.remove(&entry.pid);
        let (process, journal) = {
            let mut slot = entry.slot.lock();
            if let Some(a) = slot.abort.take() {
                a.abort();
            }
            (slot.process.take(), slot.journal.take())
        };
        self.cancel_timer(&entry.sleep_timer);
        self.cancel_timer(&entry.deadline_timer);
        drop(process);
        if let Some(mut journal) = journal {
            let result = exit.clone().into_result();
            // A workflow cancelled by a shutdown stays unfinished, to be resumed.
            let abandoned = self.shutting_down.load(Ordering::Acquire)
                && matches!(&result, Err(e) if e.kind() == ErrorKind::Canceled);
            if !abandoned {
                journal.finish(&result);
            }
        }
        let waiter = {
            let mut mb = entry.mailbox.lock();
            mb.queue.clear();
            mb.waiter.take()
        };
        if let Some(key) = waiter.and_then(|w| w.timer) {
            self.timers.cancel(key);
        }
        match &exit {
            Exit::Normal(_) => tracing::debug!(pid = %entry.pid, "process exited"),
            Exit::Killed => tracing::debug!(pid = %entry.pid, "process killed"),
            Exit::Failed(e) => tracing::debug!(pid = %entry.pid, error = %e, "process failed"),
        }
        self.release(entry.pid, &entry.links, &exit);
        if let Some(cell) = &entry.exit {
            cell.set(exit.into_result());
        }
    }

    /// Finishes every process still in the table (after the workers stopped).
    pub fn drain(&self) {
        let live: Vec<Arc<Entry>> = self.procs.iter().map(|e| Arc::clone(e.value())).collect();
        for entry in live {
            self.finish(
                &entry,
                Exit::Failed(Error::new(ErrorKind::Canceled, "runtime shut down")),
            );
        }
    }

    pub fn lookup(&self, pid: Pid) -> Option<Arc<Entry>> {
        self.procs.get(&pid).map(|e| Arc::clone(&e))
    }

    pub fn handle_timer(&self, action: TimerAction) {
        match action {
            TimerAction::Wake { pid, tag } => {
                if let Some(entry) = self.lookup(pid) {
                    // Fired: nothing left to cancel (the process sleeps
                    // again only after this completion).
                    entry.sleep_timer.store(0, Ordering::Release);
                    self.complete_entry(entry, tag, Ok(Value::Nil));
                }
            }
            TimerAction::ReceiveTimeout { pid, tag } => {
                let Some(entry) = self.lookup(pid) else {
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
            TimerAction::Deadline { pid } => {
                if let Some(entry) = self.lookup(pid) {
                    entry.deadline_timer.store(0, Ordering::Release);
                    self.raise(entry, Signal::Timeout);
                }
            }
        }
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
