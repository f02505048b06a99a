//! The journal of one workflow process: serves its history while the script
//! replays it, checks that the script yields the same commands in the same
//! order, then records every live result, buffered until a commit point
//! (see [`Class`]), through the group-commit writer.
//!
//! It also answers the `workflow` module's commands itself, without
//! dispatching them: `workflow.id()`; `workflow.version(change, min, max)`
//! from the version markers of the history (recording one, without waiting
//! for it, when a new execution reaches a change); and the steps of
//! `workflow.side_effect(fn)`: on replay the journaled value, live a go-ahead,
//! after which the commands `fn` runs are dispatched unjournaled and only
//! `fn`'s value is journaled, as one step.

use std::collections::HashMap;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use troupe_dispatcher::{Call, Completer, Error, ErrorKind, Value};
use troupe_modules::builtin::ids;
use troupe_modules::builtin::workflow::{
    ContinueAsNew, DEFAULT_VERSION, SideEffect, side_effect_begin, side_effect_outcome,
};
use troupe_runtime::{Before, Inline, Journal, StartMode, Wait};

use crate::record::{Chunk, Entry, EntryRef, describe, encode};
use crate::store::{Op, now_ms, now_ms_f64};
use crate::{Posted, WorkflowStore};

/// The journal the scheduler consults for one workflow process.
pub(crate) struct WorkflowJournal {
    pub id: Arc<str>,
    pub store: WorkflowStore,
    /// The history to replay.
    pub history: Vec<Entry>,
    /// How many history entries the script has replayed.
    pub cursor: usize,
    /// Deadlines of sleeps in flight when the workflow last stopped, by step.
    pub timers: HashMap<u64, u64>,
    pub mode: StartMode,
    /// The next step number to record.
    pub next_step: u64,
    /// The command running live: its name and the call as the script yielded it.
    pub live: Option<(String, Call)>,
    /// The version of every change the history recorded or this run decided.
    pub versions: HashMap<String, i64>,
    /// Where the commands of the history end (markers may follow).
    pub replay_end: usize,
    /// How deep the script is in live `workflow.side_effect` functions.
    pub side_effects: usize,
    /// Signals sent while no process ran the workflow, oldest first:
    /// `(seq, {topic, payload})`, received before the mailbox.
    pub inbox: std::collections::VecDeque<(u64, Value)>,
    /// The inbox signal the live command receives.
    pub consume: Option<u64>,
    /// Signals sent to this process's mailbox while it runs, until it
    /// journals receiving them.
    pub posted: Posted,
    /// Records not yet handed to the writer, oldest first.
    pub pending: Vec<Op>,
    /// Whether the live side-effect function ran a command with an effect
    /// outside the workflow (its value is then durable before the script
    /// sees it).
    pub side_effect_escaped: bool,
    /// The most steps a run's history may hold.
    pub limit: u64,
    /// A cancellation asked for, and what the script waits in.
    pub cancel: Arc<Canceling>,
    /// Whether the script got its cancellation (journaled as a `CANCELED`
    /// result).
    pub canceled: bool,
    /// Whether the warning that the history nears its limit was logged.
    pub warned: bool,
    /// Whether this run started child workflows (their parent-close
    /// policies apply when it ends).
    pub has_children: bool,
}

/// A workflow's cancellation, shared by its journal and its store: asked
/// for (`requested`) and what the script waits in now (`waiting`: 0 none,
/// 1 a sleep, 2 a receive), so a cancellation can end the wait.
#[derive(Default)]
pub(crate) struct Canceling {
    pub requested: AtomicBool,
    pub waiting: AtomicU8,
    /// Whether the script got its cancellation (the journal's `canceled`).
    pub delivered: AtomicBool,
}

impl Canceling {
    /// What the script waits in, if anything.
    pub fn waiting(&self) -> Option<Wait> {
        match self.waiting.load(Ordering::SeqCst) {
            1 => Some(Wait::Sleep),
            2 => Some(Wait::Receive),
            _ => None,
        }
    }
}

