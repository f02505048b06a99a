//! The hook that makes workflows durable: a per-process [`Journal`]
//! consulted before a command is dispatched and fed every result before the
//! process sees it, and the [`JournalStore`] that opens journals.
//!
//! The runtime knows nothing about how or where a journal is kept (the
//! `troupe-workflow` crate keeps it in an embedded database). Its side of the
//! contract, kept by the wrapper around a workflow's process
//! (`journaled.rs`), so the scheduler's step loop has no journal in it:
//!
//! - every command a workflow process yields goes through [`Journal::before`]
//!   first, which either serves the journaled result (nothing is dispatched),
//!   lets the command run (possibly rewritten, e.g. a durable sleep that only
//!   waits for what is left), or fails the process (`NONDETERMINISM`);
//! - the result of a command that ran goes to [`Journal::record`], which
//!   buffers it: a result only has to be durable before something outside
//!   the workflow can observe what the script did with it. So before a live
//!   command whose effect escapes the workflow (or that may wait long) is
//!   dispatched, when [`Before`] asks for it, after such a command when
//!   `record` asks for it, and before the process ends, the wrapper has the
//!   journal [`commit`](Journal::commit) and keeps the process parked until
//!   the journal reports everything recorded durable through the
//!   [`Completer`];
//! - how the process ended goes to [`Journal::finish`] (which may queue it
//!   without waiting for the disk), except when the
//!   runtime shut down under it: then the workflow stays unfinished and is
//!   resumed later.

use std::sync::Arc;

use troupe_dispatcher::{Call, Completer, Error, Pid, Value};
use troupe_modules::Policy;
use troupe_modules::builtin::workflow::ParentClose;
use troupe_sources::Script;

/// What a journal decides about a command a workflow is about to run.
#[derive(Debug)]
pub enum Before {
    /// Replaying: resume the process with this journaled result, dispatch nothing.
    Replay(Result<Value, Error>),
    /// Live: dispatch `call` (the one yielded, or a rewritten one), then
    /// [`Journal::record`] its result. With `commit`, everything recorded
    /// so far is made durable first ([`Journal::commit`]): the command's
    /// effect escapes the workflow, or it may wait long.
    Dispatch {
        /// The call to dispatch.
        call: Call,
        /// Whether to commit the journal before dispatching it.
        commit: bool,
    },
    /// Live but not journaled: dispatch `call` and hand its result straight
    /// to the process (the commands a `workflow.side_effect` function runs:
    /// only the function's value is journaled); `commit` as for
    /// [`Dispatch`](Self::Dispatch).
    Passthrough {
        /// The call to dispatch.
        call: Call,
        /// Whether to commit the journal before dispatching it.
        commit: bool,
    },
    /// `workflow.continue_as_new`: the journal has recorded the end of this
    /// run and the start of the next. Once a commit makes that durable, the
    /// process starts its script afresh with these arguments, and the
    /// journal serves the new run.
    ContinueAsNew(Vec<Value>),
}

/// How [`Journal::immediate`] runs a live command inside the script's call.
pub struct Inline<'a> {
    /// The command's registered name.
    pub name: &'a str,
    /// The runtime's immediate handlers: the answer, or the call given
    /// back when its handler would have to wait.
    pub run: &'a dyn Fn(Call) -> Result<Result<Value, Error>, Call>,
}

impl std::fmt::Debug for Inline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline").field("name", &self.name).finish()
    }
}

