//! The Python engine (RustPython 0.5, `python` feature; `.py` scripts).
//!
//! **Threads.** RustPython's interpreter is `!Send`, so every Python process
//! runs on a dedicated interpreter thread and the [`Process`] the scheduler
//! steps is a `Send` handle to it (a *thread handoff*). `step` passes the
//! resume to the thread and waits while Python computes — exactly the time
//! an in-place engine would spend — and the thread hands back a command, a
//! preemption or the result. While a script waits for a command
//! (`time.sleep`, `process.receive`, …) only its own thread blocks, on a
//! channel; the scheduler worker has already returned `Step::Yield` and
//! runs other processes. Scripts therefore call commands like plain
//! functions: `time.sleep(10)`, `msg = process.receive()`. The price is one
//! OS thread (16 MiB of reserved stack) per live Python process.
//!
//! **Scripts.** `args` holds the spawn arguments. The result is the return
//! value of `main(*args)` when the script defines a function `main` (or of
//! the spawn's entry function), else the value of the global `result`
//! (`None` if unset).
//!
//! **Sandbox.** The interpreter is built without RustPython's stdlib and
//! without its `host_env`/`stdio` features: no `os`, `io` files, `socket`,
//! `sys` or `importlib`. `import` goes through a hook that sees only Troupe
//! modules (`json`, `time`, `process`, …) the policy allows: an unknown
//! module raises `TroupeImportError` (an `ImportError`) with kind
//! `NOT_FOUND`, a denied one `PERMISSION_DENIED`. `open`, `input`,
//! `breakpoint`, `help`, `exit` and `quit` are removed from the builtins.
//!
//! **Errors.** Troupe errors are `TroupeError` exceptions (a builtin) with
//! `.kind`, `.message`, `.retryable` and `.details`; scripts can catch and
//! raise them (`raise TroupeError("NOT_FOUND", "no user")`). An uncaught
//! exception fails the process with its kind (`INTERNAL` for Python's own
//! exceptions) and a message `file:line: Type: message`.
//!
//! **Limits.** RustPython has no fuel, so a trace hook counts *trace
//! events* (a line started, a function called) as the instructions of
//! [`Limits`](troupe_runtime::Limits): every `slice_instructions` events the
//! process is preempted, over `max_instructions` it fails `LIMIT_EXCEEDED`,
//! past `timeout` `TIMEOUT`. The hook ends a script by unwinding its
//! thread, which no `try`/`except` can catch. `max_memory` is checked by
//! the same hook against the bytes the script's thread allocated since the
//! run started, counted by [`CountingAllocator`], which the program must
//! install as its global allocator (the `troupe` CLI does; without it a
//! limited run fails `UNAVAILABLE`). The check runs between lines, so one
//! huge allocation is seen only after it succeeded.

mod interpreter;
mod process;
mod vm;

use std::sync::Arc;

use troupe_dispatcher::Error;
use troupe_runtime::{Engine, Process, ProcessInit, Program};
use troupe_sources::Script;

pub use self::interpreter::PythonInterpreter;
use self::process::PythonProcess;
use self::vm::Output;
pub use crate::alloc::CountingAllocator;
/// The RustPython VM crate, for embedders that need its API directly.
pub use rustpython_vm as rustpython;

/// Stack reserved for each interpreter thread (RustPython recurses on the
/// native stack).
const STACK_SIZE: usize = 16 << 20;

/// A compiled script: RustPython bytecode, made into a code object in each
/// process's interpreter.
struct PythonProgram {
    code: rustpython_vm::compiler::CodeObject,
}

/// The Python process engine. Cheap to clone.
#[derive(Clone)]
pub struct PythonEngine {
    output: Output,
}

impl Default for PythonEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl PythonEngine {
    /// A Python engine whose `print` writes lines to stdout.
    pub fn new() -> Self {
        Self::with_output(|line| println!("{line}"))
    }

    /// A Python engine whose `print` hands each line to `output`.
    pub fn with_output(output: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            output: Arc::new(output),
        }
    }
}

impl Engine for PythonEngine {
    fn name(&self) -> &str {
        "python"
    }

    fn extensions(&self) -> &[&str] {
        &["py"]
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        let code = std::str::from_utf8(&script.code)
            .map_err(|_| Error::invalid(format!("{} is not UTF-8", script.key)))?;
        let code = vm::compile(&script.key, code, rustpython_vm::compiler::Mode::Exec)?;
        Ok(Arc::new(PythonProgram { code }))
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let program = program
            .downcast_ref::<PythonProgram>()
            .ok_or_else(|| Error::internal("program was not compiled by the Python engine"))?;
        Ok(Box::new(PythonProcess::new(
            program.code.clone(),
            init,
            Arc::clone(&self.output),
        )))
    }
}
