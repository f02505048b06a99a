//! The expr engine: `.expr` files hold one expression of the expr language
//! (expr-lang.org, Go-compatible; the `expr` module's language), run by the
//! `expr-lang` crate within the module's evaluation budget.
//!
//! As a process, a `.expr` script runs to completion in its first step and
//! its value is the process's result. It sees the variable `args` (the
//! spawn arguments as a list) and, for every map argument, each entry as a
//! variable of its own: `spawn("total.expr", {price = 2.5, qty = 3})` can
//! say `price * qty`. A script's work is bounded by its budget
//! (`LIMIT_EXCEEDED` past it); it has no imports (no modules to load).
//!
//! As an interpreter ([`ExprInterpreter`]) it loads and executes
//! expressions, keeps globals (variables of every expression it runs) and
//! calls host functions registered by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use expr::{Context, Environment};
use parking_lot::Mutex;
use troupe_dispatcher::{Error, Value};
use troupe_modules::builtin::expr::{self as lang, Expression, environment, from_expr, to_expr};
use troupe_runtime::{Engine, Limits, Process, ProcessInit, Program};
use troupe_sources::Script;

use crate::capability::{Functions, Globals, HostFunction};
use crate::deterministic::{
    OneShot, call_by_name, downcast, interpreter, located, text, variables,
};
use crate::shell::Shell;

/// The engine's name and file extension.
const KIND: &str = "expr";

/// Compiles a `.expr` script. Syntax errors are `INVALID` naming
/// `key:line:column` (also in the details as `line`, `column`).
fn compile(script: &Script) -> Result<Arc<Expression>, Error> {
    let src = text(KIND, script)?;
    lang::compile(src)
        .map(Arc::new)
        .map_err(|e| located(KIND, &script.key, e))
}

/// The variables of `vars` as an expr context.
fn context(vars: &BTreeMap<String, Value>) -> Context {
    let mut ctx = Context::default();
    for (name, value) in vars {
        ctx.insert(name.as_str(), to_expr(value));
    }
    ctx
}

/// The expr process engine: runs `.expr` files (see the module docs).
#[derive(Debug, Default)]
pub struct ExprEngine;

impl ExprEngine {
    /// The engine.
    pub fn new() -> Self {
        Self
    }
}

impl Engine for ExprEngine {
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
                "{key}: an expression has no function {entry:?} to enter"
            )));
        }
        let vars = variables(&init.args);
        Ok(OneShot::boxed(move || {
            expression.run(&vars).map_err(|e| located(KIND, &key, e))
        }))
    }
}

/// An embeddable expr interpreter: `Loader`, `Executor`, `Globals` (the
/// variables every expression sees) and `Functions` (host functions
/// expressions call; `call_function` calls a host or built-in function by
/// name). The language has no modules, and each run has the `expr`
/// module's budget, so the policy and limits have nothing to act on.
pub struct ExprInterpreter {
    shell: Shell<Arc<Expression>>,
    env: Environment<'static>,
    globals: BTreeMap<String, Value>,
    /// The error a host function returned during the current run, so its
    /// kind reaches the caller (expr itself only carries a message).
    host_error: Arc<Mutex<Option<Error>>>,
}

impl Default for ExprInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl ExprInterpreter {
    /// A closed interpreter; `init` opens it.
    pub fn new() -> Self {
        Self {
            shell: Shell::new(KIND),
            env: environment(),
            globals: BTreeMap::new(),
            host_error: Arc::default(),
        }
    }

    fn compile(script: &Script) -> Result<Arc<Expression>, Error> {
        compile(script)
    }

    /// Forgets globals and host functions.
    fn clear(&mut self) {
        self.env = environment();
        self.globals.clear();
    }

    /// Every run has the module's budget; there is nothing else to limit.
    fn apply_limits(&mut self, _limits: Limits) {}

    fn run(&self, expression: &Expression) -> Result<Value, Error> {
        self.evaluate(expression, &self.globals)
    }

    /// Runs `expression` with `vars`; a failing host function's error wins
    /// over expr's report of it.
    fn evaluate(
        &self,
        expression: &Expression,
        vars: &BTreeMap<String, Value>,
    ) -> Result<Value, Error> {
        self.host_error.lock().take();
        expression
            .run_in(&self.env, &context(vars))
            .map_err(|e| self.host_error.lock().take().unwrap_or(e))
    }
}

interpreter!(ExprInterpreter);

impl Globals for ExprInterpreter {
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

impl Functions for ExprInterpreter {
    /// Registers `f` as the expr function `name(args…)`, replacing a
    /// built-in of that name. An error `f` returns fails the expression
    /// with that error.
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        self.shell.check()?;
        let f = self.shell.cancel().guard(f);
        if name.is_empty() {
            return Err(Error::invalid("expr: a function needs a name"));
        }
        let slot = Arc::clone(&self.host_error);
        self.env.add_function(name, move |call| {
            let args = call
                .args
                .into_iter()
                .map(from_expr)
                .collect::<Result<Vec<_>, _>>()
                .and_then(|args| f(args));
            match args {
                Ok(value) => Ok(to_expr(&value)),
                Err(e) => {
                    let message = e.to_string();
                    *slot.lock() = Some(e);
                    Err(expr::Error::ExprError(message))
                }
            }
        });
        Ok(())
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
