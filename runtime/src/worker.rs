//! The workers and the step loop.
//!
//! A worker thread loops: fire the timers that are due, take a process from
//! the run queues (`queue.rs`) and run it, or, with nothing to run, spin a
//! moment and then park (`idle.rs`) until work or the earliest timer comes.
//!
//! Running a process is a loop of four steps, each a function below:
//! pick its input (a result already known, a completion that came, or a
//! signal to act on), handle a signal before the script runs, step it, and
//! handle what the step ended with (dispatch a yielded command, requeue a
//! preempted process, end a finished one). An inline result resumes the
//! process at once, up to [`INLINE_BURST`] times in a row; a pending one
//! parks it until its completion wakes it.

use std::sync::Arc;
use std::time::Duration;

use troupe_dispatcher::{
    Call, CommandId, Completer, Dispatched, Error, ErrorKind, HandlerCx, Pid, Tag, Value,
};
use troupe_modules::builtin::{ids, process};

use crate::commands::Cx;
use crate::entry::{Entry, Next, Slot};
use crate::exit::{self, Exit};
use crate::idle::Spin;
use crate::scheduler::Scheduler;
use crate::state::{Park, Signal};
use crate::stats::Event;
use crate::{Resume, Step, StepCx};

/// How many inline command results a process may consume in a row before it
/// goes to the back of the run queue (fairness).
const INLINE_BURST: u32 = 64;

/// What the step loop does after a step.
enum Flow {
    /// Run the process again with this result (an immediate command's).
    Again(Result<Value, Error>),
    /// Take the completion if it came, else park.
    Wait,
    /// Its time slice is up: to the back of the run queue.
    Preempted,
    /// It ended.
    End(Exit),
}

impl Scheduler {
    /// The loop of worker thread `index`.
    pub fn work(&self, index: usize) {
        self.queues.register_worker();
        self.stats.enter_worker(index);
        loop {
            self.fire_timers();
            if let Some(entry) = self.next_process() {
                self.run(entry);
                continue;
            }
            if self.shutting_down() {
                break;
            }
            let found = || self.queues.has_work() || self.timers.is_due();
            let spun = self.idle.spin(found, || self.shutting_down());
            if spun == Spin::Found {
                continue;
            }
            self.stats.count(Event::Park);
            self.idle.park(
                spun == Spin::Missed,
                || found() || self.shutting_down(),
                || self.timers.next_due(),
            );
        }
        self.queues.unregister_worker();
    }

    /// The next process to run: the worker's own, else one stolen from
    /// the injector or a peer.
    fn next_process(&self) -> Option<Arc<Entry>> {
        self.queues.pop_local().or_else(|| {
            let stolen = self.queues.steal();
            if stolen.is_some() {
                self.stats.count(Event::Steal);
            }
            stolen
        })
    }

    /// Steps one process until it waits, is preempted or ends.
    fn run(&self, entry: Arc<Entry>) {
        if !entry.state.start_running() {
            return;
        }
        let mut slot = entry.slot.lock();
        let mut burst = 0;
        let mut ready = None;
        loop {
            let Some(input) = input(&entry, &mut slot, ready.take()) else {
                drop(slot);
                match entry.state.park() {
                    Park::Parked => return,
                    Park::RunAgain => {
                        slot = entry.slot.lock();
                        continue;
                    }
                }
            };
            let flow = match signalled(&entry) {
                Some(exit) => Flow::End(exit),
                None => match self.step(&entry, &mut slot, input) {
                    Some(step) => self.outcome(&entry, &mut slot, step),
                    None => return,
                },
            };
            match flow {
                Flow::Wait => {}
                Flow::Again(result) => {
                    burst += 1;
                    if burst >= INLINE_BURST {
                        entry.hold(result);
                        drop(slot);
                        self.requeue(entry);
                        return;
                    }
                    ready = Some(result);
                }
                Flow::Preempted => {
                    drop(slot);
                    if self.shutting_down() {
                        let _ = entry.state.raise(Signal::Shutdown);
                    }
                    self.requeue(entry);
                    return;
                }
                Flow::End(exit) => {
                    drop(slot);
                    self.finish(&entry, exit);
                    return;
                }
            }
        }
    }

