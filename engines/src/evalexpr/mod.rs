//! The evalexpr engine: `.evalexpr` files hold an `evalexpr` expression
//! (arithmetic, comparisons, `&&`/`||`, strings, tuples, `if(c, a, b)`,
//! built-ins such as `min`, `max`, `len`, `str::to_uppercase`, and
//! `;`-chained assignments like `a = 2; a * 3`).
//!
//! evalexpr values are strings, integers, floats, booleans, tuples and
//! empty; Troupe values map onto them as: `Nil` ↔ empty, arrays ↔ tuples,
//! bytes → a tuple of integers, and a map bound as a variable becomes one
//! variable per entry named with dots (`{age = 3}` bound as `u` is `u.age`,
//! since evalexpr identifiers may contain dots); a map inside a list
//! becomes a tuple of `(key, value)` tuples, and a non-empty tuple of
//! `(string, value)` tuples comes back as a map (how a script returns a
//! record: `(("sum", 6), ("ok", true))`).
//!
//! As a process, a `.evalexpr` script runs to completion in its first step and
//! its value is the process's result. It sees `args` (the spawn arguments
//! as a tuple; evalexpr cannot index, so each is also `args.0`, `args.1`,
//! …) and, for every map argument, each entry as a variable of its
//! own (nested maps flattened with dots). The language has no loops and no
//! imports, so a script always ends and loads nothing.
//!
//! As an interpreter ([`EvalexprInterpreter`]) it loads and executes
//! expressions, keeps globals (assignments persist between runs) and calls
//! host functions registered by name.

use std::sync::Arc;

use evalexpr::{
    Context, ContextWithMutableFunctions, ContextWithMutableVariables, EvalexprError, Function,
    HashMapContext, Node,
};
use parking_lot::Mutex;
use troupe_dispatcher::{Error, ErrorKind, Value};
use troupe_runtime::{Engine, Limits, Process, ProcessInit, Program};
use troupe_sources::Script;

use crate::capability::{Functions, Globals, HostFunction};
use crate::deterministic::{ARGS, OneShot, downcast, interpreter, text, variables};
use crate::shell::Shell;

/// The engine's name and file extension (`expr` is the expr language,
/// see [`crate::expr`]).
const KIND: &str = "evalexpr";

/// Scripts longer than this are refused (`INVALID`): without loops, the
/// source length bounds the work and memory of a run.
const MAX_SOURCE_LEN: usize = 64 * 1024;

/// A compiled `.evalexpr` script.
#[derive(Clone)]
struct Compiled {
    key: String,
    tree: Arc<Node>,
}

/// Parses a script; a syntax error is `INVALID` naming the key (evalexpr
/// reports no position).
fn compile(script: &Script) -> Result<Compiled, Error> {
    let src = text(KIND, script)?;
    if src.len() > MAX_SOURCE_LEN {
        return Err(Error::invalid(format!(
            "{}: {} bytes is longer than the limit of {MAX_SOURCE_LEN}",
            script.key,
            src.len()
        )));
    }
    evalexpr::build_operator_tree(src)
        .map(|tree| Compiled {
            key: script.key.clone(),
            tree: Arc::new(tree),
        })
        .map_err(|e| Error::invalid(format!("{}: {e}", script.key)))
}

/// A Troupe value as an evalexpr value (maps have no counterpart: they are
/// bound entry by entry by [`bind`]).
fn to_expr(value: &Value) -> evalexpr::Value {
    match value {
        Value::Nil => evalexpr::Value::Empty,
        Value::Bool(b) => evalexpr::Value::Boolean(*b),
        Value::Int(i) => evalexpr::Value::Int(*i),
        Value::Float(f) => evalexpr::Value::Float(*f),
        Value::String(s) => evalexpr::Value::String(s.clone()),
        Value::Bytes(b) => evalexpr::Value::Tuple(
            b.iter()
                .map(|byte| evalexpr::Value::Int(i64::from(*byte)))
                .collect(),
        ),
        Value::Array(items) => evalexpr::Value::Tuple(items.iter().map(to_expr).collect()),
        Value::Map(map) => evalexpr::Value::Tuple(
            map.iter()
                .map(|(k, v)| {
                    evalexpr::Value::Tuple(vec![evalexpr::Value::String(k.clone()), to_expr(v)])
                })
                .collect(),
        ),
    }
}

