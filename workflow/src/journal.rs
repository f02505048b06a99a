//! The journal of one workflow process: serves its history while the script
//! replays it, checks that the script yields the same commands in the same
//! order, then records every live result through the group-commit writer.

use std::collections::HashMap;
use std::sync::Arc;

use troupe_dispatcher::{Call, Completer, Error, ErrorKind, Value};
use troupe_modules::builtin::ids;
use troupe_runtime::{Before, Journal, StartMode};

use crate::WorkflowStore;
use crate::record::{Entry, describe, encode};
use crate::store::{Op, now_ms};

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
}

impl WorkflowJournal {
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
        let ms = call.args.get("ms").and_then(Value::as_f64).unwrap_or(0.0);
        let now = now_ms();
        let deadline = match self.timers.get(&self.next_step) {
            Some(d) => *d,
            None => {
                let d = now.saturating_add(ms.max(0.0) as u64);
                if let Ok(db) = self.store.db() {
                    db.send(Op::Timer {
                        id: Arc::clone(&self.id),
                        step: self.next_step,
                        deadline: d,
                    });
                }
                d
            }
        };
        let left = deadline.saturating_sub(now) as f64;
        let args = [("ms".to_owned(), Value::Float(left.min(ms)))]
            .into_iter()
            .collect();
        Call::new(call.id, Value::Map(args))
    }
}

impl Journal for WorkflowJournal {
    fn before(&mut self, name: &str, call: Call) -> Result<Before, Error> {
        if let Some(entry) = self.history.get(self.cursor) {
            let Entry::Command {
                call: journaled,
                result,
                ..
            } = entry;
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
        let dispatch = if call.id == ids::TIME_SLEEP {
            self.sleep(&call)
        } else {
            call.clone()
        };
        self.live = Some((name.to_owned(), call));
        Ok(Before::Dispatch(dispatch))
    }

    fn record(&mut self, result: &Result<Value, Error>, durable: Completer) {
        let Some((name, call)) = self.live.take() else {
            durable.complete(Err(Error::internal(format!(
                "workflow {:?}: a result arrived for no command",
                self.id
            ))));
            return;
        };
        let clear_timer = call.id == ids::TIME_SLEEP;
        let entry = Entry::Command {
            name,
            call,
            result: result.clone(),
            at_ms: now_ms(),
        };
        let db = match self.store.db() {
            Ok(db) => db,
            Err(e) => return durable.complete(Err(e)),
        };
        match encode(&entry) {
            Ok(bytes) => {
                db.send(Op::Append {
                    id: Arc::clone(&self.id),
                    step: self.next_step,
                    entry: bytes,
                    clear_timer,
                    durable,
                });
                self.next_step += 1;
            }
            Err(e) => durable.complete(Err(e)),
        }
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
        let written = self.store.db().and_then(|db| {
            db.call(|reply| Op::Finish {
                id: Arc::clone(&self.id),
                result: result.clone(),
                reply,
            })
        });
        if let Err(e) = written {
            tracing::error!(workflow = %self.id, error = %e, "cannot journal the workflow's end");
        }
    }
}

impl Drop for WorkflowJournal {
    fn drop(&mut self) {
        self.store.release(&self.id);
    }
}