    /// The host's handler context of `pid`'s yield `tag`.
    fn handler_cx(&self, pid: Pid, tag: Tag, can_wait: bool) -> HandlerCx<'_> {
        HandlerCx {
            pid,
            tag,
            sink: &self.sink,
            can_wait,
        }
    }

    /// The runtime's typed context of `entry`'s yield `tag`.
    fn cx<'a>(&'a self, entry: &'a Arc<Entry>, tag: Tag, can_wait: bool) -> Cx<'a> {
        Cx {
            sched: self,
            entry,
            tag,
            can_wait,
        }
    }

    /// Answers `call` inside the script's call of `entry`'s process (whose
    /// next yield gets `tag`) when its command can answer now: the
    /// runtime's typed handler, else the host's dispatcher (see
    /// [`StepCx::call_immediate`]).
    pub(crate) fn call_immediate(
        &self,
        entry: &Arc<Entry>,
        tag: Tag,
        call: Call,
        can_wait: bool,
    ) -> Result<Result<Value, Error>, Call> {
        let id = call.id;
        let answer = match self.builtins.now(&self.cx(entry, tag, can_wait), call) {
            Ok(answer) => Ok(answer),
            Err((call, true)) => Err(call),
            Err((call, false)) => {
                let hcx = self.handler_cx(entry.pid, tag, can_wait);
                self.dispatcher.call_immediate(&hcx, call)
            }
        };
        // A call given back is yielded, and counted when it is dispatched.
        if answer.is_ok() {
            self.stats.call(id);
        }
        answer
    }

    /// Nanoseconds since the scheduler started.
    fn clock(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The name command `id` is registered under, by the runtime or the
    /// host.
    pub(crate) fn command_name(&self, id: CommandId) -> Option<&str> {
        self.builtins.name(id).or_else(|| self.dispatcher.name(id))
    }

    /// A completer for `pid`'s yield `tag`.
    pub(crate) fn completer(&self, pid: Pid, tag: Tag) -> Completer {
        self.handler_cx(pid, tag, true).completer()
    }

    /// Runs the process until its next yield; `None` if it has ended.
    fn step(&self, entry: &Arc<Entry>, slot: &mut Slot, input: Resume) -> Option<Step> {
        // The tag of the yield this step ends with, awaited from now on: a
        // completion made during the step (a journal's) is not lost.
        let tag = slot.next_tag();
        entry.expect(tag);
        if let Some(id) = slot.waiting.take() {
            let waited = self.clock().saturating_sub(slot.since);
            self.stats.waited(id, Duration::from_nanos(waited));
        }
        let process = slot.process.as_mut()?;
        let mut cx = StepCx::with_runtime(self, entry, tag);
        let step = process.step(&mut cx, input);
        let used = process.memory();
        match used.map(|used| charge_memory(entry, slot, used)) {
            Some(Err(e)) => Some(Step::Failed(e)),
            _ => Some(step),
        }
    }

    /// What to do with a step's outcome.
    fn outcome(&self, entry: &Arc<Entry>, slot: &mut Slot, step: Step) -> Flow {
        match step {
            Step::Yield(call) if call.id == ids::PROCESS_EXIT => {
                let exit = call.into_command::<process::Exit>();
                Flow::End(exit::from_exit_call(exit.ok().map(|e| e.reason).as_ref()))
            }
            Step::Yield(call) => self.dispatch(entry, slot, call),
            Step::Preempted => {
                slot.next = Some(Next::Continue);
                Flow::Preempted
            }
            Step::Done(v) => Flow::End(Exit::Normal(v)),
            Step::Failed(e) => Flow::End(Exit::Failed(e)),
        }
    }

    /// Dispatches a yielded command under the step's tag: to the runtime's
    /// own typed handler, else to the host's dispatcher.
    fn dispatch(&self, entry: &Arc<Entry>, slot: &mut Slot, call: Call) -> Flow {
        let (tag, id) = (slot.tag(), call.id);
        self.stats.call(id);
        let dispatched = self
            .builtins
            .dispatch(&self.cx(entry, tag, true), call)
            .unwrap_or_else(|call| {
                let hcx = self.handler_cx(entry.pid, tag, true);
                self.dispatcher.dispatch(&hcx, call)
            });
        match dispatched {
            Dispatched::Ready(r) => {
                entry.expect(0);
                Flow::Again(r)
            }
            Dispatched::Pending(abort) => {
                slot.abort = abort;
                slot.waiting = Some(id);
                slot.since = self.clock();
                Flow::Wait
            }
        }
    }

    /// Puts a process behind everything else, so a busy one cannot starve
    /// the others.
    fn requeue(&self, entry: Arc<Entry>) {
        entry.state.requeue();
        self.queues.inject(entry);
        self.idle.wake_one();
    }
}

/// What the process is resumed with: the result of the immediate command
/// it just yielded, its first step or a continuation, the completion that
/// came, or (woken by a signal only) `Continue`, for the signal to end it;
/// `None` to keep waiting.
fn input(entry: &Entry, slot: &mut Slot, ready: Option<Result<Value, Error>>) -> Option<Resume> {
    if let Some(result) = ready {
        return Some(Resume::Return(result));
    }
    if let Some(next) = slot.next.take() {
        return Some(next.into());
    }
    if let Some(result) = entry.take_completion() {
        return Some(Resume::Return(result));
    }
    entry.state.signal().map(|_| Resume::Continue)
}

/// How far a process's memory drifts from what is charged for it before
/// the charge is brought up to date: its tree's count is one atomic add
/// per this many bytes, not one per step.
const CHARGE_GRAIN: usize = 64 * 1024;

/// Brings the charge for the memory of `entry`'s process (`used` bytes
/// after a step) up to date in its spawn tree's quota: `LIMIT_EXCEEDED`
/// if the tree has no room for what it grew by.
fn charge_memory(entry: &Entry, slot: &mut Slot, used: usize) -> Result<(), Error> {
    let charged = slot.charged;
    if used > charged && (charged == 0 || used - charged >= CHARGE_GRAIN) {
        let what = format!("the memory of process {}", entry.pid);
        entry.quota.charge(used - charged, &what)?;
        slot.charged = used;
    } else if charged.saturating_sub(used) >= CHARGE_GRAIN {
        entry.quota.refund(charged - used);
        slot.charged = used;
    }
    Ok(())
}

/// How a signalled process ends, if a signal was raised: signals are acted
/// on before the script is resumed.
fn signalled(entry: &Entry) -> Option<Exit> {
    Some(match entry.state.signal()? {
        Signal::Timeout => Exit::Failed(Error::new(
            ErrorKind::Timeout,
            format!(
                "process {} exceeded its wall-clock limit of {:?}",
                entry.pid,
                entry.limits.timeout.unwrap_or_default()
            ),
        )),
        Signal::Shutdown => Exit::Failed(Error::new(ErrorKind::Canceled, "runtime shut down")),
        Signal::Exit => entry.take_exit_signal(),
    })
}