/// An evalexpr value as a Troupe value. A non-empty tuple of
/// `(string, value)` pairs is a map (evalexpr has no maps: this is how a
/// script returns a record, and how a map it was given comes back).
fn from_expr(value: &evalexpr::Value) -> Value {
    match value {
        evalexpr::Value::Empty => Value::Nil,
        evalexpr::Value::Boolean(b) => Value::Bool(*b),
        evalexpr::Value::Int(i) => Value::Int(*i),
        evalexpr::Value::Float(f) => Value::Float(*f),
        evalexpr::Value::String(s) => Value::String(s.clone()),
        evalexpr::Value::Tuple(items) => {
            let entry = |item: &evalexpr::Value| match item {
                evalexpr::Value::Tuple(pair) => match pair.as_slice() {
                    [evalexpr::Value::String(k), v] => Some((k.clone(), from_expr(v))),
                    _ => None,
                },
                _ => None,
            };
            match items.iter().map(entry).collect::<Option<_>>() {
                Some(map) if !items.is_empty() => Value::Map(map),
                _ => Value::Array(items.iter().map(from_expr).collect()),
            }
        }
    }
}

/// Binds `value` as `name`: a map binds each entry as `name.key`
/// (recursively), anything else binds as itself.
fn bind(ctx: &mut HashMapContext, name: &str, value: &Value) -> Result<(), Error> {
    if let Value::Map(map) = value {
        for (key, item) in map {
            bind(ctx, &format!("{name}.{key}"), item)?;
        }
        return Ok(());
    }
    ctx.set_value(name.to_owned(), to_expr(value))
        .map_err(|e| Error::invalid(format!("expr: cannot set {name:?}: {e}")))
}

/// An evaluation error: `INVALID` with the key (evalexpr reports no
/// position).
fn runtime_error(key: &str, e: &EvalexprError) -> Error {
    Error::invalid(format!("{key}: {e}"))
}

/// The evalexpr process engine: runs `.evalexpr` files (see the module
/// docs).
#[derive(Debug, Default)]
pub struct EvalexprEngine;

impl EvalexprEngine {
    /// The engine.
    pub fn new() -> Self {
        Self
    }
}

impl Engine for EvalexprEngine {
    fn name(&self) -> &str {
        KIND
    }

    fn extensions(&self) -> &[&str] {
        &[KIND]
    }

    fn compile(&self, script: &Script) -> Result<Program, Error> {
        Ok(Arc::new(compile(script)?))
    }

    fn instantiate(&self, program: &Program, init: ProcessInit) -> Result<Box<dyn Process>, Error> {
        let compiled = downcast::<Compiled>(KIND, program)?.clone();
        if let Some(entry) = init.entry {
            return Err(Error::invalid(format!(
                "{}: an expression has no function {entry:?} to enter",
                compiled.key
            )));
        }
        let vars = variables(&init.args);
        Ok(OneShot::boxed(move || {
            let mut ctx = HashMapContext::new();
            for (name, value) in &vars {
                bind(&mut ctx, name, value)?;
            }
            for (i, value) in init.args.iter().enumerate() {
                bind(&mut ctx, &format!("{ARGS}.{i}"), value)?;
            }
            compiled
                .tree
                .eval_with_context_mut(&mut ctx)
                .map(|v| from_expr(&v))
                .map_err(|e| runtime_error(&compiled.key, &e))
        }))
    }
}

