//! The CEL engine: `.cel` files hold one Common Expression Language
//! expression (the CEL standard library plus `max`, `min` and `len`), run
//! by the `cel` crate.
//!
//! As a process, a `.cel` script runs to completion in its first step and
//! its value is the process's result. It sees the variable `args` (the
//! spawn arguments as a list) and, for every map argument, each entry as a
//! variable of its own: `spawn("total.cel", {price = 2, qty = 3})` can say
//! `price * qty`. CEL has no loops, so a script always ends; it has no
//! imports either (no modules to load).
//!
//! As an interpreter ([`CelInterpreter`]) it loads and executes
//! expressions, keeps globals (variables of every expression it runs) and
//! calls host functions registered by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use cel::extractors::Arguments;
use cel::{Context, ExecutionError};
use parking_lot::Mutex;
use troupe_dispatcher::{Error, Value};
mod lang;

use self::lang::{Expression, from_cel, root_context, to_cel};
use troupe_runtime::{Engine, Limits, Process, ProcessInit, Program};
use troupe_sources::Script;

use crate::capability::{Functions, Globals, HostFunction};
use crate::deterministic::{
    OneShot, call_by_name, downcast, interpreter, located, text, variables,
};
use crate::shell::Shell;

/// The engine's name and file extension.
const KIND: &str = "cel";

/// Compiles a `.cel` script. Syntax errors are `INVALID` naming
/// `key:line:column` (also in the details as `line`, `column`).
fn compile(script: &Script) -> Result<Arc<Expression>, Error> {
    let src = text(KIND, script)?;
    lang::compile(src)
        .map(Arc::new)
        .map_err(|e| located(KIND, &script.key, e))
}

/// The CEL process engine: runs `.cel` files (see the module docs).
#[derive(Debug, Default)]
pub struct CelEngine;

impl CelEngine {
    /// The engine.
    pub fn new() -> Self {
        Self
    }
}

impl Engine for CelEngine {
    fn name(&self) -> &str {
        KIND
    }

    fn extensions(&self) -> &[&str] {
        &[KIND]
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        Ok(Arc::new((script.key.clone(), compile(script)?)))
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let (key, expression) = downcast::<(String, Arc<Expression>)>(KIND, program)?.clone();
        if let Some(entry) = init.entry {
            return Err(Error::invalid(format!(
                "{key}: a CEL script has no function {entry:?} to enter"
            )));
        }
        let vars = variables(&init.args);
        Ok(OneShot::boxed(move || {
            expression.run(&vars).map_err(|e| located(KIND, &key, e))
        }))
    }
}

/// An embeddable CEL interpreter: `Loader`, `Executor`, `Globals` (the
/// variables every expression sees) and `Functions` (host functions
/// expressions call; `call_function` calls a host or built-in function by
/// name). CEL has no modules and no loops, so the policy and limits have
/// nothing to act on.
pub struct CelInterpreter {
    shell: Shell<Arc<Expression>>,
    root: Context<'static, 'static>,
    globals: BTreeMap<String, Value>,
    /// The error a host function returned during the current run, so its
    /// kind reaches the caller (CEL itself only carries a message).
    host_error: Arc<Mutex<Option<Error>>>,
}

impl Default for CelInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl CelInterpreter {
    /// A closed interpreter; `init` opens it.
    pub fn new() -> Self {
        Self {
            shell: Shell::new(KIND),
            root: root_context(),
            globals: BTreeMap::new(),
            host_error: Arc::default(),
        }
    }

    fn compile(script: &Script) -> Result<Arc<Expression>, Error> {
        compile(script)
    }

    /// Forgets globals and host functions.
    fn clear(&mut self) {
        self.root = root_context();
        self.globals.clear();
    }

    /// CEL cannot loop: an expression's work is bounded by its length, so
    /// there is nothing to limit.
    fn apply_limits(&mut self, _limits: Limits) {}

    fn run(&self, expression: &Expression) -> Result<Value, Error> {
        self.evaluate(expression, &self.globals)
    }

    /// Runs `expression` with `vars`; a failing host function's error wins
    /// over CEL's report of it.
    fn evaluate(
        &self,
        expression: &Expression,
        vars: &BTreeMap<String, Value>,
    ) -> Result<Value, Error> {
        let mut ctx = self.root.new_inner_scope();
        for (name, value) in vars {
            ctx.add_variable_from_value(name.as_str(), to_cel(value));
        }
        self.host_error.lock().take();
        expression
            .run_in(&ctx)
            .map_err(|e| self.host_error.lock().take().unwrap_or(e))
    }
}

interpreter!(CelInterpreter);

impl Globals for CelInterpreter {
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error> {
        self.shell.check()?;
        self.globals.insert(name.to_owned(), value);
        Ok(())
    }

    fn get_global(&mut self, name: &str) -> Result<Value, Error> {
        self.shell.check()?;
        Ok(self.globals.get(name).cloned().unwrap_or_default())
    }
}

impl Functions for CelInterpreter {
    /// Registers `f` as the CEL function `name(args…)`. A name the standard
    /// library declares is `ALREADY_EXISTS`. An error `f` returns fails the
    /// expression with that error.
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        self.shell.check()?;
        let f = self.shell.cancel().guard(f);
        let slot = Arc::clone(&self.host_error);
        let fname = name.to_owned();
        let handler = move |Arguments(args): Arguments| -> Result<cel::Value, ExecutionError> {
            let args = args
                .iter()
                .map(from_cel)
                .collect::<Result<Vec<_>, _>>()
                .and_then(|args| f(args));
            match args {
                Ok(value) => Ok(to_cel(&value)),
                Err(e) => {
                    let message = e.to_string();
                    *slot.lock() = Some(e);
                    Err(ExecutionError::function_error(fname.as_str(), message))
                }
            }
        };
        let r = self.root.add_function(name, handler).map_err(|e| {
            Error::new(
                troupe_dispatcher::ErrorKind::AlreadyExists,
                format!("cel: cannot register {name:?}: {e}"),
            )
        });
        self.shell.record(r)
    }

    /// Calls the host or built-in function `name` with `args`.
    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let r = self.shell.check().and_then(|()| {
            self.shell.cancel().check()?;
            call_by_name(KIND, name, args, |src, params| {
                self.evaluate(&lang::compile(src)?, params)
            })
        });
        self.shell.record(r)
    }
}