/// Whether `result` of `call` is the workflow's own cancellation (not a
/// child's `CANCELED` outcome a `workflow.await` passed on).
pub(crate) fn is_own_cancel(call: &Call, result: &Result<Value, Error>) -> bool {
    let Err(e) = result else {
        return false;
    };
    let from_child =
        call.id == ids::WORKFLOW_AWAIT && e.details().is_some_and(|d| d.get("child").is_some());
    e.kind() == ErrorKind::Canceled && !from_child
}

/// The error a cancelled workflow's script gets.
pub(crate) fn canceled_error(id: &str) -> Error {
    Error::new(
        ErrorKind::Canceled,
        format!("workflow {id:?} was cancelled"),
    )
}

/// How a live command's record is made durable: the rule is that a result
/// only has to be durable before something outside the workflow can
/// observe what the script did with it. Until then, a crash just runs the
/// script again to a point no one outside has seen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Class {
    /// Local to the workflow: reading the clock, drawing random numbers and
    /// ids, looking up names or children, a side effect's value. Its record
    /// rides along with the next commit.
    Local,
    /// A wait that can take long (`time.sleep`, `process.receive`,
    /// `workflow.await`): what is buffered commits before it starts; its
    /// own record rides along.
    Wait,
    /// An effect outside the workflow (a send, a spawn, a child
    /// workflow's start, a signal, IO, a host module's command, a link, a
    /// kill): what is buffered commits before it runs, and its own record
    /// before the script sees its result, so a resume never runs it again
    /// once the script went on.
    Effect,
}

/// The class of command `call`.
pub(crate) fn class(call: &Call) -> Class {
    match call.id {
        ids::TIME_NOW
        | ids::TIME_MONOTONIC
        | ids::RAND_INT
        | ids::RAND_FLOAT
        | ids::RAND_CHOICE
        | ids::UUID_V4
        | ids::UUID_V7
        | ids::PROCESS_WHEREIS
        | ids::SUPERVISOR_CHILDREN
        | ids::WORKFLOW_SIDE_EFFECT => Class::Local,
        ids::TIME_SLEEP | ids::PROCESS_RECEIVE | ids::WORKFLOW_AWAIT => Class::Wait,
        _ => Class::Effect,
    }
}