/// An embeddable evalexpr interpreter: `Loader`, `Executor`, `Globals`
/// (variables; a script's assignments persist into later runs, a map
/// global is bound entry by entry as `name.key`) and `Functions` (host
/// functions scripts call as `f(a, b)`; a function gets its arguments as a
/// list, and `call_function` calls a host function by name). No modules,
/// no loops: the policy and limits have nothing to act on.
pub struct EvalexprInterpreter {
    shell: Shell<Compiled>,
    ctx: HashMapContext,
    /// The error a host function returned during the current run, so its
    /// kind reaches the caller (evalexpr itself only carries a message).
    host_error: Arc<Mutex<Option<Error>>>,
}

impl Default for EvalexprInterpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl EvalexprInterpreter {
    /// A closed interpreter; `init` opens it.
    pub fn new() -> Self {
        Self {
            shell: Shell::new(KIND),
            ctx: HashMapContext::new(),
            host_error: Arc::default(),
        }
    }

    fn compile(script: &Script) -> Result<Compiled, Error> {
        compile(script)
    }

    /// Forgets variables and host functions.
    fn clear(&mut self) {
        self.ctx = HashMapContext::new();
    }

    /// evalexpr cannot loop: a run's work is bounded by the script's
    /// length, so there is nothing to limit.
    fn apply_limits(&mut self, _limits: Limits) {}

    fn run(&mut self, compiled: &Compiled) -> Result<Value, Error> {
        self.host_error.lock().take();
        compiled
            .tree
            .eval_with_context_mut(&mut self.ctx)
            .map(|v| from_expr(&v))
            .map_err(|e| {
                self.host_error
                    .lock()
                    .take()
                    .unwrap_or_else(|| runtime_error(&compiled.key, &e))
            })
    }
}

interpreter!(EvalexprInterpreter);

impl Globals for EvalexprInterpreter {
    fn set_global(&mut self, name: &str, value: Value) -> Result<(), Error> {
        self.shell.check()?;
        let r = bind(&mut self.ctx, name, &value);
        self.shell.record(r)
    }

    fn get_global(&mut self, name: &str) -> Result<Value, Error> {
        self.shell.check()?;
        Ok(self.ctx.get_value(name).map(from_expr).unwrap_or_default())
    }
}

/// A host function's arguments: a tuple is the argument list, empty is no
/// arguments, anything else is the one argument.
fn arguments(argument: &evalexpr::Value) -> Vec<Value> {
    match argument {
        evalexpr::Value::Tuple(items) => items.iter().map(from_expr).collect(),
        evalexpr::Value::Empty => Vec::new(),
        one => vec![from_expr(one)],
    }
}

impl Functions for EvalexprInterpreter {
    fn register_function(&mut self, name: &str, f: HostFunction) -> Result<(), Error> {
        self.shell.check()?;
        let f = self.shell.cancel().guard(f);
        let slot = Arc::clone(&self.host_error);
        let function = Function::new(move |argument| {
            f(arguments(argument)).map(|v| to_expr(&v)).map_err(|e| {
                let message = e.to_string();
                *slot.lock() = Some(e);
                EvalexprError::CustomMessage(message)
            })
        });
        let r = self
            .ctx
            .set_function(name.to_owned(), function)
            .map_err(|e| Error::invalid(format!("expr: cannot register {name:?}: {e}")));
        self.shell.record(r)
    }

    fn call_function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, Error> {
        let r = self.shell.check().and_then(|()| {
            self.shell.cancel().check()?;
            let argument = match args.as_slice() {
                [] => evalexpr::Value::Empty,
                [one] => to_expr(one),
                _ => evalexpr::Value::Tuple(args.iter().map(to_expr).collect()),
            };
            self.host_error.lock().take();
            self.ctx
                .call_function(name, &argument)
                .map(|v| from_expr(&v))
                .map_err(|e| {
                    self.host_error.lock().take().unwrap_or_else(|| match e {
                        EvalexprError::FunctionIdentifierNotFound(_) => {
                            Error::new(ErrorKind::NotFound, format!("expr: no function {name:?}"))
                        }
                        other => Error::invalid(format!("expr: {name}: {other}")),
                    })
                })
        });
        self.shell.record(r)
    }
}
