//! A Python process: a `Send` handle to the interpreter thread that runs the
//! script. `step` hands the resume over and waits for the thread's next
//! [`Event`]; the thread runs only between the two.

use std::sync::mpsc::{self, Receiver, Sender};

use rustpython_vm::compiler::CodeObject;
use troupe_dispatcher::{Error, ErrorKind};
use troupe_runtime::{Process, ProcessInit, Resume, Step, StepCx};

use super::STACK_SIZE;
use super::vm::{self, Event, Host, Link, Output};

/// What the thread needs before its first step.
struct Start {
    code: CodeObject,
    init: ProcessInit,
    output: Output,
}

pub(crate) struct PythonProcess {
    start: Option<Start>,
    resumes: Option<Sender<Resume>>,
    events: Option<Receiver<Event>>,
}

impl PythonProcess {
    pub(crate) fn new(code: CodeObject, init: ProcessInit, output: Output) -> Self {
        Self {
            start: Some(Start { code, init, output }),
            resumes: None,
            events: None,
        }
    }

    /// Starts the interpreter thread; it runs until its first event.
    fn launch(&mut self, start: Start) -> Result<(), Error> {
        let (resume_tx, resume_rx) = mpsc::channel();
        let (event_tx, event_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("python {}", start.init.pid))
            .stack_size(STACK_SIZE)
            .spawn(move || run(start, event_tx, resume_rx))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot start a Python thread: {e}"),
                )
            })?;
        self.resumes = Some(resume_tx);
        self.events = Some(event_rx);
        Ok(())
    }

    /// Waits for the thread's next event.
    fn next(&self) -> Step {
        let Some(events) = &self.events else {
            return Step::Failed(Error::internal("the Python process is not running"));
        };
        match events.recv() {
            Ok(Event::Yield(call)) => Step::Yield(call),
            Ok(Event::Preempted) => Step::Preempted,
            Ok(Event::Done(v)) => Step::Done(v),
            Ok(Event::Failed(e)) => Step::Failed(e),
            Err(_) => Step::Failed(Error::internal("the Python thread ended unexpectedly")),
        }
    }
}

impl Process for PythonProcess {
    fn step(&mut self, _cx: &mut StepCx<'_>, input: Resume) -> Step {
        if let Some(start) = self.start.take() {
            if let Err(e) = self.launch(start) {
                return Step::Failed(e);
            }
            return self.next();
        }
        let sent = self.resumes.as_ref().is_some_and(|r| r.send(input).is_ok());
        if !sent {
            return Step::Failed(Error::internal("the Python thread ended unexpectedly"));
        }
        self.next()
    }
}

/// The interpreter thread: builds the sandboxed interpreter, runs the
/// script, reports how it ended. Dropping the process handle closes the
/// channel, which ends a waiting script.
fn run(start: Start, events: Sender<Event>, resumes: Receiver<Resume>) {
    let Start { code, init, output } = start;
    let mut host = Host::new(output);
    host.pid = init.pid;
    host.parent = init.parent;
    host.policy = init.policy;
    host.modules = init.modules;
    host.limits = init.limits;
    host.link = Some(Link {
        events: events.clone(),
        resumes,
    });
    host.start_budget();
    vm::install(host);
    let outcome = vm::guarded(|| {
        let (interp, scope) = vm::new_interpreter()?;
        let result = interp.enter(|vm| {
            vm::run_main(
                vm,
                vm.ctx.new_code(code),
                &scope,
                init.entry.as_deref(),
                &init.args,
            )
        });
        drop(scope);
        drop(interp);
        result
    })
    .and_then(|r| r);
    vm::uninstall();
    let event = match outcome {
        Ok(v) => Event::Done(v),
        Err(e) => Event::Failed(e),
    };
    // The handle may be gone (the process was killed): nothing to tell.
    let _ = events.send(event);
}
