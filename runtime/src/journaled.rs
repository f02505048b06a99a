//! A workflow's process: the engine's process wrapped with its [`Journal`],
//! so the scheduler steps it like any other and a plain process pays
//! nothing for journaling.
//!
//! The wrapper keeps the journal's side of the contract (`journal.rs`):
//!
//! - every command the script yields goes through [`Journal::before`]: a
//!   replayed result resumes the script inside the same step (after
//!   [`REPLAY_BURST`] of them the step ends as preempted, so a long replay
//!   cannot starve other processes); a live command is yielded;
//! - the result of a live command goes to [`Journal::record`], which
//!   buffers it;
//! - before a live command the journal marks `commit` (its effect escapes
//!   the workflow, or it may wait long), after one whose record `record`
//!   says must be durable first, and before the process ends, the wrapper
//!   has the journal [commit](Journal::commit) and yields
//!   [`DURABLE`], a command nothing answers but the journal: the completer
//!   handed to `commit` completes that yield once the records are durable,
//!   and only then does the command run, the script see the result, or
//!   the end show;
//! - how the process ended goes to [`Journal::finish`] from
//!   [`Process::finish`].

use std::mem;

use troupe_dispatcher::{Call, CommandId, Dispatched, DispatcherBuilder, Error, ErrorKind, Value};
use troupe_modules::builtin::ids;

use crate::journal::{Before, Journal};
use crate::{Process, Resume, Step, StepCx};

/// The command a workflow yields while its journal makes a record durable
/// (runtime-internal: no module exposes it).
pub(crate) const DURABLE: CommandId = CommandId(1023);

/// How many journaled results a replay serves in one step.
const REPLAY_BURST: u32 = 64;

/// Registers [`DURABLE`]'s handler: it only waits, for the completion the
/// journal sends.
pub(crate) fn register(b: &mut DispatcherBuilder) -> Result<(), Error> {
    b.untyped(DURABLE, "journal.durable", |_, _| Dispatched::Pending(None))?;
    Ok(())
}

/// Where the wrapper is between two steps.
#[derive(Default)]
enum Phase {
    /// Nothing journaled in flight.
    #[default]
    Idle,
    /// A live command is out: its result goes to the journal first.
    Recording,
    /// The journal makes its records durable; then this step is taken.
    Committing(After),
    /// The journal makes a result's record durable; then the script gets
    /// the result.
    Holding(Result<Value, Error>),
    /// The journal makes a run's end durable (`workflow.continue_as_new`);
    /// then the script starts afresh with these arguments.
    Restarting(Vec<Value>),
    /// A replayed result the script gets when it runs next.
    Replayed(Result<Value, Error>),
}

/// What a commit holds back.
enum After {
    /// A live command: yielded, and its result recorded if `record`.
    Dispatch { call: Call, record: bool },
    /// The process's end (a result, a failure or `process.exit`).
    End(Step),
}

/// Starts the workflow's script afresh with new arguments (for
/// `workflow.continue_as_new`).
pub(crate) type Restart = Box<dyn Fn(Vec<Value>) -> Result<Box<dyn Process>, Error> + Send>;

/// A workflow process: the engine's process and its journal.
pub(crate) struct JournaledProcess {
    inner: Box<dyn Process>,
    journal: Box<dyn Journal>,
    restart: Restart,
    phase: Phase,
}

impl JournaledProcess {
    /// Wraps `inner` with `journal`; `restart` makes the process of a new
    /// run.
    pub fn new(inner: Box<dyn Process>, journal: Box<dyn Journal>, restart: Restart) -> Self {
        Self {
            inner,
            journal,
            restart,
            phase: Phase::Idle,
        }
    }