/// The journal of one workflow process. Called only by the worker stepping
/// the process, one call at a time.
pub trait Journal: Send + 'static {
    /// Decides how to run `call`, named `name` by its handler registry.
    /// An error fails the process with it.
    fn before(&mut self, name: &str, call: Call) -> Result<Before, Error>;

    /// Records the result of the command last dispatched, buffered until
    /// the next [`commit`](Self::commit). Returns whether the record must
    /// be durable before the script sees the result (the command's effect
    /// was seen outside the workflow: a resume must not run it again); the
    /// wrapper then commits first. An error (the result cannot be encoded)
    /// fails the process with it.
    fn record(&mut self, result: &Result<Value, Error>) -> Result<bool, Error>;

    /// Whether records are buffered that no commit has taken yet.
    fn pending(&self) -> bool;

    /// Makes every record so far durable, then calls
    /// `durable.complete(Ok(Nil))`, or `durable.complete(Err(e))` if they
    /// could not be written (which fails the process with `e`).
    fn commit(&mut self, durable: Completer);

    /// Answers `call` inside the script's call, without a yield, where no
    /// commit has to come first: what the journal answers by itself (the
    /// workflow's id, a version marker), a journaled result while the script
    /// replays its history, or, given `inline`, a live command local to the
    /// workflow that the runtime answers at once (recorded like a
    /// dispatched one). Gives the call back otherwise, to be yielded and go
    /// through [`Journal::before`]; a call it gives back must leave the
    /// journal as it was, or as `before` would leave it for the same call.
    /// By default every call is given back.
    fn immediate(
        &mut self,
        call: Call,
        inline: Option<Inline<'_>>,
    ) -> Result<Result<Value, Error>, Call> {
        let _ = inline;
        Err(call)
    }

    /// Records how the process ended. Called on the worker that ended the
    /// process, so it should not wait for a disk: a journal may queue the
    /// record, as long as its store's readers (and a later resume) see it.
    fn finish(&mut self, result: &Result<Value, Error>);
}

/// How a workflow process is started.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// A new workflow: its id must not exist yet.
    New,
    /// An unfinished workflow: replay its history, then continue live.
    Resume,
    /// Any workflow, replay only: the script must end exactly where its
    /// history ends, without running anything live (a determinism check).
    Replay,
}

/// What a [`JournalStore`] needs to open a workflow's journal.
#[derive(Debug)]
pub struct WorkflowStart<'a> {
    /// The workflow id.
    pub id: &'a str,
    /// The process that will run it.
    pub pid: Pid,
    /// The script it runs, as read from the runtime's source now.
    pub script: &'a Script,
    /// The spawn arguments.
    pub args: &'a [Value],
    /// New, resume or replay.
    pub mode: StartMode,
    /// The policy the process runs with (for a resume or a replay: the one
    /// [`StoredWorkflow::policy`] gave).
    pub policy: &'a Policy,
    /// The whole workflow's time limit (the spawn's `Limits::timeout`): a
    /// new workflow's store keeps its deadline, so a resume gets only
    /// what is left ([`StoredWorkflow::deadline_ms`]).
    pub timeout: Option<std::time::Duration>,
    /// For a child workflow (`workflow.start_child`): its parent's id and
    /// what happens to it when the parent ends.
    pub parent: Option<(&'a str, ParentClose)>,
}

/// A workflow as its store remembers it: enough to start it again.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredWorkflow {
    /// The script's key in the runtime's source.
    pub key: String,
    /// The spawn arguments of its first run.
    pub args: Vec<Value>,
    /// The policy it started with: a resume runs with it, never a wider
    /// one. `None` for a history recorded before policies were journaled
    /// (it then gets the store's policy).
    pub policy: Option<Policy>,
    /// When the workflow times out, ms since the Unix epoch (set when it
    /// started with a `Limits::timeout`; it spans `continue_as_new` runs).
    pub deadline_ms: Option<u64>,
    /// The workflow that started it with `workflow.start_child`, if any.
    pub parent: Option<String>,
}

/// Called once with a child workflow's outcome (see
/// [`JournalStore::await_child`]).
pub type ChildDone = Box<dyn FnOnce(Result<Value, Error>) + Send>;