/// The text argument `key` of `call` (empty if it has none).
fn text_arg(call: &Call, key: &str) -> String {
    call.args()
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whether a history entry is a `workflow.version` marker rather than a
/// command the script replays in order.
pub(crate) fn is_marker(e: &Entry) -> bool {
    let Entry::Command { call, .. } = e;
    call.id == ids::WORKFLOW_VERSION
}

/// The versions a history's markers recorded, by change id.
pub(crate) fn recorded_versions(history: &[Entry]) -> HashMap<String, i64> {
    history
        .iter()
        .filter(|e| is_marker(e))
        .filter_map(|Entry::Command { call, result, .. }| {
            let change = call.args().get("change_id")?.as_str()?.to_owned();
            Some((change, result.as_ref().ok()?.as_i64()?))
        })
        .collect()
}

impl WorkflowJournal {
    /// `LIMIT_EXCEEDED` once the run's history holds [`limit`](Self::limit)
    /// steps (a warning is logged at 80%), naming the way out.
    fn check_limit(&mut self) -> Result<(), Error> {
        let steps = self.next_step.saturating_sub(1);
        if steps >= self.limit {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "workflow {:?} reached its history limit of {} steps: call workflow.continue_as_new(state) before that to go on with a fresh history (WorkflowStore::with_history_limit sets the limit)",
                    self.id, self.limit
                ),
            ));
        }
        if !self.warned && steps >= self.limit / 5 * 4 {
            self.warned = true;
            tracing::warn!(
                workflow = %self.id,
                steps,
                limit = self.limit,
                "the workflow's history is at 80% of its limit: it fails at the limit unless it calls workflow.continue_as_new"
            );
        }
        Ok(())
    }

    /// Answers the live command `call` with the workflow's cancellation,
    /// journaled as its result, so a replay gets it at the same point.
    fn deliver_cancel(&mut self, name: &str, call: Call) -> Result<Before, Error> {
        self.set_canceled();
        let error = canceled_error(&self.id);
        self.live = Some((name.to_owned(), call));
        self.record(&Err(error.clone()))?;
        Ok(Before::Replay(Err(error)))
    }

    /// Notes that the script got its cancellation.
    fn set_canceled(&mut self) {
        self.canceled = true;
        self.cancel.delivered.store(true, Ordering::SeqCst);
    }

    /// Ends this run: queues the run's end and the next run's start (one
    /// commit, with the records still buffered) and starts the journal
    /// afresh, for the script's new run with `args`.
    fn continue_as_new(&mut self, args: Vec<Value>) -> Before {
        if mem::take(&mut self.has_children) {
            self.store.close_children(&self.id);
        }
        self.pending.push(Op::ContinueAsNew {
            id: Arc::clone(&self.id),
            args: args.clone(),
        });
        self.history.clear();
        self.cursor = 0;
        self.timers.clear();
        self.next_step = 1;
        self.live = None;
        self.versions.clear();
        self.replay_end = 0;
        self.side_effects = 0;
        self.side_effect_escaped = false;
        self.consume = None;
        self.warned = false;
        // A cancellation the ended run got does not carry over.
        self.cancel.requested.store(false, Ordering::SeqCst);
        self.cancel.delivered.store(false, Ordering::SeqCst);
        self.canceled = false;
        self.mode = StartMode::New;
        Before::ContinueAsNew(args)
    }

    fn nondeterminism(&self, step: usize, name: &str, call: &Call) -> Error {
        let journaled = self.history[step].describe();
        Error::new(
            ErrorKind::Nondeterminism,
            format!(
                "workflow {:?} step {}: the script now runs {} but the history has {journaled}",
                self.id,
                step + 1,
                describe(name, call)
            ),
        )
    }

    /// A durable sleep: the deadline is journaled when the sleep starts, so
    /// after a restart it waits only for what is left.
    fn sleep(&mut self, call: &Call) -> Call {
        let ms = call.args().get("ms").and_then(Value::as_f64).unwrap_or(0.0);
        let now = now_ms_f64();
        let deadline = match self.timers.get(&self.next_step) {
            Some(d) => *d,
            None => {
                // Rounded up to the next whole ms, so no clock read after the
                // sleep (`time.now`, after a resume too) is short of it
                // (`as` saturates, and a NaN `ms` counts as 0).
                let d = (now + ms.max(0.0)).ceil() as u64;
                self.pending.push(Op::Timer {
                    id: Arc::clone(&self.id),
                    step: self.next_step,
                    deadline: d,
                });
                d
            }
        };
        let left = (deadline as f64 - now).max(0.0);
        let args = [("ms".to_owned(), Value::Float(left.min(ms)))]
            .into_iter()
            .collect();
        Call::new(call.id, Value::Map(args))
    }
}

impl WorkflowJournal {
    /// What the journal answers by itself, without the history's cursor or
    /// a dispatch: the workflow's id, a version marker, a publish.
    fn own_answer(&mut self, call: &Call) -> Option<Result<Value, Error>> {
        match call.id {
            ids::WORKFLOW_ID => Some(Ok(Value::from(&*self.id))),
            ids::WORKFLOW_VERSION => Some(self.version(call).map(Value::Int)),
            ids::WORKFLOW_PUBLISH => Some(self.publish(call).map(|()| Value::Nil)),
            _ => None,
        }
    }

