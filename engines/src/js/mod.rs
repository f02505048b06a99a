//! The JavaScript engine (boa): `.js` scripts and `.mjs` modules as Troupe
//! processes, and [`JsInterpreter`], the embeddable instance.
//!
//! boa's `Context` is bound to its thread, so contexts live on a few
//! dedicated JS threads and the scheduler steps a `Send` handle (see
//! `threads.rs`). A process never waits inside a step: a module command
//! (`time.sleep(10)`, `process.receive()`) returns a Promise and is yielded
//! to the dispatcher; its completion settles the Promise and the promise
//! jobs run in the next step.
//!
//! ```js
//! const time = require("time");
//! const process = require("process");
//! (async () => {
//!   await time.sleep(10);
//!   process.send(process.self(), { n: args[0] });
//!   const msg = await process.receive();
//!   return msg.n + 1;
//! })()
//! ```
//!
//! - **Result**: a script's completion value, awaited when it is a Promise
//!   (so an async main ends the script: `main()` or an async IIFE as its
//!   last statement); a module's `default` export, awaited likewise. With
//!   an entry (`Spawn::entry`) the global function (a module's export) of
//!   that name is called with the spawn arguments instead.
//! - **Arguments**: the global `args` array.
//! - **Modules**: `require(name)` through the process's policy (unknown →
//!   `NOT_FOUND`, denied → `PERMISSION_DENIED`); pure functions return
//!   values, commands return Promises; `process.self()` is `process.pid()`.
//!   `import` of other files is refused (there is no module loader).
//! - **Errors**: `Error` objects with `kind`, `message`, `retryable`,
//!   `details`; a failed command rejects its Promise with one. An uncaught
//!   error ends the process with its `kind` (a plain `throw` is `INTERNAL`)
//!   and the location `key:line:col` in the message and
//!   `details.location`.
//! - **Limits**: `max_instructions` caps the loop iterations of each call
//!   frame (boa's loop limit; 100,000,000 when unset), boa's recursion and
//!   stack limits apply, `timeout` is checked at every step; exceeding a
//!   limit is `LIMIT_EXCEEDED` (`TIMEOUT`), and a script cannot catch it.
//!   boa has no heap accounting, allocation hook or instruction hook, so
//!   `max_memory` is approximated: it also caps loop iterations at one per
//!   KiB (a growing loop ends there), while one huge allocation outside a
//!   loop (`'x'.repeat(1e8)`) is not caught; a long loop is not preempted
//!   (it holds its JS thread until it ends or hits its limit).
//! - **Sandbox**: only ECMAScript builtins, `require`, `print`,
//!   `console.log` and `args`; without the `nondeterministic` class no
//!   `Math.random`, `Date`, `WeakRef` or `FinalizationRegistry`.

mod convert;
mod host;
mod interpreter;
mod process;
mod run;
mod threads;

use std::sync::Arc;

use troupe_dispatcher::Error;
use troupe_runtime::{Engine, Process, ProcessInit, Program};
use troupe_sources::Script;

pub use self::interpreter::JsInterpreter;

/// The boa crate this engine is built on, for code that wants the raw API
/// beside Troupe's (e.g. the `engine_js` bench).
pub use boa_engine as boa;

/// Where `print` and `console.log` lines go.
pub(crate) type Output = Arc<dyn Fn(&str) + Send + Sync>;

/// A JS script checked for syntax errors; each process parses it again on
/// its own thread (boa's compiled code is bound to one thread).
struct JsProgram {
    code: Arc<[u8]>,
}

/// The JavaScript process engine (`.js` scripts, `.mjs` modules). Cheap to
/// clone.
#[derive(Clone)]
pub struct JsEngine {
    output: Output,
}

impl Default for JsEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl JsEngine {
    /// A JS engine whose `print`/`console.log` write lines to stdout.
    pub fn new() -> Self {
        Self::with_output(|line| println!("{line}"))
    }

    /// A JS engine whose `print`/`console.log` hand each line to `output`.
    pub fn with_output(output: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            output: Arc::new(output),
        }
    }
}

impl Engine for JsEngine {
    fn name(&self) -> &str {
        "js"
    }

    fn extensions(&self) -> &[&str] {
        &["js", "mjs"]
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        let key = script.key.clone();
        let code = Arc::clone(&script.code);
        let checked = Arc::clone(&code);
        threads::pick()?.call(move || run::check_syntax(&key, &checked))??;
        Ok(Arc::new(JsProgram { code }))
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let program = program
            .downcast_ref::<JsProgram>()
            .ok_or_else(|| Error::internal("program was not compiled by the JS engine"))?;
        let process = process::spawn(
            threads::pick()?,
            Arc::clone(&program.code),
            init,
            Arc::clone(&self.output),
        )?;
        Ok(Box::new(process))
    }
}