/// Where workflow journals live. Set with
/// [`RuntimeBuilder::journal_store`](crate::RuntimeBuilder::journal_store).
pub trait JournalStore: Send + Sync + 'static {
    /// Opens the journal of a workflow process about to start.
    fn open(&self, start: &WorkflowStart<'_>) -> Result<Box<dyn Journal>, Error>;

    /// The script and arguments of workflow `id` (`NOT_FOUND` if unknown).
    fn load(&self, id: &str) -> Result<StoredWorkflow, Error>;

    /// The ids of every workflow that has not finished, oldest first.
    fn unfinished(&self) -> Result<Vec<String>, Error>;

    /// The policy of workflow processes spawned without one of their own
    /// (and of resumed ones).
    fn policy(&self) -> Policy;

    /// Sends the unfinished workflow `id` the message `{topic, payload}`
    /// durably: kept in the store until the workflow journals receiving
    /// it, handed to its process's mailbox (through the function given to
    /// [`attach`](Self::attach)) if it runs in this runtime, and to the
    /// first matching `process.receive` of its next resume otherwise.
    /// `NOT_FOUND` if unknown, `CONFLICT` if finished.
    fn signal(&self, id: &str, topic: &str, payload: Value) -> Result<(), Error>;

    /// Asks the unfinished workflow `id` to stop, durably: its script gets
    /// an error of kind `CANCELED` from its next command (at once, if it
    /// waits in `time.sleep` or `process.receive`), once; cleanup code may
    /// still run commands after it. `NOT_FOUND` if unknown, `CONFLICT` if
    /// finished.
    fn cancel(&self, id: &str) -> Result<(), Error>;

    /// The unfinished child workflows of workflow `id` (started with
    /// `workflow.start_child`), resumed with it.
    fn unfinished_children(&self, id: &str) -> Result<Vec<String>, Error>;

    /// Calls `done` with the outcome of `child`, a child workflow of the
    /// running workflow `parent`: at once if it has ended, else when it
    /// ends; the error, if it failed, keeps its kind and names the child.
    /// `done` gets `CANCELED` instead if `parent` is cancelled first.
    /// `NOT_FOUND` if `child` is no child of `parent`.
    fn await_child(&self, parent: &str, child: &str, done: ChildDone) -> Result<(), Error>;

    /// Called once by [`RuntimeBuilder::build`](crate::RuntimeBuilder::build)
    /// with the way to reach the runtime's processes, for signals and
    /// cancellations of running workflows (also ones arriving from other OS
    /// processes).
    fn attach(&self, reach: Reach);

    /// Called by [`RuntimeBuilder::build`](crate::RuntimeBuilder::build)
    /// after it recovered the unfinished workflows
    /// ([`recover`](crate::RuntimeBuilder::recover)): a store that several
    /// OS processes share hands `resume` each unfinished workflow whose
    /// process died from then on, so this runtime takes it over. By
    /// default nothing: a store one process opens has no one to take over
    /// from.
    fn take_over(&self, _resume: TakeOver) {}
}

/// Resumes the unfinished workflow with this id in the runtime (see
/// [`JournalStore::take_over`]).
pub type TakeOver = Arc<dyn Fn(&str) -> Result<(), Error> + Send + Sync>;

/// How a [`JournalStore`] reaches the processes of the runtime using it.
#[derive(Clone)]
pub struct Reach {
    /// Delivers a signal to a process's mailbox.
    pub deliver: Deliver,
    /// Ends the wait of a process with an error.
    pub interrupt: Interrupt,
    /// Ends a process with an error (a terminated child workflow).
    pub stop: Stop,
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reach")
    }
}

/// What a process waits in, for an [`Interrupt`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A `time.sleep`.
    Sleep,
    /// A `process.receive`.
    Receive,
}

/// Ends the wait of process `pid` in a [`Wait`] now, as if the command
/// returned the error; false if it is not waiting in one (not yet, or any
/// more).
pub type Interrupt = Arc<dyn Fn(Pid, Wait, Error) -> bool + Send + Sync>;

/// Ends process `pid` with the error, as if it failed with it; false if
/// it is not alive.
pub type Stop = Arc<dyn Fn(Pid, Error) -> bool + Send + Sync>;

/// Delivers a signal `(topic, payload)` from no process (`from = nil`) to
/// the mailbox of process `pid` of a runtime; `UNAVAILABLE` once that
/// runtime is gone.
pub type Deliver = Arc<dyn Fn(Pid, &str, Value) -> Result<(), Error> + Send + Sync>;
