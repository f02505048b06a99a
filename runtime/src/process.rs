use std::cell::RefCell;
use std::sync::Arc;

use troupe_dispatcher::{Call, CommandId, Completer, Error, Pid, Tag, Value};

use crate::entry::Entry;
use crate::journal::{Inline, Journal};
use crate::scheduler::Scheduler;

/// How a process is resumed.
#[derive(Debug)]
pub enum Resume {
    /// First step: start running.
    Start,
    /// The answer to the command the process last yielded.
    Return(Result<Value, Error>),
    /// Carry on after a preemption.
    Continue,
}

/// What one step of a process ended with.
#[derive(Debug)]
pub enum Step {
    /// The process wants the dispatcher to run a command.
    Yield(Call),
    /// The process finished with a result.
    Done(Value),
    /// The process failed.
    Failed(Error),
    /// The process used up its time slice and wants to be resumed later.
    Preempted,
}

/// What a process sees of the scheduler while it is stepped.
pub struct StepCx<'a> {
    /// The process being stepped.
    pub pid: Pid,
    immediate: Immediate<'a>,
}

/// Who answers a step's immediate calls.
enum Immediate<'a> {
    /// Nobody: every command is yielded.
    None,
    /// The runtime, for the process of this entry, in the yield of this
    /// tag.
    Runtime(&'a Scheduler, &'a Arc<Entry>, Tag),
    /// A workflow's journal, for what it answers by itself or serves
    /// inline, with the runtime (if any) for the live commands it may run
    /// inside the step.
    Journal(RefCell<&'a mut dyn Journal>, Option<Runtime<'a>>),
}

/// The runtime answering a step's immediate calls: the scheduler, the
/// process's entry and the tag of the step's yield.
type Runtime<'a> = (&'a Scheduler, &'a Arc<Entry>, Tag);

impl<'a> StepCx<'a> {
    /// A context in which every command is yielded.
    pub fn new(pid: Pid) -> Self {
        Self {
            pid,
            immediate: Immediate::None,
        }
    }

    /// A context in which [immediate] commands are answered inside the
    /// step, by the runtime's typed handlers or the host's dispatcher;
    /// `tag` is the one the step's yield will get.
    ///
    /// [immediate]: troupe_dispatcher::DispatcherBuilder::immediate
    pub(crate) fn with_runtime(sched: &'a Scheduler, entry: &'a Arc<Entry>, tag: Tag) -> Self {
        Self {
            pid: entry.pid,
            immediate: Immediate::Runtime(sched, entry, tag),
        }
    }

    /// The context of the process a workflow's `journal` wraps, inside
    /// this one: only what the journal answers or serves inline
    /// ([`Journal::immediate`]) is answered inside the step.
    pub(crate) fn journaled<'b>(&'b self, journal: &'b mut dyn Journal) -> StepCx<'b> {
        let runtime = match &self.immediate {
            Immediate::Runtime(sched, entry, tag) => Some((*sched, *entry, *tag)),
            _ => None,
        };
        StepCx {
            pid: self.pid,
            immediate: Immediate::Journal(RefCell::new(journal), runtime),
        }
    }

    /// A completer for the command this step yields next: its completion
    /// resumes the process as that command's answer. `None` in a context
    /// without a completion sink.
    pub(crate) fn completer(&self) -> Option<Completer> {
        match &self.immediate {
            Immediate::Runtime(sched, entry, tag) => Some(sched.completer(entry.pid, *tag)),
            _ => None,
        }
    }

    /// The name command `id` is registered under.
    pub(crate) fn command_name(&self, id: CommandId) -> &str {
        match &self.immediate {
            Immediate::Runtime(sched, ..) => sched.command_name(id),
            _ => None,
        }
        .unwrap_or("unknown command")
    }

    /// Answers `call` now, without a yield, when its handler is
    /// [immediate] and the process is not journaled, or when the process's
    /// journal answers it by itself; otherwise gives the call back, to be
    /// yielded as [`Step::Yield`]. `can_wait` is false where the script
    /// cannot yield (see [`HandlerCx::can_wait`]).
    ///
    /// [immediate]: troupe_dispatcher::DispatcherBuilder::immediate
    /// [`HandlerCx::can_wait`]: troupe_dispatcher::HandlerCx::can_wait
    pub fn call_immediate(&self, call: Call, can_wait: bool) -> Result<Result<Value, Error>, Call> {
        match &self.immediate {
            Immediate::None => Err(call),
            Immediate::Runtime(sched, entry, tag) => {
                sched.call_immediate(entry, *tag, call, can_wait)
            }
            Immediate::Journal(journal, runtime) => {
                let Ok(mut journal) = journal.try_borrow_mut() else {
                    return Err(call);
                };
                let Some((sched, entry, tag)) = runtime else {
                    return journal.immediate(call, None);
                };
                let name = sched.command_name(call.id).unwrap_or("unknown command");
                let run = |call| sched.call_immediate(entry, *tag, call, can_wait);
                journal.immediate(call, Some(Inline { name, run: &run }))
            }
        }
    }
}

impl std::fmt::Debug for StepCx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepCx")
            .field("pid", &self.pid)
            .field("immediate", &!matches!(self.immediate, Immediate::None))
            .finish()
    }
}

/// A steppable process: the contract between the scheduler and an engine.
///
/// `step` must not block: anything that waits is a [`Step::Yield`]ed command.
/// The scheduler guarantees a process is stepped by one worker at a time and
/// is never resumed while its previous command is still pending.
pub trait Process: Send + 'static {
    /// Runs the process until its next yield, its end, or preemption.
    fn step(&mut self, cx: &mut StepCx<'_>, input: Resume) -> Step;

    /// Called once when the process has ended, however it ended (it
    /// returned or failed, was killed, or hit a limit), with the result a
    /// joining host sees; not called when the runtime shut down under it
    /// (it was interrupted, not ended). Does nothing by default; a
    /// workflow's journal records the end here.
    fn finish(&mut self, result: &Result<Value, Error>) {
        let _ = result;
    }

    /// The bytes of memory the process holds by itself (an isolated
    /// interpreter state), read after each step and charged to its spawn
    /// tree's `max_memory`; `None` (the default) for memory it shares or
    /// the engine does not count.
    fn memory(&self) -> Option<usize> {
        None
    }

    /// Instructions the script has run, where the engine counts them
    /// (for snapshots); `None` (the default) where it does not.
    fn instructions(&self) -> Option<u64> {
        None
    }
}