    /// `workflow.version(change, min, max)`, Temporal's `GetVersion`.
    fn version(&mut self, call: &Call) -> Result<i64, Error> {
        let args = call.args();
        let arg = |k: &str| args.get(k).and_then(Value::as_i64).unwrap_or(0);
        let (min, max) = (arg("min"), arg("max"));
        let change = text_arg(call, "change_id");
        let version = match self.versions.get(&change) {
            Some(v) => *v,
            // Replaying a history that ran past this point before the change.
            None if self.mode == StartMode::Replay || self.cursor < self.replay_end => {
                DEFAULT_VERSION
            }
            None => {
                self.mark(call, max)?;
                max
            }
        };
        self.versions.insert(change.clone(), version);
        if version < min || version > max {
            return Err(Error::new(
                ErrorKind::Nondeterminism,
                format!(
                    "workflow {:?}: change {change:?} has version {version} in the history{} but the script allows only {min}..={max}",
                    self.id,
                    if version == DEFAULT_VERSION {
                        " (DEFAULT_VERSION: the history predates the change)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(version)
    }

    /// Queues the workflow's published `{key, value}` for the store, behind
    /// the records that led to it and without waiting: a query sees it once
    /// they are durable. A replay writes nothing: what it publishes again
    /// was written when it ran live.
    fn publish(&mut self, call: &Call) -> Result<(), Error> {
        if self.mode == StartMode::Replay || self.cursor < self.replay_end {
            return Ok(());
        }
        let key = text_arg(call, "key");
        let value = encode(call.args().get("value").unwrap_or(&Value::Nil))?;
        self.pending.push(Op::Publish {
            id: Arc::clone(&self.id),
            key,
            value,
        });
        self.send_pending(None)
    }

    /// Hands the buffered records to the writer as one batch, completing
    /// `durable` (if any) once they are durable.
    fn send_pending(&mut self, durable: Option<Completer>) -> Result<(), Error> {
        let ops = mem::take(&mut self.pending);
        self.store.db()?.send(Op::Batch { ops, durable });
        Ok(())
    }

    /// Buffers a version marker: it commits with the next commit point,
    /// before anything the script does with the version can escape.
    fn mark(&mut self, call: &Call, version: i64) -> Result<(), Error> {
        let entry = EntryRef::Command {
            name: "workflow.version",
            call,
            result: &Ok(Value::Int(version)),
            at_ms: now_ms(),
        };
        self.append(&entry, false, None)
    }

    /// Buffers the next history entry: into the chunk of the entries
    /// buffered right before it, or a new one. An entry that cannot be
    /// encoded is an error, and nothing is buffered.
    fn append(
        &mut self,
        entry: &EntryRef<'_>,
        clear_timer: bool,
        consume: Option<u64>,
    ) -> Result<(), Error> {
        let step = self.next_step;
        match self.pending.last_mut() {
            Some(Op::Entries {
                chunk,
                timers,
                consumed,
                ..
            }) => {
                chunk.push(entry)?;
                timers.extend(clear_timer.then_some(step));
                consumed.extend(consume);
            }
            _ => {
                let mut chunk = Chunk::default();
                chunk.push(entry)?;
                self.pending.push(Op::Entries {
                    id: Arc::clone(&self.id),
                    first: step,
                    chunk,
                    timers: clear_timer.then_some(step).into_iter().collect(),
                    consumed: consume.into_iter().collect(),
                });
            }
        }
        self.next_step += 1;
        Ok(())
    }

    /// For a live `process.receive`, the oldest inbox signal it takes, as
    /// the message `{from = nil, topic, payload}` (marked for removal when
    /// its journal entry is written).
    fn signal_for(&mut self, call: &Call) -> Option<Value> {
        if call.id != ids::PROCESS_RECEIVE {
            return None;
        }
        let args = call.args();
        let wanted = args.get("topic").and_then(Value::as_str);
        let at = self.inbox.iter().position(|(_, m)| {
            wanted.is_none_or(|t| m.get("topic").and_then(Value::as_str) == Some(t))
        })?;
        let (seq, message) = self.inbox.remove(at)?;
        self.consume = Some(seq);
        let mut m = match message {
            Value::Map(m) => m,
            _ => Default::default(),
        };
        m.insert("from".to_owned(), Value::Nil);
        Some(Value::Map(m))
    }

    /// For a live `process.receive` that took a message of no process from
    /// the mailbox, the posted signal it is (same topic and payload): the
    /// inbox copy to remove with its journal entry.
    fn received(&self, call: &Call, result: &Result<Value, Error>) -> Option<u64> {
        let message = result
            .as_ref()
            .ok()
            .filter(|_| call.id == ids::PROCESS_RECEIVE)?;
        if !message.get("from").is_none_or(Value::is_nil) {
            return None;
        }
        let mut posted = self.posted.lock();
        let at = posted.iter().position(|(_, p)| {
            p.get("topic") == message.get("topic") && p.get("payload") == message.get("payload")
        })?;
        posted.remove(at).map(|(seq, _)| seq)
    }

    /// A command yielded while a live side-effect function runs.
    fn in_side_effect(&mut self, name: &str, call: Call) -> Before {
        match call.id {
            ids::WORKFLOW_SIDE_EFFECT_BEGIN => {
                self.side_effects += 1;
                Before::Replay(Ok(side_effect_begin(None)))
            }
            ids::WORKFLOW_SIDE_EFFECT if self.side_effects > 1 => {
                self.side_effects -= 1;
                Before::Replay(
                    call.into_command::<SideEffect>()
                        .and_then(side_effect_outcome),
                )
            }
            ids::WORKFLOW_SIDE_EFFECT => {
                self.side_effects = 0;
                self.live = Some((name.to_owned(), call.clone()));
                Before::Dispatch {
                    call,
                    commit: false,
                }
            }
            _ => {
                let commit = class(&call) != Class::Local;
                self.side_effect_escaped |= class(&call) == Class::Effect;
                Before::Passthrough { call, commit }
            }
        }
    }

    /// Records the result of the live command `call`, named `name`, as
    /// [`Journal::record`] does.
    fn record_call(
        &mut self,
        name: &str,
        call: &Call,
        result: &Result<Value, Error>,
    ) -> Result<bool, Error> {
        let clear_timer = call.id == ids::TIME_SLEEP;
        self.cancel.waiting.store(0, Ordering::SeqCst);
        // A wait the cancellation ended.
        if is_own_cancel(call, result) && self.cancel.requested.load(Ordering::SeqCst) {
            self.set_canceled();
        }
        if call.id == ids::WORKFLOW_START_CHILD && result.is_ok() {
            self.has_children = true;
        }
        let durable_now = match class(call) {
            Class::Effect => true,
            Class::Wait => false,
            Class::Local => mem::take(&mut self.side_effect_escaped),
        };
        let consume = self.consume.take().or_else(|| self.received(call, result));
        let entry = EntryRef::Command {
            name,
            call,
            result,
            at_ms: now_ms(),
        };
        self.append(&entry, clear_timer, consume)?;
        Ok(durable_now)
    }
}

impl Journal for WorkflowJournal {
    fn before(&mut self, name: &str, call: Call) -> Result<Before, Error> {
        if let Some(own) = self.own_answer(&call) {
            return own.map(|v| Before::Replay(Ok(v)));
        }
        if self.side_effects > 0 {
            return Ok(self.in_side_effect(name, call));
        }
        while self.history.get(self.cursor).is_some_and(is_marker) {
            self.cursor += 1;
        }
        if let Some(entry) = self.history.get(self.cursor) {
            let Entry::Command {
                call: journaled,
                result,
                ..
            } = entry;
            if call.id == ids::WORKFLOW_SIDE_EFFECT_BEGIN
                && journaled.id == ids::WORKFLOW_SIDE_EFFECT
            {
                self.cursor += 1;
                return Ok(Before::Replay(
                    result.clone().map(|v| side_effect_begin(Some(v))),
                ));
            }
            if *journaled != call {
                return Err(self.nondeterminism(self.cursor, name, &call));
            }
            self.cursor += 1;
            return Ok(Before::Replay(result.clone()));
        }
        if self.mode == StartMode::Replay {
            return Err(Error::new(
                ErrorKind::Nondeterminism,
                format!(
                    "workflow {:?} step {}: the history ends after {} steps but the script runs {}",
                    self.id,
                    self.cursor + 1,
                    self.history.len(),
                    describe(name, &call)
                ),
            ));
        }
        let wait = match call.id {
            ids::TIME_SLEEP => 1,
            ids::PROCESS_RECEIVE => 2,
            _ => 0,
        };
        // Set before the cancellation is read: a cancellation asked for
        // meanwhile either is seen here or sees the wait and ends it.
        self.cancel.waiting.store(wait, Ordering::SeqCst);
        if !self.canceled && self.cancel.requested.load(Ordering::SeqCst) {
            self.cancel.waiting.store(0, Ordering::SeqCst);
            return self.deliver_cancel(name, call);
        }
        if call.id == ids::WORKFLOW_CONTINUE_AS_NEW {
            let ContinueAsNew { args } = call.into_command()?;
            return Ok(self.continue_as_new(args));
        }
        self.check_limit()?;
        if call.id == ids::WORKFLOW_SIDE_EFFECT_BEGIN {
            self.side_effects = 1;
            return Ok(Before::Replay(Ok(side_effect_begin(None))));
        }
        let dispatch = if call.id == ids::TIME_SLEEP {
            self.sleep(&call)
        } else if let Some(signal) = self.signal_for(&call) {
            // Served from the inbox: journaled as the `receive` it answers.
            Call::new(
                ids::WORKFLOW_SIDE_EFFECT,
                Value::Map([("value".to_owned(), signal)].into_iter().collect()),
            )
        } else {
            call.clone()
        };
        let commit = class(&call) != Class::Local;
        self.live = Some((name.to_owned(), call));
        Ok(Before::Dispatch {
            call: dispatch,
            commit,
        })
    }

    fn immediate(
        &mut self,
        call: Call,
        inline: Option<Inline<'_>>,
    ) -> Result<Result<Value, Error>, Call> {
        match self.own_answer(&call) {
            Some(Ok(v)) => return Ok(Ok(v)),
            // A failed version check fails the process through `before`,
            // which comes to the same answer.
            Some(Err(_)) => return Err(call),
            None => {}
        }
        // Side effects and divergences are left to `before`.
        if self.side_effects > 0
            || call.id == ids::WORKFLOW_SIDE_EFFECT_BEGIN
            || call.id == ids::WORKFLOW_SIDE_EFFECT
        {
            return Err(call);
        }
        while self.history.get(self.cursor).is_some_and(is_marker) {
            self.cursor += 1;
        }
        if let Some(Entry::Command {
            call: journaled,
            result,
            ..
        }) = self.history.get(self.cursor)
        {
            if *journaled != call {
                return Err(call);
            }
            self.cursor += 1;
            return Ok(result.clone());
        }
        let Some(inline) = inline.filter(|_| self.mode != StartMode::Replay) else {
            return Err(call);
        };
        let cancel = !self.canceled && self.cancel.requested.load(Ordering::SeqCst);
        if class(&call) != Class::Local || self.next_step > self.limit || cancel {
            return Err(call);
        }
        let result = (inline.run)(call.clone())?;
        // A local record never has to be durable before the script sees
        // it; one that cannot be encoded fails the call instead.
        match self.record_call(inline.name, &call, &result) {
            Ok(_) => Ok(result),
            Err(e) => Ok(Err(e)),
        }
    }

    fn record(&mut self, result: &Result<Value, Error>) -> Result<bool, Error> {
        let Some((name, call)) = self.live.take() else {
            return Err(Error::internal(format!(
                "workflow {:?}: a result arrived for no command",
                self.id
            )));
        };
        self.record_call(&name, &call, result)
    }

    fn pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn commit(&mut self, durable: Completer) {
        if let Err(e) = self.store.db() {
            return durable.complete(Err(e));
        }
        // Only fails without a store, checked above.
        let _ = self.send_pending(Some(durable));
    }

    /// A workflow that diverged from its history stays unfinished: a fixed
    /// script can still resume it.
    fn finish(&mut self, result: &Result<Value, Error>) {
        if self.mode == StartMode::Replay {
            return;
        }
        if let Err(e) = result
            && e.kind() == ErrorKind::Nondeterminism
        {
            tracing::info!(workflow = %self.id, error = %e, "workflow left unfinished");
            return;
        }
        // Queued behind the records still buffered (a killed workflow's),
        // not waited for: the wrapper made every record the result depends
        // on durable before the end showed, so a crash before this commits
        // just runs the workflow to the same end again.
        self.pending.push(Op::Finish {
            id: Arc::clone(&self.id),
            result: result.clone(),
        });
        if let Err(e) = self.send_pending(None) {
            tracing::error!(workflow = %self.id, error = %e, "cannot journal the workflow's end");
        }
        self.store.child_ended(&self.id, result);
        if self.has_children {
            self.store.close_children(&self.id);
        }
    }
}

impl Drop for WorkflowJournal {
    fn drop(&mut self) {
        self.store.release(&self.id);
    }
}