    /// What the script is resumed with, given how the wrapper's last yield
    /// ended; `Err` is the step to return instead.
    fn input(&mut self, cx: &StepCx<'_>, input: Resume) -> Result<Resume, Step> {
        match (mem::take(&mut self.phase), input) {
            (Phase::Recording, Resume::Return(result)) => match self.journal.record(&result) {
                Ok(false) => Ok(Resume::Return(result)),
                Ok(true) => Err(self.commit(cx, Phase::Holding(result))),
                Err(e) => Err(Step::Failed(e)),
            },
            (Phase::Restarting(args), Resume::Return(Ok(_))) => match (self.restart)(args) {
                Ok(inner) => {
                    self.inner = inner;
                    Ok(Resume::Start)
                }
                Err(e) => Err(Step::Failed(e)),
            },
            (Phase::Committing(after), Resume::Return(Ok(_))) => Err(self.proceed(after)),
            (Phase::Holding(held), Resume::Return(Ok(_))) => Ok(Resume::Return(held)),
            (
                Phase::Committing(_) | Phase::Holding(_) | Phase::Restarting(_),
                Resume::Return(Err(e)),
            ) => Err(Step::Failed(e)),
            (Phase::Replayed(result), _) => Ok(Resume::Return(result)),
            (phase, input) => {
                self.phase = phase;
                Ok(input)
            }
        }
    }

    /// Takes the step a commit held back.
    fn proceed(&mut self, after: After) -> Step {
        match after {
            After::Dispatch { call, record } => {
                if record {
                    self.phase = Phase::Recording;
                }
                Step::Yield(call)
            }
            After::End(step) => step,
        }
    }

    /// Takes `after`, with `commit` once the journal's records are durable:
    /// at once if nothing is buffered, else after a commit.
    fn committed(&mut self, cx: &StepCx<'_>, after: After, commit: bool) -> Step {
        if commit && self.journal.pending() {
            self.commit(cx, Phase::Committing(after))
        } else {
            self.proceed(after)
        }
    }

    /// Has the journal commit, and yields [`DURABLE`] in `phase` until the
    /// commit completes it.
    fn commit(&mut self, cx: &StepCx<'_>, phase: Phase) -> Step {
        let Some(durable) = cx.completer() else {
            return Step::Failed(Error::new(
                ErrorKind::Internal,
                "a workflow was stepped without a completion sink",
            ));
        };
        self.journal.commit(durable);
        self.phase = phase;
        Step::Yield(Call::new(DURABLE, Value::Nil))
    }
}

impl Process for JournaledProcess {
    fn step(&mut self, cx: &mut StepCx<'_>, input: Resume) -> Step {
        let mut input = match self.input(cx, input) {
            Ok(input) => input,
            Err(step) => return step,
        };
        let mut replayed = 0;
        loop {
            // The script gets only what its journal answers by itself; every
            // other command is yielded, so the journal sees it.
            let step = {
                let mut inner_cx = cx.journaled(self.journal.as_mut());
                self.inner.step(&mut inner_cx, input)
            };
            let call = match step {
                Step::Yield(call) if call.id != ids::PROCESS_EXIT => call,
                Step::Preempted => return Step::Preempted,
                // The end shows outside: what led to it must be durable.
                end => return self.committed(cx, After::End(end), true),
            };
            match self.journal.before(cx.command_name(call.id), call) {
                Ok(Before::Dispatch { call, commit }) => {
                    let after = After::Dispatch { call, record: true };
                    return self.committed(cx, after, commit);
                }
                Ok(Before::Passthrough { call, commit }) => {
                    let after = After::Dispatch {
                        call,
                        record: false,
                    };
                    return self.committed(cx, after, commit);
                }
                Ok(Before::ContinueAsNew(args)) => {
                    return self.commit(cx, Phase::Restarting(args));
                }
                Ok(Before::Replay(result)) => {
                    replayed += 1;
                    if replayed >= REPLAY_BURST {
                        self.phase = Phase::Replayed(result);
                        return Step::Preempted;
                    }
                    input = Resume::Return(result);
                }
                Err(e) => return Step::Failed(e),
            }
        }
    }

    fn finish(&mut self, result: &Result<Value, Error>) {
        self.journal.finish(result);
    }

    fn memory(&self) -> Option<usize> {
        self.inner.memory()
    }

    fn instructions(&self) -> Option<u64> {
        self.inner.instructions()
    }
}
