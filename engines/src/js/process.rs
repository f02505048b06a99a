//! A JS process: its boa `Context` lives on a JS thread (in that thread's
//! table); [`JsProcess`] is the `Send` handle the scheduler steps.
//!
//! One step: start (or settle the Promise of the command the script waited
//! for), run the promise jobs, then yield the next command the script
//! started, or finish when the script's main value settled. Commands a
//! script starts without awaiting them (`process.send(...)`) still run, in
//! the order they were started, before the process ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use boa_engine::Context;
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_runtime::{Process, ProcessInit, Resume, Step, StepCx};

use super::Output;
use super::convert::from_js_error;
use super::host::{Host, Pending, new_context, set_global, settle};
use super::run::{Main, Outcome, Stop, apply_limits, call_entry, parse, poll, start};
use super::threads::Worker;

thread_local! {
    /// The processes living on this JS thread, by id.
    static PROCESSES: RefCell<HashMap<u64, ProcState>> = RefCell::new(HashMap::new());
}

/// A process's state on its JS thread.
struct ProcState {
    ctx: Context,
    host: Rc<Host>,
    key: String,
    code: std::sync::Arc<[u8]>,
    args: Vec<Value>,
    entry: Option<String>,
    main: Option<Main>,
    /// The command whose result the process waits for.
    awaiting: Option<Pending>,
    deadline: Option<Instant>,
}

impl ProcState {
    fn new(code: std::sync::Arc<[u8]>, init: ProcessInit, output: Output) -> Result<Self, Error> {
        let host = Host::new(
            init.pid,
            init.parent,
            init.policy,
            init.modules,
            true,
            output,
        );
        let mut ctx = new_context(Rc::clone(&host))?;
        apply_limits(&mut ctx, &init.limits);
        set_global(&mut ctx, "args", &Value::Array(init.args.clone()))?;
        Ok(Self {
            ctx,
            host,
            key: init.key,
            code,
            args: init.args,
            entry: init.entry,
            main: None,
            awaiting: None,
            deadline: init.limits.deadline(Instant::now()),
        })
    }

    fn step(&mut self, input: Resume) -> Step {
        if let Err(e) = past(self.deadline, &self.key) {
            return Step::Failed(e);
        }
        match input {
            Resume::Start => {
                let (deadline, key) = (self.deadline, self.key.clone());
                let stop = move || past(deadline, &key);
                let stop: Option<Stop<'_>> = deadline.map(|_| &stop as Stop<'_>);
                let main = parse(&self.key, &self.code, &mut self.ctx)
                    .and_then(|parsed| start(&parsed, &self.key, &mut self.ctx, stop));
                let main = match (main, self.entry.clone()) {
                    (Ok(m), None) => m,
                    (Ok(m), Some(entry)) => {
                        if let Err(e) = self.ctx.run_jobs() {
                            return Step::Failed(from_js_error(e, &self.key, &mut self.ctx));
                        }
                        match call_entry(&m, &entry, &self.args, &self.key, &mut self.ctx) {
                            Ok(m) => m,
                            Err(e) => return Step::Failed(e),
                        }
                    }
                    (Err(e), _) => return Step::Failed(e),
                };
                self.main = Some(main);
            }
            Resume::Return(result) => {
                if let Some(pending) = self.awaiting.take() {
                    settle(pending, result, &mut self.ctx);
                }
            }
            Resume::Continue => {}
        }
        let Some(main) = self.main.as_mut() else {
            return Step::Failed(Error::internal("JS process stepped before it started"));
        };
        let outcome = poll(main, &self.key, &mut self.ctx);
        if let Outcome::Failed(e) = outcome {
            return Step::Failed(e);
        }
        let next = self.host.commands.borrow_mut().pop_front();
        if let Some(pending) = next {
            let call = pending.call.clone();
            self.awaiting = Some(pending);
            return Step::Yield(call);
        }
        match outcome {
            Outcome::Done(v) => Step::Done(v),
            Outcome::Failed(e) => Step::Failed(e),
            Outcome::Waiting => Step::Failed(Error::internal(format!(
                "{}: the script awaits a Promise nothing will settle",
                self.key
            ))),
        }
    }
}

/// `TIMEOUT` (naming `key`) once `deadline` passed.
pub(crate) fn past(deadline: Option<Instant>, key: &str) -> Result<(), Error> {
    match deadline {
        Some(deadline) if Instant::now() >= deadline => Err(Error::new(
            ErrorKind::Timeout,
            format!("{key}: time limit exceeded"),
        )),
        _ => Ok(()),
    }
}

/// Starts a process on `worker`; returns its handle.
pub(crate) fn spawn(
    worker: &'static Worker,
    code: std::sync::Arc<[u8]>,
    init: ProcessInit,
    output: Output,
) -> Result<JsProcess, Error> {
    let id = super::threads::next_id();
    worker.call(move || {
        let state = ProcState::new(code, init, output)?;
        PROCESSES.with(|p| p.borrow_mut().insert(id, state));
        Ok::<_, Error>(())
    })??;
    Ok(JsProcess { worker, id })
}

/// The scheduler's handle on a JS process.
pub(crate) struct JsProcess {
    worker: &'static Worker,
    id: u64,
}

impl Process for JsProcess {
    fn step(&mut self, _cx: &mut StepCx<'_>, input: Resume) -> Step {
        let id = self.id;
        let stepped = self.worker.call(move || {
            // Taken out of the table while it runs, so script callbacks
            // never find the table borrowed.
            let state = PROCESSES.with(|p| p.borrow_mut().remove(&id));
            let Some(mut state) = state else {
                return Step::Failed(Error::internal("JS process state is gone"));
            };
            let step = state.step(input);
            if matches!(step, Step::Yield(_) | Step::Preempted) {
                PROCESSES.with(|p| p.borrow_mut().insert(id, state));
            }
            step
        });
        stepped.unwrap_or_else(Step::Failed)
    }
}

impl Drop for JsProcess {
    fn drop(&mut self) {
        let id = self.id;
        self.worker.post(move || {
            let state = PROCESSES.with(|p| p.borrow_mut().remove(&id));
            drop(state);
        });
    }
}
