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
//! - the result of a command that ran goes to [`Journal::record`]; the process
//!   stays parked until the journal reports the record durable through the
//!   [`Completer`], so a script never acts on a result that a crash could
//!   take back;
//! - how the process ended goes to [`Journal::finish`] (which may queue it
//!   without waiting for the disk), except when the
//!   runtime shut down under it: then the workflow stays unfinished and is
//!   resumed later.

use std::sync::Arc;

use troupe_dispatcher::{Call, Completer, Error, Pid, Value};
use troupe_modules::Policy;
use troupe_sources::Script;

/// What a journal decides about a command a workflow is about to run.
#[derive(Debug)]
pub enum Before {
    /// Replaying: resume the process with this journaled result, dispatch nothing.
    Replay(Result<Value, Error>),
    /// Live: dispatch this call (the one yielded, or a rewritten one), then
    /// [`Journal::record`] its result.
    Dispatch(Call),
    /// Live but not journaled: dispatch this call and hand its result
    /// straight to the process (the commands a `workflow.side_effect`
    /// function runs: only the function's value is journaled).
    Passthrough(Call),
}

/// The journal of one workflow process. Called only by the worker stepping
/// the process, one call at a time.
pub trait Journal: Send + 'static {
    /// Decides how to run `call`, named `name` by its handler registry.
    /// An error fails the process with it.
    fn before(&mut self, name: &str, call: Call) -> Result<Before, Error>;

    /// Records the result of the command last dispatched, then calls
    /// `durable.complete(Ok(Nil))` once the record is durable, or
    /// `durable.complete(Err(e))` if it could not be written (which fails
    /// the process with `e`).
    fn record(&mut self, result: &Result<Value, Error>, durable: Completer);

    /// Answers `call` inside the script's call, without a yield, when the
    /// journal answers it by itself without waiting (the workflow's id, a
    /// version marker); gives it back otherwise, to be yielded and go
    /// through [`Journal::before`]. A call it gives back must leave the
    /// journal as it was, or as `before` would leave it for the same call.
    /// By default every call is given back.
    fn immediate(&mut self, call: Call) -> Result<Result<Value, Error>, Call> {
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
}

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

    /// Called once by [`RuntimeBuilder::build`](crate::RuntimeBuilder::build)
    /// with the way to reach the runtime's processes, for signals to
    /// running workflows (also ones arriving from other OS processes).
    fn attach(&self, deliver: Deliver);
}

/// Delivers a signal `(topic, payload)` from no process (`from = nil`) to
/// the mailbox of process `pid` of a runtime; `UNAVAILABLE` once that
/// runtime is gone.
pub type Deliver = Arc<dyn Fn(Pid, &str, Value) -> Result<(), Error> + Send + Sync>;
